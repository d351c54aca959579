//! `state apply`: JSON Lines of operations, applied in order under one lock and written once,
//! all or nothing, end to end through the binary.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::cli::{mamfast, mamfast_run, run, Run};
use crate::support::read_json;
use crate::support::*;

/// A directory holding the pipeline-written fixture as `processed.json`.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    (dir, path)
}

/// `state apply FILE` with `input` written to FILE beside the state.
fn apply_file(state: &Path, input: &str, extra: &[&str]) -> Run {
    let file = state.parent().unwrap().join("ops.jsonl");
    fs::write(&file, input).unwrap();
    let mut args = vec!["state", "apply", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    mamfast_run(state, args)
}

/// `state apply -` with `input` on standard input.
fn apply_stdin(state: &Path, input: &str, extra: &[&str]) -> Run {
    let file = state.parent().unwrap().join("stdin.jsonl");
    fs::write(&file, input).unwrap();
    let mut cmd = mamfast(state);
    cmd.stdin(fs::File::open(&file).unwrap());
    let mut args = vec!["state", "apply", "-"];
    args.extend_from_slice(extra);
    let run = run(cmd, args);
    fs::remove_file(file).unwrap();
    run
}

fn show(state: &Path, id: &str) -> serde_json::Value {
    let run = mamfast_run(state, ["state", "show", id, "--json"]);
    // 3: in neither kind (the document says so with two nulls).
    assert!(matches!(run.code, 0 | 3), "show: {run:#?}");
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_run_is_recorded_in_order_in_one_write() {
    let (dir, state) = setup();
    let before = fs::read(&state).unwrap();
    let input = r#"{"op": "checkpoint", "id": "B0NEW00001", "stage": "staged", "staging_dir": "/srv/x/", "title": "New"}
{"op": "checkpoint", "id": "B0NEW00001", "stage": "metadata"}

{"op": "mark-failed", "id": "B0NEW00002", "error": "timeout", "error_type": "AudnexError"}
{"op": "retry", "id": "B08G9PRS1K"}
{"op": "clear", "id": "B0NOTTHERE"}
"#;
    let run = apply_stdin(&state, input, &[]);
    run.expect_code(0, "apply");
    assert!(run.stderr.contains("applied 5 operations"), "{run:#?}");
    let shown = show(&state, "B0NEW00001");
    let text = shown.to_string();
    assert!(text.contains("METADATA_FETCHED"), "{text}");
    assert!(text.contains("\"/srv/x\""), "{text}");
    assert!(show(&state, "B0NEW00002")
        .to_string()
        .contains("AudnexError"));
    assert!(!show(&state, "B08G9PRS1K")
        .to_string()
        .contains("retry_count"));
    // One write: one backup generation, the file as it was.
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
fn a_refused_line_in_the_middle_writes_nothing() {
    let (dir, state) = setup();
    let before = snapshot_without_lock(dir.path());
    // B0DK9T5P28 is COMPLETE: back to STAGED is refused.
    let input = r#"{"op": "checkpoint", "id": "B0NEW00001", "stage": "staged"}
{"op": "mark-failed", "id": "B0NEW00002", "error": "e"}
{"op": "checkpoint", "id": "B0DK9T5P28", "stage": "staged"}
{"op": "clear", "id": "B07ABCDEF1"}
"#;
    let run = apply_file(&state, input, &[]);
    run.expect_code(65, "refused line");
    assert!(
        run.stderr.contains("line 3 (checkpoint B0DK9T5P28)"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("COMPLETE -> STAGED"), "{run:#?}");
    assert!(run.stderr.contains("Nothing was written"), "{run:#?}");
    fs::remove_file(dir.path().join("ops.jsonl")).unwrap();
    // Byte for byte, and no backup rotated.
    assert_eq!(snapshot_without_lock(dir.path()), before);

    // With "force": true, as the command's --force, the same input is applied.
    let forced = input.replace(
        r#""id": "B0DK9T5P28", "stage": "staged""#,
        r#""id": "B0DK9T5P28", "stage": "staged", "force": true"#,
    );
    apply_file(&state, &forced, &[]).expect_code(0, "forced");
    assert!(show(&state, "B0DK9T5P28").to_string().contains("STAGED"));
}

#[test]
fn a_malformed_line_is_a_usage_error_naming_its_number() {
    let (dir, state) = setup();
    let before = snapshot_without_lock(dir.path());
    for (input, why) in [
        ("{\"op\": \"retry\", \"id\": \"A\"}\n\n{\"op\": \"retry\", \"id\": \"B\",\n", "EOF"),
        ("{\"op\": \"retry\", \"id\": \"A\"}\n{\"op\": \"retry\", \"id\": \"B\", \"force\": true}\n", "unknown field `force`"),
        ("{\"op\": \"retry\", \"id\": \"A\"}\n{\"op\": \"checkpoint\", \"id\": \"B\", \"stage\": \"done\"}\n", "unknown stage"),
        ("{\"op\": \"retry\", \"id\": \"A\"}\n{\"op\": \"mark-failed\", \"id\": \"\", \"error\": \"e\"}\n", "an empty ID"),
    ] {
        let run = apply_stdin(&state, input, &[]);
        run.expect_code(2, why);
        assert!(run.stderr.contains("standard input, line "), "{run:#?}");
        let line = if why == "EOF" { "line 3: " } else { "line 2: " };
        assert!(run.stderr.contains(line), "{why}: {run:#?}");
        assert!(run.stderr.contains(why), "{why}: {run:#?}");
    }
    assert_eq!(snapshot_without_lock(dir.path()), before);
}

#[test]
fn an_empty_input_is_nothing_to_apply() {
    let (dir, state) = setup();
    let before = snapshot(dir.path());
    for input in ["", "\n  \n"] {
        let run = apply_stdin(&state, input, &[]);
        run.expect_code(0, "empty");
        assert!(run.stderr.contains("nothing to apply"), "{run:#?}");
    }
    // Not even a lock file.
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_dry_run_reports_each_line_and_writes_nothing() {
    let (dir, state) = setup();
    let before = snapshot_without_lock(dir.path());
    let input = "{\"op\": \"checkpoint\", \"id\": \"B0NEW00001\", \"stage\": \"staged\"}\n\
                 {\"op\": \"retry\", \"id\": \"B0NOTTHERE\"}\n";
    let run = apply_stdin(&state, input, &["--dry-run", "--json"]);
    run.expect_code(0, "dry run");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["lines"][0]["line"], 1);
    assert_eq!(report["lines"][0]["result"], "status STAGED");
    assert_eq!(report["lines"][1]["changed"], false);
    assert_eq!(snapshot_without_lock(dir.path()), before);
}

#[test]
fn ten_thousand_lines_are_one_write() {
    let (dir, state) = setup();
    let before = fs::read(&state).unwrap();
    let mut input = String::new();
    for i in 0..10_000 {
        input.push_str(&format!(
            "{{\"op\": \"checkpoint\", \"id\": \"B0BULK{i:05}\", \"stage\": \"staged\", \"title\": \"Book {i}\"}}\n"
        ));
    }
    let run = apply_file(&state, &input, &["--json"]);
    run.expect_code(0, "10,000 lines");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["lines"].as_array().unwrap().len(), 10_000);
    let after: serde_json::Value = read_json(&state);
    assert_eq!(after["processed"].as_object().unwrap().len(), 10_002);
    let mut expected = vec![
        "ops.jsonl",
        "processed.json",
        "processed.json.bak",
        "processed.json.lock",
        "processed.json.log",
    ];
    expected.sort();
    assert_eq!(names(dir.path()), expected);
    assert_eq!(
        fs::read(dir.path().join("processed.json.bak")).unwrap(),
        before
    );
}

#[test]
fn outside_text_in_a_message_is_escaped() {
    let (_dir, state) = setup();
    let run = apply_stdin(&state, "{\"op\": \"\\u001b[31mred\", \"id\": \"A\"}\n", &[]);
    run.expect_code(2, "unknown op");
    assert!(!run.stderr.contains('\u{1b}'), "{run:#?}");
    assert!(run.stderr.contains("line 1: unknown variant"), "{run:#?}");
}

#[test]
fn the_python_example_records_a_run() {
    if !crate::support::cli::python3("the Python example") {
        return;
    }
    let (_dir, state) = setup();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/record_run.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent/home")
        .env("XDG_CONFIG_HOME", "/nonexistent/config")
        .env("MAMFAST", env!("CARGO_BIN_EXE_mamfast"));
    let run = run(
        cmd,
        [
            script.as_os_str(),
            "--state-file".as_ref(),
            state.as_os_str(),
        ],
    );
    run.expect_code(0, "record_run.py");
    assert!(
        run.stdout
            .contains("line 2: checkpoint B0EXAMPLE1: status METADATA_FETCHED"),
        "{run:#?}"
    );
    assert!(show(&state, "B0EXAMPLE2")
        .to_string()
        .contains("AudnexError"));
}
