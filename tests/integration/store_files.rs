//! Where the files are: a symlinked state file, a missing directory, stale temp files.

use std::fs;
use std::os::unix::fs::symlink;

use mamfast::{Notice, Outcome, Source, State};

use crate::support::*;

#[test]
fn a_symlinked_state_file_stays_a_symlink_and_its_target_is_written() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    let target = dir.path().join("real/processed.json");
    fs::write(&target, fixture("pipeline-written.json")).unwrap();
    let link = dir.path().join("processed.json");
    symlink("real/processed.json", &link).unwrap();
    let (store, _) = store(&link);

    for generation in 1..=2 {
        write_generation(&store, generation).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_link(&link).unwrap(),
            std::path::Path::new("real/processed.json")
        );
        assert_eq!(generation_of_file(&target), Some(generation));
    }
    // Backups beside the target (renames stay on its file system); the lock beside the link,
    // and the one every name of the file leads to beside the target.
    assert_eq!(
        store.backup_path(0),
        dir.path().join("real/processed.json.bak")
    );
    assert_eq!(generation_of_file(&store.backup_path(0)), Some(1));
    assert_eq!(
        fs::read(store.backup_path(1)).unwrap(),
        fixture("pipeline-written.json")
    );
    assert_eq!(store.lock_path(), dir.path().join("processed.json.lock"));
    assert!(store.lock_path().exists());
    assert!(dir.path().join("real/processed.json.lock").exists());
    assert_eq!(store.read().unwrap().extra["x_gen"], 2);

    // Recovery through the link: the link stays, the target is repaired.
    fs::write(&target, b"{").unwrap();
    assert_eq!(store.read().unwrap().extra["x_gen"], 1);
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(generation_of_file(&target), Some(1));
    assert_eq!(corrupt_files(&dir.path().join("real")).len(), 1);
}

#[test]
fn a_dangling_symlink_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("processed.json");
    symlink("state/processed.json", &link).unwrap();
    let (store, _) = store(&link);
    assert_eq!(store.read_loaded().unwrap().source, Source::Missing);
    write_generation(&store, 1).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        generation_of_file(&dir.path().join("state/processed.json")),
        Some(1)
    );
}

#[test]
fn a_missing_directory_reads_as_empty_and_is_created_by_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/processed.json");
    let (store, notices) = store(&path);
    let loaded = store.read_loaded().unwrap();
    assert_eq!(loaded.source, Source::Missing);
    assert_eq!(loaded.state, State::default());
    assert!(!dir.path().join("a").exists());
    assert!(store.generations().iter().all(|g| !g.exists));
    assert!(!dir.path().join("a").exists());

    // A write does not create the directory (a mistyped path must be noticed: exit 74)…
    let err = write_generation(&store, 1).unwrap_err();
    assert_eq!(err.exit_code(), 74, "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!dir.path().join("a").exists());
    // … unless the store may create it (the built-in default path).
    let store = store.creating_dir(true);
    write_generation(&store, 1).unwrap();
    assert_eq!(generation_of_file(&path), Some(1));
    assert_eq!(
        names(&dir.path().join("a/b")),
        [
            "processed.json",
            "processed.json.lock",
            "processed.json.log"
        ]
    );
    // The read, then the write, said the state file did not exist yet.
    assert_eq!(
        *notices.lock().unwrap(),
        [
            Notice::StateMissing(path.clone()),
            Notice::StateMissing(path)
        ]
    );
}

#[test]
fn a_missing_file_reads_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store(&dir.path().join("processed.json"));
    let loaded = store.read_loaded().unwrap();
    assert_eq!(loaded.source, Source::Missing);
    assert_eq!(loaded.migrated_from, None);
    // An unchanged update of a missing file creates no state file.
    store.update(|_| Ok(Outcome::Unchanged(()))).unwrap();
    assert!(!dir.path().join("processed.json").exists());
}

#[test]
fn stale_temp_files_of_dead_writers_are_removed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, notices) = store(&path);
    write_generation(&store, 1).unwrap();
    // A writer that died (no such pid), one still running (pid 1), and files not ours.
    let dead = dir.path().join(".processed.json.tmp-2147483600-0");
    let alive = dir.path().join(".processed.json.tmp-1-0");
    let foreign = dir.path().join("processed.json.tmp");
    for file in [&dead, &alive, &foreign] {
        fs::write(file, b"{\"partial").unwrap();
    }
    store.read().unwrap();
    assert!(dead.exists(), "a reader removes nothing");

    write_generation(&store, 2).unwrap();
    assert!(!dead.exists());
    assert!(alive.exists() && foreign.exists());
    // The first write said the file did not exist yet; the second removed the dead one's.
    assert_eq!(
        &notices.lock().unwrap()[..],
        [
            Notice::StateMissing(path.clone()),
            Notice::StaleTempRemoved(dead.clone())
        ]
    );
    assert!(notices.lock().unwrap()[1]
        .to_string()
        .contains("interrupted write"));
}
