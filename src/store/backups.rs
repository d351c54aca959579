//! Backup generations beside the state file (`.bak` newest, then `.bak.1` … `.bak.N-1`), their
//! rotation before each write, and the `.corrupt-<UTC time>` names corrupt files are moved to.
//!
//! Rotation closes gaps (a generation missing after a crash does not push the others out
//! early) and leaves alone generations beyond the configured depth, as depth 0 leaves all.

use std::fs;
use std::io;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{FaultPoint, Faults, Paths};
use crate::error::{Error, Result};

/// The generation a file name stands for: `processed.json.bak` → 0, `processed.json.bak.2` → 2.
pub(crate) fn generation_of(file_name: &str, main_name: &str) -> Option<usize> {
    let rest = file_name.strip_prefix(main_name)?.strip_prefix(".bak")?;
    if rest.is_empty() {
        return Some(0);
    }
    let n = rest.strip_prefix('.')?;
    // `.bak.0` and `.bak.01` are not names we write: leave them out.
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Every existing backup generation, oldest last.
pub(crate) fn existing(paths: &Paths) -> Vec<(usize, PathBuf)> {
    let Some(main_name) = paths.name.to_str() else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(&paths.dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .filter_map(|e| {
            let name = e.file_name();
            generation_of(name.to_str()?, main_name).map(|g| (g, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Makes room for the old main file at `.bak`: the existing generations below `depth` move to
/// `.bak.1`, `.bak.2`, … in order, and those that would land at `depth` or beyond are dropped.
pub(crate) fn rotate(paths: &Paths, depth: usize, faults: &Faults) -> Result<()> {
    let fail = |e: io::Error| Error::io("rotating the backups of", &paths.target, e);
    faults.check(FaultPoint::Rotate).map_err(fail)?;
    let kept: Vec<(usize, PathBuf)> = existing(paths)
        .into_iter()
        .filter(|(g, _)| *g < depth)
        .collect();
    // Oldest first, so that no rename lands on a generation that has not moved yet.
    for (i, (generation, path)) in kept.iter().enumerate().rev() {
        let to = i + 1;
        if to >= depth {
            drop_generation(path).map_err(fail)?;
        } else if *generation != to {
            fs::rename(path, paths.backup(to)).map_err(fail)?;
        }
    }
    Ok(())
}

/// Deletes a generation that falls out of the kept ones. The name goes at once; the blocks of a
/// large file are freed when its last handle closes, which a helper thread does, so that the
/// write does not wait for it (about 10 ms per 60 MB on ext4).
fn drop_generation(path: &std::path::Path) -> io::Result<()> {
    const LARGE: u64 = 8 << 20;
    let handle = fs::File::open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.len() >= LARGE));
    fs::remove_file(path)?;
    if let Some(handle) = handle {
        let _ = std::thread::Builder::new()
            .name("mamfast-unlink".into())
            .spawn(move || drop(handle));
    }
    Ok(())
}

/// A fresh name to move a corrupt main file to: `processed.json.corrupt-20261126T101530Z`, with
/// `-2`, `-3`, … added if that name is taken. Call under the exclusive lock.
pub(crate) fn corrupt_path(paths: &Paths, now: DateTime<Utc>) -> PathBuf {
    let mut base = paths.name.clone();
    base.push(format!(".corrupt-{}", now.format("%Y%m%dT%H%M%SZ")));
    let mut candidate = paths.dir.join(&base);
    let mut n = 2;
    while fs::symlink_metadata(&candidate).is_ok() {
        let mut name = base.clone();
        name.push(format!("-{n}"));
        candidate = paths.dir.join(name);
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_names() {
        let main = "processed.json";
        assert_eq!(generation_of("processed.json.bak", main), Some(0));
        assert_eq!(generation_of("processed.json.bak.1", main), Some(1));
        assert_eq!(generation_of("processed.json.bak.12", main), Some(12));
        for other in [
            "processed.json",
            "processed.json.bak.",
            "processed.json.bak.0",
            "processed.json.bak.01",
            "processed.json.bak.x",
            "processed.json.bakx",
            "processed.json.corrupt-20261126T101530Z",
            "other.json.bak",
        ] {
            assert_eq!(generation_of(other, main), None, "{other}");
        }
    }

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
        rotate(&paths, 3, &Faults::default()).unwrap();
        assert!(!paths.backup(0).exists());
        assert_eq!(fs::read_to_string(paths.backup(1)).unwrap(), "one");
        assert_eq!(fs::read_to_string(paths.backup(2)).unwrap(), "two");
        // Nothing to drop yet; now fill .bak and rotate again.
        fs::write(paths.backup(0), "zero").unwrap();
        rotate(&paths, 3, &Faults::default()).unwrap();
        assert!(!paths.backup(0).exists());
        assert_eq!(fs::read_to_string(paths.backup(1)).unwrap(), "zero");
        assert_eq!(fs::read_to_string(paths.backup(2)).unwrap(), "one");
        assert!(!paths.backup(3).exists());
        assert_eq!(fs::read_to_string(paths.backup(5)).unwrap(), "beyond");
    }

    #[test]
    fn corrupt_names_never_clash() {
        let dir = tempfile::tempdir().unwrap();
        let paths = paths_in(dir.path());
        let now = DateTime::parse_from_rfc3339("2026-11-26T10:15:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let first = corrupt_path(&paths, now);
        assert!(first.ends_with("processed.json.corrupt-20261126T101530Z"));
        fs::write(&first, "x").unwrap();
        let second = corrupt_path(&paths, now);
        assert!(second.ends_with("processed.json.corrupt-20261126T101530Z-2"));
    }
}
