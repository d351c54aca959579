//! Release status and the transition table (docs/FORMAT.md, *Transitions*).

use std::fmt;

/// The stage a release has reached. A status string this build does not know is kept as it is
/// (`Unknown`) and never blocks a command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    Discovered,
    Staged,
    MetadataFetched,
    TorrentCreated,
    Uploaded,
    Complete,
    Failed,
    Unknown(String),
}

impl Status {
    /// Every status this build knows, in pipeline order.
    pub const KNOWN: [Status; 7] = [
        Status::Discovered,
        Status::Staged,
        Status::MetadataFetched,
        Status::TorrentCreated,
        Status::Uploaded,
        Status::Complete,
        Status::Failed,
    ];

    /// Reads a status as stored in the file; unknown strings are kept.
    pub fn parse(text: &str) -> Status {
        Status::KNOWN
            .iter()
            .find(|s| s.as_str() == text)
            .cloned()
            .unwrap_or_else(|| Status::Unknown(text.to_string()))
    }

    /// Reads a status given by a user: only known names (any case) are accepted.
    pub fn from_user(text: &str) -> Option<Status> {
        let upper = text.trim().to_ascii_uppercase().replace('-', "_");
        match Status::parse(&upper) {
            Status::Unknown(_) => None,
            known => Some(known),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Discovered => "DISCOVERED",
            Status::Staged => "STAGED",
            Status::MetadataFetched => "METADATA_FETCHED",
            Status::TorrentCreated => "TORRENT_CREATED",
            Status::Uploaded => "UPLOADED",
            Status::Complete => "COMPLETE",
            Status::Failed => "FAILED",
            Status::Unknown(text) => text,
        }
    }

    /// Statuses reachable from this one in one step, itself excluded. `None` for an unknown
    /// status, from which anything goes.
    pub fn successors(&self) -> Option<&'static [Status]> {
        Some(match self {
            Status::Discovered => &[Status::Staged],
            Status::Staged => &[Status::MetadataFetched],
            Status::MetadataFetched => &[Status::TorrentCreated],
            Status::TorrentCreated => &[Status::Uploaded, Status::Complete],
            Status::Uploaded => &[Status::Complete],
            Status::Complete => &[],
            Status::Failed => &[Status::Discovered],
            Status::Unknown(_) => return None,
        })
    }

    /// Whether `self -> next` is allowed. Same status is always allowed (idempotent writes).
    pub fn can_become(&self, next: &Status) -> bool {
        self == next
            || match self.successors() {
                Some(allowed) => allowed.contains(next),
                None => true,
            }
    }

    /// The allowed targets from this status, for error messages: "STAGED, METADATA_FETCHED".
    pub fn allowed_text(&self) -> String {
        let mut names = vec![self.as_str().to_string()];
        match self.successors() {
            Some(next) => names.extend(next.iter().map(|s| s.as_str().to_string())),
            None => return "any status (unknown current status)".into(),
        }
        names.join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Reads the string in place: only an unknown status is copied.
        struct StatusVisitor;
        impl serde::de::Visitor<'_> for StatusVisitor {
            type Value = Status;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Status, E> {
                Ok(Status::parse(text))
            }
        }
        d.deserialize_str(StatusVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn allowed_transitions_follow_the_table() {
        let allowed = [
            (Discovered, Staged),
            (Staged, MetadataFetched),
            (MetadataFetched, TorrentCreated),
            (TorrentCreated, Uploaded),
            (TorrentCreated, Complete),
            (Uploaded, Complete),
            (Failed, Discovered),
        ];
        for from in Status::KNOWN {
            for to in Status::KNOWN {
                let expected = from == to || allowed.contains(&(from.clone(), to.clone()));
                assert_eq!(from.can_become(&to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn same_status_is_always_allowed() {
        for s in Status::KNOWN {
            assert!(s.can_become(&s));
        }
    }

    #[test]
    fn unknown_status_is_kept_and_never_blocks() {
        let odd = Status::parse("QUARANTINED");
        assert_eq!(odd.as_str(), "QUARANTINED");
        assert!(odd.can_become(&Complete));
        assert!(!Discovered.can_become(&odd));
    }

    #[test]
    fn user_input_is_case_insensitive_but_must_be_known() {
        assert_eq!(Status::from_user("metadata-fetched"), Some(MetadataFetched));
        assert_eq!(Status::from_user("bogus"), None);
    }

    #[test]
    fn allowed_text_names_the_current_and_the_next() {
        assert_eq!(
            TorrentCreated.allowed_text(),
            "TORRENT_CREATED, UPLOADED, COMPLETE"
        );
    }
}
