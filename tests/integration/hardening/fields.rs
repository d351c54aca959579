//! Fields as the Python tool stores and reads them (items 4, 11 and 15 of the hardening work):
//! an empty path is no path, a trailing slash does not make a file missing, a path that is not
//! UTF-8 is refused instead of being stored altered, and a retry count at its largest value
//! stays there instead of wrapping to 0.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::support::cli::{mamfast, mamfast_run, run};
use crate::support::read_json;

fn write_state(path: &Path, processed: serde_json::Value, failed: serde_json::Value) {
    let state = serde_json::json!({"version": 2, "processed": processed, "failed": failed});
    fs::write(path, mamfast::store::format::to_python_json(&state)).unwrap();
}

/// An entry whose `torrent_path` is `""` has no torrent path for the Python tool
/// (`if path_str and not Path(path_str).exists()`): prune keeps it.
#[test]
fn an_empty_stored_path_is_no_path_and_prune_keeps_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    write_state(
        &state,
        serde_json::json!({"B0EMPTY001": {"status": "UPLOADED", "torrent_path": "", "staging_dir": ""}}),
        serde_json::json!({}),
    );
    let prune = mamfast_run(&state, ["state", "prune", "--json"]);
    prune.expect_code(0, "prune");
    let report: serde_json::Value = serde_json::from_str(&prune.stdout).unwrap();
    assert_eq!(report["stale"], serde_json::json!([]), "{prune:#?}");
    assert!(read_json(&state)["processed"]["B0EMPTY001"].is_object());
}

/// `--torrent-path /x/book.torrent/` is stored as `/x/book.torrent`, as `str(Path(…))` is; and
/// an entry written with the slash (by an older mamfast) still finds its file.
#[test]
fn a_trailing_slash_is_dropped_and_never_makes_a_file_missing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    let torrent = dir.path().join("book.torrent");
    fs::write(&torrent, b"d8:announce0:e").unwrap();
    let staging = dir.path().join("staging");
    fs::create_dir(&staging).unwrap();
    let with_slash = |p: &Path| format!("{}/", p.display());

    mamfast_run(
        &state,
        [
            "state",
            "checkpoint",
            "B0SLASH001",
            "torrent",
            "--staging-dir",
            &format!("{}//./", staging.display()),
            "--torrent-path",
            &with_slash(&torrent),
        ],
    )
    .expect_code(0, "checkpoint");
    let entry = &read_json(&state)["processed"]["B0SLASH001"];
    assert_eq!(entry["torrent_path"], torrent.to_str().unwrap());
    assert_eq!(entry["staging_dir"], staging.to_str().unwrap());

    // As an older mamfast stored it.
    write_state(
        &state,
        serde_json::json!({"B0SLASH001": {
            "status": "TORRENT_CREATED",
            "staging_dir": with_slash(&staging),
            "torrent_path": with_slash(&torrent),
            "checkpoints": {"torrent_at": "2026-11-26T10:00:00+00:00"},
        }}),
        serde_json::json!({}),
    );
    mamfast_run(&state, ["state", "should-skip", "B0SLASH001", "torrent"])
        .expect_code(0, "should-skip: the torrent file exists");
    let prune = mamfast_run(&state, ["state", "prune", "--json"]);
    prune.expect_code(0, "prune");
    let report: serde_json::Value = serde_json::from_str(&prune.stdout).unwrap();
    assert_eq!(report["stale"], serde_json::json!([]), "{prune:#?}");
    assert!(read_json(&state)["processed"]["B0SLASH001"].is_object());
}

/// A relative path is made absolute against the current directory and spelled as Python's
/// `str(Path(p).absolute())`.
#[test]
fn a_relative_path_is_stored_absolute_in_the_python_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    let mut cmd = mamfast(&state);
    cmd.current_dir(dir.path());
    run(
        cmd,
        [
            "state",
            "checkpoint",
            "B0REL00001",
            "staged",
            "--staging-dir",
            "./st//a/",
        ],
    )
    .expect_code(0, "checkpoint");
    let stored = read_json(&state)["processed"]["B0REL00001"]["staging_dir"].clone();
    let cwd = dir.path().canonicalize().unwrap();
    assert!(
        stored == format!("{}/st/a", cwd.display())
            || stored == format!("{}/st/a", dir.path().display()),
        "{stored}"
    );
}

/// A path that is not UTF-8 is refused (exit 2) and nothing is written; before, it was stored
/// with U+FFFD, naming a path that does not exist.
#[test]
fn a_path_that_is_not_utf8_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    let odd = dir.path().join(OsStr::from_bytes(b"st\xffdir"));
    fs::create_dir(&odd).unwrap();
    for (args, option) in [
        (
            vec![
                "state",
                "checkpoint",
                "B0UTF80001",
                "staged",
                "--staging-dir",
            ],
            "--staging-dir",
        ),
        (
            vec!["state", "mark-processed", "B0UTF80001", "--torrent-path"],
            "--torrent-path",
        ),
        (
            vec![
                "state",
                "mark-failed",
                "B0UTF80001",
                "--error",
                "e",
                "--source-dir",
            ],
            "--source-dir",
        ),
    ] {
        let mut cmd = mamfast(&state);
        cmd.args(args).arg(&odd);
        let out = run(cmd, [] as [&str; 0]);
        out.expect_code(2, option);
        assert!(out.stderr.contains(option), "{out:#?}");
        assert!(out.stderr.contains("not valid UTF-8"), "{out:#?}");
        assert!(
            out.stderr.contains(r"st\xFFdir"),
            "the path is shown escaped: {out:#?}"
        );
        assert!(!state.exists(), "nothing may be written");
    }
}

/// `retry_count` at the largest value mamfast counts to stays there on the next failure.
#[test]
fn a_retry_count_at_its_maximum_saturates_instead_of_wrapping() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    write_state(
        &state,
        serde_json::json!({}),
        serde_json::json!({"B0MAX00001": {"retry_count": u64::MAX, "error": "e"}}),
    );
    mamfast_run(
        &state,
        ["state", "mark-failed", "B0MAX00001", "--error", "again"],
    )
    .expect_code(0, "mark-failed");
    let text = fs::read_to_string(&state).unwrap();
    assert!(
        text.contains(&format!("\"retry_count\": {}", u64::MAX)),
        "{text}"
    );
}
