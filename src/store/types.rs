//! The types the [`Store`](super::Store) API takes and returns: its options, what an update
//! closure returns, where a loaded state came from, and what `generations`, `own_file` and
//! `restore` report.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::retention::Kept;
use crate::error::NotLoaded;
use crate::state::State;

/// How a [`Store`](super::Store) behaves (from `state.backup_depth`, `state.lock_timeout`,
/// `--dry-run`; the hourly and daily backups are [`Store::with_periodic_backups`](super::Store::with_periodic_backups)'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The newest N backup generations are kept (keep-last); 0 keeps none of them.
    pub backup_depth: usize,
    /// How long to wait for another process's lock before giving up (exit 75).
    pub lock_timeout: Duration,
    /// Change no file at all: no write, no backup, no recovery on disk, no lock file created.
    pub dry_run: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            backup_depth: 3,
            lock_timeout: Duration::from_secs(30),
            dry_run: false,
        }
    }
}

/// What a [`Store::update`](super::Store::update) closure returns: whether the state must be
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    Changed(T),
    Unchanged(T),
}

/// Where a loaded state came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The main file.
    Main,
    /// Neither the main file nor any backup exists: an empty state.
    Missing,
    /// The main file was missing or corrupt; this backup was used (and, unless in dry run or
    /// on a read-only directory, copied back to the main file).
    Backup { generation: usize, path: PathBuf },
}

/// A state with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub state: State,
    pub source: Source,
    /// The file's version when it was older than
    /// [`CURRENT_VERSION`](crate::state::CURRENT_VERSION) (migrated in memory).
    pub migrated_from: Option<u64>,
}

/// One file of [`Store::generations`](super::Store::generations): the main file or a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// `None` for the main file, `Some(0)` for `.bak`, `Some(n)` for `.bak.n`.
    pub generation: Option<usize>,
    pub path: PathBuf,
    pub exists: bool,
    pub size: Option<u64>,
    pub modified: Option<SystemTime>,
    /// What it holds, or why it cannot be used (missing, the parse error, a newer version).
    pub summary: std::result::Result<Summary, NotLoaded>,
    /// Why the retention policy keeps this backup; `None` for the main file, a missing
    /// generation, a rejected file, and a backup the next write drops.
    pub kept: Option<Kept>,
    /// A state a `restore` replaced (`processed.json.rejected-<UTC time>`): kept, never used by
    /// automatic recovery; `generation` is `None`.
    pub rejected: bool,
}

/// The counts of a valid state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The version as stored (before migration).
    pub version: u64,
    pub processed: usize,
    pub failed: usize,
}

impl Summary {
    /// The summary of a loaded `state`, migrated from `migrated_from` if it was.
    pub(crate) fn of(state: &State, migrated_from: Option<u64>) -> Summary {
        Summary {
            version: migrated_from.unwrap_or(state.version),
            processed: state.processed.len(),
            failed: state.failed.len(),
        }
    }
}

/// A file of the store's, found by [`Store::own_file`](super::Store::own_file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnFile {
    /// The state file (symlinks resolved).
    State(PathBuf),
    /// A backup, a moved-aside corrupt file, the lock file or a temp file.
    Other(PathBuf),
}

/// What [`Store::restore`](super::Store::restore) did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup that became the main file.
    pub backup: PathBuf,
    /// What it holds.
    pub summary: Summary,
    /// What became of the main file it replaced.
    pub previous_main: PreviousMain,
}

/// The fate of the main file a restore replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousMain {
    /// There was none.
    Missing,
    /// It was valid: the operator rejected it, and it is kept at this path
    /// (`.rejected-<UTC time>`), outside the generations automatic recovery walks, never
    /// deleted. The backup generations are left as they were.
    Rejected(PathBuf),
    /// It was corrupt and was moved aside, to this path (never deleted).
    MovedAside(PathBuf),
}
