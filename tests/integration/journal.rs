//! The journal (`processed.json.log`): one record per write, by the binary and the library;
//! none in a dry run; changes made by another program (the Python tool's way of writing) and
//! writes killed before their record noticed and recorded; concurrent writers one record
//! each, none interleaved; rotation; a journal that cannot be written never blocks a write.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use mamfast::state::diff::StateDiff;
use mamfast::store::format::to_python_json;
use mamfast::store::{JournalRecord, JournalRecordKind};
use mamfast::{sample, Outcome, Store};
use serde_json::{json, Value};

use crate::support::cli::{mamfast, mamfast_run, run};
use crate::support::*;

const ID: &str = "B0SAMEID01";

/// A state of `n` entries with `ID` failed zero times.
fn setup(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let mut state = sample::realistic_state(n, 3);
    let mut rng = sample::Rng::new(5);
    let mut entry = sample::failed_entry(&mut rng, ID);
    entry.retry_count = Some(0);
    state.failed.insert(ID.into(), entry);
    fs::write(&path, to_python_json(&state)).unwrap();
    (dir, path)
}

fn journal_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.log", path.display()))
}

/// Every line of the journal parsed as a record: a line that is not one fails the test.
fn records(path: &Path) -> Vec<JournalRecord> {
    let text = fs::read_to_string(journal_of(path)).unwrap_or_default();
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a record ({e}): {line}"))
        })
        .collect()
}

/// Read from the file as it is: a `Store` read would record what it finds in the journal.
fn retry_count(path: &Path) -> u64 {
    let state = mamfast::store::format::parse_state(&fs::read(path).unwrap()).unwrap();
    state.failed[ID].retry_count.unwrap()
}

/// The `retry_count` changes of `ID` the records tell of, in order, as (before, after).
fn retry_steps(records: &[JournalRecord]) -> Vec<(u64, u64)> {
    records
        .iter()
        .filter_map(|r| r.changes.as_ref())
        .filter_map(|c| c.failed.changed.get(ID))
        .filter_map(|fields| fields.get("retry_count"))
        .map(|c| {
            let n = |v: &Option<Value>| v.as_ref().and_then(Value::as_u64).unwrap();
            (n(&c.before), n(&c.after))
        })
        .collect()
}

/// The main file's (size, mtime, inode), as a record's `after` names it.
fn fingerprint_matches(record: &JournalRecord, path: &Path) -> bool {
    let meta = fs::metadata(path).unwrap();
    let after = record.after.as_ref().expect("an after");
    (after.size, after.mtime_ns, after.ino)
        == (
            meta.len(),
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            meta.ino(),
        )
}

/// Writes a new state the way the Python tool does, under its lock: `shutil.copy2(main,
/// bak)` (bytes and modification time), `json.dump` to a temp file, `fsync`, `os.replace`.
fn python_style_write(path: &Path, change: impl FnOnce(&mut mamfast::State)) {
    let lock = File::options()
        .create(true)
        .append(true)
        .open(format!("{}.lock", path.display()))
        .unwrap();
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let bak = PathBuf::from(format!("{}.bak", path.display()));
    fs::copy(path, &bak).unwrap();
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    File::options()
        .write(true)
        .open(&bak)
        .unwrap()
        .set_times(FileTimes::new().set_modified(mtime))
        .unwrap();
    let mut state = mamfast::store::format::parse_state(&fs::read(path).unwrap()).unwrap();
    change(&mut state);
    let tmp = path.with_extension("tmp-python");
    let mut f = File::create(&tmp).unwrap();
    f.write_all(&to_python_json(&state)).unwrap();
    f.sync_all().unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn every_write_appends_one_record_naming_what_changed_and_a_dry_run_none() {
    let (_dir, path) = setup(20);
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e1"]).expect_code(0, "mark");
    mamfast_run(
        &path,
        ["state", "mark-processed", "B0NEWONE01", "--title", "T"],
    )
    .expect_code(0, "mark-processed");
    mamfast_run(&path, ["-n", "state", "retry", ID]).expect_code(0, "dry retry");
    mamfast_run(&path, ["state", "retry", ID]).expect_code(0, "retry");
    // Nothing to change: no write, no record.
    mamfast_run(&path, ["state", "retry", ID]).expect_code(0, "retry again");
    let all = records(&path);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all.iter().all(|r| r.kind == JournalRecordKind::Write));
    assert_eq!(
        all[0].command[1..],
        [
            "--state-file",
            path.to_str().unwrap(),
            "state",
            "mark-failed",
            ID,
            "--error",
            "e1"
        ]
    );
    assert!(all[0].pid > 0 && all[0].uid == nix::unistd::getuid().as_raw());
    let c0 = all[0].changes.as_ref().unwrap();
    assert_eq!(c0.failed.changed[ID]["retry_count"].before, Some(json!(0)));
    assert_eq!(c0.failed.changed[ID]["retry_count"].after, Some(json!(1)));
    assert_eq!(c0.failed.changed[ID]["error"].after, Some(json!("e1")));
    let c1 = all[1].changes.as_ref().unwrap();
    assert_eq!(c1.processed.added["B0NEWONE01"]["title"], json!("T"));
    assert_eq!(c1.processed.added.len() + c1.failed.changed.len(), 1);
    let c2 = all[2].changes.as_ref().unwrap();
    assert_eq!(c2.failed.removed[ID]["retry_count"], json!(1));
    // Each record starts where the one before it ended, and the last is the main file.
    for pair in all.windows(2) {
        assert_eq!(pair[0].after, pair[1].before);
    }
    assert!(fingerprint_matches(all.last().unwrap(), &path));
}

#[test]
fn library_updates_restores_and_recoveries_are_journaled() {
    let (_dir, path) = setup(10);
    let (store, _) = store(&path);
    store
        .update(|s| {
            s.extra.insert("x_gen".into(), 1.into());
            Ok(Outcome::Changed(()))
        })
        .unwrap();
    store.restore(0).unwrap();
    // A corrupt main file, recovered from `.bak` by the next read.
    fs::write(&path, b"{\"version\": 2, \"proc").unwrap();
    store.read().unwrap();
    let all = records(&path);
    let kinds: Vec<_> = all.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            JournalRecordKind::Write,
            JournalRecordKind::Restore,
            JournalRecordKind::Recover
        ]
    );
    assert_eq!(
        all[0].changes.as_ref().unwrap().top["x_gen"].after,
        Some(json!(1))
    );
    assert_eq!(
        all[1].changes.as_ref().unwrap().top["x_gen"].before,
        Some(json!(1))
    );
    assert!(all[2].changes.is_none());
    assert!(
        all[2].note.as_ref().unwrap().contains("corrupt"),
        "{:?}",
        all[2].note
    );
    assert!(fingerprint_matches(&all[2], &path));
    // A dry-run store writes no record.
    let (dry, _) = store_with(
        &path,
        mamfast::StoreOptions {
            dry_run: true,
            ..options(3)
        },
    );
    dry.update(|s| {
        s.extra.insert("x_gen".into(), 2.into());
        Ok(Outcome::Changed(()))
    })
    .unwrap();
    dry.restore(0).unwrap();
    assert_eq!(records(&path).len(), 3);
}

#[test]
fn a_change_by_the_python_tools_way_of_writing_is_recorded_with_its_entries() {
    let (_dir, path) = setup(10);
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    python_style_write(&path, |state| {
        for n in 0..3 {
            let id = format!("B0PYTHON0{n}");
            let entry = sample::realistic_state(1, n)
                .processed
                .iter()
                .next()
                .unwrap()
                .1
                .clone();
            state.processed.insert(id, entry);
        }
        state.failed.get_mut(ID).unwrap().retry_count = Some(7);
    });
    // The next mamfast write notices it, records it, then its own change.
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    let all = records(&path);
    assert_eq!(all.len(), 3, "{all:#?}");
    let outside = &all[1];
    assert_eq!(outside.kind, JournalRecordKind::Outside);
    assert_eq!(outside.since.as_deref(), Some(all[0].time.as_str()));
    assert_eq!(outside.before, all[0].after);
    let changes: &StateDiff = outside.changes.as_ref().expect("the entries are known");
    assert_eq!(changes.processed.added.len(), 3);
    assert_eq!(changes.failed.changed.len(), 1);
    assert_eq!(
        changes.failed.changed[ID]["retry_count"].after,
        Some(json!(7))
    );
    assert_eq!(all[2].before, outside.after);
    assert_eq!(retry_steps(&all), [(0, 1), (1, 7), (7, 8)]);

    // `state log` says so, with the counts first.
    let log = mamfast_run(&path, ["state", "log"]);
    log.expect_code(0, "log");
    assert!(
        log.stdout.contains("changed outside mamfast between"),
        "{}",
        log.stdout
    );
    assert!(
        log.stdout.contains("processed +3 -0 ~0, failed +0 -0 ~1"),
        "{}",
        log.stdout
    );

    // Two Python writes in a row: the state the last record left is gone; only the counts.
    python_style_write(&path, |s| {
        s.failed.get_mut(ID).unwrap().retry_count = Some(20)
    });
    python_style_write(&path, |s| {
        s.failed.remove(ID);
    });
    let log = mamfast_run(&path, ["state", "log", "--json"]);
    log.expect_code(0, "log --json");
    let shown: Vec<JournalRecord> = serde_json::from_str(&log.stdout).unwrap();
    assert_eq!(shown[0].kind, JournalRecordKind::Outside);
    assert!(shown[0].changes.is_none());
    assert!(shown[0]
        .note
        .as_ref()
        .unwrap()
        .contains("no longer on disk"));
    let counts = |f: &Option<mamfast::store::JournalFingerprint>| f.as_ref().unwrap().failed;
    assert_eq!(counts(&shown[0].after) + 1, counts(&shown[0].before));
    assert_eq!(records(&path).len(), 4);
    // Recorded once: the next log finds nothing new.
    mamfast_run(&path, ["state", "log"]).expect_code(0, "log");
    assert_eq!(records(&path).len(), 4);
}

fn strace_works() -> bool {
    Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_write_killed_between_the_state_and_its_record_is_reported_as_a_gap() {
    if !strace_works() {
        eprintln!("skipped: killing between the state write and its record needs strace");
        return;
    }
    let (_dir, path) = setup(10);
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    // The second fsync of a write is the directory's, after the swap: the state is written,
    // its record not yet.
    let cmd = mamfast(&path);
    let out = Command::new("strace")
        .args([
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "inject=fsync:signal=SIGKILL:when=2",
        ])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .args(["state", "mark-failed", ID, "--error", "killed"])
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .output()
        .unwrap();
    assert!(
        out.status.signal() == Some(9) || out.status.code() == Some(137),
        "{out:?}"
    );
    assert_eq!(retry_count(&path), 2, "the killed write went in");
    assert_eq!(records(&path).len(), 1, "and left no record");
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    let all = records(&path);
    assert_eq!(all[1].kind, JournalRecordKind::Outside);
    assert_eq!(retry_steps(&all), [(0, 1), (1, 2), (2, 3)]);
    assert!(fingerprint_matches(all.last().unwrap(), &path));
}

#[test]
fn writers_killed_at_random_leave_a_journal_that_agrees_with_the_state_or_reports_the_gap() {
    let (_dir, path) = setup(2000);
    let mut rng = sample::Rng::new(17);
    for round in 0..40 {
        let mut child = mamfast(&path)
            .args([
                "state",
                "mark-failed",
                ID,
                "--error",
                &format!("round {round}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A write takes a few hundred milliseconds (debug build, fsyncs): kill anywhere in it.
        thread::sleep(Duration::from_micros(rng.below(500_000)));
        let _ = child.kill();
        let _ = child.wait();
    }
    // The next mamfast (here `state log`) records what is missing; then every line is a
    // record (a cut one at most is skipped by the reader: checked below), and the story of
    // the count is whole from 0 to its value, each step starting where the last ended.
    let log = mamfast_run(&path, ["state", "log", "--json", "--limit", "all"]);
    log.expect_code(0, "log");
    let text = fs::read_to_string(journal_of(&path)).unwrap_or_default();
    let whole: Vec<JournalRecord> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let cut = text.lines().count() - whole.len();
    assert!(
        cut == 0 || log.stderr.contains("not a journal record"),
        "{cut} cut lines, unreported:\n{}",
        log.stderr
    );
    let steps = retry_steps(&whole);
    let mut at = 0;
    for (before, after) in &steps {
        assert_eq!(*before, at, "a gap not reported: {steps:?}");
        at = *after;
    }
    assert_eq!(at, retry_count(&path), "{steps:?}");
    assert!(
        at >= 2,
        "too few writes went in to test anything: {steps:?}"
    );
    assert!(fingerprint_matches(whole.last().unwrap(), &path));
}

#[test]
fn concurrent_writers_leave_one_whole_record_per_write() {
    let (_dir, path) = setup(200);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let path = path.clone();
            thread::spawn(move || {
                for i in 0..10 {
                    let mut cmd = mamfast(&path);
                    cmd.env("MAMFAST_LOCK_TIMEOUT", "120s");
                    run(
                        cmd,
                        ["state", "mark-failed", ID, "--error", &format!("{w}/{i}")],
                    )
                    .expect_code(0, "mark-failed");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let all = records(&path);
    assert_eq!(all.len(), 40);
    let steps = retry_steps(&all);
    let expected: Vec<(u64, u64)> = (0..40).map(|n| (n, n + 1)).collect();
    assert_eq!(steps, expected);
    for pair in all.windows(2) {
        assert_eq!(pair[0].after, pair[1].before);
    }
}

#[test]
fn the_journal_is_rotated_past_its_bound_and_read_across_both_files() {
    let (_dir, path) = setup(10);
    for i in 0..30 {
        let mut cmd = mamfast(&path);
        cmd.env("MAMFAST_JOURNAL_KIB", "8");
        run(
            cmd,
            ["state", "mark-failed", ID, "--error", &format!("e{i}")],
        )
        .expect_code(0, "mark-failed");
    }
    let log = journal_of(&path);
    let log1 = PathBuf::from(format!("{}.1", log.display()));
    let (a, b) = (
        fs::metadata(&log).unwrap().len(),
        fs::metadata(&log1).unwrap().len(),
    );
    assert!(a <= 8192 && b <= 8192 && b > 4096, "{a} {b}");
    let shown = mamfast_run(&path, ["state", "log", "--json", "--limit", "all"]);
    let shown: Vec<JournalRecord> = serde_json::from_str(&shown.stdout).unwrap();
    // Newest first, contiguous, ending with the last write.
    let steps: Vec<_> = retry_steps(&shown.into_iter().rev().collect::<Vec<_>>());
    assert_eq!(steps.last(), Some(&(29, 30)));
    assert!(steps.len() >= 10, "{steps:?}");
    assert!(steps.windows(2).all(|w| w[0].1 == w[1].0), "{steps:?}");
    // 0 keeps no journal: nothing more is written.
    let before = fs::read(&log).unwrap();
    let mut cmd = mamfast(&path);
    cmd.env("MAMFAST_JOURNAL_KIB", "0");
    run(cmd, ["state", "retry", ID]).expect_code(0, "retry");
    assert_eq!(fs::read(&log).unwrap(), before);
}

#[test]
fn a_journal_that_cannot_be_written_is_a_warning_and_the_write_still_happens() {
    for kind in ["fifo", "symlink", "directory"] {
        let (dir, path) = setup(5);
        let log = journal_of(&path);
        let elsewhere = dir.path().join("elsewhere");
        match kind {
            "fifo" => {
                nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap()
            }
            "symlink" => std::os::unix::fs::symlink(&elsewhere, &log).unwrap(),
            _ => fs::create_dir(&log).unwrap(),
        }
        let out = mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]);
        out.expect_code(0, kind);
        assert!(
            out.stderr.contains("warning: could not write the journal")
                && out.stderr.contains("processed.json.log"),
            "{kind}: {}",
            out.stderr
        );
        assert_eq!(retry_count(&path), 1, "{kind}");
        assert!(!elsewhere.exists(), "{kind}: followed the link");
        // Reading it is a warning too, never a hang or a failure.
        let out = mamfast_run(&path, ["state", "log"]);
        out.expect_code(0, kind);
    }
}

#[test]
fn a_corrupt_journal_line_is_skipped_with_a_warning() {
    let (_dir, path) = setup(5);
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    OpenOptions::new()
        .append(true)
        .open(journal_of(&path))
        .unwrap()
        .write_all(b"garbage \x1b[31m\n")
        .unwrap();
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    let out = mamfast_run(&path, ["state", "log"]);
    out.expect_code(0, "log");
    assert!(
        out.stderr.contains("line 2: not a journal record"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.matches("write by").count(), 2, "{}", out.stdout);
    // A store still reads the rest.
    let store = Store::new(&path, options(3));
    assert_eq!(store.journal().records.len(), 2);
    assert_eq!(store.journal().skipped.len(), 1);
}

#[test]
fn a_read_records_an_outside_change_when_the_lock_is_free_and_never_waits_for_it() {
    let (_dir, path) = setup(10);
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    python_style_write(&path, |s| {
        s.failed.get_mut(ID).unwrap().retry_count = Some(7)
    });
    // A plain read notices the Python tool's write and records it, once.
    mamfast_run(&path, ["state", "list"]).expect_code(0, "list");
    let all = records(&path);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[1].kind, JournalRecordKind::Outside);
    assert_eq!(retry_steps(&all), [(0, 1), (1, 7)]);
    assert!(fingerprint_matches(&all[1], &path));
    mamfast_run(&path, ["state", "show", ID]).expect_code(0, "show");
    assert_eq!(records(&path).len(), 2);

    // A dry run records nothing.
    python_style_write(&path, |s| {
        s.failed.get_mut(ID).unwrap().retry_count = Some(9)
    });
    mamfast_run(&path, ["--dry-run", "state", "list"]).expect_code(0, "list -n");
    assert_eq!(records(&path).len(), 2);

    // With the lock held by another process, the read neither waits nor records: the next
    // write does.
    let lock = File::options()
        .create(true)
        .append(true)
        .open(format!("{}.lock", path.display()))
        .unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let started = std::time::Instant::now();
    let out = mamfast_run(&path, ["state", "list"]);
    out.expect_code(0, "list while locked");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(!out.stderr.contains("waiting"), "{}", out.stderr);
    assert_eq!(records(&path).len(), 2);
    drop(held);
    mamfast_run(&path, ["state", "mark-failed", ID, "--error", "e"]).expect_code(0, "mark");
    let all = records(&path);
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_eq!(all[2].kind, JournalRecordKind::Outside);
    assert_eq!(retry_steps(&all), [(0, 1), (1, 7), (7, 9), (9, 10)]);
}
