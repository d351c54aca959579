//! The durable write: a writer killed at any rename, a full disk without `RENAME_EXCHANGE`,
//! inode exhaustion, a directory as the state file, an export under a temp file's name, and
//! `restore` with every generation taken.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mamfast::sample::realistic_state;
use mamfast::store::format::write_state;

use crate::support::cli::{mamfast, run, Run};

/// The bytes a state of `entries` generated releases is written as.
pub(crate) fn state_bytes(entries: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_state(&mut out, &realistic_state(entries, seed)).unwrap();
    out
}

/// `mamfast --state-file <state> <args>` with no config file and `faults` injected.
fn cli(state: &Path, faults: &str) -> Command {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_CONFIG", "");
    if !faults.is_empty() {
        cmd.env("MAMFAST_INJECT_FAULT", faults);
    }
    cmd
}

/// Every file of `dir` (not the lock) with its bytes.
pub(crate) fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".lock"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn strace_works() -> bool {
    let ok = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: killing at each rename needs strace, which cannot be run here");
    }
    ok
}

/// Runs `cmd` under strace, killed with SIGKILL at call `when` of `syscall`. `true` if it was
/// killed, `false` if it ran to its end first (then it must have succeeded).
fn killed_at(cmd: &Command, syscall: &str, when: usize, args: &[&str]) -> bool {
    let mut strace = Command::new("strace");
    strace.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            strace.env(k, v);
        }
    }
    strace
        .args(["-f", "-o", "/dev/null", "-e"])
        .arg(format!("inject={syscall}:signal=SIGKILL:when={when}"))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = strace.output().expect("run strace");
    if out.status.signal() == Some(9) || out.status.code() == Some(128 + 9) {
        return true;
    }
    assert!(
        out.status.success(),
        "{syscall} #{when}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// The syscalls a write renames, links or removes with.
const STEPS: [&str; 4] = ["rename", "renameat2", "link", "unlink"];

/// Sets up a directory by `setup`, then for every rename (link, unlink) of `args`, with and
/// without `RENAME_EXCHANGE`: kills `args` there, runs a write and `state backups`, and hands
/// the directory to `check` (with whether the kill landed, for the message).
pub(crate) fn kill_at_every_step(
    setup: &dyn Fn(&Path),
    args: &[&str],
    min_kills: usize,
    check: &dyn Fn(&Path, &str, &Run),
) {
    let mut kills = 0;
    for faults in ["", "no-rename-exchange"] {
        for syscall in STEPS {
            for when in 1.. {
                let dir = tempfile::tempdir().unwrap();
                let state = dir.path().join("p.json");
                setup(dir.path());
                let what = format!("{args:?} killed at {syscall} #{when} ({faults})");
                if !killed_at(&cli(&state, faults), syscall, when, args) {
                    break;
                }
                kills += 1;
                let write = run(
                    cli(&state, faults),
                    ["state", "mark-failed", "B0AFTER001", "--error", "after"],
                );
                write.expect_code(0, &what);
                run(cli(&state, faults), ["state", "backups"]).expect_code(0, &what);
                check(dir.path(), &what, &write);
                assert!(when < 40, "{what}: never ran to its end");
            }
        }
    }
    eprintln!("{args:?}: killed at {kills} steps");
    assert!(kills >= min_kills, "only {kills} kills landed");
}

pub(crate) fn holds(dir: &Path, bytes: &[u8]) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(_, b)| b == bytes)
        .map(|(n, _)| n)
        .collect()
}

pub(crate) fn no_hidden_files(dir: &Path, what: &str) {
    let hidden: Vec<String> = files(dir)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{what}: left {hidden:?}");
}

#[test]
fn a_recovery_killed_at_any_rename_keeps_the_corrupt_bytes_and_every_backup() {
    if !strace_works() {
        return;
    }
    let corrupt = b"{\"x".to_vec();
    let backups = [state_bytes(3, 1), state_bytes(4, 2)];
    let setup = |dir: &Path| {
        fs::write(dir.join("p.json"), &corrupt).unwrap();
        fs::write(dir.join("p.json.bak"), &backups[0]).unwrap();
        fs::write(dir.join("p.json.bak.1"), &backups[1]).unwrap();
    };
    kill_at_every_step(&setup, &["state", "list"], 4, &|dir, what, _| {
        let kept = holds(dir, &corrupt);
        assert!(
            kept.len() == 1 && kept[0].starts_with("p.json.corrupt-"),
            "{what}: the corrupt bytes are in {kept:?}\n{:?}",
            files(dir).iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        for (g, bytes) in backups.iter().enumerate() {
            assert!(!holds(dir, bytes).is_empty(), "{what}: backup {g} is gone");
        }
        no_hidden_files(dir, what);
    });
}

#[test]
fn a_write_killed_at_any_rename_loses_no_generation() {
    if !strace_works() {
        return;
    }
    // main, .bak, .bak.1, .bak.2: the default depth of 3 is full.
    let history: Vec<Vec<u8>> = (0..4).map(|i| state_bytes(3 + i, 10 + i as u64)).collect();
    // Each generation written a second before the next, as a history is: a killed write's old
    // main file is then newer than `.bak`, whatever the clock's granularity and the load.
    let setup = |dir: &Path| {
        let now = std::time::SystemTime::now();
        for (g, bytes) in history.iter().enumerate() {
            let name = match g {
                0 => "p.json".to_string(),
                1 => "p.json.bak".to_string(),
                g => format!("p.json.bak.{}", g - 1),
            };
            fs::write(dir.join(&name), bytes).unwrap();
            let age = std::time::Duration::from_secs(g as u64);
            let file = fs::File::options()
                .write(true)
                .open(dir.join(&name))
                .unwrap();
            file.set_modified(now - age).unwrap();
        }
    };
    let args = ["state", "mark-failed", "B0KILLED01", "--error", "killed"];
    kill_at_every_step(&setup, &args, 10, &|dir, what, write| {
        let read = |name: &str| fs::read(dir.join(name)).unwrap_or_default();
        let main = String::from_utf8(read("p.json")).unwrap();
        // The killed write may have committed (then it is `.bak` now), or not: either way the
        // generations are the history in order, with nothing missing.
        let committed = main.contains("B0KILLED01");
        let expected: &[&Vec<u8>] = if committed {
            assert!(
                String::from_utf8(read("p.json.bak"))
                    .unwrap()
                    .contains("B0KILLED01"),
                "{what}"
            );
            &[&history[0], &history[1]]
        } else {
            &[&history[0], &history[1], &history[2]]
        };
        let first = usize::from(committed);
        for (i, bytes) in expected.iter().enumerate() {
            let name = match first + i {
                0 => "p.json.bak".to_string(),
                g => format!("p.json.bak.{g}"),
            };
            assert!(
                read(&name) == **bytes,
                "{what}: {name} is not generation {i} of the history (committed: \
                 {committed}); files: {:?}\n{}",
                files(dir).iter().map(|f| &f.0).collect::<Vec<_>>(),
                write.stderr
            );
        }
        no_hidden_files(dir, what);
    });
}

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Result<Tmpfs, String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(self.path()).unwrap();
        stat.blocks_available() as u64 * stat.fragment_size() as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = Command::new("umount").arg(self.path()).status();
        if !done.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// Leaves `free` bytes free on `fs` with a filler file.
fn fill_to(fs_: &Tmpfs, free: u64) {
    let now = fs_.free();
    assert!(now > free, "{now} free, {free} wanted");
    fs::write(fs_.path().join("filler"), vec![0u8; (now - free) as usize]).unwrap();
}

#[test]
fn a_full_disk_without_rename_exchange_loses_no_generation() {
    let fs_ = match Tmpfs::mount("size=4m,mode=0755") {
        Ok(fs_) => fs_,
        Err(why) => return eprintln!("skipped: disk full without RENAME_EXCHANGE: {why}"),
    };
    // Four generations of about 520 KB, the oldest the smallest, as a state grows.
    let sizes = [760, 740, 720, 700];
    let history: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| state_bytes(*n, 20 + i as u64))
        .collect();
    let state = fs_.path().join("p.json");
    fs::write(&state, &history[0]).unwrap();
    for g in 0..3 {
        fs::write(fs_.path().join(backup_name(g)), &history[g + 1]).unwrap();
    }
    // Room for the new file, but not for it and a copy of the main file after the oldest
    // generation is dropped.
    let main = history[0].len() as u64;
    let oldest = history[3].len() as u64;
    assert!(main - oldest > 40_000, "{main} {oldest}");
    fill_to(&fs_, main + 16_384 + (main - oldest) / 2);
    let before = files(fs_.path());

    let write = run(
        cli(&state, "no-rename-exchange"),
        ["state", "mark-failed", "B0DISKFUL1", "--error", "full"],
    );
    let after = files(fs_.path());
    let read = |name: &str| fs::read(fs_.path().join(name)).unwrap();
    match write.code {
        // Done: the oldest generation fell out, as with every write.
        0 => {
            for (g, bytes) in history.iter().take(3).enumerate() {
                assert!(read(&backup_name(g)) == *bytes, "{g}\n{write:?}");
            }
        }
        74 => {
            assert!(before == after, "a failed write changed files\n{write:?}");
            assert!(write.stderr.contains("The disk is full"), "{write:?}");
        }
        _ => panic!("{write:?}"),
    }
    no_hidden_files(fs_.path(), "after the full disk");

    // Now too little room for the new file itself: exit 74, and nothing has moved.
    fs::remove_file(fs_.path().join("filler")).unwrap();
    let before = files(fs_.path());
    let main = read("p.json").len() as u64;
    fill_to(&fs_, main - 40_000);
    let before_fill: Vec<_> = files(fs_.path())
        .into_iter()
        .filter(|(n, _)| n != "filler")
        .collect();
    assert!(before_fill == before);
    let write = run(
        cli(&state, "no-rename-exchange"),
        ["state", "mark-failed", "B0DISKFUL2", "--error", "full"],
    );
    write.expect_code(74, "no room for the new file");
    assert!(write.stderr.contains("The disk is full"), "{write:?}");
    let after: Vec<_> = files(fs_.path())
        .into_iter()
        .filter(|(n, _)| n != "filler")
        .collect();
    assert!(after == before, "a failed write changed files");
}

fn backup_name(g: usize) -> String {
    match g {
        0 => "p.json.bak".into(),
        g => format!("p.json.bak.{g}"),
    }
}

#[test]
fn no_free_inodes_is_not_called_a_full_disk() {
    let fs_ = match Tmpfs::mount("size=4m,nr_inodes=16,mode=0755") {
        Ok(fs_) => fs_,
        Err(why) => return eprintln!("skipped: inode exhaustion: {why}"),
    };
    let state = fs_.path().join("p.json");
    fs::write(&state, state_bytes(3, 1)).unwrap();
    fs::write(fs_.path().join("p.json.lock"), "").unwrap();
    // Take every inode that is left.
    for i in 0.. {
        if fs::write(fs_.path().join(format!("f{i}")), "").is_err() {
            break;
        }
        assert!(i < 100);
    }
    let before = fs::read(&state).unwrap();
    let write = run(
        cli(&state, ""),
        ["state", "mark-failed", "B0INODES01", "--error", "e"],
    );
    write.expect_code(74, "no free inode");
    assert!(!write.stderr.contains("disk is full"), "{}", write.stderr);
    assert!(
        write.stderr.contains("no free inodes")
            && write.stderr.contains("previous state is intact"),
        "{}",
        write.stderr
    );
    assert!(fs::read(&state).unwrap() == before);
}

#[test]
fn a_directory_as_the_state_file_is_named_one_and_nothing_is_claimed_intact() {
    let lock_before = Path::new("/.lock").exists();
    for args in [
        &["state", "list"][..],
        &["state", "mark-failed", "B0ROOTDIR1", "--error", "e"],
    ] {
        let result = run(cli(Path::new("/"), ""), args);
        assert_eq!(result.code, 74, "{result:?}");
        assert!(
            result.stderr.contains("That is a directory")
                && result.stderr.contains("DIR/processed.json")
                && !result.stderr.contains("intact"),
            "{args:?}: {}",
            result.stderr
        );
        // Nothing was written: not even a lock file beside it.
        assert_eq!(Path::new("/.lock").exists(), lock_before, "{args:?}");
    }
}

#[test]
fn an_export_is_never_written_under_a_temp_file_name_of_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    fs::write(&state, state_bytes(3, 1)).unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(".p.json.tmp-999999-0", &link).unwrap();
    for output in [
        dir.path().join(".p.json.tmp-999999-0"),
        dir.path().join(".p.json.tmp-999999-0.was-1.bak"),
        link.clone(),
    ] {
        let export = run(
            cli(&state, ""),
            [
                "state".as_ref(),
                "export".as_ref(),
                "--output".as_ref(),
                output.as_os_str(),
            ],
        );
        export.expect_code(2, "an export under a temp name");
        assert!(export.stderr.contains("temp file"), "{export:?}");
        assert!(!dir.path().join(".p.json.tmp-999999-0").exists());
    }
    // Elsewhere, the same name is any file's.
    let other = tempfile::tempdir().unwrap();
    let elsewhere: PathBuf = other.path().join(".p.json.tmp-999999-0");
    let export = run(
        cli(&state, ""),
        [
            "state".as_ref(),
            "export".as_ref(),
            "--output".as_ref(),
            elsewhere.as_os_str(),
        ],
    );
    export.expect_code(0, "an export elsewhere");
}

#[test]
fn restore_keeps_every_distinct_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    let history: Vec<Vec<u8>> = (0..4).map(|i| state_bytes(3 + i, 30 + i as u64)).collect();
    fs::write(&state, &history[0]).unwrap();
    for g in 0..3 {
        fs::write(dir.path().join(backup_name(g)), &history[g + 1]).unwrap();
    }
    let restore = run(cli(&state, ""), ["state", "restore", "1"]);
    restore.expect_code(0, "restore 1");
    let read = |name: &str| fs::read(dir.path().join(name)).unwrap();
    assert!(read("p.json") == history[2]);
    // The old main file is rejected, kept aside; the generations did not move.
    let rejected = holds(dir.path(), &history[0]);
    assert!(
        rejected.len() == 1 && rejected[0].starts_with("p.json.rejected-"),
        "{rejected:?}"
    );
    for (g, i) in [(0, 1), (1, 2), (2, 3)] {
        assert!(read(&backup_name(g)) == history[i], "{g}");
    }

    // A generation beyond the depth: nothing falls out for it either.
    let extra = state_bytes(9, 39);
    fs::write(dir.path().join("p.json.bak.5"), &extra).unwrap();
    let restore = run(cli(&state, ""), ["state", "restore", "5"]);
    restore.expect_code(0, "restore 5");
    assert!(read("p.json") == extra);
    for (i, bytes) in history.iter().enumerate() {
        assert!(!holds(dir.path(), bytes).is_empty(), "state {i} is gone");
    }
}
