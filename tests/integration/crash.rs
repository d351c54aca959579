//! Crash safety: a writer killed with SIGKILL at random moments, hundreds of times, on a state
//! of thousands of entries. After every kill the main file is complete and valid (it loads
//! through `Store` as the main file, without recovery), holds every write acknowledged before
//! the kill (and at most the one write that was under way), and is consistent (each write adds
//! one to one entry's `retry_count` and one to a counter: the two always agree). No temp file is
//! ever read (a planted, valid temp file with an impossible counter never shows), and stray temp
//! files are removed by the next writer.
//!
//! Two writers are killed: this test binary run as a child that updates in a loop through the
//! library and prints `ACK <n>` after each acknowledged update (many writes per kill), and the
//! real `mamfast state mark-failed` (exit 0 is the acknowledgement). Kill times come from a
//! seeded xorshift generator; the moments they hit vary with the machine.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mamfast::sample::{realistic_state, Rng};
use mamfast::state::ops::{self, ReleaseFields};
use mamfast::store::format::{parse_state, to_python_json};
use mamfast::{Notice, Outcome, Source, State, Store};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::cli::mamfast;
use crate::support::*;

/// Kills of the looping writer, and of the `mamfast` binary.
const LOOP_KILLS: usize = 200;
const CLI_KILLS: usize = 40;
const ENTRIES: usize = 3000;
const SEED: u64 = 0x5eed_c4a5_4b11;

/// Set (to the state file) in the environment of the child that writes in a loop.
const CHILD: &str = "MAMFAST_CRASH_TEST_WRITER";
/// The counter a planted temp file carries: seeing it would mean a temp file was read.
const POISON: u64 = 1_000_000_000;
/// Entries the writes go to (`CRASH-00` … `CRASH-49`).
const SLOTS: u64 = 50;
/// The looping writer's test, by its full name in the integration test binary (`--exact`).
const WRITER_TEST: &str = "crash::crash_writer_child";

/// Not a test on its own: the body of the looping writer, which `a_writer_killed_…` starts as
/// this test binary with `MAMFAST_CRASH_TEST_WRITER` set. Without it, this does nothing.
#[test]
fn crash_writer_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let store = Store::new(PathBuf::from(path), options(3)).with_notices(|_| {});
    loop {
        let seq = store.update(write_one).expect("update");
        // Printed (and flushed: stdout is line-buffered) only once the update has returned.
        println!("ACK {seq}");
    }
}

/// One write: the counter `x_seq` + 1, and `retry_count` + 1 on entry `CRASH-(seq % 50)`.
fn write_one(state: &mut State) -> mamfast::Result<Outcome<u64>> {
    let seq = counter(state) + 1;
    state.extra.insert("x_seq".into(), seq.into());
    ops::mark_failed(
        state,
        &format!("CRASH-{:02}", seq % SLOTS),
        &format!("write {seq}"),
        Some("Crash"),
        &ReleaseFields::default(),
        "2026-11-26T10:00:00.000000+00:00",
    )?;
    Ok(Outcome::Changed(seq))
}

fn counter(state: &State) -> u64 {
    state
        .extra
        .get("x_seq")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The retry counts of the crash entries, summed: the number of writes in the file.
fn writes_in(state: &State) -> u64 {
    state
        .failed
        .iter()
        .filter(|(id, _)| id.starts_with("CRASH-"))
        .map(|(_, e)| e.retry_count.unwrap_or(0))
        .sum()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, to_python_json(&realistic_state(ENTRIES, SEED))).unwrap();
    (dir, path)
}

/// Checks the state after a kill; returns it. `acked`: writes acknowledged so far; at most one
/// more may be in the file. `deep`: also check every backup generation.
fn check_after_kill(path: &Path, acked: u64, deep: bool, what: &str) -> State {
    let (store, notices) = store(path);
    let loaded = store
        .read_loaded()
        .unwrap_or_else(|e| panic!("{what}: the state does not load: {e}"));
    assert_eq!(
        loaded.source,
        Source::Main,
        "{what}: not loaded from the main file"
    );
    assert!(
        !notices.lock().unwrap().iter().any(|n| matches!(
            n,
            Notice::Recovered { .. } | Notice::RecoveredInMemory { .. }
        )),
        "{what}: recovery was needed"
    );
    let state = loaded.state;
    let seq = counter(&state);
    assert!(
        seq == acked || seq == acked + 1,
        "{what}: the file holds {seq} writes, {acked} were acknowledged"
    );
    assert_eq!(writes_in(&state), seq, "{what}: a write is half there");
    let crash_ids = seq.min(SLOTS) as usize;
    assert_eq!(
        state.processed.len() + state.failed.len(),
        ENTRIES + crash_ids,
        "{what}: entries lost"
    );
    assert_no_shared_inode(&store);
    if deep {
        for generation in 0..3 {
            let bak = store.backup_path(generation);
            if let Ok(bytes) = fs::read(&bak) {
                let old = parse_state(&bytes)
                    .unwrap_or_else(|e| panic!("{what}: {} is broken: {e}", bak.display()));
                assert!(
                    counter(&old) < seq.max(1),
                    "{what}: {} is newer",
                    bak.display()
                );
            }
        }
    }
    state
}

/// Plants a valid state file under a temp file name of a process that is gone.
fn plant_poison(dir: &Path, dead_pid: u32, state: &State) -> PathBuf {
    let mut poison = state.clone();
    poison.extra.insert("x_seq".into(), POISON.into());
    let path = dir.join(format!(".processed.json.tmp-{dead_pid}-0"));
    fs::write(&path, to_python_json(&poison)).unwrap();
    path
}

fn spawn_loop_writer(path: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([WRITER_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer")
}

/// The write a line of the writer acknowledges. The test harness prints `test … ... ` before
/// the first one, on the same line.
fn ack(line: &str) -> Option<u64> {
    let (_, seq) = line.split_once("ACK ")?;
    Some(seq.trim().parse().expect("ACK <number>"))
}

/// Kills `child` with SIGKILL, reaps it, and returns the acknowledgements it printed.
fn kill_and_collect(mut child: Child) -> Vec<u64> {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    out.lines().filter_map(ack).collect()
}

#[test]
fn a_writer_killed_hundreds_of_times_never_loses_an_acknowledged_write() {
    let (dir, path) = setup();
    let mut rng = Rng::new(SEED);

    // How long a writer takes to start and to write here: kills then spread over its start
    // and its first writes.
    let mut child = spawn_loop_writer(&path);
    let pid = child.id();
    let start = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ack_times = Vec::new();
    while ack_times.len() < 6 {
        let line = lines.next().expect("the writer stopped").unwrap();
        if let Some(seq) = ack(&line) {
            ack_times.push((start.elapsed(), seq));
        }
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    let _ = child.wait();
    let acked_then = lines
        .map_while(Result::ok)
        .filter_map(|l| ack(&l))
        .last()
        .unwrap_or(ack_times[5].1);
    let per_write = (ack_times[5].0 - ack_times[1].0) / 4;
    let startup = ack_times[0].0.saturating_sub(per_write);
    let window = startup + per_write * 3;
    let mut state = check_after_kill(&path, acked_then, true, "calibration");
    let mut acked = counter(&state);

    let (mut dead_pid, mut leftovers_seen, mut mid_write) = (pid, 0, 0);
    for round in 0..LOOP_KILLS {
        let what = format!("kill {round}");
        // Temp files of gone writers, and a poisoned one: the next writer must remove them.
        let poison = plant_poison(dir.path(), dead_pid, &state);
        let stray: Vec<String> = temp_files(dir.path());
        assert!(stray.iter().any(|n| poison.ends_with(n)));

        let child = spawn_loop_writer(&path);
        dead_pid = child.id();
        std::thread::sleep(Duration::from_micros(
            rng.below(window.as_micros() as u64 + 1),
        ));
        let acks = kill_and_collect(child);
        if let Some(&last) = acks.last() {
            assert!(last > acked, "{what}: acknowledged {last} after {acked}");
            acked = last;
        }
        state = check_after_kill(&path, acked, round % 10 == 0, &what);
        let seq = counter(&state);
        mid_write += usize::from(seq == acked + 1);
        acked = seq;
        if !acks.is_empty() {
            let left: Vec<&String> = stray
                .iter()
                .filter(|n| dir.path().join(n).exists())
                .collect();
            assert!(
                left.is_empty(),
                "{what}: stale temp files not removed: {left:?}"
            );
        }
        let own = format!(".processed.json.tmp-{dead_pid}-");
        leftovers_seen += usize::from(temp_files(dir.path()).iter().any(|n| n.starts_with(&own)));
    }

    // A last writer that is not killed leaves no temp file at all.
    let (store, _) = store(&path);
    store.update(write_one).unwrap();
    assert!(temp_files(dir.path()).is_empty(), "{:?}", names(dir.path()));
    eprintln!(
        "{LOOP_KILLS} kills within {window:?} of the start ({per_write:?} a write, {startup:?} \
         to start), {acked} writes on {ENTRIES} entries; {mid_write} kills landed between a \
         write and its acknowledgement; {leftovers_seen} left a temp file behind"
    );
}

#[test]
fn the_mamfast_binary_killed_mid_write_never_loses_an_acknowledged_write() {
    let (dir, path) = setup();
    let mut rng = Rng::new(SEED ^ 1);
    let write = |path: &Path| -> Child {
        let mut cmd = mamfast(path);
        cmd.args(["state", "mark-failed", "CRASH-00", "--error", "killed"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().unwrap()
    };

    // How long one run of the binary takes here.
    let start = Instant::now();
    assert!(write(&path).wait().unwrap().success());
    let per_run = start.elapsed();
    let mut acked = 1;

    let mut interrupted = 0;
    for round in 0..CLI_KILLS {
        let what = format!("binary kill {round}");
        // Runs one after the other until the kill time; exit 0 is the acknowledgement.
        let deadline = Instant::now() + per_run.mul_f64(rng.below(3000) as f64 / 1000.0);
        let mut child = write(&path);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{what}: {status}");
                acked += 1;
                child = write(&path);
            } else if Instant::now() >= deadline {
                break;
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let status = child.wait().unwrap();
        if status.success() {
            acked += 1;
        } else {
            interrupted += 1;
        }
        let (store, _) = store(&path);
        let loaded = store.read_loaded().unwrap();
        assert_eq!(loaded.source, Source::Main, "{what}");
        let count = loaded.state.failed["CRASH-00"].retry_count.unwrap();
        assert!(
            count == acked || count == acked + 1,
            "{what}: {count} writes in the file, {acked} acknowledged"
        );
        acked = count;
        assert_eq!(
            loaded.state.processed.len() + loaded.state.failed.len(),
            ENTRIES + 1,
            "{what}"
        );
        assert_no_shared_inode(&store);
    }
    assert!(write(&path).wait().unwrap().success());
    assert!(temp_files(dir.path()).is_empty(), "{:?}", names(dir.path()));
    eprintln!("{CLI_KILLS} kills of the binary ({interrupted} mid-run), {acked} writes");
}
