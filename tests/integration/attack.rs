//! Hostile inputs against the journal and `state restore`: what an attacker (or an accident)
//! can put beside the state file must neither reach the terminal raw nor make mamfast use a
//! file other than the one named.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::cli::mamfast_run;
use crate::support::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    (dir, path)
}

fn journal_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".log");
    PathBuf::from(name)
}

#[test]
fn a_journal_line_that_cannot_be_read_is_reported_on_one_escaped_line() {
    let (_dir, path) = setup();
    mamfast_run(
        &path,
        ["state", "mark-failed", "B0ATTACK01", "--error", "e"],
    )
    .expect_code(0, "first write");
    // A record whose `kind` is hostile text: serde quotes it in its error message as it is.
    let hostile = r#"{"kind": "write\u001b[2J\nforged: line\r\u202e", "time": "x"}"#;
    let mut text = fs::read_to_string(journal_of(&path)).unwrap();
    text.push_str(hostile);
    text.push('\n');
    fs::write(journal_of(&path), text).unwrap();
    let run = mamfast_run(&path, ["state", "log"]);
    run.expect_code(0, "state log");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert!(
        warnings.is_empty(),
        "every stderr line is a warning of its own: {:?}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'),
        "{:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains("line 2: not a journal record") && run.stderr.contains("\\n"),
        "{:?}",
        run.stderr
    );
}

#[test]
fn a_rejected_state_named_by_a_path_elsewhere_is_not_replaced_by_the_one_beside_the_state() {
    let (dir, path) = setup();
    let name = "processed.json.rejected-20260101T000000Z";
    let empty = br#"{"version": 2, "processed": {}, "failed": {}}"#;
    fs::write(dir.path().join(name), empty).unwrap();
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::copy(&path, other.join(name)).unwrap();
    let before = fs::read(&path).unwrap();
    for given in [
        other.join(name),
        dir.path().join("other/../other").join(name),
        PathBuf::from("/nonexistent").join(name),
    ] {
        let run = mamfast_run(
            &path,
            ["state".as_ref(), "restore".as_ref(), given.as_os_str()],
        );
        run.expect_code(2, &given.display().to_string());
        assert!(
            run.stderr.contains("not beside the state file") && run.stderr.contains("state import"),
            "{}",
            run.stderr
        );
        assert_eq!(fs::read(&path).unwrap(), before, "nothing restored");
    }
    // Beside the state file, under any spelling of its directory, it is restored.
    let beside = dir.path().join("other/..").join(name);
    mamfast_run(
        &path,
        ["state".as_ref(), "restore".as_ref(), beside.as_os_str()],
    )
    .expect_code(0, "restore beside");
    assert_eq!(fs::read(&path).unwrap(), empty);
}
