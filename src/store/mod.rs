//! The state file, and only the file: locking, durable writes, backups and recovery.
//! [`Store::read`] and [`Store::update`] are the one way in; nothing else touches the files.
//!
//! Assumptions: Linux (`flock(2)`, `renameat2`, `/proc/locks`, `statfs`), and a state file whose
//! backups, temp and corrupt files live in the same directory as the (symlink-resolved) file, so
//! that every rename stays on one file system. The lock is `<given path>.lock`, as the Python
//! tool has it, and, for a write through another name (a symlink), also `<real path>.lock`
//! beside the file itself; they are created when needed and never deleted.
//!
//! Files beside `processed.json` (docs/FORMAT.md, *Files beside it*):
//! - `processed.json.lock`: the lock, exclusive to write; shared only for a read that has to
//!   look past a clean main file (a read of a clean main file takes no lock).
//! - `processed.json.bak`, `.bak.1` …: the generations before the last writes, newest first.
//! - `processed.json.corrupt-<UTC time>`: a corrupt main file moved aside before a backup is
//!   restored (`-2`, `-3` … added if the name is taken). Never deleted by mamfast.
//! - `.processed.json.tmp-<pid>-<n>`: a write in progress; never read, and removed by the next
//!   writer if its process is gone.
//! - `.processed.json.tmp-<pid>-<n>.was-<inode>.<bak|corrupt|gone>`: the new file until it
//!   replaces the main file (inode `<inode>`), the old main file after; a later writer tells
//!   the two apart by the inode and finishes the move of an old main file, never deletes it.

pub mod format;

mod backups;
mod durable;
mod lock;

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result, MISSING};
use crate::state::migrate::migrate;
use crate::state::State;
use durable::OldMain;
use lock::{Lock, LockMode};

/// How a [`Store`] behaves (from `state.backup_depth`, `state.lock_timeout`, `--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Backup generations kept: `.bak`, `.bak.1` … `.bak.(N-1)`. 0 keeps none.
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

/// What an [`Store::update`] closure returns: whether the state must be written.
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
    /// The file's version when it was older than [`CURRENT_VERSION`] (migrated in memory).
    pub migrated_from: Option<u64>,
}

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
        }
    }
}

/// One file of [`Store::generations`]: the main file or a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// `None` for the main file, `Some(0)` for `.bak`, `Some(n)` for `.bak.n`.
    pub generation: Option<usize>,
    pub path: PathBuf,
    pub exists: bool,
    pub size: Option<u64>,
    pub modified: Option<SystemTime>,
    /// What it holds, or why it cannot be used (`missing`, the parse error, a newer version).
    pub summary: std::result::Result<Summary, String>,
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
    fn of(state: &State, migrated_from: Option<u64>) -> Summary {
        Summary {
            version: migrated_from.unwrap_or(state.version),
            processed: state.processed.len(),
            failed: state.failed.len(),
        }
    }
}

/// A file of the store's, found by [`Store::own_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnFile {
    /// The state file (symlinks resolved).
    State(PathBuf),
    /// A backup, a moved-aside corrupt file, the lock file or a temp file.
    Other(PathBuf),
}

/// What [`Store::restore`] did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup that became the main file.
    pub backup: PathBuf,
    /// What it holds.
    pub summary: Summary,
    /// What became of the main file it replaced.
    pub previous_main: PreviousMain,
    /// The backup generations that fell out of the kept ones (`state.backup_depth`) to make
    /// room for the previous main file, by their names before the restore. The restored
    /// generation itself leaves its slot, so this is empty unless it was beyond the depth.
    pub dropped: Vec<PathBuf>,
}

/// The fate of the main file a restore replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousMain {
    /// There was none.
    Missing,
    /// It was valid and is now the newest backup, at this path.
    BecameBackup(PathBuf),
    /// It was valid, but `backup_depth` is 0: it is gone.
    Replaced,
    /// It was corrupt and was moved aside, to this path (never deleted).
    MovedAside(PathBuf),
}

/// A step of a write that tests can make fail (a testing aid; not part of the stable API).
///
/// Set with [`Store::inject_fault`], or with the environment variable
/// `MAMFAST_INJECT_FAULT=<name>[,<name>…]` (kebab-case names, e.g. `fsync-dir`), read once in
/// [`Store::new`], so that end-to-end tests of the binary can use it. An unknown name makes
/// every operation fail with a configuration error.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Creating the temp file.
    CreateTemp,
    /// Writing it (fails after 100 bytes, leaving a partial temp file).
    Write,
    /// Setting its permission bits.
    SetPermissions,
    /// `fsync` of the temp file.
    FsyncFile,
    /// Shifting the backup generations.
    Rotate,
    /// Swapping / renaming the new file over the main file.
    Rename,
    /// Keeping the old main file as `.bak`.
    Backup,
    /// Moving a corrupt main file to `.corrupt-…`.
    Quarantine,
    /// `fsync` of the directory.
    FsyncDir,
    /// Not a failure: behave as on a file system without `RENAME_EXCHANGE`.
    NoRenameExchange,
    /// Not a failure: take the state's directory for an NFS mount (tests cannot mount one).
    NetworkFs,
}

impl FaultPoint {
    pub const ALL: [FaultPoint; 11] = [
        FaultPoint::CreateTemp,
        FaultPoint::Write,
        FaultPoint::SetPermissions,
        FaultPoint::FsyncFile,
        FaultPoint::Rotate,
        FaultPoint::Rename,
        FaultPoint::Backup,
        FaultPoint::Quarantine,
        FaultPoint::FsyncDir,
        FaultPoint::NoRenameExchange,
        FaultPoint::NetworkFs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::CreateTemp => "create-temp",
            FaultPoint::Write => "write",
            FaultPoint::SetPermissions => "set-permissions",
            FaultPoint::FsyncFile => "fsync-file",
            FaultPoint::Rotate => "rotate",
            FaultPoint::Rename => "rename",
            FaultPoint::Backup => "backup",
            FaultPoint::Quarantine => "quarantine",
            FaultPoint::FsyncDir => "fsync-dir",
            FaultPoint::NoRenameExchange => "no-rename-exchange",
            FaultPoint::NetworkFs => "network-fs",
        }
    }

    /// Accepts `fsync-dir`, `fsync_dir` or `FsyncDir`.
    pub fn from_name(name: &str) -> Option<FaultPoint> {
        let squash = |s: &str| {
            s.chars()
                .filter(|c| *c != '-' && *c != '_')
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let wanted = squash(name.trim());
        FaultPoint::ALL
            .into_iter()
            .find(|p| squash(p.name()) == wanted)
    }
}

/// The faults a store was told to inject.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(Vec<FaultPoint>);

impl Faults {
    pub(crate) fn has(&self, point: FaultPoint) -> bool {
        self.0.contains(&point)
    }

    pub(crate) fn check(&self, point: FaultPoint) -> io::Result<()> {
        if self.has(point) {
            Err(Self::injected(point))
        } else {
            Ok(())
        }
    }

    pub(crate) fn injected(point: FaultPoint) -> io::Error {
        io::Error::other(format!("injected fault at {}", point.name()))
    }
}

/// The files of one operation, with the state file's symlinks resolved.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The file actually read and replaced (the symlink's target).
    pub target: PathBuf,
    /// `target`'s directory: temp, backup and corrupt files go here.
    pub dir: PathBuf,
    /// `target`'s file name.
    pub name: OsString,
}

impl Paths {
    pub(crate) fn resolve(given: &Path) -> io::Result<Paths> {
        let mut target = given.to_path_buf();
        // Follow the chain by hand: canonicalize() fails on a dangling link, whose target is
        // still where a new state file must be written.
        let mut hops = 0;
        loop {
            match fs::symlink_metadata(&target) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(io::Error::from_raw_os_error(nix::libc::ELOOP));
                    }
                    let link = fs::read_link(&target)?;
                    target = match link.is_absolute() {
                        true => link,
                        false => parent_dir(&target).join(link),
                    };
                }
                _ => break,
            }
        }
        let name = target
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the state file path does not end in a file name",
                )
            })?
            .to_os_string();
        Ok(Paths {
            dir: parent_dir(&target),
            target,
            name,
        })
    }

    /// `.bak` for generation 0, `.bak.N` after.
    pub(crate) fn backup(&self, generation: usize) -> PathBuf {
        backup_path_of(&self.dir.join(&self.name), generation)
    }
}

/// The backup `generation` of the state file at `path`: `<path>.bak`, then `<path>.bak.N`
/// (the names the Python tool reads too).
fn backup_path_of(path: &Path, generation: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    match generation {
        0 => name.push(".bak"),
        n => name.push(format!(".bak.{n}")),
    }
    PathBuf::from(name)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What one candidate file (main or a backup) holds.
enum Probe {
    Missing,
    Invalid(String),
    Valid {
        state: State,
        migrated_from: Option<u64>,
        /// The file's bytes, kept for a backup (it may be restored as it is); `None` for the
        /// main file, whose bytes are freed once parsed.
        bytes: Option<Vec<u8>>,
        mode: u32,
    },
}

/// How a main file is parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Parse {
    /// Every entry, at once (for reading: every entry will be looked at).
    Full,
    /// Entries kept as text until looked at (for an update: most entries will not be).
    Lazy,
}

/// Parses and migrates one file. A newer version is an error at once: it must not be passed
/// over for an older backup, nor ever rewritten. `parse` applies to the main file; a backup
/// is parsed in full (its bytes are kept, to be restored).
fn probe(path: &Path, is_main: bool, parse: Parse) -> Result<Probe> {
    let (bytes, mode) = match read_file(path) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Missing),
        // Too large to be a state: corrupt, to be replaced by a backup and moved aside whole.
        Err(e) if matches!(unreadable(&e), Some(Unreadable::TooLarge { .. })) => {
            return Ok(Probe::Invalid(e.to_string()))
        }
        // An unreadable main file is not a corrupt one: it must not be moved aside.
        Err(e) if is_main => return Err(Error::io("reading", path, e)),
        Err(e) => return Ok(Probe::Invalid(format!("cannot read: {e}"))),
    };
    if bytes.is_empty() {
        return Ok(Probe::Invalid("empty file".into()));
    }
    // Only a backup's bytes are needed afterwards (to restore it); the main file's are freed
    // as soon as they are parsed.
    let (parsed, bytes) = if is_main {
        let parsed = match parse {
            Parse::Full => format::load_owned(bytes),
            Parse::Lazy => format::load_lazy(bytes),
        };
        (parsed, None)
    } else {
        (format::load(&bytes), Some(bytes))
    };
    let mut state = match parsed {
        Ok(state) => state,
        // Python reads it: not corrupt, so the main file must be neither moved aside nor
        // passed over for a backup. A backup like it is just not a candidate.
        Err(format::Refused::Unusable(why)) if is_main => {
            return Err(Error::Data(format!("{}: {why}", path.display())))
        }
        Err(e) => return Ok(Probe::Invalid(e.into_message())),
    };
    let version = state.version;
    match migrate(&mut state) {
        Ok(migrated) => Ok(Probe::Valid {
            state,
            migrated_from: migrated.then_some(version),
            bytes,
            mode,
        }),
        Err(too_new) => Err(Error::NewerVersion {
            file: path.to_path_buf(),
            found: too_new.found,
            supported: too_new.supported,
        }),
    }
}

/// The most a state file can sensibly be: 512 MiB. A state takes about 660 bytes an entry
/// (100 000 entries are 66 MB), so this is some 800 000 entries, eight times the largest
/// library measured, while loading it already takes about 2.5 times its size in memory. A larger
/// file (a runaway `truncate`, a wrong file) is never read into memory: it is refused as
/// corrupt, and moved aside whole when a backup replaces it.
pub const MAX_STATE_BYTES: u64 = 512 << 20;

/// Why a file that exists was not read: it is no regular file, or it is larger than allowed.
/// Travels inside an [`io::Error`], so that callers tell it apart with [`unreadable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// A FIFO, a device, a socket: what it is.
    NotRegular(&'static str),
    TooLarge {
        len: u64,
        max: u64,
    },
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::NotRegular(what) => write!(f, "{what}, not a regular file"),
            Unreadable::TooLarge { len, max } => write!(
                f,
                "{len} bytes, larger than the {} MiB a state file can be",
                max >> 20
            ),
        }
    }
}

impl std::error::Error for Unreadable {}

/// The [`Unreadable`] inside `err`, if that is why a file was not read.
pub(crate) fn unreadable(err: &io::Error) -> Option<&Unreadable> {
    err.get_ref()?.downcast_ref::<Unreadable>()
}

/// What a file that is not a regular one is, for messages.
fn kind_of(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Opens `path` to read it only if it is a regular file of at most `max` bytes, never blocking:
/// the open is non-blocking (a FIFO without a writer would wait forever), and the type and size
/// are checked on the open file (`fstat`), not on the name, which may change in between. A
/// directory is `EISDIR`, as reading it would be; anything else not regular, or too large, is
/// an [`Unreadable`].
pub(crate) fn open_regular(path: &Path, max: u64) -> io::Result<(fs::File, fs::Metadata)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| socket_or(e, path))?;
    let meta = file.metadata()?;
    let file_type = meta.file_type();
    if file_type.is_dir() {
        return Err(io::Error::from_raw_os_error(nix::libc::EISDIR));
    }
    if !file_type.is_file() {
        let why = Unreadable::NotRegular(kind_of(file_type));
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    if meta.len() > max {
        let why = Unreadable::TooLarge {
            len: meta.len(),
            max,
        };
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    // A regular file: reads behave as they always do (the flag only mattered for the open).
    fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty())).map_err(io::Error::from)?;
    Ok((file, meta))
}

/// A socket cannot be opened at all (`ENXIO`, "no such device or address"): said as what it is.
fn socket_or(err: io::Error, path: &Path) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = || fs::metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if err.raw_os_error() == Some(nix::libc::ENXIO) && is_socket() {
        let why = Unreadable::NotRegular("a socket");
        return io::Error::new(io::ErrorKind::InvalidInput, why);
    }
    err
}

/// A whole regular file of at most `max` bytes (see [`open_regular`]), read to the end even if
/// it grew since it was opened, but never past `max`.
pub(crate) fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, meta) = open_regular(path, max)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    check_len(bytes.len() as u64, max)?;
    Ok(bytes)
}

/// A writer that refuses to write more than `max` bytes: a state is never written larger than
/// it can be read back ([`MAX_STATE_BYTES`]); the write fails and the previous file stays.
struct Capped<'a> {
    inner: &'a mut dyn io::Write,
    left: u64,
    max: u64,
}

impl<'a> Capped<'a> {
    fn new(inner: &'a mut dyn io::Write, max: u64) -> Self {
        Capped {
            inner,
            left: max,
            max,
        }
    }
}

impl io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the state would be larger than the {} MiB a state file can be read back at; \
                     remove entries (`mamfast state prune`) to make room",
                    self.max >> 20
                ),
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file that grew past `max` while it was read is refused as one that was too large.
fn check_len(len: u64, max: u64) -> io::Result<()> {
    if len > max {
        let why = Unreadable::TooLarge { len, max };
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    Ok(())
}

/// A whole state file and its permission bits (at most [`MAX_STATE_BYTES`]; see
/// [`open_regular`]). A large file is read by two threads, one half each: most of the time of
/// reading it goes into the first touch of the fresh memory, which the second CPU then shares.
fn read_file(path: &Path) -> io::Result<(Vec<u8>, u32)> {
    read_file_with(path, 8 << 20, MAX_STATE_BYTES)
}

fn read_file_with(path: &Path, two_threads_from: u64, max: u64) -> io::Result<(Vec<u8>, u32)> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;

    let (file, meta) = open_regular(path, max)?;
    let mode = meta.mode() & 0o7777;
    let len = meta.len();
    if len >= two_threads_from && two_cpus() {
        if let Ok(len) = usize::try_from(len) {
            // Zeroed by the system, not by us: no page is touched before the reads.
            let mut bytes = vec![0u8; len];
            let (head, tail) = bytes.split_at_mut(len / 2);
            let file_ref = &file;
            let both = std::thread::scope(|scope| {
                let tail_read = std::thread::Builder::new()
                    .spawn_scoped(scope, move || {
                        file_ref.read_exact_at(tail, (len / 2) as u64)
                    })
                    .ok()?;
                let head_read = file_ref.read_exact_at(head, 0);
                Some(head_read.is_ok() && tail_read.join().is_ok_and(|r| r.is_ok()))
            });
            // The file must not have grown meanwhile: nothing may follow.
            if both == Some(true) && file.read_at(&mut [0u8; 1], len as u64)? == 0 {
                return Ok((bytes, mode));
            }
        }
    }
    let mut bytes = Vec::new();
    // Positional reads leave the offset at 0: this reads from the start, never past `max`.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    check_len(bytes.len() as u64, max)?;
    Ok((bytes, mode))
}

/// The main file as it was found.
#[derive(Debug, Clone, PartialEq)]
enum MainState {
    Clean,
    Missing,
    Corrupt(String),
}

impl MainState {
    /// Why the main file did not win: what is wrong with it, or [`MISSING`].
    fn reason(&self) -> &str {
        match self {
            MainState::Corrupt(reason) => reason,
            _ => MISSING,
        }
    }

    /// What becomes of this main file when another replaces it: a clean one becomes `.bak`
    /// (with `backup_depth` above 0), a corrupt one is moved aside (never deleted).
    fn fate(&self, paths: &Paths, backup_depth: usize) -> OldMain {
        match self {
            MainState::Clean if backup_depth > 0 => OldMain::Rotate {
                depth: backup_depth,
                vacate: None,
            },
            MainState::Corrupt(_) => {
                OldMain::Quarantine(backups::corrupt_path(paths, chrono::Utc::now()))
            }
            _ => OldMain::Discard,
        }
    }
}

/// The result of the recovery chain, before anything on disk is repaired.
struct Found {
    loaded: Loaded,
    main: MainState,
    /// The winning backup's bytes and permission bits, when a backup won.
    backup: Option<(Vec<u8>, u32)>,
}

const NFS_MAGIC: u32 = 0x6969;

/// The name of a network file system, from a `statfs` magic number.
fn network_fs_name(magic: u32) -> Option<&'static str> {
    Some(match magic {
        NFS_MAGIC => "nfs",
        0xFF53_4D42 => "cifs",
        0xFE53_4D42 => "smb2",
        0x517B => "smb",
        0x5346_414F => "afs",
        0x00C3_6400 => "ceph",
        0x0102_1997 => "9p",
        0x0BD0_0BD0 => "lustre",
        0x6573_5546 => "fuse",
        _ => return None,
    })
}

type Sink = Box<dyn Fn(&Notice) + Send + Sync>;

/// The state file: locked, durably written, backed up and recovered.
pub struct Store {
    path: PathBuf,
    options: StoreOptions,
    notify: Sink,
    faults: Faults,
    /// A bad `MAMFAST_INJECT_FAULT`, reported by every operation.
    fault_env_error: Option<String>,
    network_checked: AtomicBool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store for the state file at `path` (nothing is opened yet).
    pub fn new(path: impl Into<PathBuf>, options: StoreOptions) -> Store {
        let mut faults = Faults::default();
        let mut fault_env_error = None;
        if let Ok(names) = std::env::var("MAMFAST_INJECT_FAULT") {
            for name in names.split(',').filter(|n| !n.trim().is_empty()) {
                match FaultPoint::from_name(name) {
                    Some(point) => faults.0.push(point),
                    None => {
                        let known: Vec<&str> = FaultPoint::ALL.iter().map(|p| p.name()).collect();
                        fault_env_error = Some(format!(
                            "MAMFAST_INJECT_FAULT: unknown fault point \"{}\" (known: {})",
                            name.trim(),
                            known.join(", ")
                        ));
                    }
                }
            }
        }
        Store {
            path: path.into(),
            options,
            notify: Box::new(|notice| {
                let text = crate::escape::escape_lines(&notice.to_string()).into_owned();
                eprintln!("warning: {text}")
            }),
            faults,
            fault_env_error,
            network_checked: AtomicBool::new(false),
        }
    }

    /// Sends notices to `sink` instead of standard error.
    pub fn with_notices(mut self, sink: impl Fn(&Notice) + Send + Sync + 'static) -> Store {
        self.notify = Box::new(sink);
        self
    }

    /// Makes the given step of every write fail (a testing aid).
    #[doc(hidden)]
    pub fn inject_fault(mut self, point: FaultPoint) -> Store {
        self.faults.0.push(point);
        self
    }

    /// The state file, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// `<state file>.lock`, beside the path as given (not the symlink's target), as the Python
    /// tool has it.
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// `.bak` (generation 0) or `.bak.N`, beside the symlink-resolved state file.
    pub fn backup_path(&self, generation: usize) -> PathBuf {
        match Paths::resolve(&self.path) {
            Ok(paths) => paths.backup(generation),
            Err(_) => backup_path_of(&self.path, generation),
        }
    }

    /// Which of the store's own files `path` is, under any name (links included): the state
    /// file, a backup, a moved-aside corrupt file, the lock file or a temp file, all of which
    /// only the store may write. `None` for any other file, or one that does not exist.
    pub fn own_file(&self, path: &Path) -> Option<OwnFile> {
        let given = fs::metadata(path).ok()?;
        let paths = self.paths().ok()?;
        let main_name = paths.name.as_encoded_bytes();
        let ours = |name: &std::ffi::OsStr| {
            name.as_encoded_bytes().starts_with(main_name)
                || durable::temp_owner(name, &paths.name).is_some()
        };
        let mut files = vec![paths.target.clone()];
        if let Ok(entries) = fs::read_dir(&paths.dir) {
            files.extend(
                entries
                    .flatten()
                    .filter(|e| ours(&e.file_name()))
                    .map(|e| e.path()),
            );
        }
        let found = files.into_iter().find(|file| {
            fs::metadata(file).is_ok_and(|m| m.dev() == given.dev() && m.ino() == given.ino())
        })?;
        Some(if found == paths.target {
            OwnFile::State(found)
        } else {
            OwnFile::Other(found)
        })
    }

    /// The current state (see [`Store::read_loaded`]).
    pub fn read(&self) -> Result<State> {
        self.read_loaded().map(|loaded| loaded.state)
    }

    /// [`Store::read`] for a command that looks at a few entries (`state show`) or copies them
    /// (`state export`): entries are parsed when first looked at, as in [`Store::update`].
    pub fn read_lazy(&self) -> Result<State> {
        self.read_with(Parse::Lazy).map(|loaded| loaded.state)
    }

    /// Loads the state: a clean main file without a lock (writers rename a whole file into
    /// place, so the one opened is whole, and readers never hold writers off); otherwise, under
    /// a shared lock, the main file, else the first valid backup (which is then copied back to
    /// the main file under the exclusive lock, the corrupt file kept as `.corrupt-…`). A
    /// missing file (or directory) is an empty state; nothing is created.
    pub fn read_loaded(&self) -> Result<Loaded> {
        self.read_with(Parse::Full)
    }

    fn read_with(&self, parse: Parse) -> Result<Loaded> {
        self.check_env()?;
        // A path that names no file (`/`) is refused here, before a lock file is made beside it.
        if let Some(loaded) = self.read_clean_main(parse)? {
            self.notify_problems(&loaded.state);
            return Ok(loaded);
        }
        let lock = self.lock_for_read()?;
        let paths = self.paths()?;
        self.check_network(&paths);
        let found = self.load_chain(&paths, parse)?;
        self.notify_problems(&found.loaded.state);
        if found.loaded.source == Source::Missing {
            (self.notify)(&Notice::StateMissing(self.path.clone()));
        }
        if !matches!(found.loaded.source, Source::Backup { .. }) {
            return Ok(found.loaded);
        }
        if self.options.dry_run {
            self.notify_in_memory(&paths, &found, "dry run".into());
            return Ok(found.loaded);
        }
        // Repairing needs the exclusive lock; another process may have repaired it meanwhile,
        // so everything is checked again once we hold it.
        drop(lock);
        match self.repair_exclusively(parse) {
            Ok(loaded) => Ok(loaded),
            Err(e @ (Error::NewerVersion { .. } | Error::Corrupt { .. })) => Err(e),
            Err(e) => {
                let why = e.to_string().lines().next().unwrap_or_default().to_string();
                self.notify_in_memory(&paths, &found, why);
                Ok(found.loaded)
            }
        }
    }

    /// The main file, read without a lock, if it is a valid state; `None` for anything else.
    ///
    /// A reader takes no lock when it need not, so that readers coming one after another never
    /// hold a writer off. Every writer, mamfast and the Python tool, replaces the main file by
    /// a rename (`renameat2`, `os.replace`), so the file we opened is one whole state, old or
    /// new, whatever is written meanwhile. Anything else is read again under the lock, as
    /// before: a missing main file (a writer without `RENAME_EXCHANGE` may be moving a corrupt
    /// one aside), a corrupt one (its recovery reads `.bak`, which the Python tool writes in
    /// place with `shutil.copy2`), an unreadable or newer one (for the same error as before).
    fn read_clean_main(&self, parse: Parse) -> Result<Option<Loaded>> {
        let paths = self.paths()?;
        self.check_network(&paths);
        Ok(match probe(&paths.target, true, parse) {
            Ok(Probe::Valid {
                state,
                migrated_from,
                ..
            }) => Some(Loaded {
                state,
                source: Source::Main,
                migrated_from,
            }),
            _ => None,
        })
    }

    /// Read-modify-write under the exclusive lock: loads (with recovery and migration), runs
    /// `f`, and on [`Outcome::Changed`] rotates the backups and writes the state durably.
    /// `Outcome::Unchanged` and dry run write nothing, not even a backup. The state's
    /// directory is created if needed.
    ///
    /// Entries are parsed when `f` first looks at them, and those it leaves alone are written
    /// back as the text they were read as: the cost of a change to a few entries of a large
    /// state is mostly that of copying the file.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> Result<Outcome<T>>) -> Result<T> {
        self.update_with(Parse::Lazy, f)
    }

    /// [`Store::update`] for a change that looks at every entry (`state prune`): every entry
    /// is parsed before `f` runs, by two threads on a large file, as a read does.
    pub fn update_all<T>(&self, f: impl FnOnce(&mut State) -> Result<Outcome<T>>) -> Result<T> {
        self.update_with(Parse::Full, f)
    }

    fn update_with<T>(
        &self,
        parse: Parse,
        f: impl FnOnce(&mut State) -> Result<Outcome<T>>,
    ) -> Result<T> {
        if self.options.dry_run {
            // Loaded as a read loads in a dry run (nothing repaired), and kept.
            let mut state = self.read_with(parse)?.state;
            return Ok(match f(&mut state)? {
                Outcome::Changed(t) | Outcome::Unchanged(t) => t,
            });
        }
        self.check_env()?;
        self.paths()?;

        let given_dir = parent_dir(&self.path);
        fs::create_dir_all(&given_dir)
            .map_err(|e| Error::io("creating the directory", &given_dir, e))?;
        // A (dangling) symlink into a directory that does not exist yet: the lock of the real
        // path is made there.
        let real_dir = self.paths()?.dir;
        fs::create_dir_all(&real_dir)
            .map_err(|e| Error::io("creating the directory", &real_dir, e))?;
        let _lock = self.lock_for_write()?;
        let paths = self.paths()?;
        self.check_network(&paths);
        durable::settle_interrupted(&paths, self.options.backup_depth, &*self.notify);
        let found = self.load_chain(&paths, parse)?;
        self.notify_problems(&found.loaded.state);
        let loaded = self.repair(&paths, found)?;
        let mut state = loaded.state;
        let done = match f(&mut state)? {
            Outcome::Unchanged(t) => t,
            Outcome::Changed(t) => {
                // Only a file that loaded cleanly is worth a backup generation.
                let old = match (&loaded.source, self.options.backup_depth) {
                    (Source::Main, depth) if depth > 0 => OldMain::Rotate {
                        depth,
                        vacate: None,
                    },
                    _ => OldMain::Discard,
                };
                durable::commit(&paths, &self.faults, old, None, &mut |w| {
                    format::write_state(&mut Capped::new(w, MAX_STATE_BYTES), &state)
                })?;
                t
            }
        };
        free_in_background(state);
        Ok(done)
    }

    /// The main file and every backup generation (at least `backup_depth` of them, plus any
    /// older ones that exist), with what each holds. Read under a shared lock when one can be
    /// had; never creates a file.
    pub fn generations(&self) -> Vec<Generation> {
        let _lock = self.open_lock(false).and_then(Result::ok).and_then(|file| {
            lock::acquire(
                file,
                &self.lock_path(),
                LockMode::Shared,
                self.options.lock_timeout,
                false,
                &*self.notify,
            )
            .ok()
        });
        let describe = |generation: Option<usize>, path: PathBuf| {
            let meta = fs::metadata(&path).ok();
            Generation {
                generation,
                exists: meta.is_some(),
                size: meta.as_ref().map(|m| m.len()),
                modified: meta.as_ref().and_then(|m| m.modified().ok()),
                summary: summarize(&path),
                path,
            }
        };
        let mut out = vec![describe(None, self.path.clone())];
        let Ok(paths) = Paths::resolve(&self.path) else {
            return out;
        };
        let existing = backups::existing(&paths);
        let last = existing.last().map_or(0, |(g, _)| g + 1);
        for generation in 0..self.options.backup_depth.max(last) {
            out.push(describe(Some(generation), paths.backup(generation)));
        }
        out
    }

    /// Makes backup `generation` (0 = `.bak`) the main file, under the exclusive lock.
    ///
    /// The backup must exist (else [`Error::Usage`], exit 2: the generation named on the
    /// command line is wrong) and be a valid state (else [`Error::Data`], exit 65, or
    /// [`Error::NewerVersion`]). Its bytes are written as they are. The current main file, if it
    /// loads cleanly, becomes `.bak` through the normal rotation; if corrupt, it is moved to
    /// `.corrupt-…`; if newer than this build, nothing is done ([`Error::NewerVersion`]).
    /// In dry run, everything is checked and nothing changed.
    pub fn restore(&self, generation: usize) -> Result<Restored> {
        self.check_env()?;
        let missing = |path: &Path| {
            Error::Usage(format!(
                "backup generation {generation} does not exist: {} not found.\n\
                 Run `mamfast state backups` to see the generations there are.",
                path.display()
            ))
        };
        let pre = self.paths()?;
        if !pre.dir.is_dir() {
            return Err(missing(&pre.backup(generation)));
        }
        let _lock: Vec<Lock> = if self.options.dry_run {
            self.lock_for_read()?.into_iter().collect()
        } else {
            self.lock_for_write()?
        };
        let paths = self.paths()?;
        let chosen = paths.backup(generation);
        let (bytes, mode, summary) = match probe(&chosen, false, Parse::Full)? {
            Probe::Missing => return Err(missing(&chosen)),
            Probe::Invalid(reason) => {
                return Err(Error::Data(format!(
                    "{} cannot be restored: {reason}\nNothing was changed. Run `mamfast state \
                     backups` to find a valid generation.",
                    chosen.display()
                )))
            }
            Probe::Valid {
                bytes,
                mode,
                state,
                migrated_from,
            } => (
                bytes.expect("a backup's bytes are kept"),
                mode,
                Summary::of(&state, migrated_from),
            ),
        };
        // Only its validity matters here.
        let main = match probe(&paths.target, true, Parse::Lazy) {
            Ok(Probe::Valid { .. }) => MainState::Clean,
            Ok(Probe::Missing) => MainState::Missing,
            Ok(Probe::Invalid(reason)) => MainState::Corrupt(reason),
            // Python reads it, though mamfast cannot use it (see `probe`): not corrupt, so it
            // becomes a backup generation as a clean one does.
            Err(Error::Data(_)) => MainState::Clean,
            Err(e) => return Err(e),
        };
        let old = match main.fate(&paths, self.options.backup_depth) {
            // The chosen generation becomes the main file: its slot is vacated rather than an
            // older, distinct generation dropped.
            OldMain::Rotate { depth, .. } => OldMain::Rotate {
                depth,
                vacate: Some(generation),
            },
            other => other,
        };
        let dropped = match &old {
            OldMain::Rotate { depth, vacate } => backups::falling_out(&paths, *depth, *vacate),
            _ => Vec::new(),
        };
        let restored = Restored {
            backup: chosen,
            summary,
            dropped,
            previous_main: match (&main, &old) {
                (MainState::Missing, _) => PreviousMain::Missing,
                (_, OldMain::Rotate { .. }) => PreviousMain::BecameBackup(paths.backup(0)),
                (_, OldMain::Quarantine(to)) => PreviousMain::MovedAside(to.clone()),
                _ => PreviousMain::Replaced,
            },
        };
        if self.options.dry_run {
            return Ok(restored);
        }
        durable::settle_interrupted(&paths, self.options.backup_depth, &*self.notify);
        durable::commit(&paths, &self.faults, old.clone(), Some(mode), &mut |w| {
            w.write_all(&bytes)
        })?;
        if let (MainState::Corrupt(reason), OldMain::Quarantine(moved_to)) = (main, old) {
            (self.notify)(&Notice::CorruptMovedAside {
                corrupt: paths.target.clone(),
                reason,
                moved_to,
            });
        }
        Ok(restored)
    }

    fn check_env(&self) -> Result<()> {
        match &self.fault_env_error {
            Some(msg) => Err(Error::Config(msg.clone())),
            None => Ok(()),
        }
    }

    fn paths(&self) -> Result<Paths> {
        Paths::resolve(&self.path).map_err(|e| {
            // A path without a file name (`/`, `dir/..`) names a directory.
            let e = match e.kind() {
                io::ErrorKind::InvalidInput if self.path.is_dir() => {
                    io::Error::from_raw_os_error(nix::libc::EISDIR)
                }
                _ => e,
            };
            Error::io("resolving", &self.path, e)
        })
    }

    /// Whether `path`, once its links are followed, is in the state's directory under a name
    /// that the state's temp files take: a later writer could remove such a file.
    pub fn is_temp_name(&self, path: &Path) -> bool {
        let (Ok(paths), Ok(given)) = (self.paths(), Paths::resolve(path)) else {
            return false;
        };
        let same_dir = match (fs::canonicalize(&paths.dir), fs::canonicalize(&given.dir)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        same_dir && durable::looks_like_temp(&given.name, &paths.name)
    }

    /// Opens the lock file. `None`: it does not exist and may not be created.
    fn open_lock(&self, create: bool) -> Option<io::Result<fs::File>> {
        match lock::open(&self.lock_path(), create) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => None,
            other => Some(other),
        }
    }

    /// A shared lock for reading, or none where none can be had: no lock file in dry run, no
    /// directory, or a directory where it cannot be created (with a notice).
    fn lock_for_read(&self) -> Result<Option<Lock>> {
        let create = !self.options.dry_run;
        let lock_file = self.lock_path();
        let file = match self.open_lock(create) {
            None => return Ok(None),
            Some(Ok(file)) => file,
            Some(Err(_)) if !parent_dir(&lock_file).exists() => return Ok(None),
            Some(Err(e)) => {
                (self.notify)(&Notice::ReadWithoutLock {
                    lock_file,
                    reason: e.to_string(),
                });
                return Ok(None);
            }
        };
        lock::acquire(
            file,
            &lock_file,
            LockMode::Shared,
            self.options.lock_timeout,
            create,
            &*self.notify,
        )
        .map(Some)
    }

    /// The exclusive locks a write needs, waiting at most `lock_timeout` in all.
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
    /// re-pointed in a cycle while writers wait, the wait still ends at `lock_timeout`.)
    /// The real path is resolved again once both are held: if the name was pointed elsewhere
    /// meanwhile, the second lock is retaken for the new file.
    fn lock_for_write(&self) -> Result<Vec<Lock>> {
        self.take_write_locks().map_err(|e| match e {
            // The wait is told in full, not what was left of it for the second lock.
            Error::LockTimeout {
                lock_file,
                holder,
                exclusive,
                ..
            } => Error::LockTimeout {
                lock_file,
                waited: self.options.lock_timeout,
                holder,
                exclusive,
            },
            e => e,
        })
    }

    fn take_write_locks(&self) -> Result<Vec<Lock>> {
        let deadline = Instant::now() + self.options.lock_timeout;
        let given = self.take_lock(&self.lock_path(), deadline)?;
        loop {
            let real = self.real_lock_path()?;
            let file = lock::open(&real, true)
                .map_err(|e| Error::io("creating the lock file", &real, e))?;
            if lock::same_file(&given, &file) {
                return Ok(vec![given]);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let second = lock::acquire(
                file,
                &real,
                LockMode::Exclusive,
                remaining,
                true,
                &*self.notify,
            )?;
            if self.real_lock_path()? == real {
                return Ok(vec![given, second]);
            }
        }
    }

    fn take_lock(&self, path: &Path, deadline: Instant) -> Result<Lock> {
        let file =
            lock::open(path, true).map_err(|e| Error::io("creating the lock file", path, e))?;
        lock::acquire(
            file,
            path,
            LockMode::Exclusive,
            deadline.saturating_duration_since(Instant::now()),
            true,
            &*self.notify,
        )
    }

    /// `<real path of the state file>.lock`: the symlinks of the name followed, its directory
    /// canonicalised (which therefore must exist).
    fn real_lock_path(&self) -> Result<PathBuf> {
        let paths = self.paths()?;
        let dir = fs::canonicalize(&paths.dir)
            .map_err(|e| Error::io("resolving the directory", &paths.dir, e))?;
        let mut name = paths.name;
        name.push(".lock");
        Ok(dir.join(name))
    }

    fn check_network(&self, paths: &Paths) {
        if self.network_checked.load(Ordering::Relaxed) {
            return;
        }
        let magic = if self.faults.has(FaultPoint::NetworkFs) {
            NFS_MAGIC
        } else {
            let Ok(stat) = nix::sys::statfs::statfs(&paths.dir) else {
                return;
            };
            (stat.filesystem_type().0 as u64 & 0xffff_ffff) as u32
        };
        self.network_checked.store(true, Ordering::Relaxed);
        if let Some(fs) = network_fs_name(magic) {
            (self.notify)(&Notice::NetworkFileSystem {
                path: paths.target.clone(),
                fs: fs.to_string(),
            });
        }
    }

    /// Main, then `.bak`, `.bak.1` …: the first that parses and migrates wins. Changes nothing.
    fn load_chain(&self, paths: &Paths, parse: Parse) -> Result<Found> {
        let main = match probe(&paths.target, true, parse)? {
            Probe::Valid {
                state,
                migrated_from,
                ..
            } => {
                return Ok(Found {
                    loaded: Loaded {
                        state,
                        source: Source::Main,
                        migrated_from,
                    },
                    main: MainState::Clean,
                    backup: None,
                })
            }
            Probe::Missing => MainState::Missing,
            Probe::Invalid(reason) => MainState::Corrupt(reason),
        };
        let mut tried = vec![(paths.target.clone(), main.reason().to_string())];
        for (generation, path) in backups::existing(paths) {
            match probe(&path, false, Parse::Full)? {
                Probe::Valid {
                    state,
                    migrated_from,
                    bytes,
                    mode,
                } => {
                    return Ok(Found {
                        loaded: Loaded {
                            state,
                            source: Source::Backup { generation, path },
                            migrated_from,
                        },
                        main,
                        backup: bytes.map(|bytes| (bytes, mode)),
                    })
                }
                // Vanished between listing and reading: nothing to report.
                Probe::Missing => {}
                Probe::Invalid(reason) => tried.push((path, reason)),
            }
        }
        if main == MainState::Missing && tried.len() == 1 {
            return Ok(Found {
                loaded: Loaded {
                    state: State::default(),
                    source: Source::Missing,
                    migrated_from: None,
                },
                main,
                backup: None,
            });
        }
        Err(Error::Corrupt {
            file: self.path.clone(),
            tried,
        })
    }

    fn repair_exclusively(&self, parse: Parse) -> Result<Loaded> {
        let _lock = self.lock_for_write()?;
        let paths = self.paths()?;
        durable::settle_interrupted(&paths, self.options.backup_depth, &*self.notify);
        let found = self.load_chain(&paths, parse)?;
        self.repair(&paths, found)
    }

    /// When a backup won: moves the corrupt main aside and copies the backup's bytes to the
    /// main file (a copy, never a link). Call under the exclusive lock.
    fn repair(&self, paths: &Paths, found: Found) -> Result<Loaded> {
        let (Source::Backup { path: backup, .. }, Some((bytes, mode))) =
            (&found.loaded.source, &found.backup)
        else {
            return Ok(found.loaded);
        };
        // The backup's copy is no generation of its own: nothing rotates.
        let old = found.main.fate(paths, 0);
        let reason = found.main.reason().to_string();
        durable::commit(paths, &self.faults, old.clone(), Some(*mode), &mut |w| {
            w.write_all(bytes)
        })?;
        (self.notify)(&Notice::Recovered {
            corrupt: paths.target.clone(),
            reason,
            moved_to: match old {
                OldMain::Quarantine(to) => Some(to),
                _ => None,
            },
            backup: backup.clone(),
        });
        Ok(found.loaded)
    }

    /// Says, in one line, that the state holds entries kept as they are (see
    /// [`Notice::EntriesKeptAsTheyAre`]).
    fn notify_problems(&self, state: &State) {
        let processed = state.processed.problems();
        let mut all = processed.chain(state.failed.problems());
        if let Some((id, problem)) = all.next() {
            (self.notify)(&Notice::EntriesKeptAsTheyAre {
                path: self.path.clone(),
                count: 1 + all.count(),
                first: (id.clone(), problem.to_string()),
            });
        }
    }

    fn notify_in_memory(&self, paths: &Paths, found: &Found, why: String) {
        if let Source::Backup { path, .. } = &found.loaded.source {
            (self.notify)(&Notice::RecoveredInMemory {
                corrupt: paths.target.clone(),
                reason: found.main.reason().to_string(),
                backup: path.clone(),
                why,
            });
        }
    }
}

/// Whether a second CPU is there to share large loads and writes with.
pub(crate) fn two_cpus() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// Frees a large state on a thread of its own: freeing 100k entries takes about 20 ms that
/// the caller (and the lock) need not wait for. Small states, or no thread to be had, are
/// freed here.
fn free_in_background(state: State) {
    if state.processed.len() + state.failed.len() >= 10_000 {
        let _ = std::thread::Builder::new()
            .name("mamfast-free".into())
            .spawn(move || drop(state));
    }
}

/// What a state file holds, for [`Store::generations`]: loaded as the main file is (only the
/// counts are needed, so its entries stay unparsed), or why it cannot be.
fn summarize(path: &Path) -> std::result::Result<Summary, String> {
    match probe(path, true, Parse::Lazy) {
        Ok(Probe::Valid {
            state,
            migrated_from,
            ..
        }) => Ok(Summary::of(&state, migrated_from)),
        Ok(Probe::Missing) => Err(MISSING.to_string()),
        Ok(Probe::Invalid(reason)) => Err(reason),
        Err(Error::NewerVersion {
            found, supported, ..
        }) => Err(format!(
            "schema version {found} is newer than this mamfast understands (up to {supported})"
        )),
        Err(Error::Io { source, .. }) => Err(source.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for point in FaultPoint::ALL {
            assert_eq!(FaultPoint::from_name(point.name()), Some(point));
        }
        assert_eq!(
            FaultPoint::from_name("FsyncDir"),
            Some(FaultPoint::FsyncDir)
        );
        assert_eq!(
            FaultPoint::from_name("fsync_dir"),
            Some(FaultPoint::FsyncDir)
        );
        assert_eq!(FaultPoint::from_name("bogus"), None);
    }

    #[test]
    fn a_file_read_in_two_halves_is_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..100_001u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        for threshold in [0, u64::MAX] {
            let (read, _) = read_file_with(&path, threshold, MAX_STATE_BYTES).unwrap();
            assert!(read == bytes, "threshold {threshold}");
        }
        fs::write(&path, b"").unwrap();
        assert!(read_file_with(&path, 0, MAX_STATE_BYTES)
            .unwrap()
            .0
            .is_empty());
    }

    #[test]
    fn a_file_larger_than_the_limit_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, vec![b'x'; 1001]).unwrap();
        for threshold in [0, u64::MAX] {
            let err = read_file_with(&path, threshold, 1000).unwrap_err();
            let too_large = Unreadable::TooLarge {
                len: 1001,
                max: 1000,
            };
            assert_eq!(unreadable(&err), Some(&too_large));
            assert_eq!(
                read_file_with(&path, threshold, 1001).unwrap().0.len(),
                1001
            );
        }
        assert_eq!(
            read_regular(&path, 1000).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_state_is_never_written_larger_than_it_can_be_read() {
        use std::io::Write;
        let mut out = Vec::new();
        let mut capped = Capped::new(&mut out, 10);
        capped.write_all(b"0123456789").unwrap();
        let err = capped.write_all(b"x").unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        assert_eq!(out, b"0123456789");
    }

    #[test]
    fn network_file_systems_are_named() {
        assert_eq!(network_fs_name(0x6969), Some("nfs"));
        assert_eq!(network_fs_name(0xFF53_4D42), Some("cifs"));
        assert_eq!(network_fs_name(0xFE53_4D42), Some("smb2"));
        assert_eq!(network_fs_name(0xEF53), None); // ext4
        assert_eq!(network_fs_name(0x0102_1994), None); // tmpfs
    }

    #[test]
    fn paths_follow_symlinks_even_dangling_ones() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real/processed.json", &link).unwrap();
        let paths = Paths::resolve(&link).unwrap();
        assert_eq!(paths.target, dir.path().join("real/processed.json"));
        assert_eq!(paths.dir, dir.path().join("real"));
        assert_eq!(paths.name, "processed.json");
        assert_eq!(
            paths.backup(2),
            dir.path().join("real/processed.json.bak.2")
        );

        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped).unwrap();
        assert!(Paths::resolve(&looped).is_err());

        let bare = Paths::resolve(Path::new("processed.json")).unwrap();
        assert_eq!(bare.dir, PathBuf::from("."));
    }

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
        ];
        for notice in notices {
            let text = notice.to_string();
            assert!(!text.contains('\n') && text.contains("/s/"), "{text}");
        }
    }
}
