//! Durable replacement of the state file: temp file in the same directory → write → `fsync` →
//! permissions → swap into place → `fsync` of the directory, with the old file kept on failure.
//!
//! The swap is `renameat2(RENAME_EXCHANGE)` (Linux): the temp name then holds the old main file,
//! which becomes `.bak` by one more rename, with no copy and no moment without a main file.
//! Where the file system lacks it (some network file systems), the old main is copied instead.
//! Main and backup are always distinct inodes (no hard links): the Python tool's
//! `shutil.copy2(main, bak)` refuses to copy a file onto itself.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::backups::{self, Rotation};
use super::{FaultPoint, Faults, Notice, Paths};
use crate::error::{Error, Result};

/// What happens to the current main file when a new one replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OldMain {
    /// It loaded cleanly: it becomes `.bak` after the older generations are shifted.
    Rotate { depth: usize },
    /// It is corrupt: it is moved to this `.corrupt-…` name, never deleted.
    Quarantine(PathBuf),
    /// Nothing worth keeping (a copy of a backup, or `backup_depth = 0`).
    Discard,
}

/// A temp file of ours, removed on drop unless it was moved into place.
pub(crate) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a leftover is recognisable by its name and removed by a later writer.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `.processed.json.tmp-<pid>-<n>`: hidden, and recognisable as ours by a later writer.
pub(crate) fn temp_name(main_name: &OsStr) -> OsString {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(main_name);
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    name
}

/// The pid in a temp file name of ours for `main_name`, if `file_name` is one.
pub(crate) fn temp_owner(file_name: &OsStr, main_name: &OsStr) -> Option<u32> {
    let file_name = file_name.to_str()?;
    let rest = file_name
        .strip_prefix('.')?
        .strip_prefix(main_name.to_str()?)?
        .strip_prefix(".tmp-")?;
    let (pid, n) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// Removes temp files left by writers that died (their pid is gone). Call only under the
/// exclusive lock: every writer holds it while its temp file exists.
pub(crate) fn remove_stale_temps(paths: &Paths, notify: &dyn Fn(&Notice)) {
    let Ok(entries) = fs::read_dir(&paths.dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = temp_owner(&entry.file_name(), &paths.name) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        let path = entry.path();
        if fs::remove_file(&path).is_ok() {
            notify(&Notice::StaleTempRemoved(path));
        }
    }
}

fn process_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(Errno::ESRCH)
    )
}

/// Fails after `remaining` bytes (or at the end, for a shorter file), to simulate a write cut
/// short (`FaultPoint::Write`).
struct Faulty<W> {
    inner: W,
    remaining: Option<usize>,
}

impl<W: Write> Write for Faulty<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.remaining {
            None => self.inner.write(buf),
            Some(0) => Err(Faults::injected(FaultPoint::Write)),
            Some(left) => {
                let n = self.inner.write(&buf[..buf.len().min(*left)])?;
                *left -= n;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.remaining {
            Some(_) => Err(Faults::injected(FaultPoint::Write)),
            None => self.inner.flush(),
        }
    }
}

/// Passes writes on to a file and asks the kernel to start writing each few megabytes back
/// to disk while the rest is still being written (`sync_file_range`, Linux), so that the
/// `fsync` at the end has less left to wait for. Durability still rests on that `fsync` alone:
/// this only starts it early, and its errors are left for the `fsync` to report.
struct Writeback<'a> {
    file: &'a File,
    written: u64,
    started: u64,
}

impl<'a> Writeback<'a> {
    /// Writeback is started once this much more has been written.
    const STEP: u64 = 8 << 20;

    fn new(file: &'a File) -> Self {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= Self::STEP {
            start_writeback(self.file, self.started, self.written - self.started);
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on an open descriptor; it reads no memory of ours.
    unsafe {
        nix::libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            len,
            nix::libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Writes a complete, synced temp file beside the main file. `mode` is the permission bits it
/// must end with (`None`: the default for new files, 0o644 less the umask); `owner` is kept
/// when the process may do so (root writing a user's file).
pub(crate) fn write_temp(
    paths: &Paths,
    faults: &Faults,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<TempFile> {
    // Private until the final bits are set, so a 0o600 state is never briefly world-readable.
    let create_mode = if mode.is_some() { 0o600 } else { 0o644 };
    let create = |path: &Path| {
        faults.check(FaultPoint::CreateTemp).and_then(|()| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(create_mode)
                .open(path)
        })
    };
    let mut path = paths.dir.join(temp_name(&paths.name));
    let mut attempts = 0;
    let file = loop {
        match create(&path) {
            // A leftover of an earlier process that had our pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
                path = paths.dir.join(temp_name(&paths.name));
            }
            other => {
                break other
                    .map_err(|e| Error::io("creating a temporary file beside", &paths.target, e))?
            }
        }
    };
    let temp = TempFile { path, armed: true };

    let written = {
        let cut = faults.has(FaultPoint::Write).then_some(100);
        let mut out = BufWriter::new(Faulty {
            inner: Writeback::new(&file),
            remaining: cut,
        });
        write(&mut out).and_then(|()| out.flush())
    };
    written.map_err(|e| Error::io("writing the new version of", &paths.target, e))?;

    if let Some(mode) = mode {
        faults
            .check(FaultPoint::SetPermissions)
            .and_then(|()| file.set_permissions(Permissions::from_mode(mode)))
            .map_err(|e| {
                Error::io(
                    "setting the permissions of the new version of",
                    &paths.target,
                    e,
                )
            })?;
    }
    if let Some((uid, gid)) = owner {
        // Only root may give a file away; for anyone else this is a no-op or EPERM, both fine.
        let meta = file.metadata().ok();
        if meta.is_some_and(|m| m.uid() != uid || m.gid() != gid) {
            let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
            if let Some(mode) = mode {
                // chown may clear set-id bits: put the bits back.
                let _ = file.set_permissions(Permissions::from_mode(mode));
            }
        }
    }
    // A failed fsync is never retried: the page cache may have dropped the data already.
    faults
        .check(FaultPoint::FsyncFile)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("syncing to disk the new version of", &paths.target, e))?;
    Ok(temp)
}

pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

enum Exchange {
    Done,
    Unsupported,
}

/// Atomically swaps the names `a` and `b` (both must exist).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn exchange(a: &Path, b: &Path) -> io::Result<Exchange> {
    use nix::errno::Errno;
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, a, None, b, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(Exchange::Done),
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => Ok(Exchange::Unsupported),
        Err(e) => Err(e.into()),
    }
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`, and nothing changes).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => rename_if_free(from, to),
        done => done.map_err(io::Error::from),
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    rename_if_free(from, to)
}

/// [`rename_no_replace`] where the system cannot: a check, then a rename (both under the
/// exclusive lock, so no other writer comes between them).
fn rename_if_free(from: &Path, to: &Path) -> io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    fs::rename(from, to)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<Exchange> {
    Ok(Exchange::Unsupported)
}

/// Replaces the main file (`paths.target`) with what `write` produces, durably, doing `old`
/// with the current main file. On error the main file is as it was, the backup generations are
/// put back as they were (as far as possible: see [`Rotation::undo`]), and no temp file is left.
pub(crate) fn commit(
    paths: &Paths,
    faults: &Faults,
    old: OldMain,
    mode_if_new: Option<u32>,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let target = &paths.target;
    let main_meta = match fs::metadata(target) {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("reading", target, e)),
    };
    let mode = main_meta
        .as_ref()
        .map(|m| m.mode() & 0o7777)
        .or(mode_if_new);
    let owner = main_meta.as_ref().map(|m| (m.uid(), m.gid()));
    let mut temp = write_temp(paths, faults, mode, owner, write)?;

    if main_meta.is_none() {
        faults
            .check(FaultPoint::Rename)
            .and_then(|()| fs::rename(temp.path(), target))
            .map_err(|e| Error::io("replacing", target, e))?;
        temp.disarm();
        if let Err(e) = faults
            .check(FaultPoint::FsyncDir)
            .and_then(|()| fsync_dir(&paths.dir))
        {
            // There was no file before: leave none, as the caller is told nothing was written.
            let _ = fs::remove_file(target);
            return Err(Error::io("syncing the directory", &paths.dir, e));
        }
        return Ok(());
    }

    let mut rotation = match old {
        OldMain::Rotate { depth } => Some(backups::rotate(paths, depth, faults)?),
        _ => None,
    };
    let replaced = replace_main(paths, faults, &old, mode, owner, temp, rotation.as_mut());
    if let Some(rotation) = rotation {
        match replaced {
            Ok(()) => rotation.finish(),
            Err(_) => rotation.undo(),
        }
    }
    replaced
}

/// Puts `temp` in place of the existing main file and does `old` with the latter.
fn replace_main(
    paths: &Paths,
    faults: &Faults,
    old: &OldMain,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    temp: TempFile,
    rotation: Option<&mut Rotation>,
) -> Result<()> {
    let target = &paths.target;
    faults
        .check(FaultPoint::Rename)
        .map_err(|e| Error::io("replacing", target, e))?;
    let swapped = if faults.has(FaultPoint::NoRenameExchange) {
        Ok(Exchange::Unsupported)
    } else {
        exchange(temp.path(), target)
    };
    match swapped {
        Ok(Exchange::Done) => after_exchange(paths, faults, old, temp),
        Ok(Exchange::Unsupported) => {
            // The copy to `.bak` needs the space of the generation being dropped.
            if let Some(rotation) = rotation {
                rotation.drop_set_aside();
            }
            by_copy(paths, faults, old, mode, owner, temp)
        }
        Err(e) => Err(Error::io("replacing", target, e)),
    }
}

/// The new file is main and `temp`'s name holds the old main: keep it where `old` says, then
/// sync the directory. Any failure swaps the two back.
fn after_exchange(paths: &Paths, faults: &Faults, old: &OldMain, mut temp: TempFile) -> Result<()> {
    let target = &paths.target;
    let keep = match old {
        OldMain::Rotate { .. } => Some((paths.backup(0), FaultPoint::Backup, "backing up")),
        OldMain::Quarantine(dest) => Some((dest.clone(), FaultPoint::Quarantine, "moving aside")),
        OldMain::Discard => None,
    };
    let holder = match keep {
        Some((dest, point, action)) => {
            if let Err(e) = faults
                .check(point)
                .and_then(|()| fs::rename(temp.path(), &dest))
            {
                undo_exchange(&mut temp, target);
                return Err(Error::io(action, target, e));
            }
            dest
        }
        None => temp.path().to_path_buf(),
    };
    if let Err(e) = faults
        .check(FaultPoint::FsyncDir)
        .and_then(|()| fsync_dir(&paths.dir))
    {
        // The caller is told the write failed, so the old file goes back where it was.
        if exchange(&holder, target).is_ok() {
            let _ = fs::remove_file(&holder);
        } else {
            temp.disarm();
        }
        return Err(Error::io("syncing the directory", &paths.dir, e));
    }
    // With `Discard`, the temp guard now removes the old main; otherwise its name is empty.
    Ok(())
}

/// Swaps the old main, still under the temp name, back to main (the guard then removes the new
/// file). If that fails, the guard is disarmed so the old main is not deleted.
fn undo_exchange(temp: &mut TempFile, target: &Path) {
    if !matches!(exchange(&temp.path, target), Ok(Exchange::Done)) {
        temp.disarm();
    }
}

/// Without `RENAME_EXCHANGE`: keep the old main first (a copy for `.bak`, a rename for a corrupt
/// file, a copy under a temp name otherwise), then rename the new file over main. Until the
/// directory is synced the old main can always be put back, so a failure leaves it in place.
fn by_copy(
    paths: &Paths,
    faults: &Faults,
    old: &OldMain,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    mut temp: TempFile,
) -> Result<()> {
    let target = &paths.target;
    // With `Discard`, the copy is dropped (with its guard) once the write has succeeded.
    let mut discarded = None;
    let kept_at = match old {
        OldMain::Rotate { .. } => {
            faults
                .check(FaultPoint::Backup)
                .map_err(|e| Error::io("backing up", target, e))?;
            let mut copy = copy_of_main(paths, faults, mode, owner)?;
            let bak = paths.backup(0);
            fs::rename(copy.path(), &bak).map_err(|e| Error::io("backing up", target, e))?;
            copy.disarm();
            bak
        }
        OldMain::Quarantine(dest) => {
            faults
                .check(FaultPoint::Quarantine)
                .and_then(|()| fs::rename(target, dest))
                .map_err(|e| Error::io("moving aside", target, e))?;
            dest.clone()
        }
        OldMain::Discard => discarded
            .insert(copy_of_main(paths, faults, mode, owner)?)
            .path()
            .to_path_buf(),
    };
    if let Err(e) = fs::rename(temp.path(), target) {
        if let OldMain::Quarantine(dest) = old {
            let _ = fs::rename(dest, target);
        }
        return Err(Error::io("replacing", target, e));
    }
    temp.disarm();
    if let Err(e) = faults
        .check(FaultPoint::FsyncDir)
        .and_then(|()| fsync_dir(&paths.dir))
    {
        // The caller is told the write failed, so the old file goes back where it was.
        let _ = fs::rename(kept_at, target);
        return Err(Error::io("syncing the directory", &paths.dir, e));
    }
    drop(discarded);
    Ok(())
}

/// A copy of the main file beside it, under a temp name (removed on drop unless disarmed).
/// Its errors are reported as backing up the main file, which is what failed.
fn copy_of_main(
    paths: &Paths,
    faults: &Faults,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
) -> Result<TempFile> {
    let target = &paths.target;
    write_temp(paths, faults, mode, owner, &mut |w| {
        io::copy(&mut File::open(target)?, w).map(drop)
    })
    .map_err(|e| match e {
        Error::Io { source, .. } => Error::io("backing up", target, source),
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        let main = OsStr::new("processed.json");
        let name = temp_name(main);
        assert!(name.to_str().unwrap().starts_with(".processed.json.tmp-"));
        assert_eq!(temp_owner(&name, main), Some(std::process::id()));
        for other in [
            "processed.json",
            ".processed.json.tmp-",
            ".processed.json.tmp-12",
            ".processed.json.tmp-12-x",
            ".other.json.tmp-1-2",
            "processed.json.tmp",
        ] {
            assert_eq!(temp_owner(OsStr::new(other), main), None, "{other}");
        }
        assert_eq!(
            temp_owner(OsStr::new(".processed.json.tmp-42-7"), main),
            Some(42)
        );
    }

    #[test]
    fn liveness() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0x7fff_fff0));
        assert!(!process_alive(u32::MAX));
    }
}
