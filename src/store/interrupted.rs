//! Finishing what a writer that was killed left behind, before the next write: a temp file of
//! a new version that never replaced the main file is removed; an old main file held between
//! two renames (see [`held_name`](super::names::held_name)) is put where that write was taking
//! it, never deleted. Called only under the exclusive lock: every writer holds it while its
//! temp files exist.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::backups;
use super::faults::Faults;
use super::names::{corrupt_path, interrupted_path, rejected_path, temp_owner, Dest, TempOwner};
use super::notice::Notice;
use super::paths::Paths;
use super::retention::Retention;
use super::sys::{fsync_dir, process_alive, rename_no_replace};

/// Settles what writers that died (their pid is gone) left: a temp file of a new version that
/// never replaced the main file is removed; an old main file held between two renames is put
/// where the write was taking it (see [`finish_held`]). Call only under the exclusive lock:
/// every writer holds it while its temp files exist. `retention` is the policy of a rotation
/// the interrupted write had not finished.
pub(crate) fn settle(paths: &Paths, retention: &Retention, notify: &dyn Fn(&Notice)) {
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
                finish_held(paths, retention, &path, ino, dest, notify)
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

/// Whether `path` was last written no earlier than `than` (modification times: a rename keeps
/// them, and `shutil.copy2` copies its source's). A tie counts: file times are as coarse as the
/// kernel's clock tick, and keeping the held file aside loses nothing, where putting it above
/// a newer `.bak` would.
fn not_older(path: &Path, than: &Path) -> bool {
    let modified = |p: &Path| fs::symlink_metadata(p).and_then(|m| m.modified());
    matches!((modified(path), modified(than)), (Ok(a), Ok(b)) if a >= b)
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
    retention: &Retention,
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
            corrupt_path(paths, chrono::Utc::now()),
            "the corrupt main file, moved aside",
        ),
        (Some(_), Dest::Rejected) => (
            rejected_path(paths, chrono::Utc::now()),
            "the main file a restore replaced, kept aside as rejected",
        ),
        // A backup as new as the held file was written since (the Python tool's
        // `shutil.copy2`, or writers that took the killed one's pid for alive): above it, the
        // held file would be taken for the newest generation, and a recovery would roll back.
        (Some(_), Dest::Bak) if not_older(&paths.backup(0), held) => (
            interrupted_path(paths, chrono::Utc::now()),
            "an earlier state than the newest backup, kept beside it",
        ),
        (Some(_), Dest::Bak) => {
            let bak = paths.backup(0);
            if bak.exists() {
                // The rotation the killed write began, done again: the policy keeps what it
                // kept then (see `backups.rs`). A policy that keeps nothing still keeps this
                // one: the write that took it out of the main file meant it to be `.bak`.
                let retention = Retention {
                    last: retention.last.max(1),
                    ..*retention
                };
                let incoming = backups::written_at(held);
                match backups::rotate(paths, &retention, incoming, &Faults::default()) {
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
