//! What going through mamfast costs a plugin call. A trivial plugin is run N times each way,
//! interleaved, after a warm-up:
//!
//! - directly;
//! - through the floor: this program started again in a mode that does nothing but `exec` the
//!   plugin (one more process, built by the same toolchain and profile as mamfast);
//! - as `mamfast state noop`, for each mamfast binary named (to compare two builds in one run).
//!
//! It prints the mean and median of each, and each one's overhead over the direct call, so the
//! cost of starting a process at all (the floor) and mamfast's own cost are told apart.
//!
//! ```sh
//! cargo build --release && cargo run --release --example plugin_overhead -- [N] [MAMFAST...]
//! ```
//!
//! N defaults to 200, MAMFAST to `target/release/mamfast`. The plugin is `/bin/true` linked
//! as `mamfast-state-noop` (so the number is mamfast's own cost, not a shell's), found in
//! `PATH`; the environment holds nothing else but a `HOME` with no config file, so this is
//! the smallest dispatch: parse, settings, one stat per directory, exec.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WARM_UP: usize = 20;
/// The floor's mode: `plugin_overhead --exec-only PROGRAM` becomes PROGRAM.
const EXEC_ONLY: &str = "--exec-only";

fn main() {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == EXEC_ONLY) {
        let program = args.nth(1).expect("--exec-only PROGRAM");
        let err = Command::new(program).exec();
        eprintln!("exec: {err}");
        std::process::exit(126);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(200);
    let mut mamfasts: Vec<PathBuf> = args.iter().skip(1).map(PathBuf::from).collect();
    if mamfasts.is_empty() {
        mamfasts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/mamfast"));
    }
    for mamfast in &mamfasts {
        assert!(
            mamfast.exists(),
            "{} does not exist: run `cargo build --release` first, or name the binary",
            mamfast.display()
        );
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let truth = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("no /bin/true");
    let plugin = bin.join("mamfast-state-noop");
    std::os::unix::fs::symlink(truth, &plugin).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let this = std::env::current_exe().expect("the path of this program");

    let run = |cmd: &mut Command| -> Duration {
        let start = Instant::now();
        let status = cmd
            .env_clear()
            .env("HOME", &home)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn");
        let took = start.elapsed();
        assert!(status.success(), "{cmd:?} failed: {status}");
        took
    };
    let mut ways: Vec<(String, Box<dyn Fn() -> Duration>)> = vec![
        (
            format!("direct (mamfast-state-noop -> {truth})"),
            Box::new(|| run(&mut Command::new(&plugin))),
        ),
        (
            "floor (a process that only execs it)".into(),
            Box::new(|| run(Command::new(&this).arg(EXEC_ONLY).arg(&plugin))),
        ),
    ];
    for mamfast in &mamfasts {
        let mamfast = mamfast.clone();
        ways.push((
            format!("via {} state noop", mamfast.display()),
            Box::new(move || run(Command::new(&mamfast).args(["state", "noop"]))),
        ));
    }

    for _ in 0..WARM_UP {
        for (_, way) in &ways {
            way();
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); ways.len()];
    for _ in 0..n {
        for (i, (_, way)) in ways.iter().enumerate() {
            times[i].push(way());
        }
    }

    println!("runs: {n} of each (after {WARM_UP} warm-up runs), interleaved");
    let direct_mean = mean(&times[0]);
    let direct_median = median(&mut times[0].clone());
    for ((name, _), t) in ways.iter().zip(&mut times) {
        let (m, med) = (mean(t), median(t));
        println!("{name}");
        println!(
            "    mean {:>7.3} ms  median {:>7.3} ms  over direct: mean {:>6.3} ms  median {:>6.3} ms",
            ms(m),
            ms(med),
            ms(m) - ms(direct_mean),
            ms(med) - ms(direct_median),
        );
    }
}

fn mean(xs: &[Duration]) -> Duration {
    xs.iter().sum::<Duration>() / xs.len().max(1) as u32
}

fn median(xs: &mut [Duration]) -> Duration {
    xs.sort();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
