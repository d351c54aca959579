//! A lock held by the same process through several writes in a row that timed out: not a
//! writer passing by (exit 75, the next run tries again) but a stuck one, which a timer
//! treating 75 as success would otherwise hide for good.
//!
//! A write that times out counts it in `<state>.lock-timeouts` beside the lock (two lines: the
//! count, and the holder as the timeout names it); a write that gets the lock removes the
//! file. Only writes count: a read never makes a file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Writes in a row that timed out behind the same holder before it counts as stuck.
pub const STUCK_AFTER: u32 = 3;

/// `<state>.lock-timeouts`, beside the lock of the state file as named.
pub(crate) fn record_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_os_string();
    name.push(".lock-timeouts");
    PathBuf::from(name)
}

/// The lock was obtained: the timeouts before it no longer count.
pub(crate) fn clear(state: &Path) {
    // Usually there is nothing to remove; a record that cannot be removed is rewritten by the
    // next timeout anyway, which then counts from what it says.
    let _ = fs::remove_file(record_path(state));
}

/// Counts a write's lock timeout `err`, and makes it [`Error::LockStuck`] once the same
/// holder has held the lock through [`STUCK_AFTER`] of them in a row. Any other error is
/// returned as it is.
pub(crate) fn count(state: &Path, err: Error) -> Error {
    let Error::LockTimeout {
        lock_file,
        waited,
        holder,
        exclusive,
    } = err
    else {
        return err;
    };
    let who = holder.clone().unwrap_or_else(|| "another process".into());
    let path = record_path(state);
    let text = super::read_regular(&path, MAX_RECORD_BYTES).map(String::from_utf8);
    let runs = match text {
        Ok(Ok(text)) => match text.split_once('\n') {
            Some((n, before)) if before.trim_end_matches('\n') == who => {
                n.trim().parse::<u32>().unwrap_or(0).saturating_add(1)
            }
            _ => 1,
        },
        _ => 1,
    };
    // Best effort: a record that cannot be written leaves the plain timeout.
    let recorded = write_record(&path, &format!("{runs}\n{who}\n")).is_ok();
    if recorded && runs >= STUCK_AFTER {
        return Error::LockStuck {
            lock_file,
            waited,
            holder: who,
            runs,
        };
    }
    Error::LockTimeout {
        lock_file,
        waited,
        holder,
        exclusive,
    }
}

/// A record is two short lines; anything larger is not one.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// Writes the record as the lock file is opened: never through a symlink (which could point
/// out of the state's directory), never blocking on a FIFO, only into a regular file.
fn write_record(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    file.set_len(0)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeout(holder: &str) -> Error {
        Error::LockTimeout {
            lock_file: "/x/p.json.lock".into(),
            waited: Duration::from_secs(1),
            holder: Some(holder.into()),
            exclusive: Some(true),
        }
    }

    #[test]
    fn the_same_holder_through_several_timeouts_is_stuck() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("p.json");
        let a = "pid 1 (python3 x.py) exclusive (writing)";
        assert!(matches!(
            count(&state, timeout(a)),
            Error::LockTimeout { .. }
        ));
        assert!(matches!(
            count(&state, timeout(a)),
            Error::LockTimeout { .. }
        ));
        // Another holder starts the count over.
        let b = "pid 2 (mamfast) exclusive (writing)";
        assert!(matches!(
            count(&state, timeout(b)),
            Error::LockTimeout { .. }
        ));
        assert!(matches!(
            count(&state, timeout(b)),
            Error::LockTimeout { .. }
        ));
        match count(&state, timeout(b)) {
            Error::LockStuck { runs, holder, .. } => assert_eq!((runs, holder.as_str()), (3, b)),
            other => panic!("{other:?}"),
        }
        // A write that got the lock in between starts it over too.
        clear(&state);
        assert!(!record_path(&state).exists());
        assert!(matches!(
            count(&state, timeout(b)),
            Error::LockTimeout { .. }
        ));
        // Other errors are not counted.
        let other = count(&state, Error::Usage("x".into()));
        assert!(matches!(other, Error::Usage(_)));
        assert_eq!(
            fs::read_to_string(record_path(&state)).unwrap(),
            format!("1\n{b}\n")
        );
    }

    #[test]
    fn the_record_is_never_written_through_a_symlink_nor_into_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("p.json");
        let outside = dir.path().join("outside");
        fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, record_path(&state)).unwrap();
        let a = "pid 1 exclusive (writing)";
        for _ in 0..3 {
            assert!(matches!(
                count(&state, timeout(a)),
                Error::LockTimeout { .. }
            ));
        }
        assert_eq!(fs::read_to_string(&outside).unwrap(), "keep");
        fs::remove_file(record_path(&state)).unwrap();
        nix::unistd::mkfifo(&record_path(&state), nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Neither read nor written (either would block for good): the plain timeout.
        assert!(matches!(
            count(&state, timeout(a)),
            Error::LockTimeout { .. }
        ));
    }
}
