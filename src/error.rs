//! The one error type of mamfast. Every failure a user can meet is a variant here, with a
//! message that says what happened, where, and what to do next; `exit_code()` maps it to the
//! contract's exit codes and is the only place that does.

use std::path::PathBuf;
use std::time::Duration;

/// `Result` with mamfast's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes (docs/FORMAT.md, *Exit codes*), named after BSD `sysexits.h`.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    /// `state show` and `state should-skip`: the ID (or infohash) is in no entry, so a
    /// script tells "not there" from "there" (and from an error) by the code alone.
    pub const NOT_FOUND: i32 = 3;
    /// `state import --if-token`: the state changed since the token was read (re-read, retry).
    pub const CONFLICT: i32 = 4;
    pub const DATAERR: i32 = 65;
    pub const CANTCREAT: i32 = 73;
    pub const IOERR: i32 = 74;
    pub const TEMPFAIL: i32 = 75;
    pub const CONFIG: i32 = 78;
    /// A plugin was found but cannot be run (as shells use it).
    pub const CANNOT_EXECUTE: i32 = 126;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flag, bad value, unknown command (exit 2).
    #[error("{0}")]
    Usage(String),

    /// The main file and every backup failed to load (exit 65).
    #[error("{}", corrupt_message(.file, .tried))]
    Corrupt {
        file: PathBuf,
        /// Every file tried, in order, with why it was refused.
        tried: Vec<(PathBuf, NotLoaded)>,
    },

    /// The file was written by a newer mamfast (exit 65). It is never rewritten.
    #[error(
        "{file}: schema version {found} is newer than this mamfast understands (up to {supported}).\n\
         The file was left untouched. Upgrade mamfast to read it."
    )]
    NewerVersion {
        file: PathBuf,
        found: u64,
        supported: u64,
    },

    /// `state import --if-token`: the state is no longer the one the token was read from
    /// (exit 4). Nothing was written; the caller reads the state again and retries.
    #[error(
        "{}: the state changed since it was read (token {expected}, now {found}); nothing was \
         imported.\nRead it again (`mamfast state export --token-file FILE`), redo the change \
         and import with the new token.",
        .file.display()
    )]
    Conflict {
        file: PathBuf,
        expected: String,
        found: String,
    },

    /// A status change the transition table forbids (exit 65).
    #[error(
        "illegal status transition for {}: {from} -> {to}\n\
         allowed from {from}: {allowed}\n\
         Nothing was changed. Use --force to record it anyway.",
        crate::escape::escape(id)
    )]
    IllegalTransition {
        id: String,
        from: String,
        to: String,
        allowed: String,
    },

    /// Data given on the command line or by a plugin that cannot be stored (exit 65).
    #[error("{0}")]
    Data(String),

    /// An output file (export, --output) could not be created (exit 73).
    #[error("cannot create {path}: {source}\n{}", create_hint(.source))]
    CannotCreate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Reading or writing the state failed (exit 74). `action` says what was being done.
    #[error("{action} {path}: {source}{}", io_hint(.source, .path))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Data could not be written to standard output (exit 74): the output is incomplete.
    /// A reader that went away (a broken pipe) is not this error: it stays quiet.
    #[error(
        "could not write to standard output: {source}\n\
         The output is incomplete. {hint}",
        source = .0,
        hint = stdout_hint(.0)
    )]
    Stdout(#[source] std::io::Error),

    /// Another process held the lock longer than `state.lock_timeout` (exit 75).
    #[error(
        "could not lock {lock_file} within {}: held by {}\n{} Try again later, or raise \
         state.lock_timeout (MAMFAST_LOCK_TIMEOUT).",
        humantime::format_duration(*.waited),
        .holder.as_deref().unwrap_or("another process"),
        lock_holder_hint(*.exclusive)
    )]
    LockTimeout {
        lock_file: PathBuf,
        waited: Duration,
        /// Who holds it (pid, escaped command line and mode), when `/proc/locks` tells.
        holder: Option<String>,
        /// Whether a holder holds it exclusive (writing) rather than shared (reading).
        exclusive: Option<bool>,
    },

    /// The same process held the lock through several writes in a row that each timed out
    /// (exit 74): a stuck holder, which needs the operator rather than another try.
    #[error(
        "{lock_file} was held by {holder} through {runs} writes in a row that each waited {} \
         and gave up: it looks stuck.\nFind out what that process is doing and end it if it \
         hangs (mamfast never breaks a lock); until then no write can run.",
        humantime::format_duration(*.waited)
    )]
    LockStuck {
        lock_file: PathBuf,
        waited: Duration,
        holder: String,
        runs: u32,
    },

    /// A configuration value or file is wrong (exit 78).
    #[error("{0}")]
    Config(String),

    /// A plugin was found but could not be run (exit 126, as shells do).
    #[error("{0}")]
    PluginExec(String),
}

impl Error {
    /// The process exit code for this error (docs/FORMAT.md, *Exit codes*).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Conflict { .. } => exit::CONFLICT,
            Error::Corrupt { .. }
            | Error::NewerVersion { .. }
            | Error::IllegalTransition { .. }
            | Error::Data(_) => exit::DATAERR,
            Error::CannotCreate { .. } => exit::CANTCREAT,
            Error::Io { .. } | Error::Stdout(_) | Error::LockStuck { .. } => exit::IOERR,
            Error::LockTimeout { .. } => exit::TEMPFAIL,
            Error::Config(_) => exit::CONFIG,
            Error::PluginExec(_) => exit::CANNOT_EXECUTE,
        }
    }

    /// Shorthand for an I/O error on `path` while doing `action` ("reading", "renaming", …).
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

fn lock_holder_hint(exclusive: Option<bool>) -> &'static str {
    match exclusive {
        Some(true) => "Another mamfast or the Python tool is writing the state.",
        Some(false) => {
            "Another process is reading the state under a shared lock (the Python tool, or \
             `mamfast state backups`), and a write waits until every reader lets go."
        }
        None => "Another process holds the lock.",
    }
}

fn io_hint(err: &std::io::Error, path: &std::path::Path) -> &'static str {
    use std::io::ErrorKind::*;
    match err.kind() {
        PermissionDenied => "\nCheck the permissions of the file and its directory.",
        NotFound => "\nCheck that the directory exists (state.file / MAMFAST_STATE_FILE).",
        _ if err.raw_os_error() == Some(nix::libc::ENOSPC) && out_of_inodes(path) => {
            "\nThe file system has no free inodes left (it can hold no more files, however much \
             space is free): delete some files on it and run the command again. The previous \
             state is intact."
        }
        _ if err.raw_os_error() == Some(nix::libc::ENOSPC) => {
            "\nThe disk is full: free some space and run the command again. The previous state is intact."
        }
        _ if err.raw_os_error() == Some(nix::libc::EDQUOT) => {
            "\nYour disk quota is used up: free some of your space or ask for a larger quota, \
             and run the command again. The previous state is intact."
        }
        _ if err.raw_os_error() == Some(nix::libc::EROFS) => {
            "\nThe file system is read-only. The previous state is intact."
        }
        _ if err.raw_os_error() == Some(nix::libc::EISDIR) => {
            "\nThat is a directory: state.file (--state-file, MAMFAST_STATE_FILE) must name the \
             state file itself, e.g. DIR/processed.json. Nothing was written."
        }
        _ if err.raw_os_error() == Some(nix::libc::ENOLCK) => {
            "\nThis file system cannot lock files (NFS without its lock service?): keep the state \
             file on a local disk. The previous state is intact."
        }
        _ if matches!(
            crate::store::unreadable(err),
            Some(crate::store::Unreadable::NotRegular(_))
        ) =>
        {
            "\nstate.file (--state-file, MAMFAST_STATE_FILE) must name a regular file: move that \
             one away, or name another. Nothing was changed."
        }
        _ => "\nThe previous state is intact.",
    }
}

fn stdout_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(nix::libc::ENOSPC) => {
            "The disk it goes to is full: free some space, or send the output elsewhere, \
             and run the command again."
        }
        _ => "Check where standard output goes (a file, a device, a pipe), and run the command again.",
    }
}

/// Whether the file system of `path` (or of its directory) has run out of inodes rather than
/// of space: both are `ENOSPC`, and only `statvfs` tells them apart.
fn out_of_inodes(path: &std::path::Path) -> bool {
    let stat = nix::sys::statvfs::statvfs(path).or_else(|_| match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => nix::sys::statvfs::statvfs(dir),
        _ => nix::sys::statvfs::statvfs("."),
    });
    stat.is_ok_and(|s| s.files() > 0 && (s.files_free() == 0 || s.files_available() == 0))
}

fn create_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(nix::libc::ENOENT) => "Create its directory first, or name a file in one that exists.",
        Some(nix::libc::EISDIR) => "That is a directory: name a file to write.",
        Some(nix::libc::EACCES | nix::libc::EPERM | nix::libc::EROFS) => {
            "Check that its directory is writable, or name a file elsewhere."
        }
        _ => "Check that its directory exists and is writable.",
    }
}

/// Why a file of the state (the main file or a backup) was not loaded, in [`Error::Corrupt`]'s
/// list and in `Store::generations`. Displayed as `missing`, or as what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotLoaded {
    /// There is no such file.
    Missing,
    /// It cannot be used: why (the parse error, a newer version, …).
    Invalid(String),
}

impl std::fmt::Display for NotLoaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotLoaded::Missing => f.write_str("missing"),
            NotLoaded::Invalid(why) => f.write_str(why),
        }
    }
}

fn corrupt_message(file: &std::path::Path, tried: &[(PathBuf, NotLoaded)]) -> String {
    let main_missing = tried
        .first()
        .is_some_and(|(_, why)| *why == NotLoaded::Missing);
    let mut msg = format!(
        "{} is {} and no valid backup was found.\nFiles tried:\n",
        file.display(),
        if main_missing { "missing" } else { "corrupt" }
    );
    for (path, why) in tried {
        msg.push_str(&format!("  {}: {}\n", path.display(), why));
    }
    // Starting fresh means moving aside every file that was tried, or the next run would find
    // the corrupt backups again.
    let move_aside: Vec<String> = tried
        .iter()
        .filter(|(_, why)| *why != NotLoaded::Missing)
        .map(|(path, _)| {
            let from = shell_quote(&path.display().to_string());
            let to = shell_quote(&format!("{}.broken", path.display()));
            format!("mv {from} {to}")
        })
        .collect();
    msg.push_str(&format!(
        "Recovery options:\n\
         \x20 1. Restore from an external backup: cp <your backup> {file}\n\
         \x20 2. Inspect the files above; corrupt data is kept, never deleted.\n\
         \x20 3. Start fresh (loses the recorded state): {}",
        move_aside.join(" && "),
        file = shell_quote(&file.display().to_string())
    ));
    msg
}

/// A word as a POSIX shell reads it: as it is when that is safe, else in single quotes.
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Config("x".into()).exit_code(), 78);
        let lock = Error::LockTimeout {
            lock_file: "/s/processed.json.lock".into(),
            waited: Duration::from_secs(2),
            holder: Some("pid 42 (python3) exclusive (writing)".into()),
            exclusive: Some(true),
        };
        assert_eq!(lock.exit_code(), 75);
        let text = lock.to_string();
        assert!(
            text.contains("/s/processed.json.lock") && text.contains("pid 42"),
            "{text}"
        );
        let io = Error::io(
            "writing",
            "/s/p.json",
            std::io::Error::from_raw_os_error(28),
        );
        assert_eq!(io.exit_code(), 74);
        assert!(io.to_string().contains("disk is full"));
    }

    #[test]
    fn cannot_create_says_what_to_do_for_each_cause() {
        let text = |errno| {
            Error::CannotCreate {
                path: "out/x.json".into(),
                source: std::io::Error::from_raw_os_error(errno),
            }
            .to_string()
        };
        assert!(text(nix::libc::ENOENT).contains("Create its directory first"));
        assert!(text(nix::libc::EISDIR).contains("name a file to write"));
        assert!(text(nix::libc::EACCES).contains("writable"));
        assert_eq!(
            Error::CannotCreate {
                path: "x".into(),
                source: std::io::Error::from_raw_os_error(nix::libc::ENOENT)
            }
            .exit_code(),
            73
        );
    }

    #[test]
    fn corrupt_message_names_every_file_and_the_recovery_steps() {
        let err = Error::Corrupt {
            file: "/s/processed.json".into(),
            tried: vec![
                (
                    "/s/processed.json".into(),
                    NotLoaded::Invalid("EOF while parsing".into()),
                ),
                ("/s/processed.json.bak".into(), NotLoaded::Missing),
            ],
        };
        let text = err.to_string();
        assert_eq!(err.exit_code(), 65);
        assert!(text.contains("/s/processed.json.bak: missing"), "{text}");
        assert!(text.contains("Recovery options"), "{text}");
        // Starting fresh moves aside what exists, not what was missing.
        assert!(
            text.ends_with("mv /s/processed.json /s/processed.json.broken"),
            "{text}"
        );
        let err = Error::Corrupt {
            file: "/s/my state.json".into(),
            tried: vec![
                ("/s/my state.json".into(), NotLoaded::Missing),
                (
                    "/s/my state.json.bak".into(),
                    NotLoaded::Invalid("empty file".into()),
                ),
                (
                    "/s/my state.json.bak.1".into(),
                    NotLoaded::Invalid("EOF".into()),
                ),
            ],
        };
        // The main file is missing, not corrupt: the message says which.
        assert!(err
            .to_string()
            .starts_with("/s/my state.json is missing and no valid backup was found."));
        assert!(err.to_string().ends_with(
            "mv '/s/my state.json.bak' '/s/my state.json.bak.broken' && \
             mv '/s/my state.json.bak.1' '/s/my state.json.bak.1.broken'"
        ));
    }

    #[test]
    fn shell_quoting_leaves_plain_paths_alone() {
        assert_eq!(shell_quote("/s/p.json"), "/s/p.json");
        assert_eq!(shell_quote("/s/a b"), "'/s/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
