//! The fields of a processed entry that record a file the pipeline left behind
//! (`staging_dir`, `torrent_path`), as an enum so that a misspelt field does not compile.

use std::fmt;

use serde::{Serialize, Serializer};

use super::model::ProcessedKey;

/// A field of a processed entry holding the path of an artifact a stage leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactField {
    /// `staging_dir`: the staged release (the staged and metadata stages).
    StagingDir,
    /// `torrent_path`: the .torrent file (the torrent stage).
    TorrentPath,
}

impl ArtifactField {
    /// The entry's key that holds the path.
    pub fn key(self) -> ProcessedKey {
        match self {
            ArtifactField::StagingDir => ProcessedKey::StagingDir,
            ArtifactField::TorrentPath => ProcessedKey::TorrentPath,
        }
    }
}

/// The key's name, as output (`state should-skip`, `state prune`) names the field.
impl fmt::Display for ArtifactField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key().name())
    }
}

/// The key's name, as `state prune --json` lists the missing fields.
impl Serialize for ArtifactField {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key().name())
    }
}
