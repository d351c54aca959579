//! The lock beside the state file: `flock(2)` on `<file>.lock`, shared to read, exclusive to
//! write, with a bounded wait and a best-effort name for whoever holds it.
//!
//! Only `flock` is used, never `fcntl`/`lockf` record locks: Linux keeps the two kinds apart and
//! the Python tool locks the same file with `fcntl.flock`. The lock file is never deleted; if it
//! is replaced while we wait, we follow the path to the new file. Holders are looked up in
//! `/proc/locks` (Linux).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::Notice;
use crate::error::{Error, Result};

/// How often a waiter tries the lock again.
const POLL: Duration = Duration::from_millis(15);
/// A wait longer than this is reported once (`Notice::WaitingForLock`).
const WARN_AFTER: Duration = Duration::from_secs(1);

/// Shared (readers) or exclusive (the one writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock; dropping it unlocks (the file itself stays).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: Flock<File>,
}

/// Opens the lock file, creating it when `create` is set. The file is opened for writing when
/// possible (the Python tool opens it that way too) and read-only otherwise: `flock` works on
/// either.
pub(crate) fn open(path: &Path, create: bool) -> io::Result<File> {
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .open(path);
    match rw {
        Err(e)
            if e.kind() == io::ErrorKind::PermissionDenied
                || e.raw_os_error() == Some(nix::libc::EROFS) =>
        {
            File::open(path).map_err(|_| e)
        }
        other => other,
    }
}

/// Locks `file` (opened from `path`) in `mode`, waiting at most `timeout`.
///
/// Polls with a non-blocking `flock` so the wait is bounded and the holder can be named. After
/// every attempt the path is checked to still name the open file (device and inode): a lock on
/// a file that was renamed away protects nothing, so the new file is opened and locked instead.
pub(crate) fn acquire(
    mut file: File,
    path: &Path,
    mode: LockMode,
    timeout: Duration,
    create: bool,
    notify: &dyn Fn(&Notice),
) -> Result<Lock> {
    let arg = match mode {
        LockMode::Shared => FlockArg::LockSharedNonblock,
        LockMode::Exclusive => FlockArg::LockExclusiveNonblock,
    };
    let start = Instant::now();
    let mut warned = false;
    loop {
        match Flock::lock(file, arg) {
            Ok(locked) => match still_at_path(&locked, path) {
                Ok(true) => return Ok(Lock { _file: locked }),
                Ok(false) => {
                    drop(locked);
                    file = reopen(path, create)?;
                }
                // In no-create mode (dry run) a vanished lock file cannot be recreated: the
                // lock we hold is then as good as any.
                Err(_) if !create => return Ok(Lock { _file: locked }),
                Err(e) => return Err(Error::io("checking the lock file", path, e)),
            },
            Err((f, Errno::EINTR)) => file = f,
            Err((f, Errno::EWOULDBLOCK)) => {
                file = f;
                if matches!(still_at_path(&file, path), Ok(false)) {
                    file = reopen(path, create)?;
                    continue;
                }
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(Error::LockTimeout {
                        lock_file: path.to_path_buf(),
                        waited: timeout,
                        holder: holder(&file),
                    });
                }
                if !warned && waited >= WARN_AFTER {
                    warned = true;
                    notify(&Notice::WaitingForLock {
                        lock_file: path.to_path_buf(),
                        holder: holder(&file),
                    });
                }
                std::thread::sleep(POLL.min(timeout - waited));
            }
            Err((_, errno)) => {
                return Err(Error::io("locking", path, io::Error::from(errno)));
            }
        }
    }
}

fn reopen(path: &Path, create: bool) -> Result<File> {
    open(path, create).map_err(|e| Error::io("opening the lock file", path, e))
}

/// Whether `path` still names the open `file` (same device and inode).
fn still_at_path(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(open.dev() == now.dev() && open.ino() == now.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Who holds a lock on `file`, from `/proc/locks`: `pid 1234 (python3 mamfast_pipeline.py)`.
/// Best effort: `None` when it cannot be told.
pub(crate) fn holder(file: &File) -> Option<String> {
    let meta = file.metadata().ok()?;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let pids = lock_holders(&table, meta.dev(), meta.ino());
    if pids.is_empty() {
        return None;
    }
    let names: Vec<String> = pids
        .iter()
        .map(|pid| match process_name(*pid) {
            Some(name) => format!("pid {pid} ({name})"),
            None => format!("pid {pid}"),
        })
        .collect();
    Some(names.join(", "))
}

/// The pids holding (not waiting for) a `FLOCK` on the file `dev`/`ino` in a `/proc/locks`
/// table. Lines look like `1: FLOCK  ADVISORY  WRITE 4682 fe:00:10010867 0 EOF`; blocked
/// waiters have `->` after the number. Some file systems (btrfs, overlayfs) report another
/// device number there than `stat` does, so an inode-only match is used when no line matches
/// both.
pub(crate) fn lock_holders(table: &str, dev: u64, ino: u64) -> Vec<u32> {
    let (major, minor) = (nix::libc::major(dev) as u64, nix::libc::minor(dev) as u64);
    let mut exact = Vec::new();
    let mut by_inode = Vec::new();
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[1] == "->" || fields[1] != "FLOCK" {
            continue;
        }
        let Ok(pid) = fields[4].parse::<u32>() else {
            continue;
        };
        let mut id = fields[5].split(':');
        let (Some(maj), Some(min), Some(inode)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        if inode.parse::<u64>() != Ok(ino) {
            continue;
        }
        let same_dev =
            u64::from_str_radix(maj, 16) == Ok(major) && u64::from_str_radix(min, 16) == Ok(minor);
        let list = if same_dev { &mut exact } else { &mut by_inode };
        if !list.contains(&pid) {
            list.push(pid);
        }
    }
    if exact.is_empty() {
        by_inode
    } else {
        exact
    }
}

/// A process's command line (arguments joined by spaces, shortened), else its `comm`.
fn process_name(pid: u32) -> Option<String> {
    const MAX: usize = 80;
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let from_cmdline = std::fs::read(proc_dir.join("cmdline"))
        .ok()
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        // Keep the message on one line: `python3 -c "<script>"` carries newlines.
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty());
    let name = from_cmdline.or_else(|| {
        std::fs::read_to_string(proc_dir.join("comm"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })?;
    if name.chars().count() > MAX {
        Some(format!("{}…", name.chars().take(MAX).collect::<String>()))
    } else {
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_read_from_proc_locks() {
        let dev = nix::libc::makedev(0xfe, 0x00);
        let table = "1: FLOCK  ADVISORY  WRITE 4682 fe:00:10010867 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 4700 fe:00:10010867 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 99 fe:00:10010867 0 EOF\n\
                     3: FLOCK  ADVISORY  READ 17 fe:00:555 0 EOF\n\
                     4: FLOCK  ADVISORY  READ 18 00:2a:10010867 0 EOF\n";
        assert_eq!(lock_holders(table, dev, 10010867), vec![4682]);
        // No exact device match: fall back to the inode alone.
        let other = nix::libc::makedev(0x08, 0x01);
        assert_eq!(lock_holders(table, other, 10010867), vec![4682, 18]);
        assert!(lock_holders(table, dev, 1).is_empty());
    }

    #[test]
    fn our_own_lock_names_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = Flock::lock(open(&path, true).unwrap(), FlockArg::LockExclusive).unwrap();
        let other = open(&path, false).unwrap();
        let who = holder(&other).expect("holder visible in /proc/locks");
        assert!(
            who.starts_with(&format!("pid {} (", std::process::id())),
            "{who}"
        );
        drop(held);
    }

    #[test]
    fn a_held_lock_times_out_and_a_free_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = Flock::lock(open(&path, true).unwrap(), FlockArg::LockExclusive).unwrap();
        let start = Instant::now();
        let err = acquire(
            open(&path, true).unwrap(),
            &path,
            LockMode::Shared,
            Duration::from_millis(100),
            true,
            &|_| {},
        )
        .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(err.exit_code(), 75);
        drop(held);
        let _lock = acquire(
            open(&path, true).unwrap(),
            &path,
            LockMode::Exclusive,
            Duration::from_millis(100),
            true,
            &|_| {},
        )
        .unwrap();
        // Held exclusively: another description cannot take even a shared lock.
        let other = Flock::lock(open(&path, false).unwrap(), FlockArg::LockSharedNonblock);
        assert!(matches!(other, Err((_, Errno::EWOULDBLOCK))));
    }
}
