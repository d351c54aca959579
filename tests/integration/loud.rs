//! Unattended runs fail loudly: a mistyped state path, environment variable or config value is
//! an error or a warning, never a silent empty state; a read leaves no file behind; `verify`
//! tells "usable only from a backup" by its exit code; `prune --json=compact` is one line; a
//! lock held by the same process through several runs is reported as stuck.

use std::fs;
use std::path::Path;
use std::process::Command;

use nix::fcntl::FlockArg;

use crate::support::cli::{mamfast, mamfast_run, run, Run};
use crate::support::{fixture, hold, names};

const STATE: &str = "pipeline-written.json";

fn with_env(state: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = mamfast(state);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, args)
}

#[test]
fn a_write_to_a_file_in_a_missing_directory_is_an_error_and_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("typo/deeper/processed.json");
    for args in [
        &["state", "prune"][..],
        &["state", "mark-processed", "B0TEST0001"],
        &["state", "retry", "B0TEST0001"],
    ] {
        let out = mamfast_run(&state, args);
        out.expect_code(74, "a write into a missing directory");
        assert!(
            out.stderr.contains("typo/deeper does not exist"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("processed.json"), "{}", out.stderr);
    }
    assert_eq!(
        names(dir.path()),
        Vec::<String>::new(),
        "nothing was created"
    );
}

#[test]
fn a_write_to_a_missing_file_in_an_existing_directory_warns_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    let out = mamfast_run(&state, ["--quiet", "state", "prune"]);
    out.expect_code(0, "a first prune");
    assert!(
        out.stderr.contains("processed.json does not exist yet"),
        "{}",
        out.stderr
    );
    let out = mamfast_run(&state, ["--quiet", "state", "mark-processed", "B0TEST0001"]);
    out.expect_code(0, "a first write");
    assert!(out.stderr.contains("does not exist yet"), "{}", out.stderr);
    assert!(state.exists());
    // Once it exists, nothing more is said.
    let out = mamfast_run(&state, ["--quiet", "state", "prune"]);
    out.expect_code(0, "a later prune");
    assert_eq!(out.stderr, "");
}

#[test]
fn the_default_state_directory_is_still_made_on_a_first_write() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamfast"));
    cmd.env_clear()
        .env("HOME", home.path())
        .env("MAMFAST_CONFIG", "")
        .env("TZ", "UTC");
    let out = run(cmd, ["state", "mark-processed", "B0TEST0001"]);
    out.expect_code(0, "a first write to the built-in default path");
    assert!(home
        .path()
        .join(".local/state/mamfast/processed.json")
        .exists());
}

#[test]
fn a_read_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let typo = dir.path().join("sub/procesed.json");
    // A symlink to a file that is not there, in a directory that is not there either.
    let dangling = dir.path().join("sub/link.json");
    std::os::unix::fs::symlink(dir.path().join("gone/processed.json"), &dangling).unwrap();
    let before = names(&dir.path().join("sub"));
    for state in [&typo, &dangling] {
        for args in [
            &["state", "list"][..],
            &["state", "list", "--json"],
            &["state", "show", "B0TEST0001"],
            &[
                "state",
                "show",
                "--infohash",
                "0123456789abcdef0123456789abcdef01234567",
            ],
            &["state", "should-skip", "B0TEST0001", "staged"],
            &["state", "export"],
            &["state", "verify"],
            &["state", "backups"],
            &["--dry-run", "state", "prune"],
            &["--dry-run", "state", "mark-processed", "B0TEST0001"],
        ] {
            let out = mamfast_run(state, args);
            // 1: verify of a missing file, should-skip; 3: show of an ID not there.
            assert!(matches!(out.code, 0 | 1 | 3), "{args:?}: {out:#?}");
            assert_eq!(
                names(&dir.path().join("sub")),
                before,
                "{args:?} on {} made a file",
                state.display()
            );
            assert!(!dir.path().join("gone").exists());
        }
    }
}

#[test]
fn a_read_of_an_existing_state_makes_its_lock_only_where_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    fs::write(&state, fixture(STATE)).unwrap();
    mamfast_run(&state, ["state", "list"]).expect_code(0, "a clean read");
    assert_eq!(
        names(dir.path()),
        ["processed.json"],
        "a clean read takes no lock"
    );
    // A corrupt main file with a valid backup is repaired by the read, under the lock.
    fs::copy(&state, dir.path().join("processed.json.bak")).unwrap();
    fs::write(&state, b"{\"processed\": ").unwrap();
    mamfast_run(&state, ["state", "list"]).expect_code(0, "a read that repairs");
    assert!(dir.path().join("processed.json.lock").exists());
}

#[test]
fn an_unknown_mamfast_variable_is_a_config_error_with_the_nearest_name() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    fs::write(&state, fixture(STATE)).unwrap();
    let out = with_env(&state, &[("MAMFAST_FAILED_TLL", "3d")], &["state", "prune"]);
    out.expect_code(78, "a mistyped variable");
    assert!(
        out.stderr
            .contains("MAMFAST_FAILED_TLL (did you mean MAMFAST_FAILED_TTL?)"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read(&state).unwrap(), fixture(STATE), "nothing pruned");

    // Lower case is caught too.
    let out = with_env(&state, &[("mamfast_state_file", "/x")], &["state", "list"]);
    out.expect_code(78, "a lower-case variable");
    assert!(
        out.stderr.contains("did you mean MAMFAST_STATE_FILE?"),
        "{}",
        out.stderr
    );

    // What mamfast hands a plugin, and the test switches, are known: a nested mamfast runs.
    let out = with_env(
        &state,
        &[
            ("MAMFAST_BIN", "/usr/bin/mamfast"),
            ("MAMFAST_PLUGIN_API", "1"),
            ("MAMFAST_QUIET", "0"),
            ("MAMFAST_VERBOSE", "0"),
            ("MAMFAST_COLOR", "never"),
            ("MAMFAST_NOW", "2026-11-26T10:00:00+00:00"),
            ("MAMFAST_INJECT_FAULT", ""),
            ("MAMFAST_FAILED_TTL", ""),
            ("MAMFAST_DRY_RUN", "0"),
            ("MAMFAST_BACKUP_DEPTH", "3"),
            ("MAMFAST_LOCK_TIMEOUT", "30s"),
            ("MAMFAST_PLUGIN_DIRS", ""),
        ],
        &["state", "list"],
    );
    out.expect_code(0, "the variables a plugin is handed");
}

#[test]
fn an_empty_failed_ttl_in_a_file_is_an_error_and_a_mistyped_table_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    fs::write(&state, fixture(STATE)).unwrap();
    let config = dir.path().join("mamfast.toml");
    fs::write(&config, "[state]\nfailed_ttl = \"\"\n").unwrap();
    let config_text = config.display().to_string();
    let out = with_env(
        &state,
        &[("MAMFAST_CONFIG", &config_text)],
        &["state", "prune"],
    );
    out.expect_code(78, "an empty failed_ttl");
    assert!(
        out.stderr
            .contains("invalid value for state.failed_ttl in ")
            && out.stderr.contains("found an empty string"),
        "{}",
        out.stderr
    );
    fs::write(&config, "[sate]\nfailed_ttl = \"3d\"\n").unwrap();
    let out = with_env(
        &state,
        &[("MAMFAST_CONFIG", &config_text)],
        &["state", "prune"],
    );
    out.expect_code(78, "a mistyped table");
    assert!(
        out.stderr.contains("[sate] (did you mean [state]?)"),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_exits_1_while_the_state_is_usable_only_from_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    fs::write(&state, fixture(STATE)).unwrap();
    mamfast_run(&state, ["state", "verify"]).expect_code(0, "a clean state");
    fs::copy(&state, dir.path().join("processed.json.bak")).unwrap();
    fs::write(&state, b"{\"processed\": ").unwrap();
    let before = names(dir.path());
    let out = mamfast_run(&state, ["state", "verify"]);
    out.expect_code(1, "a corrupt main file, a valid .bak");
    assert!(out.stderr.contains("usable (from .bak"), "{}", out.stderr);
    let out = mamfast_run(&state, ["state", "verify", "--json"]);
    out.expect_code(1, "the same, --json");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["source"], ".bak");
    assert_eq!(report["usable"], true);
    assert_eq!(names(dir.path()), before, "verify changed nothing");
    // A missing main file with a backup is the same.
    fs::remove_file(&state).unwrap();
    mamfast_run(&state, ["state", "verify"]).expect_code(1, "a missing main file, a valid .bak");
    // No state at all (a first run, or a typo): usable and empty, but said.
    let out = mamfast_run(&dir.path().join("typo.json"), ["state", "verify"]);
    out.expect_code(0, "no state file");
    assert!(
        out.stderr.contains("typo.json does not exist yet"),
        "{}",
        out.stderr
    );
}

#[test]
fn prune_json_compact_is_one_line_and_json_alone_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    fs::write(&state, fixture(STATE)).unwrap();
    let compact = mamfast_run(
        &state,
        ["-q", "--dry-run", "state", "prune", "--json=compact"],
    );
    compact.expect_code(0, "--json=compact");
    assert_eq!(compact.stdout.lines().count(), 1, "{}", compact.stdout);
    let pretty = mamfast_run(&state, ["-q", "--dry-run", "state", "prune", "--json"]);
    pretty.expect_code(0, "--json");
    assert!(pretty.stdout.lines().count() > 1);
    let a: serde_json::Value = serde_json::from_str(&compact.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_str(&pretty.stdout).unwrap();
    assert_eq!(a, b, "the same report");
    // The keys in the same (sorted) order as the pretty form.
    assert!(compact
        .stdout
        .starts_with("{\"dry_run\":true,\"expired_failed\":["));
    let explicit = mamfast_run(
        &state,
        ["-q", "--dry-run", "state", "prune", "--json=pretty"],
    );
    assert_eq!(explicit.stdout, pretty.stdout);
    // Nothing to remove: still one line, and nothing on stderr.
    let empty = dir.path().join("empty.json");
    fs::write(
        &empty,
        "{\"failed\": {}, \"processed\": {}, \"version\": 2}",
    )
    .unwrap();
    let out = mamfast_run(&empty, ["-q", "state", "prune", "--json=compact"]);
    out.expect_code(0, "nothing to prune");
    assert_eq!(
        out.stdout,
        "{\"dry_run\":false,\"expired_failed\":[],\"removed\":{\"failed\":0,\"processed\":0},\"stale\":[]}\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn a_lock_held_by_the_same_process_through_three_runs_is_reported_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    fs::write(&state, fixture(STATE)).unwrap();
    let lock_path = dir.path().join("processed.json.lock");
    let record = dir.path().join("processed.json.lock-timeouts");
    let prune = || {
        with_env(
            &state,
            &[("MAMFAST_LOCK_TIMEOUT", "0s")],
            &["--quiet", "state", "prune", "--json=compact"],
        )
    };
    let me = format!("pid {}", std::process::id());
    {
        let _held = hold(&lock_path, FlockArg::LockExclusiveNonblock);
        for run in 1..=2 {
            let out = prune();
            out.expect_code(75, "a busy lock");
            assert!(out.stderr.contains(&me), "run {run}: {}", out.stderr);
        }
        let out = prune();
        out.expect_code(74, "the same holder a third time");
        assert!(
            out.stderr.contains("through 3 writes in a row") && out.stderr.contains(&me),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("looks stuck"), "{}", out.stderr);
        prune().expect_code(74, "and a fourth");
    }
    // Once a write gets the lock, the count starts over.
    prune().expect_code(0, "the lock is free");
    assert!(!record.exists(), "the count is cleared");
    let _held = hold(&lock_path, FlockArg::LockExclusiveNonblock);
    prune().expect_code(75, "busy again, but not stuck");
    // A read never counts (and never writes the record).
    fs::remove_file(&record).unwrap();
    let out = with_env(
        &state,
        &[("MAMFAST_LOCK_TIMEOUT", "0s")],
        &["state", "list"],
    );
    out.expect_code(0, "a clean read takes no lock");
    assert!(!record.exists());
}
