//! [`Notice`]: what the store tells the operator that is not an error (a recovery, a wait for
//! the lock, a network file system, …), and its one-line wording.

use std::fmt;
use std::path::PathBuf;

/// Something the operator should know that is not an error. `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The main file was corrupt or missing and was restored from `backup`. `moved_to` is where
    /// the corrupt file now is (`None`: there was no main file).
    Recovered {
        corrupt: PathBuf,
        reason: String,
        moved_to: Option<PathBuf>,
        backup: PathBuf,
    },
    /// A backup was used, but the main file was not repaired (dry run, read-only directory, …).
    RecoveredInMemory {
        corrupt: PathBuf,
        reason: String,
        backup: PathBuf,
        why: String,
    },
    /// A corrupt main file was moved aside (by `restore`).
    CorruptMovedAside {
        corrupt: PathBuf,
        reason: String,
        moved_to: PathBuf,
    },
    /// The state is on a network file system, where `flock` may be local to one machine.
    NetworkFileSystem { path: PathBuf, fs: String },
    /// The lock has been held by someone else for more than a second; still waiting.
    WaitingForLock {
        lock_file: PathBuf,
        holder: Option<String>,
    },
    /// The lock file could not be opened or created (read-only directory): reading unlocked.
    ReadWithoutLock { lock_file: PathBuf, reason: String },
    /// A temp file left by an interrupted write was removed.
    StaleTempRemoved(PathBuf),
    /// A write was killed between two renames, leaving the file it was moving at `held`; it
    /// was moved where that write was taking it. `what` says what the file is.
    InterruptedWriteFinished {
        held: PathBuf,
        what: String,
        moved_to: PathBuf,
    },
    /// The same, but the file could not be moved (`why`): it is kept where it is.
    InterruptedWriteKept { held: PathBuf, why: String },
    /// Entries that Python reads but mamfast cannot use as they are (a known key of the wrong
    /// type, …): kept byte for byte, refused by a command that must change them. `first` is
    /// the first one's ID and problem.
    EntriesKeptAsTheyAre {
        path: PathBuf,
        count: usize,
        first: (String, String),
    },
    /// A read found no state file (nor backup): the state is empty. Said so that a mistyped
    /// path does not pass for an empty state.
    StateMissing(PathBuf),
    /// The journal could not be written (`reason`); the state write it tells of stands.
    JournalNotWritten { journal: PathBuf, reason: String },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Recovered {
                corrupt,
                reason,
                moved_to: Some(moved_to),
                backup,
            } => write!(
                f,
                "{} was corrupt ({reason}): restored it from {}; the corrupt file is kept as {}",
                corrupt.display(),
                backup.display(),
                moved_to.display()
            ),
            Notice::Recovered {
                corrupt,
                backup,
                moved_to: None,
                ..
            } => write!(
                f,
                "{} was missing: restored it from {}",
                corrupt.display(),
                backup.display()
            ),
            Notice::RecoveredInMemory {
                corrupt,
                reason,
                backup,
                why,
            } => write!(
                f,
                "{} is unusable ({reason}): using {} instead, without repairing the file ({why})",
                corrupt.display(),
                backup.display()
            ),
            Notice::CorruptMovedAside {
                corrupt,
                reason,
                moved_to,
            } => write!(
                f,
                "{} was corrupt ({reason}): moved it to {}",
                corrupt.display(),
                moved_to.display()
            ),
            Notice::NetworkFileSystem { path, fs } => write!(
                f,
                "{} is on a network file system ({fs}): its lock may not be seen from other \
                 machines; run everything that writes it on one host",
                path.display()
            ),
            Notice::WaitingForLock { lock_file, holder } => write!(
                f,
                "waiting for the lock on {} (held by {})",
                lock_file.display(),
                holder.as_deref().unwrap_or("another process")
            ),
            Notice::ReadWithoutLock { lock_file, reason } => write!(
                f,
                "reading without a lock: cannot open {} ({reason})",
                lock_file.display()
            ),
            Notice::EntriesKeptAsTheyAre {
                path,
                count,
                first: (id, problem),
            } => write!(
                f,
                "{}: {count} {} kept as {} (a command that must change {} refuses): \
                 {id:?}: {problem}; `mamfast state verify` lists {}",
                path.display(),
                if *count == 1 {
                    "entry mamfast cannot use is"
                } else {
                    "entries mamfast cannot use are"
                },
                if *count == 1 { "it is" } else { "they are" },
                if *count == 1 { "it" } else { "one" },
                if *count == 1 { "it" } else { "them all" },
            ),
            Notice::StateMissing(path) => write!(
                f,
                "{} does not exist yet: the state is empty",
                path.display()
            ),
            Notice::StaleTempRemoved(path) => write!(
                f,
                "removed {}, left by an interrupted write",
                path.display()
            ),
            Notice::InterruptedWriteFinished {
                held,
                what,
                moved_to,
            } => write!(
                f,
                "finished a write that was interrupted: moved {} ({what}) to {}",
                held.display(),
                moved_to.display()
            ),
            Notice::InterruptedWriteKept { held, why } => write!(
                f,
                "kept {}, the previous state left by an interrupted write: {why}; mamfast never \
                 deletes it: move it aside yourself once you have looked at it",
                held.display()
            ),
            Notice::JournalNotWritten { journal, reason } => write!(
                f,
                "could not write the journal {} ({reason}); the state was written all the \
                 same, but this change is not in `mamfast state log`",
                journal.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_one_line() {
        let notices = [
            Notice::Recovered {
                corrupt: "/s/p.json".into(),
                reason: "EOF while parsing".into(),
                moved_to: Some("/s/p.json.corrupt-20261126T101530Z".into()),
                backup: "/s/p.json.bak".into(),
            },
            Notice::Recovered {
                corrupt: "/s/p.json".into(),
                reason: "missing".into(),
                moved_to: None,
                backup: "/s/p.json.bak".into(),
            },
            Notice::RecoveredInMemory {
                corrupt: "/s/p.json".into(),
                reason: "x".into(),
                backup: "/s/p.json.bak".into(),
                why: "dry run".into(),
            },
            Notice::NetworkFileSystem {
                path: "/s/p.json".into(),
                fs: "nfs".into(),
            },
            Notice::WaitingForLock {
                lock_file: "/s/p.json.lock".into(),
                holder: Some("pid 1 (init)".into()),
            },
            Notice::ReadWithoutLock {
                lock_file: "/s/p.json.lock".into(),
                reason: "Read-only file system (os error 30)".into(),
            },
            Notice::StaleTempRemoved("/s/.p.json.tmp-1-2".into()),
            Notice::InterruptedWriteFinished {
                held: "/s/.p.json.tmp-1-2.was-7.bak".into(),
                what: "the previous main file".into(),
                moved_to: "/s/p.json.bak".into(),
            },
            Notice::InterruptedWriteKept {
                held: "/s/.p.json.tmp-1-2.was-7.bak".into(),
                why: "File exists".into(),
            },
            Notice::JournalNotWritten {
                journal: "/s/p.json.log".into(),
                reason: "No space left on device (os error 28)".into(),
            },
        ];
        for notice in notices {
            let text = notice.to_string();
            assert!(!text.contains('\n') && text.contains("/s/"), "{text}");
        }
    }
}
