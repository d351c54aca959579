//! Benchmarks of the state file at 1k, 10k and 100k entries, as ratios measured in one run:
//!
//! - a durable single-entry update through `Store::update` against a raw durable copy of the
//!   same file (read the bytes, write them to a temp file, fsync, rename, fsync the directory);
//! - `mamfast state list`, with and without a filter, and `mamfast state prune --dry-run` (the
//!   release binary, as a subprocess) against `jq -c . FILE`;
//! - `mamfast state apply` of 1000 operations against one `mamfast state mark-failed`;
//! - the peak memory (max RSS, from `wait4`) of those subprocesses against the file's size.
//!
//! Run: `cargo run --release --example bench` (builds the release binary first). Arguments:
//! entry counts to run instead of the default `1000 10000 100000`. `BENCH_DIR` chooses where the
//! files go (default: the system temp directory; use the disk the state lives on);
//! `BENCH_KEEP=1` keeps them afterwards (for profiling).

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mamfast::sample;
use mamfast::state::ops::{self, ReleaseFields};
use mamfast::store::format::to_python_json;
use mamfast::{Outcome, Store, StoreOptions};

/// The targets at the largest size (from the issue).
const MAX_UPDATE_RATIO: f64 = 2.0;
/// `state list` at least 10× faster than `jq -c .`, with or without a filter.
const MAX_LIST_VS_JQ: f64 = 0.1;
const MAX_LIST_RSS_RATIO: f64 = 2.0;
const MAX_RSS_RATIO: f64 = 3.0;
const MAX_APPLY_RATIO: f64 = 2.0;
/// Operations in the `state apply` measured against one single update.
const APPLY_OPS: usize = 1000;
/// The filter of the filtered `state list`.
const LIST_FILTER: [&str; 4] = ["--status", "complete", "--grep", "a"];

struct Row {
    entries: usize,
    file_size: u64,
    update: Duration,
    raw_copy: Duration,
    list: Duration,
    list_filtered: Duration,
    prune: Duration,
    single: Duration,
    apply: Duration,
    jq: Option<Duration>,
    rss_list: u64,
    rss_list_filtered: u64,
    rss_prune: u64,
    rss_update: u64,
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(MEASURE) {
        return measure_child();
    }
    let sizes: Vec<usize> = {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .map(|a| a.parse().expect("arguments are entry counts"))
            .collect();
        if args.is_empty() {
            vec![1_000, 10_000, 100_000]
        } else {
            args
        }
    };
    let bin = release_binary();
    let jq = Command::new("jq")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if jq.is_none() {
        println!("note: jq not found (apt-get install -y jq): the jq comparison is skipped");
    }
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let work = tempfile::Builder::new()
        .prefix("mamfast-bench-")
        .tempdir_in(&base)
        .expect("bench directory");
    println!(
        "mamfast bench: CPU {}, binary {}, files in {}{}",
        cpu_model(),
        bin.display(),
        work.path().display(),
        jq.as_deref().map_or(String::new(), |v| format!(", {v}"))
    );

    let mut rows = Vec::new();
    for &entries in &sizes {
        rows.push(bench_size(&bin, jq.is_some(), work.path(), entries));
    }

    println!();
    println!(
        "{:>8} {:>7} | {:>9} {:>9} {:>6} | {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} | {:>9} {:>9} {:>6} | {:>8} {:>8} {:>8}",
        "entries",
        "file MB",
        "update",
        "raw copy",
        "ratio",
        "list",
        "list -f",
        "prune -n",
        "jq -c .",
        "list/jq",
        "-f/jq",
        "single",
        "apply",
        "ratio",
        "RSS list",
        "prune",
        "update"
    );
    for r in &rows {
        let mb = r.file_size as f64 / 1e6;
        let jq = r.jq.map_or("-".to_string(), ms);
        let vs_jq = |t: Duration| {
            r.jq.map_or("-".to_string(), |jq| format!("{:.3}", ratio(t, jq)))
        };
        let rss = |rss: u64| format!("{:.2}x", rss as f64 / r.file_size as f64);
        println!(
            "{:>8} {:>7.2} | {:>9} {:>9} {:>6.2} | {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} | {:>9} {:>9} {:>6.2} | {:>8} {:>8} {:>8}",
            r.entries,
            mb,
            ms(r.update),
            ms(r.raw_copy),
            ratio(r.update, r.raw_copy),
            ms(r.list),
            ms(r.list_filtered),
            ms(r.prune),
            jq,
            vs_jq(r.list),
            vs_jq(r.list_filtered),
            ms(r.single),
            ms(r.apply),
            ratio(r.apply, r.single),
            rss(r.rss_list.max(r.rss_list_filtered)),
            rss(r.rss_prune),
            rss(r.rss_update),
        );
    }
    println!(
        "(times are medians; ratio = update / raw durable copy; list -f = `state list {}`; \
         list/jq = `state list` time / `jq -c .` time; single = one `state mark-failed`, apply = \
         `state apply` of {APPLY_OPS} mark-failed lines; RSS = peak resident memory of the \
         subprocess / file size)",
        LIST_FILTER.join(" ")
    );

    let Some(last) = rows.iter().max_by_key(|r| r.entries) else {
        return;
    };
    println!("\ntargets at {} entries:", last.entries);
    let mut ok = true;
    let mut check = |what: &str, value: f64, max: f64| {
        let pass = value <= max;
        ok &= pass;
        println!(
            "  {:<42} {:>6.2} (at most {max}): {}",
            what,
            value,
            if pass { "ok" } else { "MISSED" }
        );
    };
    check(
        "update / raw durable copy",
        ratio(last.update, last.raw_copy),
        MAX_UPDATE_RATIO,
    );
    match last.jq {
        Some(jq) => {
            check("state list / jq -c .", ratio(last.list, jq), MAX_LIST_VS_JQ);
            check(
                "state list (filtered) / jq -c .",
                ratio(last.list_filtered, jq),
                MAX_LIST_VS_JQ,
            );
        }
        None => println!("  state list / jq -c .: skipped (no jq)"),
    }
    check(
        "peak RSS of state list / file size",
        last.rss_list.max(last.rss_list_filtered) as f64 / last.file_size as f64,
        MAX_LIST_RSS_RATIO,
    );
    check(
        &format!("state apply of {APPLY_OPS} ops / one mark-failed"),
        ratio(last.apply, last.single),
        MAX_APPLY_RATIO,
    );
    let peak = last.rss_list.max(last.rss_prune).max(last.rss_update);
    check(
        "peak RSS (list, prune, update) / file size",
        peak as f64 / last.file_size as f64,
        MAX_RSS_RATIO,
    );
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("files kept in {}", work.keep().display());
    }
    if !ok {
        std::process::exit(1);
    }
}

fn bench_size(bin: &Path, jq: bool, work: &Path, entries: usize) -> Row {
    let reps = match entries {
        0..=5_000 => 15,
        5_001..=50_000 => 9,
        _ => 9,
    };
    let dir = work.join(format!("n{entries}"));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("processed.json");
    let bytes = to_python_json(&sample::realistic_state(entries, entries as u64));
    fs::write(&path, &bytes).unwrap();
    let file_size = bytes.len() as u64;
    drop(bytes);
    eprintln!(
        "{entries} entries: {:.1} MB, {reps} runs of each",
        file_size as f64 / 1e6
    );

    // A durable update through the store against a raw durable copy of the same bytes,
    // interleaved so that both see the same disk.
    let store = Store::new(&path, StoreOptions::default()).with_notices(|_| {});
    let raw_dir = dir.join("raw");
    fs::create_dir_all(&raw_dir).unwrap();
    let mut update = Vec::new();
    let mut raw = Vec::new();
    for i in 0..reps {
        // Each measurement starts on a quiet machine: what the last one left running (the
        // store frees a large state on a helper thread) is done by then.
        settle();
        let start = Instant::now();
        store
            .update(|state| {
                ops::mark_failed(
                    state,
                    "B0BENCHMARK",
                    &format!("bench run {i}"),
                    Some("BenchError"),
                    &ReleaseFields::default(),
                    "2026-11-26T10:00:00.000000+00:00",
                )?;
                Ok(Outcome::Changed(()))
            })
            .expect("update");
        update.push(start.elapsed());
        settle();
        let start = Instant::now();
        raw_durable_copy(&path, &raw_dir.join("processed.json"));
        raw.push(start.elapsed());
    }

    let run = |args: &[&str]| -> (Duration, u64) {
        let mut times = Vec::new();
        let mut rss = 0;
        for _ in 0..reps {
            let (time, max_rss, status) = run_measured(
                Command::new(bin)
                    .arg("--state-file")
                    .arg(&path)
                    .args(args)
                    .env_clear()
                    .env("HOME", work)
                    .env("XDG_CONFIG_HOME", work.join("no-config"))
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default()),
            );
            assert!(status.success(), "mamfast {args:?}: {status}");
            times.push(time);
            rss = rss.max(max_rss);
        }
        (median(times), rss)
    };
    let (list, rss_list) = run(&["state", "list"]);
    let filtered: Vec<&str> = ["state", "list"].into_iter().chain(LIST_FILTER).collect();
    let (list_filtered, rss_list_filtered) = run(&filtered);
    let (prune, rss_prune) = run(&["state", "prune", "--dry-run"]);
    let (single, rss_update) = run(&[
        "state",
        "mark-failed",
        "B0BENCHMARK",
        "--error",
        "bench from the CLI",
    ]);
    // As many failures in one `state apply` (new IDs on the first run, counted up after).
    let ops_file = dir.join("ops.jsonl");
    let ops: String = (0..APPLY_OPS)
        .map(|i| {
            format!(
                "{{\"op\": \"mark-failed\", \"id\": \"B0APPLY{i:05}\", \"error\": \"bench\"}}\n"
            )
        })
        .collect();
    fs::write(&ops_file, ops).unwrap();
    let (apply, _) = run(&["state", "apply", ops_file.to_str().unwrap()]);
    let jq = jq.then(|| {
        let times = (0..reps)
            .map(|_| {
                let (time, _, status) = run_measured(
                    Command::new("jq")
                        .args([OsStr::new("-c"), OsStr::new(".")])
                        .arg(&path),
                );
                assert!(status.success(), "jq: {status}");
                time
            })
            .collect();
        median(times)
    });
    Row {
        entries,
        file_size,
        update: median(update),
        raw_copy: median(raw),
        list,
        list_filtered,
        prune,
        single,
        apply,
        jq,
        rss_list,
        rss_list_filtered,
        rss_prune,
        rss_update,
    }
}

/// What every durable write must do at least: the bytes to a temp file, fsync, rename over
/// the destination, fsync of the directory.
fn raw_durable_copy(from: &Path, to: &Path) {
    let bytes = fs::read(from).unwrap();
    let dir = to.parent().unwrap();
    let temp = dir.join(".raw.tmp");
    let mut file = File::create(&temp).unwrap();
    file.write_all(&bytes).unwrap();
    file.sync_all().unwrap();
    drop(file);
    fs::rename(&temp, to).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
}

/// The argument that makes this program the measuring helper of [`run_measured`].
const MEASURE: &str = "--measure-child";

/// Runs `cmd` with stdout and stderr discarded; its wall time, max RSS in bytes, status.
///
/// The command is started by a fresh copy of this program (`--measure-child`), not by this
/// process: `ru_maxrss` of a child counts the memory of the process that spawned it (its
/// address space is the spawner's until `exec`), and this one holds large states.
fn run_measured(cmd: &mut Command) -> (Duration, u64, ExitStatus) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg(MEASURE)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn the measuring helper");
    assert!(out.status.success(), "measuring helper: {}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().unwrap());
    let (nanos, rss, status) = (
        fields.next().unwrap(),
        fields.next().unwrap(),
        fields.next().unwrap(),
    );
    (
        Duration::from_nanos(nanos as u64),
        rss as u64,
        ExitStatus::from_raw(status as i32),
    )
}

/// The helper: runs the command after `--measure-child` with no output, and prints its wall
/// time (ns), max RSS (bytes) and raw wait status.
fn measure_child() {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let start = Instant::now();
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as nix::libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, reaped here (the
    // `Child` is never waited on again).
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    // ru_maxrss is in kilobytes on Linux.
    println!(
        "{} {} {status}",
        elapsed.as_nanos(),
        usage.ru_maxrss as u64 * 1024
    );
}

/// `target/release/mamfast`, built now if needed (an example does not build the binary).
fn release_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "mamfast"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build --release --bin mamfast");
    assert!(status.success(), "building the release binary failed");
    let exe = std::env::current_exe().unwrap();
    // target/release/examples/bench → target/release/mamfast
    let bin = exe.parent().unwrap().parent().unwrap().join("mamfast");
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

/// The CPU's model name, from /proc/cpuinfo.
fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn settle() {
    std::thread::sleep(Duration::from_millis(150));
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
