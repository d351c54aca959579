//! Loading falls back from a corrupt main file to `.bak`, `.bak.1` …, keeps the corrupt bytes as
//! `.corrupt-<UTC time>` and restores the main file; with nothing valid, or a newer version, it
//! fails without touching any file.

use std::fs;
use std::path::Path;
use std::time::Duration;

use mamfast::store::FaultPoint;
use mamfast::{Error, Notice, Source, State, Store, StoreOptions};
use nix::fcntl::{Flock, FlockArg};

use crate::support::*;

fn valid() -> Vec<u8> {
    fixture("pipeline-written.json")
}

fn valid_state() -> State {
    serde_json::from_slice(&valid()).unwrap()
}

/// Corrupt contents of every kind seen in the field.
fn corruptions() -> Vec<(&'static str, Vec<u8>)> {
    let good = valid();
    vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"\x00\xffnot json at all".to_vec()),
        ("wrong shape", b"[1, 2, 3]".to_vec()),
        // A duplicate key is not here: Python's json.load reads it (the last value wins), so
        // it is not corrupt (hardening/parse.rs).
    ]
}

fn setup(dir: &Path, main: &[u8], backups: &[&[u8]]) -> std::path::PathBuf {
    let path = dir.join("processed.json");
    fs::write(&path, main).unwrap();
    for (generation, bytes) in backups.iter().enumerate() {
        let name = match generation {
            0 => "processed.json.bak".to_string(),
            n => format!("processed.json.bak.{n}"),
        };
        fs::write(dir.join(name), bytes).unwrap();
    }
    path
}

#[test]
fn load_tries_bak_if_main_is_corrupt() {
    for (what, bad) in corruptions() {
        let dir = tempfile::tempdir().unwrap();
        let path = setup(dir.path(), &bad, &[&valid()]);
        let (store, notices) = store(&path);

        let loaded = store.read_loaded().unwrap();
        assert_eq!(loaded.state, valid_state(), "{what}");
        assert_eq!(
            loaded.source,
            Source::Backup {
                generation: 0,
                path: store.backup_path(0)
            },
            "{what}"
        );
        // Main restored (a copy, not a link), backup untouched, corrupt bytes kept.
        assert_eq!(fs::read(&path).unwrap(), valid(), "{what}");
        assert_eq!(fs::read(store.backup_path(0)).unwrap(), valid(), "{what}");
        assert_no_shared_inode(&store);
        let corrupt = corrupt_files(dir.path());
        assert_eq!(corrupt.len(), 1, "{what}");
        assert_eq!(fs::read(&corrupt[0]).unwrap(), bad, "{what}");
        let name = corrupt[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let stamp = name.strip_prefix("processed.json.corrupt-").unwrap();
        assert!(
            stamp.len() == 16 && stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
            "{name}"
        );
        let notices = notices.lock().unwrap();
        assert!(
            matches!(&notices[..], [Notice::Recovered { moved_to: Some(m), .. }] if *m == corrupt[0]),
            "{what}: {notices:?}"
        );
        assert!(temp_files(dir.path()).is_empty());
        // Next load is clean.
        assert_eq!(store.read_loaded().unwrap().source, Source::Main);
    }
}

#[test]
fn corrupt_main_and_bak_but_valid_bak_1_recovers_from_bak_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), b"{", &[b"also broken", &valid()]);
    let (store, _) = store(&path);
    let loaded = store.read_loaded().unwrap();
    assert_eq!(
        loaded.source,
        Source::Backup {
            generation: 1,
            path: store.backup_path(1)
        }
    );
    assert_eq!(loaded.state, valid_state());
    assert_eq!(fs::read(&path).unwrap(), valid());
    assert_eq!(fs::read(store.backup_path(0)).unwrap(), b"also broken");
    assert_eq!(corrupt_files(dir.path()).len(), 1);
}

#[test]
fn a_missing_main_is_restored_from_bak() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(dir.path().join("processed.json.bak"), valid()).unwrap();
    let (store, notices) = store(&path);
    assert_eq!(store.read().unwrap(), valid_state());
    assert_eq!(fs::read(&path).unwrap(), valid());
    assert!(corrupt_files(dir.path()).is_empty());
    assert!(matches!(
        &notices.lock().unwrap()[..],
        [Notice::Recovered { moved_to: None, .. }]
    ));
}

#[test]
fn nothing_valid_is_a_corrupt_error_naming_every_file_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), b"{\"version\": 2,", &[b"", b"[]"]);
    // A gap: .bak.2 missing, .bak.3 present and broken.
    fs::write(dir.path().join("processed.json.bak.3"), b"nope").unwrap();
    let before = snapshot_without_lock(dir.path());
    let (store, _) = store(&path);

    for result in [
        store.read().map(drop),
        store.update(|_| Ok(mamfast::Outcome::Changed(()))),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), 65);
        let Error::Corrupt { file, tried } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(file, &path);
        let tried: Vec<_> = tried.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(
            tried,
            [
                path.clone(),
                store.backup_path(0),
                store.backup_path(1),
                store.backup_path(3)
            ]
        );
        assert_eq!(snapshot_without_lock(dir.path()), before);
    }
}

#[test]
fn corrupt_json_produces_helpful_error_with_recovery_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(
        dir.path(),
        b"{\"version\": 2, \"processed\": {",
        &[b"garbage"],
    );
    let (store, _) = store(&path);
    let err = store.read().unwrap_err();
    let text = err.to_string();
    assert_eq!(err.exit_code(), 65);
    for needle in [
        "is corrupt and no valid backup was found",
        &format!("{}: EOF while parsing", path.display()),
        &format!("{}: expected value", store.backup_path(0).display()),
        "Recovery options",
        "never deleted",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn only_backups_and_all_corrupt_is_an_error_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(dir.path().join("processed.json.bak"), b"x").unwrap();
    let (store, _) = store(&path);
    let Error::Corrupt { tried, .. } = store.read().unwrap_err() else {
        panic!()
    };
    assert_eq!(tried[0], (path.clone(), mamfast::error::NotLoaded::Missing));
    assert_eq!(tried.len(), 2);
    assert!(!path.exists());
}

#[test]
fn a_newer_version_is_refused_and_never_touched() {
    let newer = br#"{"version": 3, "processed": {}, "failed": {}, "x_future": true}"#;
    for backups in [vec![], vec![valid()]] {
        let dir = tempfile::tempdir().unwrap();
        let refs: Vec<&[u8]> = backups.iter().map(|b| b.as_slice()).collect();
        let path = setup(dir.path(), newer, &refs);
        let before = snapshot_without_lock(dir.path());
        let (store, _) = store(&path);

        let err = store.read().unwrap_err();
        assert!(
            matches!(
                err,
                Error::NewerVersion {
                    found: 3,
                    supported: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), 65);
        let mut ran = false;
        let err = store
            .update(|_| {
                ran = true;
                Ok(mamfast::Outcome::Changed(()))
            })
            .unwrap_err();
        assert!(!ran);
        assert_eq!(err.exit_code(), 65);
        assert_eq!(fs::read(&path).unwrap(), newer);
        assert!(corrupt_files(dir.path()).is_empty());
        assert_eq!(snapshot_without_lock(dir.path()), before);
    }
}

#[test]
fn dry_run_recovers_in_memory_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), b"{", &[&valid()]);
    let before = snapshot(dir.path());
    let (store, notices) = store_with(
        &path,
        StoreOptions {
            dry_run: true,
            ..options(3)
        },
    );
    assert_eq!(store.read().unwrap(), valid_state());
    let count = store
        .update(|s| Ok(mamfast::Outcome::Changed(s.processed.len())))
        .unwrap();
    assert_eq!(count, valid_state().processed.len());
    assert_eq!(snapshot(dir.path()), before);
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 2);
    assert!(notices[0].to_string().contains("dry run"), "{}", notices[0]);
}

#[test]
fn a_read_that_cannot_repair_still_returns_the_backup() {
    // The repair fails (as on a read-only directory): the read still succeeds.
    for fault in [
        FaultPoint::CreateTemp,
        FaultPoint::Quarantine,
        FaultPoint::FsyncDir,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = setup(dir.path(), b"{", &[&valid()]);
        let notices: Notices = Default::default();
        let sink = notices.clone();
        let store = Store::new(&path, options(3))
            .inject_fault(fault)
            .with_notices(move |n| sink.lock().unwrap().push(n.clone()));

        assert_eq!(store.read().unwrap(), valid_state(), "{fault:?}");
        assert_eq!(fs::read(&path).unwrap(), b"{", "{fault:?}");
        assert!(corrupt_files(dir.path()).is_empty(), "{fault:?}");
        assert!(temp_files(dir.path()).is_empty(), "{fault:?}");
        let notices = notices.lock().unwrap();
        assert!(
            matches!(&notices[..], [Notice::RecoveredInMemory { why, .. }] if why.contains("injected")),
            "{fault:?}: {notices:?}"
        );

        // An update must repair before writing: there the failure is an error.
        let err = store
            .update(|_| Ok(mamfast::Outcome::Unchanged(())))
            .unwrap_err();
        assert_eq!(err.exit_code(), 74, "{fault:?}");
        assert_eq!(fs::read(&path).unwrap(), b"{", "{fault:?}");
        assert!(corrupt_files(dir.path()).is_empty(), "{fault:?}");
    }
}

#[test]
fn recovery_without_rename_exchange_moves_the_corrupt_file_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), b"{", &[&valid()]);
    let store = Store::new(&path, options(3))
        .with_notices(|_| {})
        .inject_fault(FaultPoint::NoRenameExchange);
    assert_eq!(store.read().unwrap(), valid_state());
    assert_eq!(fs::read(&path).unwrap(), valid());
    let corrupt = corrupt_files(dir.path());
    assert_eq!(fs::read(&corrupt[0]).unwrap(), b"{");
    assert_no_shared_inode(&store);

    // And a failing quarantine there leaves the corrupt main where it was.
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), b"{", &[&valid()]);
    let store = Store::new(&path, options(3))
        .with_notices(|_| {})
        .inject_fault(FaultPoint::NoRenameExchange)
        .inject_fault(FaultPoint::Quarantine);
    store.read().unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"{");
    assert!(corrupt_files(dir.path()).is_empty());
}

#[test]
fn a_read_that_cannot_get_the_exclusive_lock_returns_the_backup() {
    // Another reader holds a shared lock: the repair must wait for the exclusive lock, gives
    // up after the timeout, and the read still returns the backup's state.
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), b"{", &[&valid()]);
    let (store, notices) = store_with(
        &path,
        StoreOptions {
            lock_timeout: Duration::from_millis(200),
            ..options(3)
        },
    );
    let lock = fs::File::create(store.lock_path()).unwrap();
    let _reader = Flock::lock(lock, FlockArg::LockShared).unwrap();
    assert_eq!(store.read().unwrap(), valid_state());
    assert_eq!(fs::read(&path).unwrap(), b"{");
    let notices = notices.lock().unwrap();
    assert!(
        matches!(&notices[..], [Notice::RecoveredInMemory { why, .. }] if why.contains("could not lock")),
        "{notices:?}"
    );
}

#[test]
fn a_read_only_directory_still_reads_the_backup() {
    if is_root() {
        eprintln!("skipped: running as root, a read-only directory is writable anyway");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = setup(dir.path(), b"{", &[&valid()]);
    let (store, notices) = store(&path);
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    let result = store.read();
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_eq!(result.unwrap(), valid_state());
    assert_eq!(fs::read(&path).unwrap(), b"{");
    let notices = notices.lock().unwrap();
    assert!(notices
        .iter()
        .any(|n| matches!(n, Notice::RecoveredInMemory { .. })));
}

#[test]
fn temp_files_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(dir.path().join(".processed.json.tmp-1-1"), valid()).unwrap();
    let (store, _) = store(&path);
    let loaded = store.read_loaded().unwrap();
    assert_eq!(loaded.source, Source::Missing);
    assert_eq!(loaded.state, State::default());
}
