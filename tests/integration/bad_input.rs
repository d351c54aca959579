//! Broken state files, end to end through the binary: every file in `tests/bad-input/` (each
//! named for what is wrong with it) is recovered from a valid `.bak` (exit 0, the broken bytes
//! kept byte for byte as `.corrupt-…`), and without a backup is a clear exit-65 error naming the
//! file, which is left as it was. A file from a newer mamfast is never passed over for a backup
//! nor rewritten. Nothing ever panics.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::cli::{mamfast_run, Run};
use crate::support::*;

/// The corpus: (file name, bytes), sorted by name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    corpus_in("tests/bad-input")
}

/// Files written by a newer mamfast: refused without falling back to a backup.
fn is_newer(name: &str) -> bool {
    name.contains("newer")
}

const READ: [&str; 2] = ["state", "list"];
const WRITE: [&str; 5] = ["state", "mark-failed", "B0NEWFAIL1", "--error", "e"];

/// A directory holding `bytes` as the main file and, if given, `backup` as `.bak`.
fn setup(main: &[u8], backup: Option<&[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, main).unwrap();
    if let Some(backup) = backup {
        fs::write(dir.path().join("processed.json.bak"), backup).unwrap();
    }
    (dir, path)
}

fn assert_names_the_file(run: &Run, path: &Path, what: &str) {
    assert!(
        run.stderr.contains(&path.display().to_string()),
        "{what}: the error does not name {}:\n{}",
        path.display(),
        run.stderr
    );
}

#[test]
fn the_corpus_covers_what_the_issue_lists() {
    // Files Python's json.load reads are not corrupt: they moved to tests/python-reads/
    // (hardening/parse.rs), which covers the rest of the list.
    let mut names: Vec<String> = corpus().into_iter().map(|(n, _)| n).collect();
    names.extend(corpus_in("tests/python-reads").into_iter().map(|(n, _)| n));
    assert!(names.len() >= 30, "{} files", names.len());
    for wanted in [
        "truncated",
        "empty",
        "only-whitespace",
        "version-as-string",
        "processed-is-a-list",
        "entry-is-a-number",
        "retry-count-is-a-string",
        "retry-count-is-a-float",
        "retry-count-is-negative",
        "retry-count-is-1e30",
        "checkpoints-is-a-list",
        "status-is-a-number",
        "duplicate-top-level-key",
        "duplicate-key-in-entry",
        "duplicate-id",
        "nan",
        "infinity",
        "1e400",
        "nesting-10000",
        "non-utf8",
        "bom",
        "top-level-array",
        "top-level-string",
        "top-level-null",
        "surrogate",
        "trailing-garbage",
        "nul-byte",
        "version-0",
        "version-minus-1",
        "version-99",
    ] {
        assert!(
            names.iter().any(|n| n.contains(wanted)),
            "no corpus file for {wanted}"
        );
    }
}

#[test]
fn with_a_valid_backup_every_broken_file_is_recovered_and_kept_aside() {
    let backup = fixture("pipeline-written.json");
    for (name, bad) in corpus().into_iter().filter(|(n, _)| !is_newer(n)) {
        for args in [&READ[..], &WRITE[..]] {
            let what = format!("{name} ({})", args[1]);
            let (dir, path) = setup(&bad, Some(&backup));
            let run = mamfast_run(&path, args);
            run.expect_code(0, &what);
            assert!(
                run.stderr.contains("was corrupt") && run.stderr.contains("processed.json.bak"),
                "{what}: no recovery notice:\n{}",
                run.stderr
            );
            let corrupt = corrupt_files(dir.path());
            assert_eq!(corrupt.len(), 1, "{what}: {:?}", names(dir.path()));
            assert!(
                fs::read(&corrupt[0]).unwrap() == bad,
                "{what}: the corrupt file was not kept byte for byte"
            );
            let (store, _) = store(&path);
            let state = store.read().unwrap();
            if args == READ {
                assert!(fs::read(&path).unwrap() == backup, "{what}: main != backup");
            } else {
                assert_eq!(state.failed["B0NEWFAIL1"].retry_count, Some(1), "{what}");
                assert!(state.failed.contains_key("B08G9PRS1K"), "{what}");
            }
            assert!(temp_files(dir.path()).is_empty(), "{what}");
        }
    }
}

#[test]
fn without_a_backup_every_broken_file_is_exit_65_naming_it_and_left_alone() {
    for (name, bad) in corpus() {
        for args in [&READ[..], &WRITE[..]] {
            let what = format!("{name} ({})", args[1]);
            let (dir, path) = setup(&bad, None);
            let before = snapshot_without_lock(dir.path());
            let run = mamfast_run(&path, args);
            run.expect_code(65, &what);
            assert_names_the_file(&run, &path, &what);
            let expected = if is_newer(&name) {
                "newer than this mamfast"
            } else {
                "no valid backup"
            };
            assert!(run.stderr.contains(expected), "{what}:\n{}", run.stderr);
            assert!(
                snapshot_without_lock(dir.path()) == before,
                "{what}: files changed: {:?}",
                names(dir.path())
            );
        }
    }
}

#[test]
fn a_newer_file_is_never_passed_over_for_a_backup_nor_rewritten() {
    let backup = fixture("pipeline-written.json");
    let newer: Vec<_> = corpus().into_iter().filter(|(n, _)| is_newer(n)).collect();
    assert!(newer.len() >= 2);
    for (name, bytes) in newer {
        for args in [&READ[..], &WRITE[..], &["state", "verify"][..]] {
            let what = format!("{name} ({})", args[1]);
            let (dir, path) = setup(&bytes, Some(&backup));
            let run = mamfast_run(&path, args);
            run.expect_code(65, &what);
            assert_names_the_file(&run, &path, &what);
            assert!(
                run.stderr.contains("Upgrade mamfast"),
                "{what}:\n{}",
                run.stderr
            );
            assert!(fs::read(&path).unwrap() == bytes, "{what}: main rewritten");
            assert!(
                fs::read(dir.path().join("processed.json.bak")).unwrap() == backup,
                "{what}: backup touched"
            );
            assert!(corrupt_files(dir.path()).is_empty(), "{what}");
        }
    }
}

#[test]
fn a_lock_file_holding_garbage_is_still_just_a_lock() {
    let (dir, path) = setup(&fixture("pipeline-written.json"), None);
    let lock = dir.path().join("processed.json.lock");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 131 % 256) as u8).collect();
    fs::write(&lock, &garbage).unwrap();
    mamfast_run(&path, WRITE).expect_code(0, "write");
    mamfast_run(&path, READ).expect_code(0, "read");
    mamfast_run(&path, ["state", "verify"]).expect_code(0, "verify");
    assert!(
        fs::read(&lock).unwrap() == garbage,
        "the lock file's bytes changed"
    );
    let (store, _) = store(&path);
    assert_eq!(
        store.read().unwrap().failed["B0NEWFAIL1"].retry_count,
        Some(1)
    );
}

#[test]
fn the_lazy_load_of_an_update_judges_every_broken_file_as_the_full_parse_does() {
    use mamfast::store::format::{parse_state, parse_state_lazy};
    for (name, bad) in corpus() {
        let full = parse_state(&bad).map(|_| ());
        let lazy = parse_state_lazy(bad.clone()).map(|_| ());
        assert_eq!(lazy, full, "{name}");
    }
}
