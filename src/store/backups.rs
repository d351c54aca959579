//! Backup generations beside the state file (`.bak` newest, then `.bak.1`, `.bak.2` …): which
//! exist, and their rotation before each write. Their names are `names.rs`'s; which of them
//! are kept is `retention.rs`'s.
//!
//! A rotation makes room at `.bak` for the old main file: the generations the retention policy
//! keeps move to `.bak.1`, `.bak.2` … in order (gaps close), the others are set aside and
//! dropped once the write is done. A write that fails undoes its rotation, so the generations
//! are as they were.
//!
//! Killed at any rename, a rotation loses nothing the policy keeps: the generations it drops
//! are set aside first (a later writer removes them, as this one would have), then those it
//! keeps move in an order that never puts one on a name still in use and keeps them in their
//! order at every step; the old main file waits under its held name. The next writer runs the
//! same rotation again (`interrupted::settle`), and the policy, applied to what it kept, keeps
//! the same generations (`retention.rs`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Local};

use super::bounded_io::open_regular;
use super::faults::{FaultPoint, Faults};
use super::names::{generation_of, temp_name};
use super::paths::Paths;
use super::retention::{keep, Kept, Retention};
use super::sys::rename_no_replace;
use crate::error::{Error, Result};

/// Every existing backup generation, oldest last. A FIFO or device under a backup's name is
/// one too (it is reported as not valid, and rotation only renames it); only a directory is
/// not.
pub(crate) fn existing(paths: &Paths) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = fs::read_dir(&paths.dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter_map(|e| generation_of(&e.file_name(), &paths.name).map(|g| (g, e.path())))
        .collect();
    found.sort();
    found
}

/// When `path` was written: its modification time, which a rename keeps (the epoch if it
/// cannot be read: it then counts as the oldest of all).
pub(crate) fn written_at(path: &Path) -> SystemTime {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Why each of `generations` is kept (`None`: it goes at the next rotation), with `incoming`,
/// the old main file about to become `.bak`, counted as the newest when given. Hours and days
/// are the local clock's.
fn judge(
    retention: &Retention,
    incoming: Option<SystemTime>,
    generations: &[(usize, PathBuf)],
) -> Vec<Option<Kept>> {
    let times: Vec<DateTime<Local>> = incoming
        .into_iter()
        .chain(generations.iter().map(|(_, path)| written_at(path)))
        .map(DateTime::<Local>::from)
        .collect();
    let mut kept = keep(&times, retention);
    if incoming.is_some() {
        kept.remove(0);
    }
    kept
}

/// Every existing generation with why the policy keeps it now (`None`: the next write drops
/// it). Right after a rotation, every generation there is kept, for the reason the rotation
/// kept it.
pub(crate) fn reasons(paths: &Paths, retention: &Retention) -> Vec<(usize, PathBuf, Option<Kept>)> {
    let generations = existing(paths);
    let kept = judge(retention, None, &generations);
    generations
        .into_iter()
        .zip(kept)
        .map(|((g, path), kept)| (g, path, kept))
        .collect()
}

/// Makes room for the old main file (written at `incoming`) at `.bak`: the generations the
/// policy keeps move to `.bak.1`, `.bak.2`, … in order, the others are set aside under temp
/// names: dropped by [`Rotation::finish`], put back by [`Rotation::undo`]. It runs after the
/// new main file is in place, so a writer killed meanwhile has committed its write: the next
/// writer completes the rotation and drops what was set aside, as this write would have.
pub(crate) fn rotate(
    paths: &Paths,
    retention: &Retention,
    incoming: SystemTime,
    faults: &Faults,
) -> Result<Rotation> {
    let fail = |e: io::Error| Error::io("rotating the backups of", &paths.target, e);
    faults.check(FaultPoint::Rotate).map_err(fail)?;
    let generations = existing(paths);
    let kept = judge(retention, Some(incoming), &generations);
    let (mut drops, mut down, mut up) = (Vec::new(), Vec::new(), Vec::new());
    let mut slot = 1;
    for ((g, path), kept) in generations.into_iter().zip(kept) {
        match kept {
            None => drops.push(path),
            Some(_) => {
                if slot < g {
                    down.push((path, slot));
                } else if slot > g {
                    up.push((path, slot));
                }
                slot += 1;
            }
        }
    }
    // Generations moving to a lower number go lowest first, those moving up highest first:
    // each name is free when it is taken (its holder has moved, or was set aside), and at
    // every step the kept generations are still in their order.
    up.reverse();
    let mut done = Rotation::default();
    for path in drops {
        let dest = paths.dir.join(temp_name(&paths.name));
        if let Err(e) = fs::rename(&path, &dest) {
            done.undo(paths);
            return Err(fail(e));
        }
        done.set_aside.push(dest.clone());
        done.moves.push((path, dest));
    }
    for (path, to) in down.into_iter().chain(up) {
        let dest = paths.backup(to);
        if let Err(e) = rename_no_replace(&path, &dest) {
            done.undo(paths);
            return Err(fail(e));
        }
        done.moves.push((path, dest));
    }
    Ok(done)
}

/// The renames of a rotation, in the order done; `set_aside` are the temp names of the
/// generations that fall out.
#[derive(Debug, Default)]
#[must_use = "a rotation is finished when the write succeeds and undone when it fails"]
pub(crate) struct Rotation {
    moves: Vec<(PathBuf, PathBuf)>,
    set_aside: Vec<PathBuf>,
}

impl Rotation {
    /// The write succeeded: the generations set aside go.
    pub(crate) fn finish(self) {
        for path in &self.set_aside {
            let _ = drop_generation(path);
        }
    }

    /// The write failed: every generation goes back where it was, newest first, as far as no
    /// name is taken meanwhile (a rename back never replaces a file). A generation set aside
    /// that cannot go back to its name is kept under the first free name after the last
    /// generation: never dropped, as the write it made room for did not happen.
    pub(crate) fn undo(self, paths: &Paths) {
        let mut stuck = false;
        for (from, to) in self.moves.iter().rev() {
            if stuck || rename_no_replace(to, from).is_err() {
                stuck = true;
                if self.set_aside.contains(to) {
                    keep_after_last(paths, to);
                }
            }
        }
    }
}

/// Moves `path` to `.bak.N`, N after every existing generation.
fn keep_after_last(paths: &Paths, path: &std::path::Path) {
    let mut n = existing(paths).last().map_or(1, |(g, _)| g + 1);
    while rename_no_replace(path, &paths.backup(n)).is_err() && n < 10_000 {
        n += 1;
    }
}

/// Deletes a generation that falls out of the kept ones. The name goes at once; the blocks of a
/// large file are freed when its last handle closes, which a helper thread does, so that the
/// write does not wait for it (about 10 ms per 60 MB on ext4).
fn drop_generation(path: &std::path::Path) -> io::Result<()> {
    const LARGE: u64 = 8 << 20;
    // Opened without blocking: a backup may be a link to a FIFO, whose open would hang.
    let handle = open_regular(path, u64::MAX)
        .ok()
        .filter(|(_, meta)| meta.len() >= LARGE)
        .map(|(file, _)| file);
    fs::remove_file(path)?;
    if let Some(handle) = handle {
        let _ = std::thread::Builder::new()
            .name("mamfast-unlink".into())
            .spawn(move || drop(handle));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn paths_in(dir: &Path) -> Paths {
        Paths::resolve(&dir.join("processed.json")).unwrap()
    }

    fn last(n: usize) -> Retention {
        Retention {
            last: n,
            ..Retention::default()
        }
    }

    /// Writes `text` to `path`, last modified `hours` hours before `base`.
    fn write_at(path: &Path, text: &str, base: SystemTime, hours: u64) {
        fs::write(path, text).unwrap();
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(base - Duration::from_secs(hours * 3600))
            .unwrap();
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn text(path: PathBuf) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn rotation_shifts_closes_gaps_and_drops_what_the_policy_does_not_keep() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        let now = SystemTime::now();
        // A gap at .bak (crash between rotation and the rename of the old main).
        fs::write(paths.backup(1), "one").unwrap();
        fs::write(paths.backup(2), "two").unwrap();
        fs::write(paths.backup(5), "five").unwrap();
        rotate(&paths, &last(3), now, &Faults::default())
            .unwrap()
            .finish();
        // The incoming file and the two newest are the last 3: `five` goes.
        assert!(!paths.backup(0).exists());
        assert_eq!(text(paths.backup(1)), "one");
        assert_eq!(text(paths.backup(2)), "two");
        assert_eq!(files(dir.path()).len(), 2, "{:?}", files(dir.path()));
        fs::write(paths.backup(0), "zero").unwrap();
        rotate(&paths, &last(3), now, &Faults::default())
            .unwrap()
            .finish();
        assert!(!paths.backup(0).exists());
        assert_eq!(text(paths.backup(1)), "zero");
        assert_eq!(text(paths.backup(2)), "one");
        assert_eq!(files(dir.path()).len(), 2, "the dropped one is gone");
    }

    #[test]
    fn generations_moving_down_never_land_on_one_not_yet_moved() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        // Gaps below: .bak.3 and .bak.4 move down to .bak.2 and .bak.3, .bak up to .bak.1.
        for (g, t) in [(0, "zero"), (3, "three"), (4, "four")] {
            fs::write(paths.backup(g), t).unwrap();
        }
        rotate(&paths, &last(9), SystemTime::now(), &Faults::default())
            .unwrap()
            .finish();
        assert_eq!(text(paths.backup(1)), "zero");
        assert_eq!(text(paths.backup(2)), "three");
        assert_eq!(text(paths.backup(3)), "four");
        assert_eq!(files(dir.path()).len(), 3);
    }

    #[test]
    fn periodic_generations_survive_a_burst_of_writes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        let now = SystemTime::now();
        let policy = Retention {
            last: 2,
            hourly: 0,
            daily: 3,
        };
        // Yesterday's and the day before's states, then a burst now.
        write_at(&paths.backup(0), "yesterday", now, 24);
        write_at(&paths.backup(1), "two days ago", now, 48);
        for i in 0..6 {
            if paths.backup(0).exists() {
                rotate(&paths, &policy, now, &Faults::default())
                    .unwrap()
                    .finish();
            }
            write_at(&paths.backup(0), &format!("burst {i}"), now, 0);
        }
        let kept: Vec<String> = existing(&paths).into_iter().map(|(_, p)| text(p)).collect();
        assert_eq!(kept, ["burst 5", "burst 4", "yesterday", "two days ago"]);
        let why: Vec<Option<Kept>> = reasons(&paths, &policy)
            .into_iter()
            .map(|(_, _, k)| k)
            .collect();
        assert!(
            matches!(
                why[..],
                [
                    Some(Kept::Last(2)),
                    Some(Kept::Last(2)),
                    Some(Kept::Daily(_)),
                    Some(Kept::Daily(_))
                ]
            ),
            "{why:?}"
        );
    }

    #[test]
    fn an_undone_rotation_puts_every_generation_back() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        for (g, text) in [(0, "zero"), (1, "one"), (2, "two")] {
            fs::write(paths.backup(g), text).unwrap();
        }
        let before = files(dir.path());
        let rotation = rotate(&paths, &last(3), SystemTime::now(), &Faults::default()).unwrap();
        assert!(!paths.backup(0).exists());
        assert_eq!(text(paths.backup(2)), "one");
        rotation.undo(&paths);
        assert_eq!(files(dir.path()), before);
        for (g, t) in [(0, "zero"), (1, "one"), (2, "two")] {
            assert_eq!(text(paths.backup(g)), t);
        }
    }

    #[test]
    fn an_undo_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        for (g, text) in [(0, "zero"), (1, "one"), (2, "two")] {
            fs::write(paths.backup(g), text).unwrap();
        }
        let rotation = rotate(&paths, &last(3), SystemTime::now(), &Faults::default()).unwrap();
        // The old main file reached `.bak` before the write failed.
        fs::write(paths.backup(0), "main").unwrap();
        rotation.undo(&paths);
        // Left rotated, and the generation set aside kept after the last one: the write it
        // made room for did not happen, so it is no generation too many.
        assert_eq!(text(paths.backup(0)), "main");
        assert_eq!(text(paths.backup(1)), "zero");
        assert_eq!(text(paths.backup(2)), "one");
        assert_eq!(text(paths.backup(3)), "two");
        assert_eq!(files(dir.path()).len(), 4);
    }
}
