//! `state log` and `state diff`: what they show, their options, exit codes and errors.

use std::fs;
use std::path::{Path, PathBuf};

use mamfast::store::format::to_python_json;
use serde_json::{json, Value};

use crate::support::cli::{mamfast, mamfast_run, run};
use crate::support::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    (dir, path)
}

fn at(path: &Path, now: &str, args: &[&str]) {
    let mut cmd = mamfast(path);
    cmd.env("MAMFAST_NOW", now);
    run(cmd, args).expect_code(0, &args.join(" "));
}

#[test]
fn log_tells_one_ids_whole_story_newest_first_and_honours_since_and_limit() {
    let (_dir, path) = setup();
    let id = "B0STORY001";
    at(
        &path,
        "2026-11-20T10:00:00+00:00",
        &[
            "state",
            "checkpoint",
            id,
            "staged",
            "--staging-dir",
            "/srv/x",
            "--title",
            "Story",
        ],
    );
    at(
        &path,
        "2026-11-21T10:00:00+00:00",
        &[
            "state",
            "mark-failed",
            id,
            "--error",
            "boom",
            "--error-type",
            "AudnexError",
        ],
    );
    at(&path, "2026-11-22T10:00:00+00:00", &["state", "retry", id]);
    at(
        &path,
        "2026-11-23T10:00:00+00:00",
        &["state", "retry", "B08G9PRS1K"],
    );
    at(&path, "2026-11-24T10:00:00+00:00", &["state", "clear", id]);

    let mut cmd = mamfast(&path);
    cmd.env("MAMFAST_NOW", "2026-11-25T10:00:00+00:00");
    let story = run(cmd, ["state", "log", id]);
    story.expect_code(0, "log ID");
    let heads: Vec<&str> = story
        .stdout
        .lines()
        .filter(|l| l.starts_with("2026"))
        .map(|l| &l[..10])
        .collect();
    assert_eq!(
        heads,
        ["2026-11-24", "2026-11-22", "2026-11-21", "2026-11-20"],
        "{}",
        story.stdout
    );
    assert!(
        story.stdout.contains(&format!(
            "  - processed {id}: status \"STAGED\", title \"Story\""
        )),
        "{}",
        story.stdout
    );
    assert!(
        story.stdout.contains(&format!("  + failed {id}")),
        "{}",
        story.stdout
    );
    assert!(
        story.stdout.contains("state clear B0STORY001"),
        "{}",
        story.stdout
    );
    // Another ID's change is not in this story.
    assert!(!story.stdout.contains("B08G9PRS1K"), "{}", story.stdout);

    let mut cmd = mamfast(&path);
    cmd.env("MAMFAST_NOW", "2026-11-25T10:00:00+00:00");
    let recent = run(cmd, ["state", "log", "--since", "3d", "--json"]);
    recent.expect_code(0, "since");
    let doc: Value = serde_json::from_str(&recent.stdout).unwrap();
    let times: Vec<&str> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["time"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2026-11-24T10:00:00.000000+00:00",
            "2026-11-23T10:00:00.000000+00:00",
            "2026-11-22T10:00:00.000000+00:00"
        ]
    );
    let since = mamfast_run(
        &path,
        [
            "state",
            "log",
            "--since",
            "2026-11-23T00:00:00+00:00",
            "--json",
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&since.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let limited = mamfast_run(&path, ["state", "log", "--limit", "1", "--json"]);
    let doc: Value = serde_json::from_str(&limited.stdout).unwrap();
    assert_eq!(doc.as_array().unwrap().len(), 1);
    // --json is the journal's record, exactly.
    let last_line = fs::read_to_string(format!("{}.log", path.display())).unwrap();
    let last: Value = serde_json::from_str(last_line.lines().last().unwrap()).unwrap();
    assert_eq!(doc[0], last);

    let bad = mamfast_run(&path, ["state", "log", "--since", "yesterday"]);
    bad.expect_code(2, "bad since");
    assert!(bad.stderr.contains("--since"), "{}", bad.stderr);
}

#[test]
fn log_without_a_journal_says_so() {
    let (_dir, path) = setup();
    let out = mamfast_run(&path, ["state", "log"]);
    out.expect_code(0, "log");
    assert!(out.stderr.contains("no journal yet"), "{}", out.stderr);
    assert_eq!(
        mamfast_run(&path, ["state", "log", "--json"]).stdout,
        "[]\n"
    );
    assert!(!Path::new(&format!("{}.log", path.display())).exists());
}

#[test]
fn diff_compares_generations_and_files_and_exits_1_when_they_differ() {
    let (dir, path) = setup();
    mamfast_run(&path, ["state", "retry", "B08G9PRS1K"]).expect_code(0, "retry");
    mamfast_run(&path, ["state", "mark-processed", "B07ABCDEF1", "--force"]).expect_code(0, "mark");

    // Default: the newest backup against main.
    let out = mamfast_run(&path, ["state", "diff"]);
    out.expect_code(1, "diff");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("from bak ("), "{}", out.stdout);
    assert_eq!(lines[2], "processed +0 -0 ~1, failed +0 -0 ~0");
    assert!(
        lines.contains(&"  ~ processed B07ABCDEF1 status: \"STAGED\" → \"COMPLETE\""),
        "{}",
        out.stdout
    );

    // Generations by any name `state backups` gives them; main against itself is equal.
    for (from, to) in [("bak.1", "main"), (".bak.1", "main"), ("1", "0")] {
        let out = mamfast_run(&path, ["state", "diff", from, to, "--json"]);
        out.expect_code(1, from);
        let doc: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(doc["equal"], json!(false));
        assert_eq!(doc["counts"]["failed"]["removed"], json!(1), "{from} {to}");
    }
    let same = mamfast_run(&path, ["state", "diff", "main", "main"]);
    same.expect_code(0, "equal");
    assert!(same.stdout.contains("no difference"));

    // A path: an export, another host's copy.
    let copy = dir.path().join("elsewhere.json");
    fs::write(&copy, fixture("pipeline-written.json")).unwrap();
    let out = mamfast_run(
        &path,
        ["state", "diff", copy.to_str().unwrap(), "main", "--json"],
    );
    out.expect_code(1, "path");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["from"], json!(copy.to_str().unwrap()));
    assert_eq!(
        doc["changes"]["failed"]["removed"]["B08G9PRS1K"]["retry_count"],
        json!(2)
    );
    assert_eq!(doc["counts"]["processed"]["changed"], json!(1));
    // The copy is the state the first backup rotation kept.
    let out = mamfast_run(&path, ["state", "diff", copy.to_str().unwrap(), "bak.1"]);
    out.expect_code(0, "equal to a path");

    // A generation that does not exist is a usage error; a file that is no state, data.
    let out = mamfast_run(&path, ["state", "diff", "bak.7"]);
    out.expect_code(2, "missing generation");
    assert!(
        out.stderr.contains("processed.json.bak.7 does not exist"),
        "{}",
        out.stderr
    );
    let junk = dir.path().join("junk.json");
    fs::write(&junk, b"{not json").unwrap();
    let out = mamfast_run(&path, ["state", "diff", junk.to_str().unwrap()]);
    out.expect_code(65, "junk");
    assert!(
        out.stderr.contains("junk.json is not a valid state"),
        "{}",
        out.stderr
    );
}

#[test]
fn diff_escapes_outside_text_and_json_keeps_it_exact() {
    let (dir, path) = setup();
    let mut state = mamfast::store::format::parse_state(&fixture("pipeline-written.json")).unwrap();
    let other = dir.path().join("other.json");
    let mut entry = state.processed.get("B07ABCDEF1").unwrap().clone();
    entry.title = Some("evil\u{1b}[2J\u{202e}".into());
    state.processed.insert("B0\u{1b}EVIL".into(), entry);
    fs::write(&other, to_python_json(&state)).unwrap();
    let out = mamfast_run(&path, ["state", "diff", "main", other.to_str().unwrap()]);
    out.expect_code(1, "diff");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{202e}'),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+ processed B0\\u{1b}EVIL"),
        "{}",
        out.stdout
    );
    let out = mamfast_run(
        &path,
        ["state", "diff", "main", other.to_str().unwrap(), "--json"],
    );
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        doc["changes"]["processed"]["added"]["B0\u{1b}EVIL"]["title"],
        json!("evil\u{1b}[2J\u{202e}")
    );
}

#[test]
fn restore_dry_run_shows_the_diff_and_changes_nothing() {
    let (dir, path) = setup();
    mamfast_run(&path, ["state", "retry", "B08G9PRS1K"]).expect_code(0, "retry");
    let before = snapshot(dir.path());
    let out = mamfast_run(&path, ["-n", "state", "restore", "bak"]);
    out.expect_code(0, "restore -n");
    assert!(out.stdout.contains("failed +1 -0 ~0"), "{}", out.stdout);
    assert!(
        out.stdout.contains("  + failed B08G9PRS1K"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("would restore"), "{}", out.stderr);
    assert_eq!(snapshot(dir.path()), before);
}
