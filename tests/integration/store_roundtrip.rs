//! The Python tool's files, loaded and written back through `Store`: the bytes must not change
//! (a v1 file becomes exactly what the Python tool writes after migrating it).

use std::fs;

use mamfast::{Outcome, Source, State};

use crate::support::*;

#[test]
fn every_fixture_is_written_back_byte_for_byte() {
    for name in FIXTURES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("processed.json");
        let original = fixture(name);
        fs::write(&path, &original).unwrap();
        let (store, notices) = store(&path);

        let loaded = store.read_loaded().unwrap();
        assert_eq!(loaded.source, Source::Main, "{name}");
        store
            .update(|_| Ok(Outcome::Changed(())))
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let expected = if name == "v1-small.json" {
            fixture("v1-small.migrated.json")
        } else {
            original.clone()
        };
        assert_eq!(
            String::from_utf8(fs::read(&path).unwrap()).unwrap(),
            String::from_utf8(expected).unwrap(),
            "{name}"
        );
        // The previous bytes, untouched, are the backup.
        assert_eq!(fs::read(store.backup_path(0)).unwrap(), original, "{name}");
        assert!(notices.lock().unwrap().is_empty(), "{name}");
    }
}

#[test]
fn v1_small_written_through_the_store_becomes_the_migrated_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("v1-small.json")).unwrap();
    let (store, _) = store(&path);

    let loaded = store.read_loaded().unwrap();
    assert_eq!(loaded.migrated_from, Some(1));
    assert_eq!(loaded.state.version, 2);
    // Reading migrates in memory only.
    assert_eq!(fs::read(&path).unwrap(), fixture("v1-small.json"));

    store.update(|_| Ok(Outcome::Changed(()))).unwrap();
    assert_eq!(fs::read(&path).unwrap(), fixture("v1-small.migrated.json"));
    assert_eq!(store.read_loaded().unwrap().migrated_from, None);
}

#[test]
fn an_unchanged_outcome_writes_nothing_even_after_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("v1-small.json")).unwrap();
    let (store, _) = store(&path);
    let before = snapshot_without_lock(dir.path());

    let value = store
        .update(|state| Ok(Outcome::Unchanged(state.failed.len())))
        .unwrap();
    assert!(value > 0);
    assert_eq!(snapshot_without_lock(dir.path()), before);
}

#[test]
fn a_changed_state_is_written_in_the_python_byte_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("v2-unknown-fields.json")).unwrap();
    let (store, _) = store(&path);
    store
        .update(|s| {
            let entry = s.processed.get_mut("B000000000").unwrap();
            entry.title = Some("changed".into());
            Ok(Outcome::Changed(()))
        })
        .unwrap();
    let bytes = fs::read(&path).unwrap();
    let state: State = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(mamfast::store::format::to_python_json(&state), bytes);
    assert_eq!(state.extra["x_owner"], "kept");
    assert!(!bytes.ends_with(b"\n"));
}

#[test]
fn update_parses_only_what_it_looks_at_and_update_all_parses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let original = fixture("pipeline-written.json");
    fs::write(&path, &original).unwrap();
    let (store, _) = store(&path);

    let (entries, unparsed) = store
        .update(|state| {
            let first = state.failed.keys().next().cloned().unwrap();
            state.failed.get_mut(&first).unwrap().retry_count = Some(99);
            let entries = state.processed.len() + state.failed.len();
            let unparsed = state.processed.unparsed() + state.failed.unparsed();
            Ok(Outcome::Changed((entries, unparsed)))
        })
        .unwrap();
    assert_eq!(unparsed, entries - 1, "only the changed entry is parsed");
    let changed = fs::read(&path).unwrap();
    let mut expected: State = serde_json::from_slice(&original).unwrap();
    let first = expected.failed.keys().next().cloned().unwrap();
    expected.failed.get_mut(&first).unwrap().retry_count = Some(99);
    assert!(changed == mamfast::store::format::to_python_json(&expected));

    let unparsed = store
        .update_all(|state| {
            Ok(Outcome::Unchanged(
                state.processed.unparsed() + state.failed.unparsed(),
            ))
        })
        .unwrap();
    assert_eq!(unparsed, 0);
    assert!(fs::read(&path).unwrap() == changed);
}
