//! Finding entries: `state list` filters (combined, in table and `--json` output alike),
//! `--counts`, and `state show --infohash`, end to end through the binary. A read never
//! changes the file.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::cli::{mamfast, run, Run};
use crate::support::*;

const NOW: &str = "2026-11-26T10:00:00+00:00";

/// A directory holding `bytes` as the state file.
fn setup(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn list(path: &std::path::Path, args: &[&str]) -> Run {
    let mut cmd = mamfast(path);
    cmd.env("MAMFAST_NOW", NOW);
    run(cmd, args)
}

/// The IDs of one kind in a `state list --json` document, sorted.
fn ids(run: &Run, kind: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(&run.stdout).expect("state list --json is JSON");
    match &doc[kind] {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Null => Vec::new(),
        other => panic!("{kind}: {other}"),
    }
}

#[test]
fn filters_combine_in_json_and_keep_the_file() {
    let bytes = fixture("v2-unknown-fields.json");
    let (dir, path) = setup(&bytes);
    let before = snapshot_without_lock(dir.path());

    let run = list(&path, &["state", "list", "--json", "--status", "staged"]);
    run.expect_code(0, "--status");
    assert_eq!(ids(&run, "processed"), ["B000000000", "B000000003"]);
    assert_eq!(ids(&run, "failed"), Vec::<String>::new());
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        doc.get("failed").is_none(),
        "a processed-only filter leaves failed out"
    );
    assert_eq!(doc["stats"]["processed"], 6, "stats count the whole state");

    let run = list(
        &path,
        &[
            "state",
            "list",
            "--json",
            "--status",
            "staged",
            "--status",
            "discovered",
            "--grep",
            "BOOK 5",
        ],
    );
    assert_eq!(ids(&run, "processed"), ["B000000005"]);

    // Failed at 2025-04-28, 2025-02-22 and 2025-01-16; 600 days before now is 2025-04-05.
    let run = list(
        &path,
        &[
            "state",
            "list",
            "--json",
            "--error-type",
            "networkerror",
            "--older-than",
            "600d",
        ],
    );
    run.expect_code(0, "--error-type --older-than");
    assert_eq!(ids(&run, "failed"), ["B100000001", "B100000002"]);
    let run = list(&path, &["state", "list", "--json", "--newer-than", "600"]);
    assert_eq!(ids(&run, "failed"), ["B100000000"]);
    assert_eq!(ids(&run, "processed"), Vec::<String>::new());

    // --limit picks the most recent of what matched; all is every one.
    let run = list(
        &path,
        &[
            "state", "list", "--json", "--failed", "--limit", "1", "--grep", "failed",
        ],
    );
    assert_eq!(ids(&run, "failed"), ["B100000000"]);
    let all = list(&path, &["state", "list", "--json", "--limit", "all"]);
    let unlimited = list(&path, &["state", "list", "--json"]);
    assert_eq!(all.stdout, unlimited.stdout);

    assert_eq!(
        snapshot_without_lock(dir.path()),
        before,
        "a read changed nothing"
    );
}

#[test]
fn the_table_header_counts_what_matched() {
    let (_dir, path) = setup(&fixture("v2-unknown-fields.json"));
    let run = list(
        &path,
        &["state", "list", "--stage", "staged", "--limit", "2"],
    );
    run.expect_code(0, "--stage");
    assert!(
        run.stdout.starts_with("Matching: 6 of 6 processed\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Processed (most recent 2 of 6):"),
        "{}",
        run.stdout
    );
    let run = list(
        &path,
        &["state", "list", "--counts", "--json", "--status", "staged"],
    );
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"processed": {
            "by_status": [{"count": 2, "status": "STAGED"}], "matched": 2, "total": 6}})
    );
}

#[test]
fn outside_text_is_escaped_in_tables_and_exact_in_json() {
    let state = r#"{"failed": {}, "processed": {"B0EVIL0001": {"author": "A\u001b[31m", "title": "Evil\u202eTitle", "status": "COMPLETE", "processed_at": "2026-11-26T09:00:00+00:00"}}, "version": 2}"#;
    let (_dir, path) = setup(state.as_bytes());
    let run = list(&path, &["state", "list", "--grep", "evil"]);
    run.expect_code(0, "--grep");
    assert!(run.stdout.contains("B0EVIL0001"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{202e}'),
        "{:?}",
        run.stdout
    );
    let run = list(&path, &["state", "list", "--json", "--grep", "evil"]);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["processed"]["B0EVIL0001"]["title"], "Evil\u{202e}Title");
}

#[test]
fn show_finds_every_release_with_an_infohash() {
    let state = r#"{"failed": {"B0TWO00002": {"error": "x"}}, "processed": {
        "B0ONE00001": {"infohash": "ABCDEF", "status": "COMPLETE"},
        "B0TWO00002": {"infohash": "abcdef", "status": "UPLOADED"},
        "B0OTHER003": {"infohash": "123456"}}, "version": 2}"#;
    let (_dir, path) = setup(state.as_bytes());
    let run = list(&path, &["state", "show", "--json", "--infohash", "AbCdEf"]);
    run.expect_code(0, "show --infohash --json");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let found: Vec<&str> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["B0ONE00001", "B0TWO00002"]);
    assert_eq!(
        doc[1]["failed"]["error"], "x",
        "the failed entry of the same ID is shown too"
    );
    let run = list(&path, &["state", "show", "--infohash", "abcdef"]);
    assert!(
        run.stdout.contains("B0ONE00001 (processed)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("B0TWO00002 (failed)"), "{}", run.stdout);
}

#[test]
fn bad_filter_values_are_usage_errors() {
    let (dir, path) = setup(&fixture("pipeline-written.json"));
    let before = snapshot_without_lock(dir.path());
    for (args, says) in [
        (&["--status", "nope"][..], "unknown status"),
        (&["--stage", "nope"], "unknown stage"),
        (&["--older-than", "nope"], "is not a duration"),
        (&["--newer-than=-1d"], "is not a duration"),
        (&["--limit", "0x"], "\"all\""),
        (
            &["--infohash", "x", "--error-type", "y"],
            "no entry can match both",
        ),
        (&["--processed", "--error-type", "y"], "drop one of them"),
    ] {
        let mut full = vec!["state", "list"];
        full.extend_from_slice(args);
        let run = list(&path, &full);
        run.expect_code(2, &format!("{args:?}"));
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert_eq!(snapshot_without_lock(dir.path()), before);
}
