//! mamfast and the Python tool on the same `processed.json`: each reads what the other wrote,
//! byte for byte, and they share the lock.
//!
//! - A file written by the mamfast CLI, loaded by Python's `json.load` and dumped again with
//!   `json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)`, gives the same bytes.
//! - A file written that way by Python (non-ASCII, escapes, nested unknown keys, floats, big
//!   integers) is loaded by mamfast, and `state export` gives the same bytes; a mamfast write
//!   keeps every unknown key.
//! - A Python process holding `fcntl.flock(LOCK_EX)` on `processed.json.lock` makes a mamfast
//!   write wait, then time out with exit 75; once Python releases it, the write goes through.
//!
//! Each test is skipped, with the reason printed, when `python3` cannot be run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Python's own writer, as the Python tool calls it.
const PY_DUMP: &str = "json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)";

/// `python3`, or why it cannot be used (the test is then skipped).
fn python() -> Option<PathBuf> {
    match Command::new("python3")
        .arg("-c")
        .arg("import json, fcntl")
        .output()
    {
        Ok(out) if out.status.success() => Some(PathBuf::from("python3")),
        Ok(out) => {
            eprintln!(
                "skipped: python3 cannot import json and fcntl: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: python3 cannot be run ({e})");
            None
        }
    }
}

/// Runs a Python script with `args`; panics with its stderr if it fails.
fn run_python(python: &Path, script: &str, args: &[&Path]) -> Vec<u8> {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Python loads `from` and writes it back to `to` exactly as the Python tool writes.
fn python_redump(python: &Path, from: &Path, to: &Path) {
    let script = format!(
        "import json, sys\n\
         with open(sys.argv[1], encoding='utf-8') as f:\n    state = json.load(f)\n\
         with open(sys.argv[2], 'w', encoding='utf-8') as f:\n    {PY_DUMP}\n"
    );
    run_python(python, &script, &[from, to]);
}

/// The mamfast binary in a hermetic environment: no config file, a home that does not exist,
/// a fixed clock, and the state file given.
fn mamfast(dir: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamfast"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("MAMFAST_") || key.starts_with("XDG_") || key == "NO_COLOR" {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir)
        .env("MAMFAST_CONFIG", "")
        .env("MAMFAST_STATE_FILE", state)
        .env("MAMFAST_NOW", "2026-11-26T10:00:00+00:00")
        .env("HOME", "/nonexistent/home")
        .env("TZ", "UTC");
    cmd
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run mamfast");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_file_mamfast_wrote_is_what_python_writes_after_loading_it() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    std::fs::create_dir(dir.path().join("staging")).unwrap();
    let title = "Ünïcödé “quoted” \\ back\"slash\" — 転生したらスライムだった件 😀";
    run_ok(mamfast(dir.path(), &state).args([
        "state",
        "mark-failed",
        "B0FAIL0001",
        "--error",
        "Audnex 503:\tupstream\nunavailable",
        "--error-type",
        "NetworkError",
        "--title",
        title,
        "--author",
        "伏瀬",
        "--source-dir",
        "lib/Some Book",
    ]));
    run_ok(mamfast(dir.path(), &state).args([
        "state",
        "mark-failed",
        "B0FAIL0001",
        "--error",
        "again",
    ]));
    run_ok(mamfast(dir.path(), &state).args([
        "state",
        "checkpoint",
        "B0CHECK001",
        "staged",
        "--staging-dir",
        "staging",
        "--title",
        "Dune Messiah",
    ]));
    run_ok(mamfast(dir.path(), &state).args(["state", "checkpoint", "B0CHECK001", "metadata"]));
    run_ok(mamfast(dir.path(), &state).args([
        "state",
        "mark-processed",
        "/lib/No ASIN/Ça va",
        "--status",
        "UPLOADED",
        "--infohash",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    ]));

    let redumped = dir.path().join("python.json");
    python_redump(&python, &state, &redumped);
    let ours = std::fs::read(&state).unwrap();
    let theirs = std::fs::read(&redumped).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "Python writes the state mamfast wrote differently"
    );
    assert_eq!(ours, theirs);

    // And Python reads the values mamfast meant, not just the same bytes.
    let seen = run_python(
        &python,
        "import json, sys\n\
         s = json.load(open(sys.argv[1], encoding='utf-8'))\n\
         f = s['failed']['B0FAIL0001']\n\
         print(json.dumps([f['title'], f['author'], f['error'], f['retry_count'], \
         s['processed']['B0CHECK001']['status'], s['processed']['/lib/No ASIN/Ça va']['asin']]))",
        &[&state],
    );
    let seen: Value = serde_json::from_slice(&seen).unwrap();
    assert_eq!(
        seen,
        serde_json::json!([title, "伏瀬", "again", 2, "METADATA_FETCHED", null])
    );
}

/// A state as the Python tool may have written it, with what a byte-exact writer finds hard.
const PYTHON_STATE: &str = r#"
import json, sys
state = {
    "version": 2,
    "x_meta": {"owner": "pipeline", "nested": {"z": [1, 2.5, {"deep": None}], "a": True},
               "empty_list": [], "empty_map": {}},
    "processed": {
        "B0PY000001": {
            "asin": "B0PY000001", "title": "Ünïcödé “quoted” \\ slash\t\"tab\"\n\u0001\u001f\x7f😀",
            "author": "伏瀬", "processed_at": "2026-11-26T09:09:34.859315",
            "staging_dir": "/srv/mam/staging/ü", "torrent_path": None, "infohash": None,
            "status": "STAGED", "checkpoints": {"staged_at": "2026-11-26T09:09:35", "indexed_at": "x"},
            "score": 4.75, "ratio": 1e-07, "huge": 1e+100, "neg_zero": -0.0,
            "big": 123456789012345678901234567890, "negative": -42,
            "mam": {"ids": [1, 2, 3], "flags": {"freeleech": False}},
        },
        "/lib/No ASIN": {"asin": None, "status": "SOMETHING_NEWER", "title": None},
    },
    "failed": {
        "B0PY000002": {"asin": "B0PY000002", "error": "Audnex 503", "failed_at": "2025-07-19T00:00:00",
                       "retry_count": 3, "path": "/lib/Failed", "attempts": [{"at": 1.0}]},
    },
}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)
"#;

#[test]
fn a_file_python_wrote_is_exported_byte_for_byte_and_survives_a_write() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    run_python(&python, PYTHON_STATE, &[&state]);
    let written = std::fs::read(&state).unwrap();

    let out = run_ok(mamfast(dir.path(), &state).args(["state", "export"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&written)
    );
    assert_eq!(
        out.stdout, written,
        "state export differs from Python's bytes"
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let exported = dir.path().join("exported.json");
    run_ok(
        mamfast(dir.path(), &state)
            .args(["state", "export", "--output"])
            .arg(&exported),
    );
    assert_eq!(std::fs::read(&exported).unwrap(), written);

    // A write changes what it must and keeps everything else, in Python's format.
    run_ok(mamfast(dir.path(), &state).args([
        "state",
        "checkpoint",
        "B0PY000001",
        "metadata",
        "--title",
        "Renamed ✓",
    ]));
    let redumped = dir.path().join("python.json");
    python_redump(&python, &state, &redumped);
    assert_eq!(
        std::fs::read(&state).unwrap(),
        std::fs::read(&redumped).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.path().join("processed.json.bak")).unwrap(),
        written
    );

    let before: Value = serde_json::from_slice(&written).unwrap();
    let mut after: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let entry = &mut after["processed"]["B0PY000001"];
    assert_eq!(entry["title"], "Renamed ✓");
    assert_eq!(entry["status"], "METADATA_FETCHED");
    assert_eq!(
        entry["checkpoints"]["metadata_at"],
        "2026-11-26T10:00:00.000000+00:00"
    );
    // Undo the three intended changes: what is left must be exactly what Python wrote.
    entry["title"] = before["processed"]["B0PY000001"]["title"].clone();
    entry["status"] = "STAGED".into();
    entry["checkpoints"]
        .as_object_mut()
        .unwrap()
        .remove("metadata_at");
    assert_eq!(after, before);
}

/// Holds an exclusive `flock` on argv[1] until its stdin closes, as the Python tool locks.
const PY_HOLD_LOCK: &str = r#"
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
fcntl.flock(fd, fcntl.LOCK_UN)
print("released", flush=True)
"#;

#[test]
fn a_python_lock_holds_mamfast_off_until_it_is_released() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    std::fs::write(
        &state,
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline-written.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let original = std::fs::read(&state).unwrap();
    let lock = dir.path().join("processed.json.lock");

    let mut holder = Command::new(&python)
        .arg("-c")
        .arg(PY_HOLD_LOCK)
        .arg(&lock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let mut said = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    // While Python holds the lock, a write gives up after the timeout: exit 75, nothing written.
    let started = Instant::now();
    let out = mamfast(dir.path(), &state)
        .env("MAMFAST_LOCK_TIMEOUT", "300ms")
        .args(["state", "retry", "B08G9PRS1K"])
        .output()
        .unwrap();
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );
    assert!(stderr.contains(&lock.display().to_string()), "{stderr}");
    assert!(stderr.contains("python"), "the holder is named: {stderr}");
    assert_eq!(std::fs::read(&state).unwrap(), original);

    // A write that may wait long enough goes through once Python lets go.
    let started = Instant::now();
    let writer = mamfast(dir.path(), &state)
        .env("MAMFAST_LOCK_TIMEOUT", "30s")
        .args(["state", "retry", "B08G9PRS1K"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    drop(holder.stdin.take()); // Python releases the lock.
    line.clear();
    said.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "released");
    let out = writer.wait_with_output().unwrap();
    let waited = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        waited >= Duration::from_millis(400),
        "did not wait: {waited:?}"
    );
    assert!(holder.wait().unwrap().success());
    let after: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(after["failed"].get("B08G9PRS1K").is_none(), "{after}");
    assert_eq!(
        std::fs::read(dir.path().join("processed.json.bak")).unwrap(),
        original
    );

    // Neither leaves the lock held: Python can take it at once.
    let mut check = Command::new(&python)
        .arg("-c")
        .arg(
            "import fcntl, os, sys\n\
             fd = os.open(sys.argv[1], os.O_RDWR)\n\
             try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n",
        )
        .arg(&lock)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(check.wait().unwrap().success(), "the lock is free again");
}
