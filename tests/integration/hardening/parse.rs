//! "Corrupt" means only what Python's `json.load` rejects (or a top level that is not an
//! object). Everything Python reads, mamfast reads and writes back as Python's
//! `json.dump(indent=2, ensure_ascii=False, sort_keys=True)` would; an entry it cannot use as
//! it is stays byte for byte, is reported, and is refused (exit 65) only by a command that
//! must change it. A file Python reads is never moved aside nor replaced by a backup.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{mamfast_run, python3, Run};
use crate::support::{corpus_in, fixture, snapshot_without_lock};

const NEW: [&str; 5] = ["state", "mark-failed", "ZZNEW", "--error", "e"];

/// The fixture with `from` replaced by `to` (which must be there).
fn edited(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("pipeline-written.json")).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1).into_bytes()
}

/// The issue's examples and the other things Python's json.load accepts, each in a small
/// state: (what, file).
fn generated() -> Vec<(String, Vec<u8>)> {
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    let mut cases = Vec::new();
    for value in ["3.0", "true", "-1", "\"3\"", "18446744073709551616", "NaN"] {
        cases.push((
            format!("retry_count {value}"),
            edited("\"retry_count\": 2", &format!("\"retry_count\": {value}")),
        ));
    }
    cases.push((
        "checkpoints []".into(),
        edited(
            "\"checkpoints\": {\n        \"staged_at\": \"2026-11-26T09:09:35.479870\"\n      }",
            "\"checkpoints\": []",
        ),
    ));
    cases.push((
        "infohash 5".into(),
        edited("\"infohash\": null", "\"infohash\": 5"),
    ));
    let unknown = [
        "NaN".to_string(),
        "Infinity".into(),
        "-Infinity".into(),
        "1e400".into(),
        "-1E+999".into(),
        "18446744073709551616".into(),
        format!("1{}", "0".repeat(400)),
        "-0".into(),
        "1E5".into(),
        "-0.0".into(),
        "1e-400".into(),
        "{\"a\": 1, \"b\": [], \"a\": {\"c\": 2, \"c\": 3}}".into(),
        deep(900),
    ];
    for value in &unknown {
        let short: String = value.chars().take(20).collect();
        cases.push((
            format!("top-level {short}"),
            edited(
                "\"version\": 2",
                &format!("\"version\": 2, \"zz\": {value}"),
            ),
        ));
        cases.push((
            format!("in an entry {short}"),
            edited(
                "\"asin\": \"B07ABCDEF1\",",
                &format!("\"asin\": \"B07ABCDEF1\", \"zz\": {value},"),
            ),
        ));
    }
    cases.push((
        "a lone surrogate in an entry".into(),
        edited(
            "\"title\": \"Dune\"",
            "\"title\": \"Dune \\ud800 \\udc00x\"",
        ),
    ));
    cases.push((
        "duplicate version".into(),
        edited("\"version\": 2", "\"version\": 1, \"version\": 2"),
    ));
    cases.push((
        "duplicate ID, the last wins".into(),
        edited(
            "\n  \"processed\": {",
            "\n  \"processed\": {\"B0DK9T5P28\": {\"title\": \"first\"},",
        ),
    ));
    let crlf = String::from_utf8(fixture("pipeline-written.json")).unwrap();
    cases.push((
        "CR LF and tabs".into(),
        crlf.replace('\n', "\r\n\t").into_bytes(),
    ));
    cases
}

/// Every file Python reads that mamfast can use: the corpus but its `unusable-*` files, and
/// the generated cases.
fn usable_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = corpus_in("tests/python-reads")
        .into_iter()
        .filter(|(name, _)| !name.starts_with("unusable-"))
        .collect();
    files.extend(generated());
    files
}

fn state_dir(bytes: &[u8], backup: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, bytes).unwrap();
    if backup {
        fs::write(
            dir.path().join("processed.json.bak"),
            fixture("pipeline-written.json"),
        )
        .unwrap();
    }
    (dir, path)
}

/// What Python's json.dump writes for `original` with the entry `failed[ZZNEW]` and the
/// version of `written` (what mamfast wrote) put in: the bytes mamfast must have written.
/// A lone surrogate, which Python cannot encode as UTF-8, as its `\udxxx` escape.
fn python_expectation(original: &Path, written: &Path) -> Vec<u8> {
    const SCRIPT: &str = r#"
import json, sys
state = json.load(open(sys.argv[1], encoding="utf-8"))
written = json.load(open(sys.argv[2], encoding="utf-8"))
if state.get("failed") is None:
    state["failed"] = {}
state["failed"]["ZZNEW"] = written["failed"]["ZZNEW"]
state["version"] = written["version"]
text = json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True)
sys.stdout.buffer.write(text.encode("utf-8", "backslashreplace"))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(original)
        .arg(written)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn every_file_python_reads_is_written_back_with_pythons_bytes_after_a_change_elsewhere() {
    if !python3("the differential test against Python's json module") {
        return;
    }
    for (what, bytes) in usable_files() {
        let (dir, path) = state_dir(&bytes, false);
        let original = dir.path().join("original.json");
        fs::write(&original, &bytes).unwrap();
        mamfast_run(&path, NEW).expect_code(0, &what);
        let written = fs::read(&path).unwrap();
        let expected = python_expectation(&original, &path);
        assert!(
            written == expected,
            "{what}: mamfast wrote\n{}\nPython writes\n{}",
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&expected)
        );
    }
}

#[test]
fn the_corrupt_corpus_is_what_python_refuses_and_the_other_what_it_reads() {
    if !python3("checking the corpora against Python's json.load") {
        return;
    }
    const SCRIPT: &str = r#"
import json, sys
try:
    json.load(open(sys.argv[1], encoding="utf-8"))
    print("reads")
except Exception:
    print("refuses")
"#;
    let judge = |bytes: &[u8]| {
        let file = tempfile::NamedTempFile::new().unwrap();
        fs::write(file.path(), bytes).unwrap();
        let out = Command::new("python3")
            .args(["-c", SCRIPT])
            .arg(file.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    for (name, bytes) in corpus_in("tests/bad-input") {
        // Read by Python, refused by the rule: not an object, or from a newer mamfast.
        let reads = name.starts_with("top-level-") || name.contains("newer");
        let expected = if reads { "reads" } else { "refuses" };
        assert_eq!(judge(&bytes), expected, "tests/bad-input/{name}");
    }
    for (name, bytes) in corpus_in("tests/python-reads") {
        assert_eq!(judge(&bytes), "reads", "tests/python-reads/{name}");
    }
}

#[test]
fn state_list_with_a_valid_bak_beside_a_file_python_reads_moves_nothing_and_restores_nothing() {
    let mut files = corpus_in("tests/python-reads");
    files.extend(generated());
    for (what, bytes) in files {
        let (dir, path) = state_dir(&bytes, true);
        let before = snapshot_without_lock(dir.path());
        let run = mamfast_run(&path, ["state", "list"]);
        let code = if what.starts_with("unusable-") { 65 } else { 0 };
        run.expect_code(code, &what);
        assert!(!run.stderr.contains("corrupt"), "{what}: {}", run.stderr);
        assert!(
            snapshot_without_lock(dir.path()) == before,
            "{what}: files changed: {:?}",
            crate::support::names(dir.path())
        );
    }
}

#[test]
fn a_file_python_reads_but_mamfast_cannot_use_is_exit_65_saying_what_to_fix_and_left_alone() {
    for (name, bytes) in corpus_in("tests/python-reads") {
        if !name.starts_with("unusable-") {
            continue;
        }
        for args in [&["state", "list"][..], &NEW[..]] {
            let (dir, path) = state_dir(&bytes, true);
            let before = snapshot_without_lock(dir.path());
            let run = mamfast_run(&path, args);
            run.expect_code(65, &name);
            assert!(
                run.stderr.contains(&path.display().to_string())
                    && run.stderr.contains("not moved aside, no backup restored")
                    && run.stderr.contains("fix that value"),
                "{name}: {}",
                run.stderr
            );
            assert!(snapshot_without_lock(dir.path()) == before, "{name}");
        }
    }
}

#[test]
fn restore_replaces_a_file_python_reads_but_mamfast_cannot_use_keeping_it_as_rejected() {
    let unusable = edited("\"version\": 2", "\"version\": \"2\"");
    let (dir, path) = state_dir(&unusable, true);
    mamfast_run(&path, ["state", "restore", ".bak"]).expect_code(0, "restore");
    assert!(fs::read(&path).unwrap() == fixture("pipeline-written.json"));
    // Kept aside as rejected (not as `.bak`, where recovery would bring it back).
    let rejected: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("processed.json.rejected-"))
        .collect();
    assert!(rejected.len() == 1 && fs::read(&rejected[0]).unwrap() == unusable);
    assert!(crate::support::corrupt_files(dir.path()).is_empty());
}

/// A state whose failed `B08G9PRS1K` has `retry_count` 3.0 and whose processed `B07ABCDEF1`
/// has `checkpoints` `[]`.
fn two_kept_entries() -> Vec<u8> {
    let text = String::from_utf8(edited("\"retry_count\": 2", "\"retry_count\": 3.0")).unwrap();
    text.replacen(
        "\"checkpoints\": {\n        \"staged_at\": \"2026-11-26T09:09:35.479870\"\n      }",
        "\"checkpoints\": []",
        1,
    )
    .into_bytes()
}

fn refused(run: &Run, what: &str, id: &str, key: &str) {
    run.expect_code(65, what);
    assert!(
        run.stderr.contains(&format!("{id:?}"))
            && run.stderr.contains(&format!("\"{key}\""))
            && run.stderr.contains("Nothing was changed"),
        "{what}: {}",
        run.stderr
    );
}

#[test]
fn a_command_that_must_change_an_entry_kept_as_it_is_refuses_naming_it_and_the_others_work() {
    let bytes = two_kept_entries();
    let (dir, path) = state_dir(&bytes, false);
    let failed = ["state", "mark-failed", "B08G9PRS1K", "--error", "again"];
    refused(
        &mamfast_run(&path, failed),
        "mark-failed",
        "B08G9PRS1K",
        "retry_count",
    );
    let stage = ["state", "checkpoint", "B07ABCDEF1", "metadata"];
    refused(
        &mamfast_run(&path, stage),
        "checkpoint",
        "B07ABCDEF1",
        "checkpoints",
    );
    let done = ["state", "mark-processed", "B07ABCDEF1", "--force"];
    refused(
        &mamfast_run(&path, done),
        "mark-processed",
        "B07ABCDEF1",
        "checkpoints",
    );
    assert!(
        fs::read(&path).unwrap() == bytes,
        "a refusal changed the file"
    );

    // Every other entry works, and the kept ones are written back as they were.
    let run = mamfast_run(
        &path,
        ["state", "checkpoint", "B0DK9T5P28", "uploaded", "--force"],
    );
    run.expect_code(0, "checkpoint of another entry");
    assert!(
        run.stderr.contains("2 entries mamfast cannot use"),
        "{}",
        run.stderr
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"retry_count\": 3.0") && text.contains("\"checkpoints\": []"));

    // Prune keeps them; removing one (retry, clear) is what an operator asks for: done.
    mamfast_run(&path, ["state", "prune", "--failed-older-than", "0"]).expect_code(0, "prune");
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("\"retry_count\": 3.0"));
    mamfast_run(&path, ["state", "retry", "B08G9PRS1K"]).expect_code(0, "retry");
    mamfast_run(&path, ["state", "clear", "B07ABCDEF1"]).expect_code(0, "clear");
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("B08G9PRS1K") && !text.contains("B07ABCDEF1"),
        "{text}"
    );
    let run = mamfast_run(
        &path,
        ["state", "mark-failed", "B08G9PRS1K", "--error", "x"],
    );
    run.expect_code(0, "mark-failed once removed");
    assert!(!run.stderr.contains("cannot use"), "{}", run.stderr);
    drop(dir);
}

#[test]
fn verify_warns_about_each_entry_kept_as_it_is_and_the_state_stays_usable() {
    let (_dir, path) = state_dir(&two_kept_entries(), false);
    let run = mamfast_run(&path, ["state", "verify"]);
    run.expect_code(0, "verify");
    for (map, id, key) in [
        ("failed", "B08G9PRS1K", "retry_count"),
        ("processed", "B07ABCDEF1", "checkpoints"),
    ] {
        assert!(
            run.stderr
                .contains(&format!("warning: {map} {id:?}: \"{key}\" is ")),
            "{map} {id}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("usable"), "{}", run.stderr);
    let run = mamfast_run(&path, ["state", "show", "B08G9PRS1K", "--json"]);
    run.expect_code(0, "show");
    assert!(
        run.stdout.contains("\"retry_count\": 3.0"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_lazy_load_equals_the_full_parse_for_every_file_python_reads() {
    use mamfast::store::format::{parse_state, parse_state_lazy, write_state};
    let written = |state: &mamfast::State| {
        let mut bytes = Vec::new();
        write_state(&mut bytes, state).unwrap();
        bytes
    };
    let mut files = corpus_in("tests/python-reads");
    files.extend(generated());
    for (what, bytes) in files {
        let full = parse_state(&bytes);
        let lazy = parse_state_lazy(bytes.clone());
        assert_eq!(lazy, full, "{what}");
        if let Ok(state) = full {
            // Written back, it reads back to the same bytes.
            let again = parse_state(&written(&state)).unwrap();
            assert!(written(&again) == written(&state), "{what}");
        }
    }
}
