//! Backup retention (README, *Backups*): the last writes plus one generation a day (or hour)
//! survive a busy day; a rotation killed at any rename loses no generation the policy keeps;
//! the state a `restore` replaced is kept as `.rejected-…` and never brought back by
//! recovery; the number of copies stays bounded.
//!
//! A generation's time is its file's modification time. The tests set it after each write
//! (`File::set_modified`, as `touch -d` would), so that a fixed clock moves through the days.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::hardening::durable::{
    holds, kill_at_every_step, no_hidden_files, state_bytes, strace_works,
};
use crate::support::cli::{mamfast, mamfast_run, run};

/// A time of the fixed clock.
fn at(text: &str) -> SystemTime {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
        .into()
}

/// Sets the modification time of `path`: when that state was written.
fn written(path: &Path, time: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// `mamfast state mark-failed ID` with the default configuration: one write.
fn write(state: &Path, id: &str) {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_CONFIG", "");
    run(cmd, ["state", "mark-failed", id, "--error", "e"]).expect_code(0, id);
}

/// The backup generations beside `state`, in generation order, with their bytes.
fn generations(state: &Path) -> Vec<(usize, Vec<u8>)> {
    let dir = state.parent().unwrap();
    let name = state.file_name().unwrap().to_str().unwrap();
    let mut out: Vec<(usize, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| {
            let rest = n.strip_prefix(name)?.strip_prefix(".bak")?;
            let g = match rest {
                "" => 0,
                r => r.strip_prefix('.')?.parse().ok()?,
            };
            Some((g, fs::read(dir.join(&n)).unwrap()))
        })
        .collect();
    out.sort();
    out
}

/// `state backups --json` of `state`: each file's generation label and why it is kept.
fn kept_reasons(state: &Path) -> Vec<(String, Option<String>)> {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_CONFIG", "");
    let listing = run(cmd, ["state", "backups", "--json"]);
    listing.expect_code(0, "state backups");
    let docs: Vec<serde_json::Value> = serde_json::from_str(&listing.stdout).unwrap();
    docs.iter()
        .filter(|d| d["exists"] == true)
        .map(|d| {
            (
                d["generation"].as_str().unwrap().to_string(),
                d["kept"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn fifty_writes_through_two_days_keep_yesterdays_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    // 50 writes 55 minutes apart: from 00:30 on the 27th to 21:25 on the 28th.
    let start = at("2026-11-27T00:30:00Z");
    let mut after = Vec::new();
    for i in 0..50u64 {
        write(&state, &format!("B{i:09}"));
        let time = start + Duration::from_secs(i * 55 * 60);
        written(&state, time);
        after.push((time, fs::read(&state).unwrap()));
    }
    // Yesterday's state: the last one written on the 27th (write 25, at 23:25).
    let end_of_27 = at("2026-11-28T00:00:00Z");
    let yesterday = &after.iter().rev().find(|(t, _)| *t < end_of_27).unwrap().1;
    let kept = generations(&state);
    let bytes: Vec<&Vec<u8>> = kept.iter().map(|(_, b)| b).collect();
    assert!(
        bytes.contains(&yesterday),
        "yesterday's state is gone: {} generations",
        kept.len()
    );
    // The last three states before the main file are `.bak`, `.bak.1`, `.bak.2`.
    for (g, i) in [(0, 48), (1, 47), (2, 46)] {
        assert_eq!(kept[g], (g, after[i].1.clone()), ".bak.{g}");
    }
    // Yesterday's is next, with its reason; nothing else was kept (two days, one taken by
    // the last three).
    assert_eq!(kept.len(), 4);
    assert_eq!(kept[3].1, *yesterday);
    let reasons = kept_reasons(&state);
    assert_eq!(
        reasons,
        [
            ("main".to_string(), None),
            (".bak".into(), Some("last 3".into())),
            (".bak.1".into(), Some("last 3".into())),
            (".bak.2".into(), Some("last 3".into())),
            (".bak.3".into(), Some("daily 2026-11-27".into())),
        ]
    );
}

#[test]
fn hourly_backups_keep_this_mornings_state_after_a_busy_afternoon() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    let mut states = Vec::new();
    // A write at 09:00, then thirty in the afternoon, a minute apart.
    let times: Vec<SystemTime> = std::iter::once(at("2026-11-28T09:00:00Z"))
        .chain((0..30).map(|i| at("2026-11-28T14:00:00Z") + Duration::from_secs(60 * i)))
        .collect();
    for (i, time) in times.iter().enumerate() {
        let mut cmd = mamfast(&state);
        cmd.env("MAMFAST_CONFIG", "")
            .env("MAMFAST_BACKUP_DEPTH", "2")
            .env("MAMFAST_BACKUP_HOURLY", "6")
            .env("MAMFAST_BACKUP_DAILY", "0");
        run(
            cmd,
            ["state", "mark-failed", &format!("B{i:09}"), "--error", "e"],
        )
        .expect_code(0, "write");
        written(&state, *time);
        states.push(fs::read(&state).unwrap());
    }
    let kept: Vec<Vec<u8>> = generations(&state).into_iter().map(|(_, b)| b).collect();
    // The two before the main file, and the morning's: the 14:xx hour is the last two's.
    assert_eq!(
        kept,
        [states[29].clone(), states[28].clone(), states[0].clone()]
    );
}

#[test]
fn a_rotation_killed_at_any_rename_loses_no_generation_the_policy_keeps() {
    if !strace_works() {
        return;
    }
    // main, three of the same day, yesterday's (after a gap), two of the day before.
    let states: Vec<Vec<u8>> = (0..8).map(|i| state_bytes(2 + i, 40 + i as u64)).collect();
    let layout: [(&str, &str); 8] = [
        ("p.json", "2026-11-28T12:00:00Z"),
        ("p.json.bak", "2026-11-28T11:59:00Z"),
        ("p.json.bak.1", "2026-11-28T11:58:00Z"),
        ("p.json.bak.2", "2026-11-28T11:57:00Z"),
        ("p.json.bak.4", "2026-11-27T12:00:00Z"),
        ("p.json.bak.6", "2026-11-26T12:00:00Z"),
        ("p.json.bak.7", "2026-11-26T08:00:00Z"),
        ("p.json.bak.9", "2026-11-25T08:00:00Z"),
    ];
    let setup = |dir: &Path| {
        for ((name, time), bytes) in layout.iter().zip(&states) {
            let path = dir.join(name);
            fs::write(&path, bytes).unwrap();
            written(&path, at(time));
        }
    };
    // The killed write keeps main, .bak, .bak.1 (last 3), and the newest of the 27th, 26th
    // and 25th (daily). The write after it then keeps the main file the killed write left
    // (new or old), and of the rest at least the old main and `.bak`, and every daily one.
    let must_survive = [0, 1, 4, 5, 7];
    kill_at_every_step(
        &setup,
        &["state", "mark-failed", "B0KILLED01", "--error", "e"],
        6,
        &|dir, what, _| {
            let state = dir.join("p.json");
            let gens = generations(&state);
            let mut last_g = None;
            for i in must_survive {
                let found: Vec<usize> = gens
                    .iter()
                    .filter(|(_, b)| *b == states[i])
                    .map(|(g, _)| *g)
                    .collect();
                assert_eq!(
                    found.len(),
                    1,
                    "{what}: state {i} ({}) is in generations {found:?}; files {:?}",
                    layout[i].0,
                    holds(dir, &states[i])
                );
                // In their order: recovery walks them newest first.
                assert!(last_g < Some(found[0]), "{what}: state {i} out of order");
                last_g = Some(found[0]);
            }
            assert!(
                holds(dir, &states[3]).is_empty() && holds(dir, &states[6]).is_empty(),
                "{what}: a generation the policy drops is still there"
            );
            no_hidden_files(dir, what);
        },
    );
}

/// Writes `n` states through the CLI, each with its own time, `step` apart from `start`.
fn history(state: &Path, n: u64, start: SystemTime, step: Duration) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            write(state, &format!("B{i:09}"));
            written(state, start + step * i as u32);
            fs::read(state).unwrap()
        })
        .collect()
}

#[test]
fn recovery_after_a_restore_never_picks_the_rejected_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    let states = history(
        &state,
        4,
        at("2026-11-28T10:00:00Z"),
        Duration::from_secs(60),
    );
    let rejected = states[3].clone();
    let restore = mamfast_run(&state, ["state", "restore", ".bak"]);
    restore.expect_code(0, "restore");
    assert_eq!(fs::read(&state).unwrap(), states[2], "the restored state");
    // Kept under a name recovery does not walk, and listed.
    let aside: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".rejected-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).unwrap(), rejected);
    assert!(
        restore.stdout.contains(&*aside[0].to_string_lossy())
            || restore.stderr.contains(&*aside[0].to_string_lossy())
    );
    let reasons = kept_reasons(&state);
    let name = aside[0].file_name().unwrap().to_string_lossy();
    assert!(
        reasons.contains(&(
            name["processed.json".len()..].to_string(),
            Some("rejected".into())
        )),
        "{reasons:?}"
    );
    // The main file breaks: recovery brings back the restored state, not the rejected one.
    fs::write(&state, b"{\"broken").unwrap();
    let list = mamfast_run(&state, ["state", "list", "--json"]);
    list.expect_code(0, "recovery");
    assert_eq!(fs::read(&state).unwrap(), states[2], "recovered from .bak");
    assert_eq!(fs::read(&aside[0]).unwrap(), rejected, "kept");
    // Every backup broken too: recovery fails rather than take the rejected state.
    for (g, _) in generations(&state) {
        let suffix = if g == 0 {
            String::new()
        } else {
            format!(".{g}")
        };
        fs::write(dir.path().join(format!("processed.json.bak{suffix}")), b"{").unwrap();
    }
    fs::write(&state, b"{\"broken").unwrap();
    mamfast_run(&state, ["state", "list"]).expect_code(65, "nothing valid to recover");
    assert_eq!(fs::read(&aside[0]).unwrap(), rejected, "never deleted");
    // The operator may still bring it back by its name.
    mamfast_run(&state, ["state", "restore", &*aside[0].to_string_lossy()])
        .expect_code(0, "restore the rejected state");
    assert_eq!(fs::read(&state).unwrap(), rejected);
}

#[test]
fn disk_use_is_bounded_by_the_policy() {
    // A write a day for forty days, then a busy day: the default policy keeps 3 + 7 copies.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    let start = at("2026-10-01T12:00:00Z");
    history(&state, 40, start, Duration::from_secs(86_400));
    let busy = start + Duration::from_secs(41 * 86_400);
    history(&state, 20, busy, Duration::from_secs(60));
    let kept = generations(&state);
    assert_eq!(kept.len(), 10, "3 last + 7 daily");
    let largest = fs::metadata(&state).unwrap().len();
    let total: u64 = kept.iter().map(|(_, b)| b.len() as u64).sum();
    assert!(total <= 10 * largest, "{total} bytes of backups");
    // Generations are numbered without a gap, newest first.
    let numbers: Vec<usize> = kept.iter().map(|(g, _)| *g).collect();
    assert_eq!(numbers, (0..10).collect::<Vec<_>>());
}
