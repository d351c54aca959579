//! Durable replacement of the state file: temp file in the same directory → write → `fsync` →
//! permissions → swap into place → `fsync` of the directory, with the old file kept on failure.
//!
//! The swap is `renameat2(RENAME_EXCHANGE)` (Linux): the temp name then holds the old main file,
//! which becomes `.bak` by one more rename, with no copy and no moment without a main file.
//! Where the file system lacks it (some network file systems), the old main gets a second name
//! (a hard link, else a rename) before the new file is renamed over it: no copy either, so no
//! room on the disk is needed beyond the new file. Between the swap and its last rename the old
//! main file is under a held name that a later writer finishes moving, never deletes.
//! Main and backup are always distinct inodes (no hard links): the Python tool's
//! `shutil.copy2(main, bak)` refuses to copy a file onto itself.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::backups::{self, Rotation};
use super::faults::{FaultPoint, Faults, Faulty};
use super::names::{held_name, temp_name, Dest};
use super::paths::Paths;
use super::retention::Retention;
use super::sys::{exchange, fsync_dir, rename_no_replace, start_writeback, Exchange};
use crate::error::{Error, Result};

/// What happens to the current main file when a new one replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OldMain {
    /// It loaded cleanly: it becomes `.bak` after a rotation that keeps what this policy keeps.
    Rotate(Retention),
    /// It is corrupt: it is moved to this `.corrupt-…` name, never deleted.
    Quarantine(PathBuf),
    /// `restore` replaces it: it is moved to this `.rejected-…` name, outside the generations
    /// recovery walks, and never deleted.
    Reject(PathBuf),
    /// Nothing worth keeping (a copy of a backup, or a policy that keeps no generation).
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

/// Writes a complete, synced temp file beside the main file. `mode` is the permission bits it
/// must end with (`None`: the default for new files, 0o644 less the umask); `owner` is kept
/// when the process may do so (root writing a user's file).
pub(crate) fn write_temp(
    paths: &Paths,
    faults: &Faults,
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    name: &dyn Fn() -> OsString,
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
    let mut path = paths.dir.join(name());
    let mut attempts = 0;
    let file = loop {
        match create(&path) {
            // A leftover of an earlier process that had our pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
                path = paths.dir.join(name());
            }
            other => {
                break other
                    .map_err(|e| Error::io("creating a temporary file beside", &paths.target, e))?
            }
        }
    };
    let temp = TempFile { path, armed: true };

    let written = {
        let mut out = BufWriter::new(Faulty::new(Writeback::new(&file), faults));
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

/// Replaces the main file (`paths.target`) with what `write` produces, durably, doing `old`
/// with the current main file. On error the main file is as it was, the backup generations are
/// put back as they were (as far as possible: see [`Rotation::undo`]), and no temp file is left.
///
/// The old main file is kept under a held name (see [`held_name`]) from the moment the new file
/// replaces it until it reaches its place, so a writer killed at any step leaves it to the next
/// writer to put there ([`settle`](super::interrupted::settle)), never to delete.
pub(crate) fn commit(
    paths: &Paths,
    faults: &Faults,
    old: OldMain,
    mode_if_new: Option<u32>,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let target = &paths.target;
    let main_meta = match fs::metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return create_main(paths, faults, mode_if_new, write)
        }
        Err(e) => return Err(Error::io("reading", target, e)),
    };
    let mode = Some(main_meta.mode() & 0o7777);
    let owner = Some((main_meta.uid(), main_meta.gid()));
    let (ino, dest) = (main_meta.ino(), old.dest());
    let name = || held_name(&paths.name, ino, dest);
    let temp = write_temp(paths, faults, mode, owner, &name, write)?;
    faults
        .check(FaultPoint::Rename)
        .map_err(|e| Error::io("replacing", target, e))?;
    let held = swap_in(paths, faults, temp, &name)?;
    // From here the new file is the main file and `held` the old one.
    let mut rotation = None;
    let kept = keep_old_main(paths, faults, &old, &held, &mut rotation);
    let synced = kept.and_then(|at| {
        match faults
            .check(FaultPoint::FsyncDir)
            .and_then(|()| fsync_dir(&paths.dir))
        {
            Ok(()) => Ok(at),
            Err(e) => Err((Some(at), Error::io("syncing the directory", &paths.dir, e))),
        }
    });
    match synced {
        Ok(at) => {
            if let Some(rotation) = rotation {
                rotation.finish();
            }
            if old.dest() == Dest::Gone {
                let _ = fs::remove_file(at);
            }
            Ok(())
        }
        Err((at, e)) => {
            // The caller is told the write failed, so the old file goes back where it was.
            put_back(paths, at.as_deref(), &held, rotation);
            Err(e)
        }
    }
}

/// There is no main file: the new one is renamed into place.
fn create_main(
    paths: &Paths,
    faults: &Faults,
    mode: Option<u32>,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let target = &paths.target;
    let mut temp = write_temp(paths, faults, mode, None, &|| temp_name(&paths.name), write)?;
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
    Ok(())
}

impl OldMain {
    fn dest(&self) -> Dest {
        match self {
            OldMain::Rotate(_) => Dest::Bak,
            OldMain::Quarantine(_) => Dest::Corrupt,
            OldMain::Reject(_) => Dest::Rejected,
            OldMain::Discard => Dest::Gone,
        }
    }
}

/// Puts `temp` in place of the main file and returns the held name that now holds the old
/// main file. With `RENAME_EXCHANGE` that is one atomic swap. Without it (some network file
/// systems), the old main file gets a second name first (a hard link, so that there is always
/// a main file; where links are not supported, a rename), then the new file is renamed over
/// main. Nothing is copied, so this needs no room on the disk. On error nothing has changed.
fn swap_in(
    paths: &Paths,
    faults: &Faults,
    mut temp: TempFile,
    name: &dyn Fn() -> OsString,
) -> Result<PathBuf> {
    let target = &paths.target;
    let swapped = if faults.has(FaultPoint::NoRenameExchange) {
        Ok(Exchange::Unsupported)
    } else {
        exchange(temp.path(), target)
    };
    match swapped {
        Ok(Exchange::Done) => {
            temp.disarm();
            return Ok(temp.path.clone());
        }
        Ok(Exchange::Unsupported) => {}
        Err(e) => return Err(Error::io("replacing", target, e)),
    }
    let held = paths.dir.join(name());
    let linked = fs::hard_link(target, &held).is_ok();
    if !linked {
        fs::rename(target, &held).map_err(|e| Error::io("replacing", target, e))?;
    }
    if let Err(e) = fs::rename(temp.path(), target) {
        if linked {
            let _ = fs::remove_file(&held);
        } else {
            let _ = rename_no_replace(&held, target);
        }
        return Err(Error::io("replacing", target, e));
    }
    temp.disarm();
    Ok(held)
}

/// Takes the old main file, at `held`, where `old` says: `.bak` after a rotation, or a
/// `.corrupt-…` or `.rejected-…` name; with `Discard` it stays at `held` until the write is done. Returns where
/// it is. On error it is back at `held` and the rotation is undone, with the error and `None`.
fn keep_old_main(
    paths: &Paths,
    faults: &Faults,
    old: &OldMain,
    held: &Path,
    rotation: &mut Option<Rotation>,
) -> std::result::Result<PathBuf, (Option<PathBuf>, Error)> {
    let target = &paths.target;
    let (dest, point, action) = match old {
        OldMain::Rotate(retention) => {
            let rotated = backups::rotate(paths, retention, backups::written_at(held), faults);
            *rotation = Some(rotated.map_err(|e| (None, e))?);
            (paths.backup(0), FaultPoint::Backup, "backing up")
        }
        OldMain::Quarantine(dest) => (dest.clone(), FaultPoint::Quarantine, "moving aside"),
        OldMain::Reject(dest) => (dest.clone(), FaultPoint::Quarantine, "keeping aside"),
        OldMain::Discard => return Ok(held.to_path_buf()),
    };
    match faults
        .check(point)
        .and_then(|()| rename_no_replace(held, &dest))
    {
        Ok(()) => Ok(dest),
        Err(e) => Err((None, Error::io(action, target, e))),
    }
}

/// Undoes a write after the swap: the old main file (at `at`, else still at `held`) goes back
/// to the held name, the generations go back, and then it replaces the new main file. In that
/// order, a writer killed meanwhile leaves a state the next writer reads as this write done.
fn put_back(paths: &Paths, at: Option<&Path>, held: &Path, rotation: Option<Rotation>) {
    if let Some(at) = at.filter(|at| *at != held) {
        if rename_no_replace(at, held).is_err() {
            // It stays where it is, a kept generation or corrupt file; the new file stays main.
            if let Some(rotation) = rotation {
                rotation.finish();
            }
            return;
        }
    }
    if let Some(rotation) = rotation {
        rotation.undo(paths);
    }
    let _ = fs::rename(held, &paths.target);
}
