//! The lock: `flock` on `<file>.lock`, shared for reads, exclusive for writes, bounded wait with
//! the holder named, shared with the Python tool, followed when replaced, never deleted.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mamfast::{Error, Notice, Outcome, StoreOptions};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::support::*;

fn quick(depth: usize) -> StoreOptions {
    StoreOptions {
        lock_timeout: Duration::from_millis(200),
        ..options(depth)
    }
}

fn try_exclusive(path: &Path) -> Result<Flock<File>, Errno> {
    Flock::lock(File::open(path).unwrap(), FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e)
}

#[test]
fn an_exclusive_lock_held_elsewhere_times_out_naming_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store_with(&path, quick(3));
    write_generation(&store, 1).unwrap();
    let _held = hold(&store.lock_path(), FlockArg::LockExclusive);

    let start = Instant::now();
    let err = write_generation(&store, 2).unwrap_err();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(err.exit_code(), 75);
    let Error::LockTimeout {
        lock_file, holder, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(lock_file, &store.lock_path());
    let holder = holder.as_deref().unwrap_or_default();
    assert!(
        holder.contains(&format!("pid {}", std::process::id())),
        "{holder}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&store.lock_path().display().to_string()),
        "{text}"
    );
    assert!(text.contains("200ms"), "{text}");
    // A reader of a clean main file is not kept out: it takes no lock (a writer's rename
    // never shows it half a file).
    assert_eq!(store.read().unwrap().extra["x_gen"], 1);
    assert_eq!(generation_of_file(&path), Some(1));
}

#[test]
fn a_shared_reader_does_not_block_another_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store_with(&path, quick(3));
    write_generation(&store, 1).unwrap();
    let _reader = hold(&store.lock_path(), FlockArg::LockShared);
    let start = Instant::now();
    assert_eq!(store.read().unwrap().extra["x_gen"], 1);
    assert!(start.elapsed() < Duration::from_millis(150));
    // But a writer waits for the reader.
    assert_eq!(write_generation(&store, 2).unwrap_err().exit_code(), 75);
}

#[test]
fn update_holds_the_exclusive_lock_throughout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    let lock_path = store.lock_path();
    store
        .update(|_| {
            assert_eq!(try_exclusive(&lock_path).unwrap_err(), Errno::EWOULDBLOCK);
            let shared = Flock::lock(
                File::open(&lock_path).unwrap(),
                FlockArg::LockSharedNonblock,
            );
            assert!(shared.is_err(), "a reader got in during an update");
            Ok(Outcome::Changed(()))
        })
        .unwrap();
    // Released afterwards, and never deleted.
    assert!(try_exclusive(&lock_path).is_ok());
}

#[test]
fn the_lock_file_is_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    let lock_path = store.lock_path();
    assert_eq!(lock_path, dir.path().join("processed.json.lock"));
    write_generation(&store, 1).unwrap();
    let ino = inode(&lock_path);
    write_generation(&store, 2).unwrap();
    store.read().unwrap();
    store.restore(0).unwrap();
    fs::write(&path, b"{").unwrap();
    store.read().unwrap(); // recovery
    store.generations();
    assert_eq!(inode(&lock_path), ino);
}

#[test]
fn a_waiter_is_told_once_who_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, notices) = store(&path);
    write_generation(&store, 1).unwrap();
    // The first write's notice (the file did not exist yet) is not this test's subject.
    notices.lock().unwrap().clear();
    let held = hold(&store.lock_path(), FlockArg::LockExclusive);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1400));
        drop(held);
    });
    write_generation(&store, 2).unwrap();
    release.join().unwrap();
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let Notice::WaitingForLock { lock_file, holder } = &notices[0] else {
        panic!("{notices:?}")
    };
    assert_eq!(lock_file, &store.lock_path());
    assert!(holder.is_some());
    assert!(notices[0]
        .to_string()
        .starts_with("waiting for the lock on"));
}

#[test]
fn a_replaced_lock_file_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    write_generation(&store, 1).unwrap();
    let lock_path = store.lock_path();
    let moved = dir.path().join("old.lock");
    let old_holder = hold(&lock_path, FlockArg::LockExclusive);

    let store = Arc::new(store);
    let waiter = {
        let (store, lock_path, moved) = (store.clone(), lock_path.clone(), moved.clone());
        std::thread::spawn(move || {
            store.update(|_| {
                // We hold the file now at the path, not the one that was renamed away.
                assert_eq!(try_exclusive(&lock_path).unwrap_err(), Errno::EWOULDBLOCK);
                assert_ne!(inode(&lock_path), inode(&moved));
                Ok(Outcome::Changed(()))
            })
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    fs::rename(&lock_path, &moved).unwrap();
    File::create(&lock_path).unwrap();
    waiter.join().unwrap().unwrap();
    drop(old_holder);
    assert!(lock_path.exists() && moved.exists());
}

#[test]
fn a_lock_on_a_file_replaced_after_it_was_taken_is_retaken() {
    // The holder releases the old file only after the path names a new one: the waiter gets the
    // old file first, sees that it is no longer at the path, and locks the new one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    write_generation(&store, 1).unwrap();
    let lock_path = store.lock_path();
    let old_holder = hold(&lock_path, FlockArg::LockExclusive);
    let new_holder_path = dir.path().join("processed.json.lock.new");
    File::create(&new_holder_path).unwrap();
    let new_holder = hold(&new_holder_path, FlockArg::LockExclusive);

    let store = Arc::new(store);
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || write_generation(&store, 2))
    };
    std::thread::sleep(Duration::from_millis(100));
    // Swap in a new (locked) file, then free the old one: the waiter must keep waiting.
    fs::rename(&new_holder_path, &lock_path).unwrap();
    drop(old_holder);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(generation_of_file(&path), Some(1));
    drop(new_holder);
    waiter.join().unwrap().unwrap();
    assert_eq!(generation_of_file(&path), Some(2));
}

#[test]
fn concurrent_updates_never_lose_an_increment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    store
        .update(|s| {
            let mut entry = mamfast::FailedEntry::default();
            entry.retry_count = Some(0);
            s.failed.insert("B0RETRY".into(), entry);
            Ok(Outcome::Changed(()))
        })
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                // Each thread its own Store, as separate processes would have.
                let (store, _) = store_with(&path, options(3));
                for _ in 0..25 {
                    store
                        .update(|s| {
                            let entry = s.failed.get_mut("B0RETRY").unwrap();
                            entry.retry_count = Some(entry.retry_count.unwrap_or(0) + 1);
                            Ok(Outcome::Changed(()))
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let state = store.read().unwrap();
    assert_eq!(state.failed["B0RETRY"].retry_count, Some(200));
    // The generation before the last write is the backup.
    let bak: mamfast::State =
        serde_json::from_slice(&fs::read(store.backup_path(0)).unwrap()).unwrap();
    assert_eq!(bak.failed["B0RETRY"].retry_count, Some(199));
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn a_read_goes_on_without_a_lock_it_cannot_create() {
    // The lock file cannot be created (here: a dangling symlink into a missing directory, which
    // stops root too, as a read-only directory would stop anyone else).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    std::os::unix::fs::symlink("missing/dir/x.lock", dir.path().join("processed.json.lock"))
        .unwrap();
    let (store, notices) = store(&path);
    // A clean main file is read without the lock.
    assert!(!store.read().unwrap().processed.is_empty());
    assert!(notices.lock().unwrap().is_empty());
    // A write never goes on without its lock.
    let err = write_generation(&store, 1).unwrap_err();
    assert_eq!(err.exit_code(), 74);
    assert!(err.to_string().contains("lock file"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), fixture("pipeline-written.json"));
    // A read that needs the lock (no main file: a recovery may be under way) goes on
    // without it, and says so.
    fs::remove_file(&path).unwrap();
    assert!(store.read().unwrap().processed.is_empty());
    assert!(matches!(
        &notices.lock().unwrap()[..],
        [Notice::ReadWithoutLock { .. }, Notice::StateMissing(_)]
    ));
}

#[test]
fn dry_run_never_creates_the_lock_file_but_uses_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    let dry = StoreOptions {
        dry_run: true,
        ..quick(3)
    };
    let (store, _) = store_with(&path, dry);
    store.read().unwrap();
    store.update(|_| Ok(Outcome::Changed(()))).unwrap();
    assert_eq!(names(dir.path()), ["processed.json"]);

    let _held = hold(&store.lock_path(), FlockArg::LockExclusive);
    // A clean main file needs no lock; a corrupt one is read again under the lock there is.
    store.read().unwrap();
    fs::write(&path, b"{").unwrap();
    assert_eq!(store.read().unwrap_err().exit_code(), 75);
}

// --- interoperation with the Python tool, which uses fcntl.flock on the same file ---

fn python(script: &str, args: &[&Path]) -> Option<Child> {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).stdout(Stdio::piped());
    for arg in args {
        cmd.arg(arg);
    }
    match cmd.spawn() {
        Ok(child) => Some(child),
        Err(e) => {
            eprintln!("skipped: cannot run python3 ({e})");
            None
        }
    }
}

#[test]
fn a_python_holder_blocks_update_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store_with(&path, quick(3));
    write_generation(&store, 1).unwrap();
    let script = "import fcntl, sys, time\n\
                  f = open(sys.argv[1], 'a')\n\
                  fcntl.flock(f, fcntl.LOCK_EX)\n\
                  print('locked', flush=True)\n\
                  time.sleep(30)\n";
    let Some(mut child) = python(script, &[&store.lock_path()]) else {
        return;
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let result = write_generation(&store, 2);
    let _ = child.kill();
    let _ = child.wait();
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 75);
    let text = err.to_string();
    assert!(text.contains(&format!("pid {} (", child.id())), "{text}");
    assert!(text.contains("python"), "{text}");
    assert!(text.contains("import fcntl, sys, time f = open"), "{text}");
    assert_eq!(generation_of_file(&path), Some(1));
}

#[test]
fn python_is_kept_out_while_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let (store, _) = store(&path);
    let script = "import fcntl, sys\n\
                  f = open(sys.argv[1], 'a')\n\
                  try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('locked')\n\
                  except BlockingIOError:\n    print('blocked')\n";
    let mut outcome = None;
    store
        .update(|_| {
            if let Some(child) = python(script, &[&store.lock_path()]) {
                let out = child.wait_with_output().unwrap();
                outcome = Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
            }
            Ok(Outcome::Changed(()))
        })
        .unwrap();
    if let Some(outcome) = outcome {
        assert_eq!(outcome, "blocked");
        let child = python(script, &[&store.lock_path()]).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "locked");
    }
}
