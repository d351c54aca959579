//! The Python tool's own files, loaded and written back: the bytes must not change.

use std::path::PathBuf;

use mamfast::state::migrate::migrate;
use mamfast::store::format::{parse_state_lazy, to_python_json, write_state};
use mamfast::State;

fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    for name in [
        "pipeline-written.json",
        "v1-small.json",
        "v1-small.migrated.json",
        "v2-unknown-fields.json",
    ] {
        let bytes = fixture(name);
        let state: State = serde_json::from_slice(&bytes).unwrap();
        let written = to_python_json(&state);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            String::from_utf8(bytes.clone()).unwrap(),
            "{name}"
        );
        // As an update loads it: every entry kept as the Python tool's own text.
        let lazy = parse_state_lazy(bytes.clone()).unwrap();
        let entries = lazy.processed.len() + lazy.failed.len();
        assert!(entries > 0, "{name}");
        assert_eq!(
            lazy.processed.unparsed() + lazy.failed.unparsed(),
            entries,
            "{name}"
        );
        let mut written = Vec::new();
        write_state(&mut written, &lazy).unwrap();
        assert!(
            written == bytes,
            "{name}: written differently after a lazy load"
        );
        assert_eq!(lazy, state, "{name}");
    }
}

#[test]
fn v1_small_migrates_to_the_python_tools_bytes() {
    let mut state: State = serde_json::from_slice(&fixture("v1-small.json")).unwrap();
    assert!(migrate(&mut state).unwrap());
    let written = String::from_utf8(to_python_json(&state)).unwrap();
    let expected = String::from_utf8(fixture("v1-small.migrated.json")).unwrap();
    assert_eq!(written, expected);
}

#[test]
fn unknown_fields_survive_a_change() {
    let mut state: State = serde_json::from_slice(&fixture("v2-unknown-fields.json")).unwrap();
    state.processed.get_mut("B000000000").unwrap().title = Some("changed".into());
    let written: serde_json::Value = serde_json::from_slice(&to_python_json(&state)).unwrap();
    assert_eq!(written["x_owner"], "kept");
    assert_eq!(written["processed"]["B000000000"]["mam_torrent_id"], 0);
    assert_eq!(written["processed"]["B000000000"]["title"], "changed");
}
