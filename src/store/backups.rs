//! Backup generations beside the state file (`.bak` newest, then `.bak.1` … `.bak.N-1`): which
//! exist, and their rotation before each write. Their names are `names.rs`'s.
//!
//! Rotation closes gaps (a generation missing after a crash does not push the others out
//! early) and leaves alone generations beyond the configured depth, as depth 0 leaves all. A
//! write that fails undoes its rotation, so the generations are as they were.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::bounded_io::open_regular;
use super::faults::{FaultPoint, Faults};
use super::names::{generation_of, temp_name};
use super::paths::Paths;
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

/// The generations a rotation keeps below `depth`, oldest first: each with the generation it
/// moves to (`None`: it falls out). `vacate` (a generation about to become the main file, by
/// `restore`) leaves its slot without taking another: it is not dropped as a distinct state.
pub(crate) fn plan(
    paths: &Paths,
    depth: usize,
    vacate: Option<usize>,
) -> Vec<(usize, PathBuf, Option<usize>)> {
    let kept: Vec<(usize, PathBuf)> = existing(paths)
        .into_iter()
        .filter(|(g, _)| *g < depth && Some(*g) != vacate)
        .collect();
    kept.into_iter()
        .enumerate()
        .map(|(i, (g, path))| (g, path, Some(i + 1).filter(|to| *to < depth)))
        .rev()
        .collect()
}

/// The generations a write with this rotation lets fall out (for `restore` to say so).
pub(crate) fn falling_out(paths: &Paths, depth: usize, vacate: Option<usize>) -> Vec<PathBuf> {
    plan(paths, depth, vacate)
        .into_iter()
        .filter(|(_, _, to)| to.is_none())
        .map(|(_, path, _)| path)
        .collect()
}

/// Makes room for the old main file at `.bak`: the existing generations below `depth` move to
/// `.bak.1`, `.bak.2`, … in order, and those that would land at `depth` or beyond (and the
/// `vacate`d one) are set aside under temp names: dropped by [`Rotation::finish`], put back by
/// [`Rotation::undo`]. It runs after the new main file is in place, so a writer killed
/// meanwhile has committed its write: the next writer completes the rotation and drops what
/// was set aside, as this write would have.
pub(crate) fn rotate(
    paths: &Paths,
    depth: usize,
    vacate: Option<usize>,
    faults: &Faults,
) -> Result<Rotation> {
    let fail = |e: io::Error| Error::io("rotating the backups of", &paths.target, e);
    faults.check(FaultPoint::Rotate).map_err(fail)?;
    let mut steps: Vec<(PathBuf, Option<usize>)> = plan(paths, depth, vacate)
        .into_iter()
        .filter(|(g, _, to)| Some(*g) != *to)
        .map(|(_, path, to)| (path, to))
        .collect();
    if let Some(g) = vacate.filter(|g| *g < depth) {
        let path = paths.backup(g);
        if path.exists() {
            steps.insert(0, (path, None));
        }
    }
    let mut done = Rotation::default();
    // Set-asides first, then oldest first: no rename lands on a generation not yet moved.
    steps.sort_by_key(|(_, to)| to.map_or(0, |to| usize::MAX - to));
    for (path, to) in steps {
        let dest = match to {
            Some(to) => paths.backup(to),
            None => paths.dir.join(temp_name(&paths.name)),
        };
        if let Err(e) = fs::rename(&path, &dest) {
            done.undo(paths);
            return Err(fail(e));
        }
        if to.is_none() {
            done.set_aside.push(dest.clone());
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

    fn paths_in(dir: &std::path::Path) -> Paths {
        Paths::resolve(&dir.join("processed.json")).unwrap()
    }

    #[test]
    fn rotation_shifts_closes_gaps_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        // A gap at .bak (crash between rotation and the rename of the old main).
        fs::write(paths.backup(1), "one").unwrap();
        fs::write(paths.backup(2), "two").unwrap();
        fs::write(paths.backup(5), "beyond").unwrap();
        rotate(&paths, 3, None, &Faults::default())
            .unwrap()
            .finish();
        assert!(!paths.backup(0).exists());
        assert_eq!(fs::read_to_string(paths.backup(1)).unwrap(), "one");
        assert_eq!(fs::read_to_string(paths.backup(2)).unwrap(), "two");
        // Nothing to drop yet; now fill .bak and rotate again.
        fs::write(paths.backup(0), "zero").unwrap();
        rotate(&paths, 3, None, &Faults::default())
            .unwrap()
            .finish();
        assert!(!paths.backup(0).exists());
        assert_eq!(fs::read_to_string(paths.backup(1)).unwrap(), "zero");
        assert_eq!(fs::read_to_string(paths.backup(2)).unwrap(), "one");
        assert!(!paths.backup(3).exists());
        assert_eq!(fs::read_to_string(paths.backup(5)).unwrap(), "beyond");
        assert_eq!(files(dir.path()).len(), 3, "the dropped one is gone");
    }

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_undone_rotation_puts_every_generation_back() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        for (g, text) in [(0, "zero"), (1, "one"), (2, "two")] {
            fs::write(paths.backup(g), text).unwrap();
        }
        let before = files(dir.path());
        let rotation = rotate(&paths, 3, None, &Faults::default()).unwrap();
        assert!(!paths.backup(0).exists());
        assert_eq!(fs::read_to_string(paths.backup(2)).unwrap(), "one");
        rotation.undo(&paths);
        assert_eq!(files(dir.path()), before);
        for (g, text) in [(0, "zero"), (1, "one"), (2, "two")] {
            assert_eq!(fs::read_to_string(paths.backup(g)).unwrap(), text);
        }
    }

    #[test]
    fn an_undo_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        for (g, text) in [(0, "zero"), (1, "one"), (2, "two")] {
            fs::write(paths.backup(g), text).unwrap();
        }
        let rotation = rotate(&paths, 3, None, &Faults::default()).unwrap();
        // The old main file reached `.bak` before the write failed.
        fs::write(paths.backup(0), "main").unwrap();
        rotation.undo(&paths);
        // Left rotated, and the generation set aside kept after the last one: the write it
        // made room for did not happen, so it is no generation too many.
        assert_eq!(fs::read_to_string(paths.backup(0)).unwrap(), "main");
        assert_eq!(fs::read_to_string(paths.backup(1)).unwrap(), "zero");
        assert_eq!(fs::read_to_string(paths.backup(2)).unwrap(), "one");
        assert_eq!(fs::read_to_string(paths.backup(3)).unwrap(), "two");
        assert_eq!(files(dir.path()).len(), 4);
    }

    #[test]
    fn a_vacated_generation_leaves_its_slot_and_nothing_older_falls_out() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        for (g, text) in [(0, "zero"), (1, "one"), (2, "two")] {
            fs::write(paths.backup(g), text).unwrap();
        }
        assert_eq!(falling_out(&paths, 3, None), [paths.backup(2)]);
        assert!(falling_out(&paths, 3, Some(1)).is_empty());
        // Beyond the depth, it is not in the rotation: the oldest kept one falls out.
        assert_eq!(falling_out(&paths, 3, Some(5)), [paths.backup(2)]);
        let rotation = rotate(&paths, 3, Some(1), &Faults::default()).unwrap();
        assert!(!paths.backup(0).exists());
        assert_eq!(fs::read_to_string(paths.backup(1)).unwrap(), "zero");
        assert_eq!(fs::read_to_string(paths.backup(2)).unwrap(), "two");
        rotation.undo(&paths);
        for (g, text) in [(0, "zero"), (1, "one"), (2, "two")] {
            assert_eq!(fs::read_to_string(paths.backup(g)).unwrap(), text);
        }
        rotate(&paths, 3, Some(1), &Faults::default())
            .unwrap()
            .finish();
        assert_eq!(files(dir.path()).len(), 2, "only the vacated one went");
    }
}
