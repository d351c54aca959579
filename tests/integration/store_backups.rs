//! Backup generations: `.bak` newest, then `.bak.1` …; rotation before every write, never a
//! shared inode with the main file, permissions kept, nothing touched in dry run; `generations`
//! and `restore`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use mamfast::store::FaultPoint;
use mamfast::{Error, Outcome, Source, Store, StoreOptions};

use crate::support::*;

#[test]
fn depth_3_after_5_writes_keeps_the_3_previous_generations_in_order() {
    for exchange in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("processed.json");
        let (mut store, _) = store_with(&path, options(3));
        if !exchange {
            store = store.inject_fault(FaultPoint::NoRenameExchange);
        }
        for generation in 1..=5 {
            write_generation(&store, generation).unwrap();
            assert_no_shared_inode(&store);
        }
        assert_eq!(
            names(dir.path()),
            [
                "processed.json",
                "processed.json.bak",
                "processed.json.bak.1",
                "processed.json.bak.2",
                "processed.json.lock",
                "processed.json.log"
            ],
            "exchange: {exchange}"
        );
        assert_eq!(generation_of_file(&path), Some(5));
        assert_eq!(generation_of_file(&store.backup_path(0)), Some(4));
        assert_eq!(generation_of_file(&store.backup_path(1)), Some(3));
        assert_eq!(generation_of_file(&store.backup_path(2)), Some(2));
    }
}

#[test]
fn bak_is_preserved_before_each_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    let (store, _) = store(&path);
    for generation in 1..=4 {
        let previous = fs::read(&path).unwrap();
        write_generation(&store, generation).unwrap();
        // The last-known-good bytes, exactly, as a separate file.
        assert_eq!(fs::read(store.backup_path(0)).unwrap(), previous);
        assert_ne!(inode(&path), inode(&store.backup_path(0)));
    }
}

#[test]
fn depth_0_creates_no_backup_and_leaves_existing_ones_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store_with(&path, options(0));
    write_generation(&store, 1).unwrap();
    write_generation(&store, 2).unwrap();
    assert_eq!(
        names(dir.path()),
        [
            "processed.json",
            "processed.json.lock",
            "processed.json.log"
        ]
    );

    fs::write(store.backup_path(0), fixture("pipeline-written.json")).unwrap();
    write_generation(&store, 3).unwrap();
    assert_eq!(
        fs::read(store.backup_path(0)).unwrap(),
        fixture("pipeline-written.json")
    );
    assert_eq!(generation_of_file(&path), Some(3));
}

#[test]
fn generations_the_policy_no_longer_keeps_go_at_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (deep, _) = store_with(&path, options(5));
    for generation in 1..=6 {
        write_generation(&deep, generation).unwrap();
    }
    let (shallow, _) = store_with(&path, options(2));
    write_generation(&shallow, 7).unwrap();
    assert_eq!(generation_of_file(&shallow.backup_path(0)), Some(6));
    assert_eq!(generation_of_file(&shallow.backup_path(1)), Some(5));
    // The disk is bounded by the policy in effect: the older ones are gone.
    assert_eq!(shallow.generations().iter().filter(|g| g.exists).count(), 3);
}

#[test]
fn main_never_shares_an_inode_with_a_backup() {
    for fault in [None, Some(FaultPoint::NoRenameExchange)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("processed.json");
        let (mut store, _) = store_with(&path, options(4));
        if let Some(fault) = fault {
            store = store.inject_fault(fault);
        }
        for generation in 1..=6 {
            write_generation(&store, generation).unwrap();
            assert_no_shared_inode(&store);
            assert!(fs::metadata(&path).unwrap().len() > 0);
            assert_eq!(
                std::os::unix::fs::MetadataExt::nlink(&fs::metadata(&path).unwrap()),
                1,
                "no hard links"
            );
        }
    }
}

#[test]
fn permission_bits_survive_writes() {
    for fault in [None, Some(FaultPoint::NoRenameExchange)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("processed.json");
        fs::write(&path, fixture("pipeline-written.json")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let (mut store, _) = store(&path);
        if let Some(fault) = fault {
            store = store.inject_fault(fault);
        }
        for generation in 1..=3 {
            write_generation(&store, generation).unwrap();
            assert_eq!(mode(&path), 0o600, "{fault:?}");
            assert_eq!(mode(&store.backup_path(0)), 0o600, "{fault:?}");
        }
    }
}

#[test]
fn a_new_file_gets_default_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    write_generation(&store, 1).unwrap();
    let bits = mode(&path);
    assert_eq!(bits & !0o644, 0, "{bits:o}");
    assert_ne!(bits & 0o600, 0, "{bits:o}");
}

#[test]
fn dry_run_update_changes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    for generation in 1..=3 {
        write_generation(&store, generation).unwrap();
    }
    fs::remove_file(store.lock_path()).unwrap();
    let before = snapshot(dir.path());

    let (dry, _) = store_with(
        &path,
        StoreOptions {
            dry_run: true,
            ..options(3)
        },
    );
    let seen = dry
        .update(|s| {
            s.extra.insert("x_gen".into(), 99.into());
            Ok(Outcome::Changed(s.extra["x_gen"].clone()))
        })
        .unwrap();
    assert_eq!(seen, 99);
    assert_eq!(dry.read().unwrap().extra["x_gen"], 3);
    dry.restore(1).unwrap();
    // Not even the lock file was created.
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn dry_run_in_a_missing_directory_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/processed.json");
    let (dry, _) = store_with(
        &path,
        StoreOptions {
            dry_run: true,
            ..options(3)
        },
    );
    dry.update(|_| Ok(Outcome::Changed(()))).unwrap();
    assert!(!dir.path().join("sub").exists());
}

#[test]
fn only_a_cleanly_loaded_main_becomes_a_backup() {
    // Main corrupt, .bak = 2, .bak.1 = 1: the write recovers from .bak and must not push the
    // restored copy into the generations as well.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    for generation in 1..=3 {
        write_generation(&store, generation).unwrap();
    }
    fs::write(&path, b"{\"version\": 2, \"processed\": {").unwrap();
    write_generation(&store, 4).unwrap();
    assert_eq!(generation_of_file(&path), Some(4));
    assert_eq!(generation_of_file(&store.backup_path(0)), Some(2));
    assert_eq!(generation_of_file(&store.backup_path(1)), Some(1));
    assert!(!store.backup_path(2).exists());
    assert_eq!(corrupt_files(dir.path()).len(), 1);
}

#[test]
fn generations_describe_main_and_every_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    write_generation(&store, 1).unwrap();
    write_generation(&store, 2).unwrap();
    fs::write(store.backup_path(5), b"garbage").unwrap();

    let gens = store.generations();
    let ids: Vec<Option<usize>> = gens.iter().map(|g| g.generation).collect();
    assert_eq!(
        ids,
        [None, Some(0), Some(1), Some(2), Some(3), Some(4), Some(5)]
    );
    assert_eq!(gens[0].path, path);
    assert!(gens[0].exists && gens[0].size.unwrap() > 0 && gens[0].modified.is_some());
    let main = gens[0].summary.as_ref().unwrap();
    assert_eq!((main.version, main.processed, main.failed), (2, 0, 0));
    assert!(gens[1].summary.is_ok());
    assert_eq!(gens[2].summary, Err(mamfast::error::NotLoaded::Missing));
    assert!(!gens[2].exists && gens[2].size.is_none());
    assert!(gens[6].exists);
    assert!(gens[6]
        .summary
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("expected"));
}

#[test]
fn generations_of_a_missing_state_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    let gens = store.generations();
    assert_eq!(gens.len(), 4);
    assert!(gens.iter().all(|g| !g.exists));
    assert!(names(dir.path()).is_empty());
}

#[test]
fn restore_makes_a_backup_the_main_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    for generation in 1..=4 {
        write_generation(&store, generation).unwrap();
    }
    let chosen = fs::read(store.backup_path(1)).unwrap(); // generation 2
    let restored = store.restore(1).unwrap();
    assert_eq!(fs::read(&path).unwrap(), chosen);
    assert_eq!(restored.backup, store.backup_path(1));
    // The main file that was replaced is rejected: kept aside, out of the generations, which
    // stay as they were.
    let mamfast::PreviousMain::Rejected(aside) = &restored.previous_main else {
        panic!("{:?}", restored.previous_main)
    };
    assert_eq!(generation_of_file(aside), Some(4));
    assert!(aside.to_string_lossy().contains("processed.json.rejected-"));
    assert_eq!(generation_of_file(&store.backup_path(0)), Some(3));
    assert_eq!(generation_of_file(&store.backup_path(1)), Some(2));
    assert_eq!(generation_of_file(&store.backup_path(2)), Some(1));
    assert_eq!(store.rejected().len(), 1);
    assert_no_shared_inode(&store);
    assert_eq!(store.read_loaded().unwrap().source, Source::Main);
}

#[test]
fn restore_of_a_missing_generation_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    write_generation(&store, 1).unwrap();
    let before = snapshot(dir.path());
    let err = store.restore(2).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("processed.json.bak.2"), "{err}");
    assert_eq!(snapshot(dir.path()), before);

    let nowhere = Store::new(dir.path().join("no/such/processed.json"), options(3));
    assert_eq!(nowhere.restore(0).unwrap_err().exit_code(), 2);
    assert!(!dir.path().join("no").exists());
}

#[test]
fn restore_of_an_invalid_backup_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    write_generation(&store, 1).unwrap();
    write_generation(&store, 2).unwrap();
    fs::write(store.backup_path(0), b"{\"version\": 2,").unwrap();
    let before = snapshot(dir.path());
    let err = store.restore(0).unwrap_err();
    assert_eq!(err.exit_code(), 65);
    assert!(err.to_string().contains("cannot be restored"), "{err}");
    assert_eq!(snapshot(dir.path()), before);

    fs::write(store.backup_path(0), b"{\"version\": 7}").unwrap();
    let err = store.restore(0).unwrap_err();
    assert!(
        matches!(err, Error::NewerVersion { found: 7, .. }),
        "{err:?}"
    );
}

#[test]
fn restore_over_a_corrupt_main_keeps_the_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, notices) = store(&path);
    write_generation(&store, 1).unwrap();
    write_generation(&store, 2).unwrap();
    fs::write(&path, b"not json").unwrap();
    store.restore(0).unwrap();
    assert_eq!(generation_of_file(&path), Some(1));
    let corrupt = corrupt_files(dir.path());
    assert_eq!(corrupt.len(), 1);
    assert_eq!(fs::read(&corrupt[0]).unwrap(), b"not json");
    // The corrupt file did not become a backup generation.
    assert_eq!(generation_of_file(&store.backup_path(0)), Some(1));
    assert!(!store.backup_path(1).exists());
    assert!(notices
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.to_string().contains("moved it to")));
}
