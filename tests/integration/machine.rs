//! The machine interface a program outside mamfast writes through (the pipeline's Python
//! module, `clients/python`): the optimistic transaction (`state export --token-file`, `state
//! import --if-token`, exit 4 on a conflict), `--unset`, `--json` reports of every write
//! command, `should-skip --staging-dir/--torrent-path`, `checkpoint --names-if-new`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};

use crate::support::cli::{mamfast, mamfast_run};
use crate::support::{read_json, snapshot, snapshot_without_lock};

fn seed(dir: &Path, state: Value) -> PathBuf {
    let path = dir.join("processed.json");
    fs::write(&path, python_bytes(&state)).unwrap();
    path
}

/// What Python's `json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)` writes.
fn python_bytes(state: &Value) -> Vec<u8> {
    mamfast::store::format::to_python_json(state)
}

/// `state export --token-file`: the state's bytes and its token.
fn export(state: &Path) -> (String, String) {
    let token_file = state.with_file_name("token");
    let run = mamfast_run(
        state,
        [
            "state",
            "export",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    );
    run.expect_code(0, "export");
    let token = fs::read_to_string(&token_file).unwrap();
    assert!(token.ends_with('\n'), "one line: {token:?}");
    (run.stdout.clone(), token.trim().to_string())
}

/// `state import - ARGS` with `input` on stdin.
fn import(state: &Path, args: &[&str], input: &[u8]) -> crate::support::cli::Run {
    let mut cmd = mamfast(state);
    cmd.args(["state", "import", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    crate::support::cli::Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn base() -> Value {
    json!({
        "version": 2,
        "failed": {"F1": {"error": "boom", "retry_count": 1}},
        "processed": {"B1": {"status": "STAGED", "title": "Dune", "staging_dir": "/gone",
                              "checkpoints": {"staged_at": "2026-11-26T10:00:00.000000+00:00"}}},
    })
}

#[test]
fn an_import_with_the_token_read_replaces_the_state_durably_with_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    let old = fs::read(&state).unwrap();
    let (exported, token) = export(&state);
    assert_eq!(exported.as_bytes(), old, "export is the file's bytes");

    let mut changed: Value = serde_json::from_str(&exported).unwrap();
    changed["processed"]["B2"] = json!({"title": "転生", "status": "DISCOVERED"});
    changed["extra_top_level"] = json!([1, 2]);
    let new = python_bytes(&changed);
    let run = import(&state, &["--if-token", &token, "--json"], &new);
    run.expect_code(0, "import");
    assert_eq!(fs::read(&state).unwrap(), new);
    assert_eq!(
        fs::read(dir.path().join("processed.json.bak")).unwrap(),
        old
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["changed"], true);
    assert_eq!(report["processed"], 2);
    // The token reported is the next one: it is what export says now.
    assert_eq!(report["token"], export(&state).1);
}

#[test]
fn any_write_in_between_is_a_conflict_exit_3_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    let (exported, token) = export(&state);

    // Another writer: mamfast itself.
    mamfast_run(&state, ["-q", "state", "mark-failed", "F2", "--error", "x"]).expect_code(0, "w");
    let before = snapshot(dir.path());
    let run = import(&state, &["--if-token", &token], exported.as_bytes());
    run.expect_code(4, "conflict");
    assert!(
        run.stderr.contains("the state changed since it was read"),
        "{run:#?}"
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "nothing written, not even a backup"
    );

    // The Python tool writing in between (its own bytes, in place of the file).
    let (exported, token) = export(&state);
    let mut python = read_json(&state);
    python["failed"]["F3"] = json!({"error": "y"});
    fs::write(&state, python_bytes(&python)).unwrap();
    let run = import(
        &state,
        &["--if-token", &token, "--json"],
        exported.as_bytes(),
    );
    run.expect_code(4, "conflict after a Python write");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "conflict");
    assert_eq!(report["error"]["expected_token"], token.as_str());
    assert!(
        read_json(&state)["failed"].get("F3").is_some(),
        "the Python write stands"
    );
}

#[test]
fn an_import_needs_a_token_or_force_and_checks_its_input_as_a_load_does() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    let before = snapshot(dir.path());
    let good = python_bytes(&json!({"version": 2, "processed": {}, "failed": {}}));

    let run = import(&state, &[], &good);
    run.expect_code(2, "neither --if-token nor --force");
    assert!(run.stderr.contains("--force"), "{run:#?}");
    for (bad, code) in [
        (&b"{\"processed\": {"[..], 65),
        (&b"[]"[..], 65),
        (
            &b"{\"version\": 99, \"processed\": {}, \"failed\": {}}"[..],
            65,
        ),
        (
            &b"{\"version\": 2, \"processed\": [], \"failed\": {}}"[..],
            65,
        ),
    ] {
        let run = import(&state, &["--force"], bad);
        run.expect_code(code, &String::from_utf8_lossy(bad));
        assert!(run.stderr.contains("Nothing was imported"), "{run:#?}");
    }
    let run = mamfast_run(
        &state,
        ["state", "import", "--force", "/nonexistent/x.json"],
    );
    run.expect_code(2, "missing input file");
    assert_eq!(snapshot(dir.path()), before, "nothing written");

    // A dry run checks everything and writes nothing.
    let run = mamfast_run(&state, ["-n", "state", "import", "--force", "-"]);
    run.expect_code(65, "empty stdin is not a state");
    import(&state, &["--force", "-n"], &good).expect_code(0, "dry run");
    assert_eq!(snapshot(dir.path()), before, "dry run writes nothing");

    // --force replaces it; a version 1 input is migrated.
    let v1 = br#"{"version": 1, "processed": {"B9": {}}, "failed": {}}"#;
    import(&state, &["--force"], v1).expect_code(0, "force");
    assert_eq!(
        read_json(&state)["processed"]["B9"]["checkpoints"],
        json!({})
    );
    assert_eq!(read_json(&state)["version"], 2);
}

#[test]
fn importing_the_state_as_it_is_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    let (exported, token) = export(&state);
    let before = snapshot_without_lock(dir.path());
    let run = import(
        &state,
        &["--if-token", &token, "--json"],
        exported.as_bytes(),
    );
    run.expect_code(0, "same state");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["changed"], false);
    assert_eq!(report["token"], token.as_str());
    assert_eq!(
        snapshot_without_lock(dir.path()),
        before,
        "no write, no backup"
    );
}

#[test]
fn unset_writes_null_and_a_field_both_given_and_unset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    mamfast_run(
        &state,
        [
            "state",
            "checkpoint",
            "B1",
            "metadata",
            "--unset",
            "title",
            "--unset=staging-dir",
        ],
    )
    .expect_code(0, "unset");
    let entry = &read_json(&state)["processed"]["B1"];
    assert_eq!(entry["title"], Value::Null);
    assert_eq!(entry["staging_dir"], Value::Null);
    mamfast_run(
        &state,
        [
            "state",
            "mark-failed",
            "F1",
            "--error",
            "e",
            "--unset",
            "asin",
        ],
    )
    .expect_code(0, "unset on mark-failed");
    assert_eq!(read_json(&state)["failed"]["F1"]["asin"], Value::Null);

    let before = snapshot(dir.path());
    let run = mamfast_run(
        &state,
        [
            "state",
            "mark-processed",
            "B1",
            "--title",
            "x",
            "--unset",
            "title",
        ],
    );
    run.expect_code(2, "given and unset");
    assert!(run.stderr.contains("--unset title and --title"), "{run:#?}");
    let run = mamfast_run(
        &state,
        [
            "state",
            "mark-failed",
            "F1",
            "--error",
            "e",
            "--unset",
            "infohash",
        ],
    );
    run.expect_code(2, "not a field of mark-failed");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn write_commands_report_in_json_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    let json_of = |args: &[&str]| -> Value {
        let run = mamfast_run(&state, args);
        run.expect_code(0, &args.join(" "));
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:#?}"))
    };

    let r = json_of(&["state", "checkpoint", "B1", "metadata", "--json"]);
    assert_eq!(r["command"], "checkpoint");
    assert_eq!(r["created"], false);
    assert_eq!(r["changed"], json!(["checkpoints", "status"]));
    assert_eq!(r["entry"]["status"], "METADATA_FETCHED");

    let r = json_of(&[
        "state",
        "mark-processed",
        "--title=-t",
        "--json",
        "--",
        "-N1",
    ]);
    assert_eq!(r["id"], "-N1");
    assert_eq!(r["created"], true);
    assert_eq!(r["entry"]["title"], "-t");

    let r = json_of(&["state", "mark-failed", "F1", "--error", "again", "--json"]);
    assert_eq!(r["entry"]["retry_count"], 2);
    assert!(r["changed"]
        .as_array()
        .unwrap()
        .contains(&json!("retry_count")));

    let r = json_of(&["state", "retry", "F1", "NOPE", "--json"]);
    assert_eq!(
        r,
        json!({"command": "retry", "dry_run": false, "changed": 1,
        "ids": [{"id": "F1", "found": true}, {"id": "NOPE", "found": false}]})
    );
    let r = json_of(&["-n", "state", "clear", "B1", "--json"]);
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["ids"], json!([{"id": "B1", "found": true}]));
    assert!(
        read_json(&state)["processed"].get("B1").is_some(),
        "a dry run"
    );

    // A refused transition: its statuses as fields, exit 65, nothing written.
    let before = snapshot(dir.path());
    let run = mamfast_run(&state, ["state", "mark-processed", "B1", "--json"]);
    run.expect_code(65, "refused");
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r["error"]["kind"], "illegal_transition");
    assert_eq!(r["error"]["current"], "METADATA_FETCHED");
    assert_eq!(r["error"]["requested"], "COMPLETE");
    assert_eq!(
        r["error"]["allowed"],
        json!(["METADATA_FETCHED", "TORRENT_CREATED"])
    );
    assert!(run.stderr.contains("illegal status transition"), "{run:#?}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn should_skip_checks_the_paths_given_and_skips_a_done_stage_with_no_path() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    let here = dir.path().to_str().unwrap();
    let skip = |args: &[&str]| {
        let mut all = vec!["state", "should-skip", "B1", "staged"];
        all.extend_from_slice(args);
        mamfast_run(&state, all).code
    };
    assert_eq!(skip(&[]), 1, "the recorded /gone is missing");
    assert_eq!(skip(&["--staging-dir", here]), 0, "the given one exists");
    assert_eq!(skip(&["--staging-dir", "/also/gone"]), 1);
    assert_eq!(
        skip(&["--staging-dir="]),
        0,
        "no path named: nothing to check"
    );

    // No path recorded at all: done means skip.
    let mut no_path = base();
    no_path["processed"]["B1"]
        .as_object_mut()
        .unwrap()
        .remove("staging_dir");
    let state = seed(dir.path(), no_path);
    let run = mamfast_run(&state, ["state", "should-skip", "B1", "staged"]);
    run.expect_code(0, "done, no path");
    assert!(run.stderr.contains("no staging_dir to check"), "{run:#?}");
}

#[test]
fn checkpoint_names_if_new_apply_only_when_the_entry_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path(), base());
    let args = |id: &'static str| {
        [
            "state",
            "checkpoint",
            id,
            "metadata",
            "--names-if-new",
            "--title",
            "New",
            "--unset",
            "author",
        ]
    };
    mamfast_run(&state, args("B1")).expect_code(0, "existing");
    mamfast_run(&state, args("B2")).expect_code(0, "new");
    let processed = &read_json(&state)["processed"];
    assert_eq!(processed["B1"]["title"], "Dune");
    assert!(
        processed["B1"].get("author").is_none(),
        "not added to an existing entry"
    );
    assert_eq!(processed["B2"]["title"], "New");
    assert_eq!(processed["B2"]["author"], Value::Null);
}
