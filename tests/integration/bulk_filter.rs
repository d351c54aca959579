//! `state retry` and `state clear` given filters (or `--all`) instead of IDs: the filters of
//! `state list`, evaluated inside the one update (under the lock, on the state as it is
//! then); a selection of every entry needs `--all`; nothing matching writes nothing;
//! `--dry-run` lists and writes nothing; one backup generation for the whole command.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::FlockArg;
use serde_json::{json, Value};

use crate::support::cli::{mamfast, run, Run};
use crate::support::{hold, ids, names, read_json};

/// The clock of these tests: the ages of the seeded entries are measured from it.
const NOW: &str = "2026-11-26T10:00:00+00:00";

/// `mamfast --state-file <state>` at [`NOW`].
fn at_now(state: &Path) -> Command {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_NOW", NOW);
    cmd
}

/// Runs `mamfast --state-file <state> <args>` at [`NOW`].
fn mamfast_run<const N: usize>(state: &Path, args: [&str; N]) -> Run {
    run(at_now(state), args)
}

/// A failed entry of `error_type` that failed at `at`.
fn failed(error_type: &str, at: &str, title: &str) -> Value {
    json!({
        "error": "boom",
        "error_type": error_type,
        "failed_at": at,
        "retry_count": 1,
        "title": title,
    })
}

/// Four failed releases (three `AudnexError`, of which one is recent) and three processed
/// ones (two `COMPLETE`, one `STAGED`).
fn seed(dir: &Path) -> PathBuf {
    let state = json!({
        "version": 2,
        "failed": {
            "F1": failed("AudnexError", "2026-11-01T10:00:00+00:00", "Dune"),
            "F2": failed("AudnexError", "2026-11-10T10:00:00+00:00", "Emma"),
            "F3": failed("TorrentError", "2026-11-01T10:00:00+00:00", "Dune Messiah"),
            "F4": failed("AudnexError", "2026-11-26T09:00:00+00:00", "Dune Again"),
        },
        "processed": {
            "P1": {"status": "COMPLETE", "title": "Project Hail Mary", "processed_at": "2026-11-01T10:00:00+00:00"},
            "P2": {"status": "STAGED", "title": "Dune", "processed_at": "2026-11-20T10:00:00+00:00"},
            "P3": {"status": "COMPLETE", "title": "Artemis", "processed_at": "2026-11-25T10:00:00+00:00"},
        },
    });
    write_state(&dir.join("processed.json"), &state)
}

fn write_state(path: &Path, state: &Value) -> PathBuf {
    fs::write(path, serde_json::to_vec_pretty(state).unwrap()).unwrap();
    path.to_path_buf()
}

#[test]
fn filters_combine_and_the_whole_selection_is_one_backup_generation() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();

    // AudnexError AND older than 3 days AND "dune" in the title: F1 only.
    let out = mamfast_run(
        &state,
        [
            "state",
            "retry",
            "--error-type",
            "audnexerror",
            "--older-than",
            "3d",
            "--grep",
            "DUNE",
        ],
    );
    out.expect_code(0, "retry with three filters");
    assert_eq!(
        out.stderr,
        "F1: removed from failed (after 1 failure); it will be retried on the next run\n\
         Retried 1 of 4 entries in failed\n"
    );
    assert_eq!(ids(&state, "failed"), ["F2", "F3", "F4"]);
    assert_eq!(ids(&state, "processed"), ["P1", "P2", "P3"]);

    // Two entries at once, processed ones this time: one more generation, not two.
    let middle = fs::read(&state).unwrap();
    let out = mamfast_run(
        &state,
        [
            "state",
            "clear",
            "--status",
            "COMPLETE",
            "--newer-than",
            "30d",
        ],
    );
    out.expect_code(0, "clear --status --newer-than");
    assert_eq!(
        out.stderr,
        "P1: removed from processed (was COMPLETE), checkpoints included\n\
         P3: removed from processed (was COMPLETE), checkpoints included\n\
         Cleared 2 of 3 entries in processed\n"
    );
    assert_eq!(ids(&state, "processed"), ["P2"]);
    assert_eq!(
        names(dir.path()),
        [
            "processed.json",
            "processed.json.bak",
            "processed.json.bak.1",
            "processed.json.lock",
            "processed.json.log"
        ]
    );
    assert_eq!(
        fs::read(dir.path().join("processed.json.bak")).unwrap(),
        middle
    );
    assert_eq!(
        fs::read(dir.path().join("processed.json.bak.1")).unwrap(),
        before
    );
}

#[test]
fn a_selection_of_every_entry_needs_all() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();

    // `--grep ""` matches every failed entry.
    let out = mamfast_run(&state, ["state", "retry", "--grep", ""]);
    out.expect_code(2, "a filter selecting everything");
    assert_eq!(
        out.stderr,
        "error: the filters given (--grep) select every entry in failed (4 entries); add --all \
         to retry them all, or narrow the filters\n"
    );
    assert_eq!(fs::read(&state).unwrap(), before, "refused, yet written");
    assert!(!dir.path().join("processed.json.bak").exists());

    // The same with --all goes ahead.
    let out = mamfast_run(&state, ["state", "retry", "--grep", "", "--all", "-q"]);
    out.expect_code(0, "--grep '' --all");
    assert_eq!(out.stderr, "", "-q quiets the lines and the summary");
    assert!(ids(&state, "failed").is_empty());

    // --all alone selects every entry.
    let out = mamfast_run(&state, ["state", "clear", "--all"]);
    out.expect_code(0, "clear --all");
    assert!(
        out.stderr
            .ends_with("Cleared 3 of 3 entries in processed\n"),
        "{out:#?}"
    );
    assert!(ids(&state, "processed").is_empty());
    // --all on nothing: nothing to do, exit 0.
    let out = mamfast_run(&state, ["state", "clear", "--all"]);
    out.expect_code(0, "clear --all of nothing");
    assert_eq!(
        out.stderr,
        "Cleared 0 of 0 entries in processed: none matches\n"
    );
}

#[test]
fn zero_matches_is_exit_0_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();
    let out = mamfast_run(&state, ["state", "retry", "--error-type", "NoSuchError"]);
    out.expect_code(0, "no match");
    assert_eq!(
        out.stderr,
        "Retried 0 of 4 entries in failed: none matches\n"
    );
    assert_eq!(fs::read(&state).unwrap(), before);
    assert!(!names(dir.path()).iter().any(|n| n.contains(".bak")));
}

#[test]
fn dry_run_lists_what_would_change_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();
    let out = mamfast_run(
        &state,
        ["-n", "state", "retry", "--error-type", "AudnexError"],
    );
    out.expect_code(0, "dry run");
    assert_eq!(
        out.stderr,
        "F1: would remove from failed (after 1 failure); it will be retried on the next run\n\
         F2: would remove from failed (after 1 failure); it will be retried on the next run\n\
         F4: would remove from failed (after 1 failure); it will be retried on the next run\n\
         Would retry 3 of 4 entries in failed\n"
    );
    assert_eq!(fs::read(&state).unwrap(), before);
    assert_eq!(
        names(dir.path()),
        ["processed.json"],
        "no backup, no lock file"
    );
}

#[test]
fn ids_with_filters_and_nothing_at_all_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let before = fs::read(&state).unwrap();

    let out = mamfast_run(
        &state,
        ["state", "retry", "F1", "--error-type", "AudnexError"],
    );
    out.expect_code(2, "IDs and a filter");
    assert_eq!(
        out.stderr,
        "error: IDs cannot be combined with --error-type: give either IDs, or filters that \
         select the entries to retry\n"
    );
    let out = mamfast_run(&state, ["state", "clear", "P1", "--all"]);
    out.expect_code(2, "IDs and --all");
    assert!(out.stderr.contains("combined with --all"), "{out:#?}");

    let out = mamfast_run(&state, ["state", "clear"]);
    out.expect_code(2, "nothing given");
    assert_eq!(
        out.stderr,
        "error: nothing to clear: give the IDs to clear, or filters that select them \
         (--status, --stage, --infohash, --grep, --older-than, --newer-than), or --all for \
         every entry in processed\n"
    );
    // A filter of the other kind is not an option of the command.
    let out = mamfast_run(&state, ["state", "retry", "--status", "COMPLETE"]);
    out.expect_code(2, "retry --status");
    let out = mamfast_run(&state, ["state", "clear", "--error-type", "X"]);
    out.expect_code(2, "clear --error-type");
    // A bad value is refused as `state list` refuses it.
    let bad = mamfast_run(&state, ["state", "clear", "--stage", "nope"]);
    bad.expect_code(2, "clear --stage nope");
    let list = mamfast_run(&state, ["state", "list", "--stage", "nope"]);
    assert_eq!(
        bad.stderr.lines().next(),
        list.stderr.lines().next(),
        "the same parser"
    );
    assert_eq!(fs::read(&state).unwrap(), before);
    assert_eq!(names(dir.path()), ["processed.json"]);
}

/// Another writer (the Python tool) changes the file while mamfast waits for the lock: the
/// selection is made on what that writer left, not on what was there when mamfast started.
#[test]
fn the_selection_is_made_under_the_lock_on_the_state_as_it_is_then() {
    let dir = tempfile::tempdir().unwrap();
    let state = seed(dir.path());
    let lock = hold(
        &dir.path().join("processed.json.lock"),
        FlockArg::LockExclusive,
    );

    let mut cmd = at_now(&state);
    cmd.env("MAMFAST_LOCK_TIMEOUT", "60s")
        .args(["state", "retry", "--error-type", "AudnexError"])
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("waiting for the lock"), "{first}");

    // What the other writer leaves: F1 gone, F3 now an AudnexError, F5 new, F6 new and not.
    let mut changed: Value = read_json(&state);
    let failed = changed["failed"].as_object_mut().unwrap();
    failed.remove("F1");
    failed["F3"]["error_type"] = json!("AudnexError");
    failed.insert(
        "F5".into(),
        self::failed("AudnexError", "2026-11-26T09:30:00+00:00", "New"),
    );
    failed.insert(
        "F6".into(),
        self::failed("TorrentError", "2026-11-26T09:30:00+00:00", "Other"),
    );
    let temp = dir.path().join("processed.json.tmp-python");
    write_state(&temp, &changed);
    fs::rename(&temp, &state).unwrap();
    drop(lock);

    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{first}{rest}");
    assert_eq!(
        rest,
        "F2: removed from failed (after 1 failure); it will be retried on the next run\n\
         F3: removed from failed (after 1 failure); it will be retried on the next run\n\
         F4: removed from failed (after 1 failure); it will be retried on the next run\n\
         F5: removed from failed (after 1 failure); it will be retried on the next run\n\
         Retried 4 of 5 entries in failed\n"
    );
    assert_eq!(ids(&state, "failed"), ["F6"]);
    // The generation kept is the other writer's state.
    let bak: Value = read_json(&dir.path().join("processed.json.bak"));
    assert_eq!(bak, changed);
}

#[test]
fn selected_ids_and_titles_are_escaped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let state = write_state(
        &dir.path().join("processed.json"),
        &json!({
            "version": 2,
            "failed": {
                "a\u{1b}[31mb": failed("X", "2026-11-01T10:00:00+00:00", "t\u{1b}]0;x\u{7}"),
                "F2": failed("Y", "2026-11-01T10:00:00+00:00", "other"),
            },
            "processed": {},
        }),
    );
    let out = mamfast_run(&state, ["state", "retry", "--error-type", "X"]);
    out.expect_code(0, "retry an ID with a control character");
    assert!(!out.stderr.contains('\u{1b}'), "{out:#?}");
    assert!(
        out.stderr.contains("Retried 1 of 2 entries in failed"),
        "{out:#?}"
    );
    assert_eq!(ids(&state, "failed"), ["F2"]);
}
