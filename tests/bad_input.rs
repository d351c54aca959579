//! Every broken state file of `tests/bad-input/` through the real binary: recovered from a
//! backup when there is one (broken bytes kept), a clear exit-65 error when there is none, and
//! never a panic.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mamfast::State;

const BACKUP_FIXTURE: &str = "pipeline-written.json";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(repo("tests/bad-input"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Runs mamfast hermetically (own HOME, no config file, no inherited MAMFAST_*).
fn mamfast(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamfast"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MAMFAST_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", dir)
        .env("MAMFAST_CONFIG", "")
        .env("MAMFAST_LOCK_TIMEOUT", "5s")
        .arg("--state-file")
        .arg(dir.join("processed.json"))
        .args(args)
        .output()
        .unwrap()
}

fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("processed.json.corrupt-")
        })
        .collect();
    found.sort();
    found
}

fn assert_no_panic(name: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "{name}: mamfast panicked:\n{stderr}"
    );
}

#[test]
fn the_corpus_is_large_and_every_file_is_refused_by_the_parser() {
    let files = corpus();
    assert!(files.len() >= 30, "only {} broken files", files.len());
    for (name, bytes) in files {
        let parsed = serde_json::from_slice::<State>(&bytes);
        assert!(parsed.is_err(), "{name} parsed as a state");
    }
}

#[test]
fn a_broken_main_with_a_valid_backup_is_recovered_and_kept() {
    let backup = fs::read(repo("tests/fixtures").join(BACKUP_FIXTURE)).unwrap();
    for (name, bytes) in corpus() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("processed.json");
        fs::write(&main, &bytes).unwrap();
        fs::write(dir.path().join("processed.json.bak"), &backup).unwrap();

        let out = mamfast(dir.path(), &["state", "list", "--json"]);
        assert_no_panic(&name, &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(stderr.contains("warning:"), "{name}: no warning:\n{stderr}");
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: stdout is not one JSON document: {e}"));
        assert_eq!(listed["stats"]["processed"], 2, "{name}");
        assert_eq!(listed["stats"]["failed"], 1, "{name}");

        assert_eq!(
            fs::read(&main).unwrap(),
            backup,
            "{name}: main not restored"
        );
        let kept = corrupt_files(dir.path());
        assert_eq!(kept.len(), 1, "{name}: {kept:?}");
        assert_eq!(
            fs::read(&kept[0]).unwrap(),
            bytes,
            "{name}: broken bytes changed"
        );
    }
}

#[test]
fn a_broken_main_without_a_backup_is_a_clear_data_error_and_nothing_changes() {
    for (name, bytes) in corpus() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("processed.json");
        fs::write(&main, &bytes).unwrap();

        for args in [
            &["state", "list"][..],
            &["state", "mark-failed", "B1", "--error", "x"][..],
        ] {
            let out = mamfast(dir.path(), args);
            assert_no_panic(&name, &out);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(65), "{name} {args:?}: {stderr}");
            assert!(
                stderr.contains(&main.display().to_string()),
                "{name}: {stderr}"
            );
            assert!(stderr.contains("Recovery options"), "{name}: {stderr}");
            assert_eq!(fs::read(&main).unwrap(), bytes, "{name}: file changed");
            assert!(corrupt_files(dir.path()).is_empty(), "{name}");
        }
    }
}

#[test]
fn a_newer_schema_is_refused_without_falling_back_and_never_rewritten() {
    let newer = fs::read(repo("tests/odd-input/newer-version-99.json")).unwrap();
    let backup = fs::read(repo("tests/fixtures").join(BACKUP_FIXTURE)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("processed.json");
    fs::write(&main, &newer).unwrap();
    fs::write(dir.path().join("processed.json.bak"), &backup).unwrap();
    for args in [
        &["state", "list"][..],
        &["state", "retry", "B08G9PRS1K"][..],
    ] {
        let out = mamfast(dir.path(), args);
        assert_no_panic("newer", &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{stderr}");
        assert!(stderr.contains("schema version 99"), "{stderr}");
        assert!(stderr.contains("Upgrade mamfast"), "{stderr}");
    }
    assert_eq!(fs::read(&main).unwrap(), newer);
    assert_eq!(
        fs::read(dir.path().join("processed.json.bak")).unwrap(),
        backup
    );
    assert!(corrupt_files(dir.path()).is_empty());
}

#[test]
fn a_float_too_large_for_f64_in_an_unknown_field_is_kept_as_written() {
    let odd = fs::read(repo("tests/odd-input/huge-float-in-unknown-field.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("processed.json");
    fs::write(&main, &odd).unwrap();
    let out = mamfast(dir.path(), &["state", "retry", "B08G9PRS1K"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = String::from_utf8(fs::read(&main).unwrap()).unwrap();
    // serde_json keeps the number's text (spelled 1e+400); Python's json.load reads it as inf.
    assert!(written.contains("\"x_score\": 1e+400"), "{written}");
    assert!(!written.contains("Infinity"), "{written}");
    // What was written must load again (Python's "Infinity" would not).
    let out = mamfast(dir.path(), &["state", "list"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_garbage_lock_file_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("processed.json.lock"), b"\x00garbage{{{").unwrap();
    let out = mamfast(dir.path(), &["state", "mark-failed", "B1", "--error", "x"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mamfast(dir.path(), &["state", "show", "B1", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["failed"]["retry_count"], 1);
    assert!(dir.path().join("processed.json.lock").exists());
}
