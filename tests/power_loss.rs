//! Power loss: every write path of mamfast recorded block by block on a real file system and
//! replayed with the writes not yet flushed dropped, crash point by crash point
//! (`outagefs run-suite`, https://crates.io/crates/outagefs). RELIABILITY.md, *Power loss*, says
//! what is simulated and what is not.
//!
//! A test binary of its own: it needs root, `/dev/fuse`, loop devices, `outagefs`,
//! `mkfs.ext4`, `mkfs.xfs` and `python3`, and takes minutes. Without them each test prints
//! `SKIPPED: <why>` and passes, unless `POWER_LOSS_TEST=required` (set by `.ci/run` where
//! root and `/dev/fuse` are there), which makes a missing tool a failure: CI cannot pass by
//! skipping. The scenarios and the check of each crash point are in `tests/power-loss/`; a
//! scenario is an entry in `scenarios.py` and a line here.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The script outagefs runs for each step of a scenario.
const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/power-loss/suite.py");

/// outagefs's `-m`: at most 2^N crash points between two flushes (all of them when there are
/// fewer than N writes between; otherwise a random sample of 2^N). Chosen so that the whole
/// test stays within a few minutes of CI on two cores while every scenario still gets a few
/// dozen crash points (RELIABILITY.md gives the counts of the last run).
const MAX_CASES_LOG2: &str = "2";

/// What one `outagefs run-suite` of one scenario gave.
#[derive(Debug)]
struct Verdicts {
    /// Crash points where the main file was the old state, and the new state.
    old: usize,
    new: usize,
    /// What failed, one line per failing crash point (outagefs stops at the first).
    failures: Vec<String>,
    /// outagefs's own count of verified crash points (none when a check failed).
    verified: Option<usize>,
    /// The recorded command's exit code and messages.
    command: String,
}

/// Why the suite cannot run here, or None when it can.
fn unavailable() -> Option<String> {
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return Some("not root (mounting file systems needs root)".into());
    }
    for dev in ["/dev/fuse", "/dev/loop-control"] {
        if !Path::new(dev).exists() {
            return Some(format!("{dev} does not exist"));
        }
    }
    for (tool, arg) in [
        ("outagefs", "--version"),
        ("mkfs.ext4", "-V"),
        ("mkfs.xfs", "-V"),
        ("python3", "--version"),
    ] {
        let runs = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !runs {
            return Some(format!(
                "{tool} cannot be run (.ci/run installs it: see RELIABILITY.md, Power loss)"
            ));
        }
    }
    None
}

/// Runs one scenario on file system `fs`; None (after printing why) when the suite cannot run.
fn run_scenario(scenario: &str, fs: &str) -> Option<Verdicts> {
    if let Some(why) = unavailable() {
        if std::env::var("POWER_LOSS_TEST").as_deref() == Ok("required") {
            panic!("power loss {scenario}: POWER_LOSS_TEST=required, but {why}");
        }
        // Straight to the terminal: libtest keeps print!ed output of a passing test hidden.
        let _ = writeln!(std::io::stderr(), "SKIPPED: power loss {scenario}: {why}");
        return None;
    }
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new("outagefs")
        .args(["run-suite", "-m", MAX_CASES_LOG2, SUITE])
        .env("PL_SCENARIO", scenario)
        .env("PL_WORK", work.path())
        .env("PL_FS", fs)
        .env("PL_MAMFAST", env!("CARGO_BIN_EXE_mamfast"))
        .stdin(Stdio::null())
        .output()
        .expect("run outagefs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();
    let lines = read("verdicts.log");
    let verdicts = Verdicts {
        old: lines.lines().filter(|l| *l == "old").count(),
        new: lines.lines().filter(|l| *l == "new").count(),
        failures: lines
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .map(String::from)
            .collect(),
        verified: stderr
            .lines()
            .find_map(|l| l.strip_suffix(" test cases verified"))
            .and_then(|n| n.trim().parse().ok()),
        command: read("command.log"),
    };
    // Shown with --nocapture: the figures RELIABILITY.md reports.
    println!(
        "power loss {fs} {scenario}: {} crash points ({} old, {} new, {} failed) in {:.0} s",
        verdicts.old + verdicts.new + verdicts.failures.len(),
        verdicts.old,
        verdicts.new,
        verdicts.failures.len(),
        started.elapsed().as_secs_f64()
    );
    // The `journal` scenario's cases: (main file, journal agrees or its gap is reported).
    let mut cases = std::collections::BTreeMap::<&str, usize>::new();
    let journal_cases = read("journal-cases.log");
    for line in journal_cases.lines() {
        *cases.entry(line).or_default() += 1;
    }
    if !cases.is_empty() {
        println!("power loss {fs} {scenario}: journal cases {cases:?}");
    }
    assert!(
        out.status.success() && !lines.is_empty(),
        "power loss {scenario}: outagefs failed ({}) or checked nothing:\n{stderr}",
        out.status
    );
    assert!(
        verdicts.command.starts_with("exit 0\n"),
        "power loss {scenario}: the recorded command failed: {}",
        verdicts.command
    );
    Some(verdicts)
}

/// The file systems every scenario runs on: ext4 (mounted with `noauto_da_alloc`) and xfs.
const FILE_SYSTEMS: [&str; 2] = ["ext4", "xfs"];

/// Every crash point of `scenario` keeps the old or the new state, and both were met.
fn survives(scenario: &str) {
    for fs in FILE_SYSTEMS {
        let Some(v) = run_scenario(scenario, fs) else {
            return;
        };
        assert!(
            v.failures.is_empty(),
            "power loss {fs} {scenario}: {:?}\n{v:?}",
            v.failures
        );
        assert_eq!(v.verified, Some(v.old + v.new), "{fs}: {v:?}");
        // Crash points on both sides of the commit: the sampling reached the command's writes.
        assert!(v.old > 0 && v.new > 0, "power loss {fs} {scenario}: {v:?}");
    }
}

#[test]
fn a_single_update_survives_a_power_cut_at_every_crash_point() {
    survives("mark-failed");
}

#[test]
fn a_read_recovering_a_corrupt_main_file_from_a_backup_survives_a_power_cut() {
    survives("recover");
}

#[test]
fn restore_survives_a_power_cut_at_every_crash_point() {
    survives("restore");
}

#[test]
fn prune_survives_a_power_cut_at_every_crash_point() {
    survives("prune");
}

#[test]
fn a_batch_apply_survives_a_power_cut_at_every_crash_point() {
    survives("apply");
}

#[test]
fn a_bulk_retry_survives_a_power_cut_at_every_crash_point() {
    survives("retry");
}

#[test]
fn a_write_rotating_time_spaced_backups_keeps_every_generation_the_policy_keeps() {
    survives("rotate");
}

#[test]
fn the_journal_agrees_with_the_state_or_the_gap_is_reported_after_a_power_cut() {
    survives("journal");
}

/// The negative control: a write with no fsync before its rename is caught, so these tests
/// can fail (on ext4, whose `noauto_da_alloc` mount is what makes such a write lose data).
#[test]
fn the_naive_write_without_fsync_is_caught() {
    let Some(v) = run_scenario("naive-writer", "ext4") else {
        return;
    };
    assert!(
        !v.failures.is_empty(),
        "the naive writer passed every crash point: the suite cannot catch a missing fsync\n{v:?}"
    );
}
