//! The lock beside the state file: `flock(2)` on `<file>.lock`, exclusive to write, shared for
//! the reads that need it, with a bounded wait and a best-effort name (and mode) for whoever
//! holds it, and which lock files a write takes, in which order ([`take_for_write`]).
//!
//! Only `flock` is used, never `fcntl`/`lockf` record locks: Linux keeps the two kinds apart and
//! the Python tool locks the same file with `fcntl.flock`. The lock file is never deleted; if it
//! is replaced while we wait, we follow the path to the new file. It is never opened through a
//! symlink, and only a regular file is one. Holders are looked up in `/proc/locks` (Linux).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
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
    file: Flock<File>,
}

/// Opens the lock file, creating it when `create` is set. The file is opened for writing when
/// possible (the Python tool opens it that way too) and read-only otherwise: `flock` works on
/// either.
///
/// Never through a symlink (`O_NOFOLLOW`): a link at the lock path, dangling or not, would make
/// us create or lock a file anywhere on the file system. Only a regular file is a lock file: a
/// FIFO (opened without blocking), a directory or a device there is refused too, naming what
/// it is and what to do.
pub(crate) fn open(path: &Path, create: bool) -> io::Result<File> {
    let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK;
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .custom_flags(flags)
        .open(path);
    let file = match rw {
        Err(e)
            if e.kind() == io::ErrorKind::PermissionDenied
                || e.raw_os_error() == Some(nix::libc::EROFS) =>
        {
            OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(path)
                .map_err(|_| not_a_lock_file(path).unwrap_or(e))?
        }
        Err(e) => return Err(not_a_lock_file(path).unwrap_or(e)),
        Ok(file) => file,
    };
    match file.metadata()?.file_type().is_file() {
        true => Ok(file),
        false => Err(not_a_lock_file(path).unwrap_or_else(|| refused("not a regular file"))),
    }
}

/// The error for a lock path that holds something other than a regular file; `None` when it
/// holds a regular file or nothing.
fn not_a_lock_file(path: &Path) -> Option<io::Error> {
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    let what = if kind.is_file() {
        return None;
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    };
    Some(refused(what))
}

fn refused(what: &str) -> io::Error {
    let which = match what {
        "a symbolic link" => "Remove it (the link itself, not what it points to)",
        _ => "Remove it",
    };
    io::Error::other(format!(
        "it is {what}, not a lock file. mamfast locks only a regular file there and never \
         follows a link, so that it creates and locks nothing outside the state's directory. \
         {which} and run the command again: mamfast then creates the lock file itself"
    ))
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
                Ok(true) => return Ok(Lock { file: locked }),
                Ok(false) => {
                    drop(locked);
                    file = reopen(path, create)?;
                }
                // In no-create mode (dry run) a vanished lock file cannot be recreated: the
                // lock we hold is then as good as any.
                Err(_) if !create => return Ok(Lock { file: locked }),
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
                    let held = holder(&file);
                    return Err(Error::LockTimeout {
                        lock_file: path.to_path_buf(),
                        waited: timeout,
                        exclusive: held.as_ref().map(|h| h.exclusive),
                        holder: held.map(|h| h.text),
                    });
                }
                if !warned && waited >= WARN_AFTER {
                    warned = true;
                    notify(&Notice::WaitingForLock {
                        lock_file: path.to_path_buf(),
                        holder: holder(&file).map(|h| h.text),
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

/// The exclusive locks a write needs, waiting at most `timeout` in all: that of `given`, the
/// lock of the state file as named, and that of `real()`, the lock beside the file itself.
///
/// A lock belongs to a name, but a write must exclude every writer of the same file,
/// whatever name it was reached by (a symlink to it, a symlinked directory, `..`). So two
/// locks are taken, always in this order:
///
/// 1. `<given path>.lock`, the Python tool's lock for the name it was given;
/// 2. `<real path>.lock`, beside the file itself (its directory canonicalised): the lock
///    every name of the file leads to. Skipped when it is the same file as the first (the
///    name given is the real one, or leads there through symlinked directories only).
///
/// No deadlock: the Python tool holds one lock at a time, and a mamfast writer only ever
/// waits for a real-path lock while holding a given-name lock. A real-path lock is the
/// given-name lock only of a writer whose name leads to that very lock file (the real
/// path, or it through symlinked directories), and such a writer takes no second lock, so
/// no writer holds a real-path lock while waiting for another one. (Should symlinks be
/// re-pointed in a cycle while writers wait, the wait still ends at `timeout`.)
/// The real path is resolved again once both are held: if the name was pointed elsewhere
/// meanwhile, the second lock is retaken for the new file.
pub(crate) fn take_for_write(
    given: &Path,
    real: &dyn Fn() -> Result<PathBuf>,
    timeout: Duration,
    notify: &dyn Fn(&Notice),
) -> Result<Vec<Lock>> {
    take_both(given, real, Instant::now() + timeout, notify).map_err(|e| match e {
        // The wait is told in full, not what was left of it for the second lock.
        Error::LockTimeout {
            lock_file,
            holder,
            exclusive,
            ..
        } => Error::LockTimeout {
            lock_file,
            waited: timeout,
            holder,
            exclusive,
        },
        e => e,
    })
}

fn take_both(
    given: &Path,
    real: &dyn Fn() -> Result<PathBuf>,
    deadline: Instant,
    notify: &dyn Fn(&Notice),
) -> Result<Vec<Lock>> {
    let given = take_exclusive(given, deadline, notify)?;
    loop {
        let real_path = real()?;
        let file = open(&real_path, true)
            .map_err(|e| Error::io("creating the lock file", &real_path, e))?;
        if same_file(&given, &file) {
            return Ok(vec![given]);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let second = acquire(
            file,
            &real_path,
            LockMode::Exclusive,
            remaining,
            true,
            notify,
        )?;
        if real()? == real_path {
            return Ok(vec![given, second]);
        }
    }
}

fn take_exclusive(path: &Path, deadline: Instant, notify: &dyn Fn(&Notice)) -> Result<Lock> {
    let file = open(path, true).map_err(|e| Error::io("creating the lock file", path, e))?;
    acquire(
        file,
        path,
        LockMode::Exclusive,
        deadline.saturating_duration_since(Instant::now()),
        true,
        notify,
    )
}

/// Whether the held `lock` and `file` are the same file (one lock reached by two names).
fn same_file(lock: &Lock, file: &File) -> bool {
    match (lock.file.metadata(), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn reopen(path: &Path, create: bool) -> Result<File> {
    open(path, create).map_err(|e| Error::io("opening the lock file", path, e))
}

/// Whether `path` still names the open `file` (same device and inode).
fn still_at_path(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    // Not followed: a symlink put there is not the file we hold, and reopening refuses it.
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(open.dev() == now.dev() && open.ino() == now.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Who holds a lock, from `/proc/locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holders {
    /// `pid 1234 (python3 mamfast_pipeline.py) exclusive (writing)`, joined by `, `; the
    /// command lines are escaped (they are outside text).
    pub text: String,
    /// Whether one of them holds it exclusive (a writer), rather than shared (readers).
    pub exclusive: bool,
}

/// Who holds a lock on `file`, and how. Best effort: `None` when it cannot be told.
pub(crate) fn holder(file: &File) -> Option<Holders> {
    let meta = file.metadata().ok()?;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let held = lock_holders(&table, meta.dev(), meta.ino());
    if held.is_empty() {
        return None;
    }
    let names: Vec<String> = held
        .iter()
        .map(|(pid, mode)| {
            let how = match mode {
                LockMode::Shared => "shared (reading)",
                LockMode::Exclusive => "exclusive (writing)",
            };
            match process_name(*pid) {
                Some(name) => format!("pid {pid} ({name}) {how}"),
                None => format!("pid {pid} {how}"),
            }
        })
        .collect();
    Some(Holders {
        text: names.join(", "),
        exclusive: held.iter().any(|(_, mode)| *mode == LockMode::Exclusive),
    })
}

/// The pids holding (not waiting for) a `FLOCK` on the file `dev`/`ino` in a `/proc/locks`
/// table, and how (`WRITE`: exclusive, `READ`: shared). Lines look like
/// `1: FLOCK  ADVISORY  WRITE 4682 fe:00:10010867 0 EOF`; blocked waiters have `->` after the
/// number. Some file systems (btrfs, overlayfs) report another device number there than `stat`
/// does, so an inode-only match is used when no line matches both.
pub(crate) fn lock_holders(table: &str, dev: u64, ino: u64) -> Vec<(u32, LockMode)> {
    let (major, minor) = (nix::libc::major(dev) as u64, nix::libc::minor(dev) as u64);
    let mut exact = Vec::new();
    let mut by_inode = Vec::new();
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || fields[1] == "->" || fields[1] != "FLOCK" {
            continue;
        }
        let mode = match fields[3] {
            "WRITE" => LockMode::Exclusive,
            _ => LockMode::Shared,
        };
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
        if !list.contains(&(pid, mode)) {
            list.push((pid, mode));
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
    // Cut before escaping, so that a cut never leaves half an escape.
    let cut = name.chars().count() > MAX;
    let shown = escape(&name.chars().take(MAX).collect::<String>());
    Some(if cut { format!("{shown}…") } else { shown })
}

/// `text` with every control character (C0, DEL, C1) and every bidirectional override shown
/// as `\u{1b}`: a command line is any process's text and must not reach a terminal raw.
fn escape(text: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    text.chars()
        .map(|c| match c.is_control() || bidi(c) {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect()
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
        assert_eq!(
            lock_holders(table, dev, 10010867),
            vec![(4682, LockMode::Exclusive)]
        );
        // No exact device match: fall back to the inode alone.
        let other = nix::libc::makedev(0x08, 0x01);
        assert_eq!(
            lock_holders(table, other, 10010867),
            vec![(4682, LockMode::Exclusive), (18, LockMode::Shared)]
        );
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
            who.text
                .starts_with(&format!("pid {} (", std::process::id())),
            "{who:?}"
        );
        assert!(who.text.ends_with(") exclusive (writing)"), "{who:?}");
        assert!(who.exclusive);
        drop(held);
        let _shared = Flock::lock(open(&path, false).unwrap(), FlockArg::LockShared).unwrap();
        let who = holder(&other).unwrap();
        assert!(
            !who.exclusive && who.text.ends_with(" shared (reading)"),
            "{who:?}"
        );
    }

    #[test]
    fn only_a_regular_file_is_opened_as_the_lock_and_no_link_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let target = dir.path().join("elsewhere.lock");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        for create in [true, false] {
            let err = open(&path, create).unwrap_err();
            assert!(err.to_string().contains("it is a symbolic link"), "{err}");
        }
        assert!(!target.exists());
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = open(&path, false).unwrap_err();
        assert!(err.to_string().contains("it is a FIFO"), "{err}");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let err = open(&path, true).unwrap_err();
        assert!(err.to_string().contains("it is a directory"), "{err}");
        std::fs::remove_dir(&path).unwrap();
        assert!(open(&path, true).unwrap().metadata().unwrap().is_file());
    }

    #[test]
    fn control_characters_of_a_command_line_are_escaped() {
        assert_eq!(
            escape("sh -c \u{1b}]0;x\u{7} \u{9b}2J \u{202e}txt.exe é"),
            "sh -c \\u{1b}]0;x\\u{7} \\u{9b}2J \\u{202e}txt.exe é"
        );
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
