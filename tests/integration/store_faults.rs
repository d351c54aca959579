//! A write that fails at any step leaves the previous file intact, loadable and byte-identical,
//! with no temp file behind, and reports `Error::Io` (exit 74).

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mamfast::store::FaultPoint;
use mamfast::{Error, Outcome, Source, State, Store};

use crate::support::*;

/// Every step of a plain update that can fail.
const FAILING: [FaultPoint; 8] = [
    FaultPoint::CreateTemp,
    FaultPoint::Write,
    FaultPoint::SetPermissions,
    FaultPoint::FsyncFile,
    FaultPoint::Rotate,
    FaultPoint::Rename,
    FaultPoint::Backup,
    FaultPoint::FsyncDir,
];

/// A directory holding generations 1..=3 (main = 3, `.bak` = 2, `.bak.1` = 1), mode 0o640.
fn three_generations(dir: &Path, depth: usize) -> std::path::PathBuf {
    let path = dir.join("processed.json");
    let (store, _) = store_with(&path, options(depth));
    for generation in 1..=3 {
        write_generation(&store, generation).unwrap();
    }
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    path
}

fn assert_failed_cleanly(path: &Path, result: mamfast::Result<()>, what: &str) {
    let dir = path.parent().unwrap();
    let err = result.expect_err(what);
    assert!(matches!(err, Error::Io { .. }), "{what}: {err:?}");
    assert_eq!(err.exit_code(), 74, "{what}");
    assert!(temp_files(dir).is_empty(), "{what}: {:?}", temp_files(dir));
    let (fresh, _) = store(path);
    let loaded = fresh.read_loaded().unwrap();
    assert_eq!(loaded.source, Source::Main, "{what}");
    assert_eq!(loaded.state.extra["x_gen"], 3, "{what}");
    assert_eq!(mode(path), 0o640, "{what}");
    assert_no_shared_inode(&fresh);
}

fn check_every_point(depth: usize, extra: Option<FaultPoint>) {
    for point in FAILING {
        let what = format!("{point:?} (depth {depth}, also {extra:?})");
        let dir = tempfile::tempdir().unwrap();
        let path = three_generations(dir.path(), depth);
        let before = fs::read(&path).unwrap();
        let mut store = Store::new(&path, options(depth))
            .with_notices(|_| {})
            .inject_fault(point);
        if let Some(extra) = extra {
            store = store.inject_fault(extra);
        }
        let result = write_generation(&store, 4);
        if depth == 0 && matches!(point, FaultPoint::Rotate | FaultPoint::Backup) {
            // Without backups these steps do not happen.
            result.unwrap();
            assert_eq!(
                names(dir.path()),
                [
                    "processed.json",
                    "processed.json.lock",
                    "processed.json.log"
                ]
            );
            continue;
        }
        assert_failed_cleanly(&path, result, &what);
        assert_eq!(fs::read(&path).unwrap(), before, "{what}");
        // The fault is gone: the next write goes through and keeps generation 3 as `.bak`.
        let (healthy, _) = store_with(&path, options(depth));
        write_generation(&healthy, 4).unwrap();
        assert_eq!(generation_of_file(&path), Some(4), "{what}");
        if depth > 0 {
            assert_eq!(
                generation_of_file(&healthy.backup_path(0)),
                Some(3),
                "{what}"
            );
        }
        assert_no_shared_inode(&healthy);
    }
}

#[test]
fn a_failure_at_each_step_keeps_the_previous_file() {
    check_every_point(3, None);
}

#[test]
fn a_failure_at_each_step_keeps_the_previous_file_without_backups() {
    check_every_point(0, None);
}

#[test]
fn a_failure_at_each_step_keeps_the_previous_file_without_rename_exchange() {
    check_every_point(3, Some(FaultPoint::NoRenameExchange));
}

#[test]
fn a_failure_at_each_step_keeps_the_previous_file_without_backups_or_rename_exchange() {
    check_every_point(0, Some(FaultPoint::NoRenameExchange));
}

#[test]
fn a_failed_first_write_leaves_no_file() {
    for point in [
        FaultPoint::CreateTemp,
        FaultPoint::Write,
        FaultPoint::FsyncFile,
        FaultPoint::Rename,
        FaultPoint::FsyncDir,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("processed.json");
        let store = Store::new(&path, options(3)).inject_fault(point);
        let err = write_generation(&store, 1).unwrap_err();
        assert_eq!(err.exit_code(), 74, "{point:?}");
        assert!(!path.exists(), "{point:?}");
        assert!(temp_files(dir.path()).is_empty(), "{point:?}");
    }
}

#[test]
fn interrupted_write_never_leaves_partial_json() {
    // A write cut short after 100 bytes: the partial temp file is removed, main is untouched.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    let store = Store::new(&path, options(3)).inject_fault(FaultPoint::Write);
    let err = write_generation(&store, 1).unwrap_err();
    assert!(err.to_string().contains("injected fault at write"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), fixture("pipeline-written.json"));
    assert!(temp_files(dir.path()).is_empty());
    assert!(!store.backup_path(0).exists());

    // And while writes go on, the main file is always complete JSON to an unlocked reader.
    let (writer, _) = store_with(&path, options(2));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, done) = (path.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                let bytes = fs::read(&path).expect("main file always exists");
                serde_json::from_slice::<State>(&bytes).expect("main file always complete");
                reads += 1;
            }
            reads
        })
    };
    for generation in 0..60 {
        writer
            .update(|s| {
                // A state large enough that a torn write would show.
                for i in 0..50 {
                    s.extra
                        .insert(format!("x_pad_{i}"), "x".repeat(200 + generation).into());
                }
                Ok(Outcome::Changed(()))
            })
            .unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}

#[test]
fn the_injected_error_names_the_step_and_says_the_state_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = three_generations(dir.path(), 3);
    let store = Store::new(&path, options(3)).inject_fault(FaultPoint::FsyncDir);
    let text = write_generation(&store, 4).unwrap_err().to_string();
    assert!(text.contains("syncing the directory"), "{text}");
    assert!(text.contains("previous state is intact"), "{text}");
}
