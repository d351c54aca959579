//! Faults of the file system and of other processes, end to end through the binary, so that
//! exit codes are checked too: a full disk, a read-only directory, each write step failing
//! (through the fault seam `MAMFAST_INJECT_FAULT`), the lock held or replaced while waiting, a
//! symlinked state file, and an NFS directory (warned). In every failing case: a clear error
//! naming the file, the contract's exit code (74 I/O, 75 lock), and the previous state intact,
//! byte for byte, and loadable.
//!
//! The disk-full and read-only cases mount a small tmpfs and need root (as CI runs); elsewhere,
//! or when mounting fails, they are skipped with the reason printed. Mounts are undone by a
//! guard, even when a test fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mamfast::sample;
use mamfast::store::format::to_python_json;
use mamfast::Source;
use nix::fcntl::FlockArg;

use crate::support::cli::{mamfast, mamfast_run, run, Run};
use crate::support::*;

const MARK: [&str; 5] = ["state", "mark-failed", "B0FAULT001", "--error", "e"];

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…`), or says why it cannot.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        if !is_root() {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let options = format!("size={size},mode=0755");
        mount_cmd(&["-t", "tmpfs", "-o", &options, "tmpfs"], dir.path())?;
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount_read_only(&self) -> Result<(), String> {
        mount_cmd(&["-o", "remount,ro"], self.path())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.path()).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

fn mount_cmd(args: &[&str], target: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Asserts what every failed write leaves: the main file byte for byte as before and loadable
/// as the main file, no temp file, the error on stderr naming `names`.
fn assert_failed_cleanly(
    run: &Run,
    code: i32,
    path: &Path,
    before: &[u8],
    names: &Path,
    what: &str,
) {
    run.expect_code(code, what);
    let name = names.display().to_string();
    assert!(
        run.stderr.contains(&name),
        "{what}: does not name {name}:\n{}",
        run.stderr
    );
    assert!(
        fs::read(path).unwrap() == before,
        "{what}: the state file changed"
    );
    let (store, _) = store(path);
    let loaded = store.read_loaded().unwrap();
    assert_eq!(loaded.source, Source::Main, "{what}");
    assert!(temp_files(path.parent().unwrap()).is_empty(), "{what}");
}

/// A directory with the fixture as its state file and another as `.bak`.
fn with_state() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    let bytes = fixture("pipeline-written.json");
    fs::write(&path, &bytes).unwrap();
    fs::write(
        dir.path().join("processed.json.bak"),
        fixture("v2-unknown-fields.json"),
    )
    .unwrap();
    (dir, path, bytes)
}

#[test]
fn disk_full_is_exit_74_and_the_state_is_intact() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(why) => return eprintln!("skipped: disk full (tmpfs): {why}"),
    };
    let path = fs.path().join("processed.json");
    // 2.5 MB: its new version cannot be written beside it in 4 MB.
    let bytes = to_python_json(&sample::realistic_state(3800, 7));
    assert!(bytes.len() > 2_200_000, "{}", bytes.len());
    std::fs::write(&path, &bytes).unwrap();

    let run = mamfast_run(&path, MARK);
    assert_failed_cleanly(&run, 74, &path, &bytes, &path, "disk full");
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("The disk is full"), "{}", run.stderr);
    // Reading still works, and a write goes through once there is room.
    mamfast_run(&path, ["state", "list"]).expect_code(0, "list on a full disk");
    std::fs::write(&path, to_python_json(&sample::realistic_state(100, 7))).unwrap();
    mamfast_run(&path, MARK).expect_code(0, "write after room was made");
}

#[test]
fn a_read_only_directory_is_exit_74_for_writes_and_reads_go_on() {
    let fs = match Tmpfs::mount("16m") {
        Ok(fs) => fs,
        Err(why) => return eprintln!("skipped: read-only directory (tmpfs): {why}"),
    };
    let path = fs.path().join("processed.json");
    let other = fs.path().join("other.json");
    let bytes = fixture("pipeline-written.json");
    std::fs::write(&path, &bytes).unwrap();
    std::fs::write(&other, &bytes).unwrap();
    // `processed.json` has its lock file, `other.json` none.
    std::fs::write(fs.path().join("processed.json.lock"), b"").unwrap();
    if let Err(why) = fs.remount_read_only() {
        return eprintln!("skipped: read-only directory: {why}");
    }
    let run = mamfast_run(&path, MARK);
    assert_failed_cleanly(&run, 74, &path, &bytes, &path, "read-only, lock present");
    assert!(
        run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("The file system is read-only"),
        "{}",
        run.stderr
    );

    let run = mamfast_run(&other, MARK);
    let lock = fs.path().join("other.json.lock");
    assert_failed_cleanly(&run, 74, &other, &bytes, &lock, "read-only, no lock file");

    for state in [&path, &other] {
        let run = mamfast_run(state, ["state", "show", "B08G9PRS1K", "--json"]);
        run.expect_code(0, "read on a read-only directory");
        assert!(run.stdout.contains("AudnexError"), "{}", run.stdout);
    }
}

#[test]
fn each_write_step_failing_is_exit_74_and_the_state_is_intact() {
    let steps = [
        "create-temp",
        "write",
        "set-permissions",
        "fsync-file",
        "rotate",
        "rename",
        "backup",
        "fsync-dir",
    ];
    for also in ["", ",no-rename-exchange"] {
        for step in steps {
            let what = format!("{step}{also}");
            let (dir, path, bytes) = with_state();
            let mut cmd = mamfast(&path);
            cmd.env("MAMFAST_INJECT_FAULT", format!("{step}{also}"));
            let run = run(cmd, MARK);
            // Every message names the state file, except the directory's fsync: the directory.
            let named = if step == "fsync-dir" {
                dir.path().to_path_buf()
            } else {
                path.clone()
            };
            assert_failed_cleanly(&run, 74, &path, &bytes, &named, &what);
            assert!(
                run.stderr.contains(&format!("injected fault at {step}")),
                "{what}: {}",
                run.stderr
            );
            assert!(
                run.stderr.contains("The previous state is intact"),
                "{what}"
            );
            // The backups too: a rotation done before the failing step is undone.
            assert!(
                fs::read(dir.path().join("processed.json.bak")).ok()
                    == Some(fixture("v2-unknown-fields.json")),
                "{what}: .bak changed: {:?}",
                names(dir.path())
            );
            assert!(
                !dir.path().join("processed.json.bak.1").exists(),
                "{what}: {:?}",
                names(dir.path())
            );
        }
    }
}

#[test]
fn a_failure_while_moving_a_corrupt_file_aside_changes_nothing() {
    let (dir, path, _) = with_state();
    fs::write(&path, b"{\"version\": 2, \"processed\": {").unwrap();
    let before = snapshot_without_lock(dir.path());
    let mut cmd = mamfast(&path);
    cmd.env("MAMFAST_INJECT_FAULT", "quarantine");
    let failed = run(cmd, MARK);
    failed.expect_code(74, "quarantine");
    assert!(
        failed.stderr.contains(&path.display().to_string()),
        "{}",
        failed.stderr
    );
    assert!(
        snapshot_without_lock(dir.path()) == before,
        "{:?}",
        names(dir.path())
    );
    // A read still answers, from the backup, and says it did not repair the file.
    let mut cmd = mamfast(&path);
    cmd.env("MAMFAST_INJECT_FAULT", "quarantine");
    let read = run(cmd, ["state", "list"]);
    read.expect_code(0, "read with quarantine failing");
    assert!(read.stderr.contains("without repairing"), "{}", read.stderr);
    assert!(snapshot_without_lock(dir.path()) == before);
}

#[test]
fn a_lock_held_too_long_is_exit_75_naming_the_lock_and_its_holder() {
    let (_dir, path, bytes) = with_state();
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    let held = hold(&lock, FlockArg::LockExclusive);
    let mut cmd = mamfast(&path);
    cmd.env("MAMFAST_LOCK_TIMEOUT", "1s");
    let run = run(cmd, MARK);
    drop(held);
    assert_failed_cleanly(&run, 75, &path, &bytes, &lock, "lock timeout");
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "the holder is not named:\n{}",
        run.stderr
    );
}

#[test]
fn a_lock_file_replaced_while_waiting_is_followed() {
    let (dir, path, bytes) = with_state();
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    let old = hold(&lock, FlockArg::LockExclusive);
    let mut child = mamfast(&path)
        .env("MAMFAST_LOCK_TIMEOUT", "30s")
        .args(MARK)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "did not wait for the lock"
    );

    // Someone replaces the lock file with a new one, which they hold, and lets go of the old.
    let replacement = dir.path().join("lock.new");
    let new = hold(&replacement, FlockArg::LockExclusive);
    fs::rename(&replacement, &lock).unwrap();
    drop(old);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "wrote while the new lock file was held"
    );
    assert!(fs::read(&path).unwrap() == bytes);

    drop(new);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (store, _) = store(&path);
    assert_eq!(
        store.read().unwrap().failed["B0FAULT001"].retry_count,
        Some(1)
    );
}

#[test]
fn a_symlinked_state_file_is_written_through_and_a_loop_is_exit_74() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let bytes = fixture("pipeline-written.json");
    fs::write(real.join("state.json"), &bytes).unwrap();
    let link = dir.path().join("processed.json");
    std::os::unix::fs::symlink("real/state.json", &link).unwrap();

    mamfast_run(&link, MARK).expect_code(0, "through a symlink");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("real/state.json"));
    assert!(fs::read(real.join("state.json.bak")).unwrap() == bytes);
    assert!(!dir.path().join("processed.json.bak").exists());
    assert!(dir.path().join("processed.json.lock").exists());
    let (store, _) = store(&link);
    assert_eq!(
        store.read().unwrap().failed["B0FAULT001"].retry_count,
        Some(1)
    );

    let looped = dir.path().join("loop.json");
    std::os::unix::fs::symlink("loop.json", &looped).unwrap();
    for args in [&MARK[..], &["state", "list"][..]] {
        let run = mamfast_run(&looped, args);
        run.expect_code(74, "symlink loop");
        assert!(
            run.stderr.contains(&looped.display().to_string()),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("symbolic links"), "{}", run.stderr);
    }
    assert_eq!(fs::read_link(&looped).unwrap(), Path::new("loop.json"));
}

/// NFS cannot be mounted here: the seam makes the store take the directory for NFS, which
/// shows the warning end to end; the statfs magic numbers are unit-tested in `store::tests`.
#[test]
fn a_state_on_nfs_is_warned_about_and_still_works() {
    let (_dir, path, _) = with_state();
    for args in [&MARK[..], &["state", "list"][..]] {
        let mut cmd = mamfast(&path);
        cmd.env("MAMFAST_INJECT_FAULT", "network-fs");
        let run = run(cmd, args);
        run.expect_code(0, "nfs");
        assert!(
            run.stderr.contains(&format!(
                "warning: {} is on a network file system (nfs)",
                path.display()
            )),
            "{}",
            run.stderr
        );
    }
    // Without the seam, this directory is not taken for a network one.
    let run = mamfast_run(&path, ["state", "list"]);
    assert!(
        !run.stderr.contains("network file system"),
        "{}",
        run.stderr
    );
}
