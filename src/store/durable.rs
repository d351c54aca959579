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
    /// `vacate`: a generation that leaves its slot without taking another (the one `restore`
    /// makes the main file: it is not kept twice, and no older one falls out for it).
    Rotate { depth: usize, vacate: Option<usize> },
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

/// Where the old main file goes once the new one is in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    /// `.bak`, after the rotation.
    Bak,
    /// A `.corrupt-<UTC time>` name.
    Corrupt,
    /// Nowhere: it is removed.
    Gone,
}

impl Dest {
    const ALL: [Dest; 3] = [Dest::Bak, Dest::Corrupt, Dest::Gone];

    fn tag(self) -> &'static str {
        match self {
            Dest::Bak => "bak",
            Dest::Corrupt => "corrupt",
            Dest::Gone => "gone",
        }
    }
}

/// `.processed.json.tmp-<pid>-<n>.was-<inode>.<dest>`: the name that holds the new file until
/// it replaces the main file (inode `<inode>`), and the old main file after. Which of the two
/// it holds is told by its inode, so a later writer never mistakes an old main file, kept
/// between two renames by a writer that was killed, for a stale temp file.
fn held_name(main_name: &OsStr, main_ino: u64, dest: Dest) -> OsString {
    let mut name = temp_name(main_name);
    name.push(format!(".was-{main_ino}.{}", dest.tag()));
    name
}

/// What a temp name of ours says: the writer's pid, and for a held name the old main file's
/// inode and where it was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TempOwner {
    pub(crate) pid: u32,
    held: Option<(u64, Dest)>,
}

/// Whether `file_name` starts as a temp name of ours for `main_name` does (whatever follows):
/// no other file may be created under such a name, since a later writer may remove it.
pub(crate) fn looks_like_temp(file_name: &OsStr, main_name: &OsStr) -> bool {
    let mut prefix = OsString::from(".");
    prefix.push(main_name);
    prefix.push(".tmp-");
    file_name
        .as_encoded_bytes()
        .starts_with(prefix.as_encoded_bytes())
}

/// The owner of a temp or held name of ours for `main_name`, if `file_name` is one.
pub(crate) fn temp_owner(file_name: &OsStr, main_name: &OsStr) -> Option<TempOwner> {
    let file_name = file_name.to_str()?;
    let rest = file_name
        .strip_prefix('.')?
        .strip_prefix(main_name.to_str()?)?
        .strip_prefix(".tmp-")?;
    let (pid, rest) = rest.split_once('-')?;
    let (n, held) = match rest.split_once(".was-") {
        None => (rest, None),
        Some((n, held)) => {
            let (ino, tag) = held.split_once('.')?;
            let dest = Dest::ALL.into_iter().find(|d| d.tag() == tag)?;
            (n, Some((digits(ino)?.parse().ok()?, dest)))
        }
    };
    digits(n)?;
    Some(TempOwner {
        pid: digits(pid)?.parse().ok()?,
        held,
    })
}

fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// Settles what writers that died (their pid is gone) left: a temp file of a new version that
/// never replaced the main file is removed; an old main file held between two renames is put
/// where the write was taking it (see [`finish_held`]). Call only under the exclusive lock:
/// every writer holds it while its temp files exist. `depth` is the backup depth, for a
/// rotation the interrupted write had not finished.
pub(crate) fn settle_interrupted(paths: &Paths, depth: usize, notify: &dyn Fn(&Notice)) {
    let Ok(entries) = fs::read_dir(&paths.dir) else {
        return;
    };
    let mut left: Vec<(PathBuf, TempOwner)> = entries
        .flatten()
        .filter_map(|e| Some((e.path(), temp_owner(&e.file_name(), &paths.name)?)))
        .filter(|(_, owner)| !process_alive(owner.pid))
        .collect();
    // Plain temp files first: a rotation that finishes a held file must not meet them.
    left.sort_by_key(|(_, owner)| owner.held.is_some());
    for (path, owner) in left {
        match owner.held {
            Some((ino, dest)) if is_inode(&path, ino) => {
                finish_held(paths, depth, &path, ino, dest, notify)
            }
            // A new version that never replaced the main file, or a generation set aside by
            // a rotation (which runs only once the new main file is in place).
            _ => {
                if fs::remove_file(&path).is_ok() {
                    notify(&Notice::StaleTempRemoved(path));
                }
            }
        }
    }
}

fn is_inode(path: &Path, ino: u64) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.ino() == ino)
}

/// `held` is the old main file of a write that was killed. If the main file is still it (a
/// hard link made before the new file went in), the name goes; if there is no main file (moved
/// away before the new file went in), it goes back to main; else the new main file is in place
/// and `held` goes where the write was taking it. Nothing is deleted that is not also the main
/// file; what cannot be moved is kept, and said so.
fn finish_held(
    paths: &Paths,
    depth: usize,
    held: &Path,
    ino: u64,
    dest: Dest,
    notify: &dyn Fn(&Notice),
) {
    let main = fs::symlink_metadata(&paths.target).ok();
    if main.as_ref().is_some_and(|m| m.ino() == ino) {
        if fs::remove_file(held).is_ok() {
            notify(&Notice::StaleTempRemoved(held.to_path_buf()));
        }
        return;
    }
    let finished = |to: PathBuf, what: &str| Notice::InterruptedWriteFinished {
        held: held.to_path_buf(),
        what: what.to_string(),
        moved_to: to,
    };
    let kept = |why: String| Notice::InterruptedWriteKept {
        held: held.to_path_buf(),
        why,
    };
    let (to, what) = match (main, dest) {
        (None, _) => (paths.target.clone(), "the main file, back in its place"),
        (Some(_), Dest::Gone) => {
            if fs::remove_file(held).is_ok() {
                notify(&Notice::StaleTempRemoved(held.to_path_buf()));
            }
            return;
        }
        (Some(_), Dest::Corrupt) => (
            backups::corrupt_path(paths, chrono::Utc::now()),
            "the corrupt main file, moved aside",
        ),
        (Some(_), Dest::Bak) => {
            let bak = paths.backup(0);
            if bak.exists() {
                match backups::rotate(paths, depth.max(1), None, &Faults::default()) {
                    Ok(rotation) => rotation.finish(),
                    Err(e) => return notify(&kept(e.to_string())),
                }
            }
            (bak, "the previous main file, now the newest backup")
        }
    };
    match rename_no_replace(held, &to) {
        Ok(()) => {
            let _ = fsync_dir(&paths.dir);
            notify(&finished(to, what));
        }
        Err(e) => notify(&kept(format!("cannot move it to {}: {e}", to.display()))),
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
///
/// The old main file is kept under a held name (see [`held_name`]) from the moment the new file
/// replaces it until it reaches its place, so a writer killed at any step leaves it to the next
/// writer to put there ([`settle_interrupted`]), never to delete.
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
            OldMain::Rotate { .. } => Dest::Bak,
            OldMain::Quarantine(_) => Dest::Corrupt,
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
/// `.corrupt-…` name; with `Discard` it stays at `held` until the write is done. Returns where
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
        OldMain::Rotate { depth, vacate } => {
            let rotated = backups::rotate(paths, *depth, *vacate, faults);
            *rotation = Some(rotated.map_err(|e| (None, e))?);
            (paths.backup(0), FaultPoint::Backup, "backing up")
        }
        OldMain::Quarantine(dest) => (dest.clone(), FaultPoint::Quarantine, "moving aside"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        let main = OsStr::new("processed.json");
        let name = temp_name(main);
        assert!(name.to_str().unwrap().starts_with(".processed.json.tmp-"));
        let pid = |name: &str| temp_owner(OsStr::new(name), main).map(|o| o.pid);
        assert_eq!(pid(name.to_str().unwrap()), Some(std::process::id()));
        let held = held_name(main, 77, Dest::Corrupt);
        assert_eq!(
            temp_owner(&held, main).and_then(|o| o.held),
            Some((77, Dest::Corrupt))
        );
        assert!(looks_like_temp(&held, main) && looks_like_temp(&name, main));
        for other in [
            "processed.json",
            ".processed.json.tmp-",
            ".processed.json.tmp-12",
            ".processed.json.tmp-12-x",
            ".other.json.tmp-1-2",
            "processed.json.tmp",
            ".processed.json.tmp-1-2.was-3",
            ".processed.json.tmp-1-2.was-x.bak",
            ".processed.json.tmp-1-2.was-3.other",
            ".processed.json.tmp-1-2.bak",
        ] {
            assert_eq!(temp_owner(OsStr::new(other), main), None, "{other}");
        }
        assert_eq!(pid(".processed.json.tmp-42-7"), Some(42));
        assert_eq!(pid(".processed.json.tmp-42-7.was-9.gone"), Some(42));
    }

    #[test]
    fn liveness() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0x7fff_fff0));
        assert!(!process_alive(u32::MAX));
    }
}
