//! Many processes at once on one state file: mamfast writers (the binary, `state mark-failed`
//! of the same ID) and Python writers doing what the Python tool does (`fcntl.flock` on
//! `processed.json.lock`, `json.load`, `retry_count += 1`, `json.dump` into a temp file,
//! `fsync`, `os.replace`), while mamfast and Python readers (`state show --json`; `json.load`
//! under `LOCK_SH`) read. No increment is lost, and no reader ever sees a partial file.
//!
//! Without `python3` the Python parts are skipped (the reason is printed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use mamfast::sample;
use mamfast::store::format::to_python_json;

use crate::support::cli::{mamfast, python3, run};
use crate::support::*;

const ID: &str = "B0SAMEID01";
const MAMFAST_WRITERS: usize = 4;
const MAMFAST_WRITES: usize = 25;
const PYTHON_WRITERS: usize = 2;
const PYTHON_WRITES: usize = 25;

/// Reads under `LOCK_SH` until `<main>.stop` exists; every read must be a whole state whose
/// count never goes down. Prints the number of reads.
const PYTHON_READER: &str = r#"
import fcntl, json, os, sys, time
main, key = sys.argv[1], sys.argv[2]
reads, last = 0, -1
while not os.path.exists(main + ".stop"):
    with open(main + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        with open(main, encoding="utf-8") as f:
            state = json.load(f)
        fcntl.flock(lock, fcntl.LOCK_UN)
    count = state["failed"][key]["retry_count"]
    if count < last:
        sys.exit(f"retry_count went down: {last} -> {count}")
    last, reads = count, reads + 1
    time.sleep(0.01)
print(reads)
"#;

/// A state of a few hundred entries, with `ID` failed zero times.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let mut state = sample::realistic_state(300, 3);
    let mut rng = sample::Rng::new(5);
    let mut entry = sample::failed_entry(&mut rng, ID);
    entry.retry_count = Some(0);
    state.failed.insert(ID.into(), entry);
    fs::write(&path, to_python_json(&state)).unwrap();
    (dir, path)
}

fn python(script: &str, args: &[&str]) -> Child {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3")
}

fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn count_in(path: &Path) -> u64 {
    let (store, _) = store(path);
    store.read().unwrap().failed[ID].retry_count.unwrap()
}

#[test]
fn concurrent_writers_never_lose_an_increment_and_readers_see_only_whole_files() {
    let (dir, path) = setup();
    let with_python = python3("the Python writers and readers");
    let main = path.to_str().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));

    // A mamfast reader: `state show --json` in a loop, each output whole and never going down.
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (path, stop, reads) = (path.clone(), stop.clone(), reads.clone());
        thread::spawn(move || {
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = run(mamfast(&path), ["state", "show", ID, "--json"]);
                out.expect_code(0, "state show");
                let doc: serde_json::Value = serde_json::from_str(&out.stdout)
                    .unwrap_or_else(|e| panic!("partial output ({e}): {}", out.stdout));
                let count = doc["failed"]["retry_count"].as_u64().unwrap();
                assert!(count >= last, "retry_count went down: {last} -> {count}");
                last = count;
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let py_reader = with_python.then(|| python(PYTHON_READER, &[&main, ID]));

    let writers: Vec<_> = (0..MAMFAST_WRITERS)
        .map(|w| {
            let path = path.clone();
            thread::spawn(move || {
                for i in 0..MAMFAST_WRITES {
                    let mut cmd = mamfast(&path);
                    cmd.env("MAMFAST_LOCK_TIMEOUT", "120s");
                    let error = format!("writer {w} write {i}");
                    run(cmd, ["state", "mark-failed", ID, "--error", &error])
                        .expect_code(0, "mark-failed");
                }
            })
        })
        .collect();
    let writes = PYTHON_WRITES.to_string();
    let py_writers: Vec<Child> = if with_python {
        (0..PYTHON_WRITERS)
            .map(|_| python(PYTHON_WRITER, &[&main, &writes, ID]))
            .collect()
    } else {
        Vec::new()
    };

    for writer in writers {
        writer.join().unwrap();
    }
    for child in py_writers {
        finish(child, "a Python writer");
    }
    stop.store(true, Ordering::Relaxed);
    fs::write(dir.path().join("processed.json.stop"), "").unwrap();
    reader.join().unwrap();
    assert!(
        reads.load(Ordering::Relaxed) > 0,
        "the mamfast reader never read"
    );
    let py_reads = py_reader.map(|child| {
        let py_reads: usize = finish(child, "the Python reader").trim().parse().unwrap();
        assert!(py_reads > 0, "the Python reader never read");
        py_reads
    });

    let python_writes = if with_python {
        PYTHON_WRITERS * PYTHON_WRITES
    } else {
        0
    };
    let expected = (MAMFAST_WRITERS * MAMFAST_WRITES + python_writes) as u64;
    assert_eq!(count_in(&path), expected);
    let (store, _) = store(&path);
    let state = store.read().unwrap();
    assert_eq!(state.processed.len() + state.failed.len(), 301);
    assert!(temp_files(dir.path()).is_empty(), "{:?}", names(dir.path()));
    assert_no_shared_inode(&store);
    for generation in 0..3 {
        let bak = store.backup_path(generation);
        if bak.exists() {
            let bytes = fs::read(&bak).unwrap();
            assert!(
                mamfast::store::format::parse_state(&bytes).is_ok(),
                "{} is not a whole state",
                bak.display()
            );
        }
    }
    // Whoever wrote last, the file is in the one byte format both tools write.
    assert!(fs::read(&path).unwrap() == to_python_json(&state));
    eprintln!(
        "{expected} increments ({MAMFAST_WRITERS}x{MAMFAST_WRITES} mamfast, {python_writes} \
         Python), none lost; whole files seen by {} `state show` and {} Python reads",
        reads.load(Ordering::Relaxed),
        py_reads.map_or("no".into(), |n| n.to_string())
    );
}
