//! `state retry` and `state clear` with several IDs: one lock, one durable write, one backup
//! generation for the whole command; duplicated IDs count once; a missing ID is "not found",
//! exit 0. And a nested mamfast (a plugin's `"$MAMFAST_BIN" state …`) honours the
//! `MAMFAST_QUIET` / `MAMFAST_VERBOSE` it is handed.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::cli::{mamfast, mamfast_run, run};
use crate::support::{ids, names, snapshot};

/// A state with three failed releases (two of them `AudnexError`) and three processed ones.
fn seed(dir: &Path) -> std::path::PathBuf {
    let failed = |error_type: &str, count: u64| {
        json!({
            "error": "boom",
            "error_type": error_type,
            "first_failed_at": "2026-11-20T10:00:00.000000+00:00",
            "last_failed_at": "2026-11-25T10:00:00.000000+00:00",
            "retry_count": count,
        })
    };
    let processed = |status: &str| json!({"status": status, "title": "T"});
    let state = json!({
        "version": 2,
        "failed": {
            "F1": failed("AudnexError", 1),
            "F2": failed("AudnexError", 2),
            "F3": failed("TorrentError", 3),
        },
        "processed": {
            "P1": processed("COMPLETE"),
            "P2": processed("UPLOADED"),
            "P3": processed("COMPLETE"),
        },
    });
    let path = dir.join("processed.json");
    fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    path
}

#[test]
fn retry_of_several_ids_is_one_write_and_one_backup_generation() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();

    let out = mamfast_run(&state, ["state", "retry", "F1", "NOPE", "F3", "F1"]);
    out.expect_code(0, "retry F1 NOPE F3 F1");
    assert_eq!(
        out.stderr,
        "F1: removed from failed (after 1 failure); it will be retried on the next run\n\
         NOPE: not found in failed\n\
         F3: removed from failed (after 3 failures); it will be retried on the next run\n\
         Retried 2 of 3 (1 not found in failed)\n"
    );
    assert_eq!(out.stdout, "");
    assert_eq!(ids(&state, "failed"), ["F2"]);
    assert_eq!(ids(&state, "processed"), ["P1", "P2", "P3"]);
    // One generation: the state before the command is `.bak`, and there is no `.bak.1`.
    assert_eq!(
        names(dir.path()),
        [
            "processed.json",
            "processed.json.bak",
            "processed.json.lock",
            "processed.json.log"
        ]
    );
    assert_eq!(
        fs::read(dir.path().join("processed.json.bak")).unwrap(),
        before
    );
}

#[test]
fn clear_of_several_ids_is_one_write_and_one_backup_generation() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();

    let out = mamfast_run(&state, ["state", "clear", "P3", "P1", "P3"]);
    out.expect_code(0, "clear P3 P1 P3");
    assert_eq!(
        out.stderr,
        "P3: removed from processed (was COMPLETE), checkpoints included\n\
         P1: removed from processed (was COMPLETE), checkpoints included\n\
         Cleared 2 of 2\n"
    );
    assert_eq!(ids(&state, "processed"), ["P2"]);
    assert_eq!(ids(&state, "failed"), ["F1", "F2", "F3"]);
    assert_eq!(
        names(dir.path()),
        [
            "processed.json",
            "processed.json.bak",
            "processed.json.lock",
            "processed.json.log"
        ]
    );
    assert_eq!(
        fs::read(dir.path().join("processed.json.bak")).unwrap(),
        before
    );
}

#[test]
fn a_dry_run_lists_what_would_change_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = snapshot(dir.path());

    let out = mamfast_run(&state, ["-n", "state", "retry", "F2", "F1", "NOPE"]);
    out.expect_code(0, "retry -n");
    assert_eq!(
        out.stderr,
        "F2: would remove from failed (after 2 failures); it will be retried on the next run\n\
         F1: would remove from failed (after 1 failure); it will be retried on the next run\n\
         NOPE: not found in failed\n\
         Would retry 2 of 3 (1 not found in failed)\n"
    );
    let out = mamfast_run(&state, ["state", "clear", "--dry-run", "P2", "P1"]);
    out.expect_code(0, "clear -n");
    assert!(out.stderr.ends_with("Would clear 2 of 2\n"), "{out:#?}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a dry run changed the directory"
    );
}

#[test]
fn ids_none_of_which_are_there_write_nothing_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();

    let out = mamfast_run(&state, ["state", "clear", "X", "Y", "X"]);
    out.expect_code(0, "clear X Y X");
    assert_eq!(
        out.stderr,
        "X: not found in processed\nY: not found in processed\nCleared 0 of 2 (2 not found in processed)\n"
    );
    assert_eq!(fs::read(&state).unwrap(), before);
    assert!(!dir.path().join("processed.json.bak").exists());
}

#[test]
fn one_id_given_twice_is_one_id_without_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let out = mamfast_run(&state, ["state", "retry", "F2", "F2"]);
    out.expect_code(0, "retry F2 F2");
    assert_eq!(
        out.stderr,
        "F2: removed from failed (after 2 failures); it will be retried on the next run\n"
    );
}

#[test]
fn retry_and_clear_need_ids_filters_or_all() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    for command in ["retry", "clear"] {
        let out = mamfast_run(&state, ["state", command]);
        out.expect_code(2, command);
        assert!(out.stderr.contains("give the IDs to"), "{out:#?}");
    }
}

#[test]
fn ids_are_escaped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let out = mamfast_run(&state, ["state", "retry", "a\u{1b}[31mb", "F1"]);
    out.expect_code(0, "retry with a control character");
    assert!(!out.stderr.contains('\u{1b}'), "{out:#?}");
    assert!(out.stderr.contains("not found in failed"), "{out:#?}");
}

#[test]
fn a_nested_mamfast_honours_quiet_and_verbose_from_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());

    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_QUIET", "1");
    let out = run(cmd, ["-n", "state", "retry", "F1", "NOPE"]);
    out.expect_code(0, "MAMFAST_QUIET=1");
    assert_eq!(out.stderr, "", "MAMFAST_QUIET=1 acts as -q");

    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_VERBOSE", "1");
    let out = run(cmd, ["-n", "state", "retry", "F1"]);
    out.expect_code(0, "MAMFAST_VERBOSE=1");
    assert!(out.stderr.contains("state file: "), "-v: {out:#?}");

    // The run's own flag wins.
    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_QUIET", "1");
    let out = run(cmd, ["-v", "-n", "state", "retry", "F1"]);
    assert!(out.stderr.contains("state file: "), "own -v: {out:#?}");
    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_VERBOSE", "1");
    let out = run(cmd, ["-q", "-n", "state", "retry", "F1"]);
    assert_eq!(out.stderr, "", "own -q");

    // `0` is no hint.
    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_QUIET", "0").env("MAMFAST_VERBOSE", "0");
    let out = run(cmd, ["-n", "state", "retry", "F1"]);
    assert!(out.stderr.starts_with("F1: would remove"), "{out:#?}");
}

/// `mamfast <args>` with the example plugins' directory in front of `PATH`.
fn with_retry_all(dir: &Path, state: &Path) -> Command {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/mamfast-state-retry-all");
    let link = bin.join("mamfast-state-retry-all");
    if !link.exists() {
        std::os::unix::fs::symlink(&script, &link).unwrap();
    }
    let mut cmd = mamfast(state);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    cmd
}

#[test]
fn the_retry_all_example_retries_every_match_in_one_call() {
    if Command::new("jq").arg("--version").output().is_err() {
        eprintln!("skipped: jq is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let state = seed(&data);
    let before = fs::read(&state).unwrap();

    let out = run(
        with_retry_all(dir.path(), &state),
        ["-n", "state", "retry-all", "AudnexError"],
    );
    out.expect_code(0, "retry-all -n");
    assert!(
        out.stderr.contains("F1: would remove") && out.stderr.contains("F2: would remove"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("Would retry 2 of 2\n"), "{out:#?}");
    assert!(
        out.stderr.contains(
            "Would retry 2 failed entries of type AudnexError (dry run: nothing changed)."
        ),
        "{out:#?}"
    );
    assert_eq!(fs::read(&state).unwrap(), before);

    let out = run(
        with_retry_all(dir.path(), &state),
        ["-q", "state", "retry-all", "AudnexError"],
    );
    out.expect_code(0, "retry-all -q");
    assert_eq!(out.stderr, "", "-q reaches the nested mamfast");
    assert_eq!(ids(&state, "failed"), ["F3"]);
    // One `state retry` call: one backup generation for both IDs.
    assert_eq!(
        names(&data),
        [
            "processed.json",
            "processed.json.bak",
            "processed.json.lock",
            "processed.json.log"
        ]
    );
    assert_eq!(fs::read(data.join("processed.json.bak")).unwrap(), before);
}
