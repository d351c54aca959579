//! Locking: the lock belongs to the file, not to the name it was reached by; readers never
//! hold writers off; a timeout says who holds the lock and how; the lock file is never a link
//! to somewhere else, nor a FIFO or a directory.

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mamfast::sample;
use mamfast::store::format::to_python_json;
use mamfast::{Error, Outcome, StoreOptions};
use nix::fcntl::FlockArg;

use crate::support::cli::{mamfast, mamfast_run, run, Run};
use crate::support::{fixture, hold, options, store, store_with, write_generation, PYTHON_WRITER};

const HOT: &str = "B0HOTHOT01";

fn mark_hot(state: &Path) -> Run {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_LOCK_TIMEOUT", "120s");
    run(cmd, ["state", "mark-failed", HOT, "--error", "e"])
}

fn retry_count(state: &Path) -> Option<u64> {
    let (store, _) = store(state);
    store.read().unwrap().failed.get(HOT)?.retry_count
}

/// Item 5: writers through the real path, two symlinks to it and a symlinked directory
/// exclude each other, and the Python tool writing through the real path too: every
/// acknowledged write is in the file, and none fails (exit 74 came from two writers rotating
/// the same backups at once).
#[test]
fn writers_through_different_names_of_one_file_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("processed.json");
    fs::write(&real, fixture("pipeline-written.json")).unwrap();
    mark_hot(&real).expect_code(0, "first failure");
    let one = dir.path().join("one.json");
    let two = dir.path().join("two.json");
    symlink("real/processed.json", &one).unwrap();
    symlink(&real, &two).unwrap();
    symlink("real", dir.path().join("linked")).unwrap();
    let through_dir = dir.path().join("linked/processed.json");

    const WRITES: usize = 20;
    let python = crate::support::cli::python3("the Python writer").then(|| {
        Command::new("python3")
            .args(["-c", PYTHON_WRITER])
            .arg(&real)
            .arg(WRITES.to_string())
            .arg(HOT)
            .spawn()
            .unwrap()
    });
    let loops: Vec<_> = [real.clone(), one, two, through_dir]
        .into_iter()
        .map(|name| {
            thread::spawn(move || {
                let mut acked = 0;
                let mut failures = Vec::new();
                for _ in 0..WRITES {
                    let run = mark_hot(&name);
                    match run.code {
                        0 => acked += 1,
                        _ => failures.push(format!("{}: {run:?}", name.display())),
                    }
                }
                (acked, failures)
            })
        })
        .collect();
    let mut acked = 1;
    let mut failures = Vec::new();
    for handle in loops {
        let (a, f) = handle.join().unwrap();
        acked += a;
        failures.extend(f);
    }
    if let Some(mut python) = python {
        assert!(python.wait().unwrap().success(), "the Python writer failed");
        acked += WRITES;
    }
    assert!(
        failures.is_empty(),
        "failed writes:\n{}",
        failures.join("\n")
    );
    assert_eq!(retry_count(&real), Some(acked as u64));
    // Every name still names the one file.
    assert!(fs::symlink_metadata(dir.path().join("one.json"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Item 5, at the library level: a store reached through a symlink waits for one holding the
/// lock of the real path, and the other way round.
#[test]
fn a_store_through_a_symlink_waits_for_the_lock_of_the_real_path() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("processed.json");
    let link = dir.path().join("alias.json");
    symlink("processed.json", &link).unwrap();
    let quick = StoreOptions {
        lock_timeout: Duration::from_millis(200),
        ..options(3)
    };
    let (by_real, _) = store_with(&real, quick.clone());
    let (by_link, _) = store_with(&link, quick);
    write_generation(&by_real, 1).unwrap();

    let held = hold(&by_real.lock_path(), FlockArg::LockExclusive);
    let err = write_generation(&by_link, 2).unwrap_err();
    assert_eq!(err.exit_code(), 75, "{err}");
    drop(held);

    let held = hold(&by_link.lock_path(), FlockArg::LockExclusive);
    // The Python tool's lock for the name given is still taken.
    assert_eq!(write_generation(&by_link, 3).unwrap_err().exit_code(), 75);
    drop(held);
    write_generation(&by_link, 4).unwrap();
    assert_eq!(
        crate::support::generation_of_file(&real),
        Some(4),
        "written through the link"
    );
}

/// A state of a few megabytes, with `HOT` failed zero times.
fn large_state(dir: &Path) -> PathBuf {
    let path = dir.join("processed.json");
    let mut state = sample::realistic_state(6000, 11);
    let mut rng = sample::Rng::new(7);
    let mut entry = sample::failed_entry(&mut rng, HOT);
    entry.retry_count = Some(0);
    state.failed.insert(HOT.into(), entry);
    fs::write(&path, to_python_json(&state)).unwrap();
    assert!(fs::metadata(&path).unwrap().len() > 3_000_000);
    path
}

/// Item 6: readers in loops never hold a writer off. Six loops of `state list` on a state of
/// a few megabytes, and writers that may not wait at all (`lock_timeout` 0s): each gets in at
/// its first try, because no reader holds the lock.
#[test]
fn a_writer_gets_in_while_readers_keep_coming() {
    const READERS: usize = 6;
    const WRITES: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let path = large_state(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (path, stop) = (path.clone(), stop.clone());
            thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    mamfast_run(&path, ["state", "list", "--limit", "1"]).expect_code(0, "reader");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    // Let the readers overlap before the writers come.
    thread::sleep(Duration::from_millis(1500));
    let mut refused = Vec::new();
    for _ in 0..WRITES {
        let mut cmd = mamfast(&path);
        cmd.env("MAMFAST_LOCK_TIMEOUT", "0s");
        let run = run(cmd, ["state", "mark-failed", HOT, "--error", "e"]);
        if run.code != 0 {
            refused.push(run);
        }
        thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(
        reads >= READERS,
        "the readers did not keep reading ({reads} reads)"
    );
    assert!(
        refused.is_empty(),
        "writers held off by readers: {refused:#?}"
    );
    assert_eq!(retry_count(&path), Some(WRITES as u64));
}

/// Item 6, step by step: a reader is held in the middle of reading the state file (strace
/// delays its every `read(2)` of it by two seconds); a writer gets in meanwhile, well within
/// its timeout, and the reader still answers with the whole file it had opened.
#[test]
fn a_writer_gets_in_while_a_reader_is_in_the_middle_of_reading() {
    if Command::new("strace").arg("-V").output().is_err() {
        return eprintln!("skipped: strace is not available");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    mark_hot(&path).expect_code(0, "first failure");

    let mamfast_bin = env!("CARGO_BIN_EXE_mamfast");
    let mut reader = Command::new("strace");
    reader
        .args(["-f", "-o", "/dev/null", "-P"])
        .arg(&path)
        .args(["-e", "inject=read:delay_enter=2000000", mamfast_bin]);
    let mut reader = reader
        .env_clear()
        .env("MAMFAST_CONFIG", "")
        .env("HOME", "/nonexistent/home")
        .arg("--state-file")
        .arg(&path)
        .args(["state", "show", HOT, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(700));
    assert!(
        reader.try_wait().unwrap().is_none(),
        "the reader ended early"
    );

    let mut cmd = mamfast(&path);
    cmd.env("MAMFAST_LOCK_TIMEOUT", "1s");
    let start = Instant::now();
    let write = run(cmd, ["state", "mark-failed", HOT, "--error", "e"]);
    let took = start.elapsed();
    write.expect_code(0, "a writer while a reader reads");
    assert!(
        reader.try_wait().unwrap().is_none(),
        "the reader ended first"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");

    let out = reader.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["failed"]["retry_count"], 1, "{shown}");
    assert_eq!(retry_count(&path), Some(2));
}

/// Item 6: a read of a clean main file needs no lock, so a writer's lock never holds it off;
/// but a read that has to recover (or finds no main file, as in the middle of a recovery)
/// waits for the writer, whose backup copy may be under way.
#[test]
fn a_reader_waits_for_a_writer_only_when_it_must_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let quick = StoreOptions {
        lock_timeout: Duration::from_millis(300),
        ..options(3)
    };
    let (store, _) = store_with(&path, quick);
    write_generation(&store, 1).unwrap();
    write_generation(&store, 2).unwrap();

    let held = hold(&store.lock_path(), FlockArg::LockExclusive);
    let start = Instant::now();
    assert_eq!(store.read().unwrap().extra["x_gen"], 2);
    assert!(start.elapsed() < Duration::from_millis(250));

    fs::write(&path, b"{\"half\": ").unwrap();
    assert_eq!(store.read().unwrap_err().exit_code(), 75);
    fs::remove_file(&path).unwrap();
    assert_eq!(store.read().unwrap_err().exit_code(), 75);
    drop(held);
    // Once the writer is gone, the reader recovers as before.
    assert_eq!(store.read().unwrap().extra["x_gen"], 1);
    assert_eq!(crate::support::generation_of_file(&path), Some(1));
}

fn timeout_text(state: &Path) -> String {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_LOCK_TIMEOUT", "200ms");
    let run = run(cmd, ["state", "mark-failed", HOT, "--error", "e"]);
    run.expect_code(75, "lock held");
    run.stderr
}

/// Item 6: the timeout says who holds the lock and in which mode.
#[test]
fn a_lock_timeout_names_the_holder_and_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    let lock = dir.path().join("processed.json.lock");
    let me = format!("pid {}", std::process::id());

    let held = hold(&lock, FlockArg::LockShared);
    let text = timeout_text(&path);
    drop(held);
    assert!(text.contains(&me), "{text}");
    assert!(text.contains("shared (reading)"), "{text}");
    assert!(!text.contains("exclusive"), "{text}");
    assert!(!text.contains("is writing the state"), "{text}");

    let held = hold(&lock, FlockArg::LockExclusive);
    let text = timeout_text(&path);
    drop(held);
    assert!(text.contains(&me), "{text}");
    assert!(text.contains("exclusive (writing)"), "{text}");
    assert!(text.contains("is writing the state"), "{text}");

    let (store, _) = store(&path);
    let held = hold(&lock, FlockArg::LockShared);
    let err = write_generation(
        &store_with(
            &path,
            StoreOptions {
                lock_timeout: Duration::from_millis(50),
                ..options(3)
            },
        )
        .0,
        9,
    )
    .unwrap_err();
    drop(held);
    let Error::LockTimeout { holder, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(holder.as_deref().unwrap_or_default().contains(&me), "{err}");
    assert_eq!(store.read().unwrap().extra.get("x_gen"), None);
}

/// The holder's command line is outside text: shown escaped, never raw.
#[test]
fn a_holders_command_line_is_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    let lock = dir.path().join("processed.json.lock");
    // The hostile text first (as its argv[0]), where the shortened command line still shows it.
    let mut holder = Command::new("flock")
        .arg0("\x1b]0;pwned\x07\x1b[2J\rflock")
        .arg("--exclusive")
        .arg(&lock)
        .args(["sh", "-c", "echo locked; sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock(1)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let text = timeout_text(&path);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(text.contains(&format!("pid {} (", holder.id())), "{text}");
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(!text.contains('\r'), "{text:?}");
    assert!(text.contains("\\u{1b}]0;pwned\\u{7}"), "{text}");
}

fn assert_bad_lock(state: &Path, lock: &Path, what: &str) {
    let before = fs::read(state).unwrap();
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_LOCK_TIMEOUT", "2s");
    let start = Instant::now();
    let run = run(cmd, ["state", "mark-failed", HOT, "--error", "e"]);
    assert!(start.elapsed() < Duration::from_secs(10), "{what}: hung");
    run.expect_code(74, what);
    assert!(
        run.stderr.contains(&lock.display().to_string()),
        "{what}: {}",
        run.stderr
    );
    assert!(run.stderr.contains(what), "{what}: {}", run.stderr);
    assert!(run.stderr.contains("Remove it"), "{what}: {}", run.stderr);
    assert!(fs::read(state).unwrap() == before, "{what}: state changed");
    // Reads go on: a clean main file needs no lock.
    mamfast_run(state, ["state", "show", "B08G9PRS1K"]).expect_code(0, what);
}

/// Item 7: a symlink at the lock path is never followed, so nothing is created (or locked)
/// where it points; a FIFO or a directory there is refused too, naming it.
#[test]
fn a_lock_path_that_is_not_a_regular_file_is_refused_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&state_dir).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    let path = state_dir.join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    let lock = state_dir.join("processed.json.lock");

    // Dangling: its target would be created outside the state's directory.
    let target = elsewhere.join("planted.lock");
    symlink(&target, &lock).unwrap();
    assert_bad_lock(&path, &lock, "symbolic link");
    assert!(!target.exists(), "created the symlink's target");

    // Pointing at an existing file: not opened through the link either.
    fs::write(&target, b"").unwrap();
    assert_bad_lock(&path, &lock, "symbolic link");
    fs::remove_file(&lock).unwrap();

    nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_bad_lock(&path, &lock, "FIFO");
    fs::remove_file(&lock).unwrap();

    fs::create_dir(&lock).unwrap();
    assert_bad_lock(&path, &lock, "directory");
    fs::remove_dir(&lock).unwrap();

    // The lock of the real path (taken for a name that is a symlink) is held to the same rule.
    let alias = dir.path().join("alias.json");
    symlink(&path, &alias).unwrap();
    symlink(&target, &lock).unwrap();
    assert_bad_lock(&alias, &lock, "symbolic link");
    fs::remove_file(&lock).unwrap();

    // Once removed, mamfast makes a regular lock file there and writes.
    mamfast_run(&path, ["state", "mark-failed", HOT, "--error", "e"]).expect_code(0, "fixed");
    assert!(fs::symlink_metadata(&lock).unwrap().file_type().is_file());
    let (store, _) = store(&path);
    store
        .update(|_| Ok(Outcome::Unchanged(())))
        .expect("library writer too");
}
