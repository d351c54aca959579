//! What going through mamfast costs a plugin call: runs a trivial plugin N times directly and
//! N times as `mamfast state noop` (interleaved, after a warm-up) and prints the mean and
//! median of each, their difference and ratio.
//!
//! ```sh
//! cargo build --release && cargo run --release --example plugin_overhead -- [N] [MAMFAST]
//! ```
//!
//! N defaults to 200, MAMFAST to `target/release/mamfast`. The plugin is `/bin/true` linked
//! as `mamfast-state-noop` (so the number is mamfast's own cost, not a shell's), found in
//! `PATH`; the environment holds nothing else but a `HOME` with no config file, so this is
//! the smallest dispatch: parse, settings, one stat per directory, exec.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WARM_UP: usize = 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(200);
    let mamfast = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/mamfast")
    });
    assert!(
        mamfast.exists(),
        "{} does not exist: run `cargo build --release` first, or name the binary",
        mamfast.display()
    );

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
    let direct = || run(&mut Command::new(&plugin));
    let via = || run(Command::new(&mamfast).args(["state", "noop"]));

    for _ in 0..WARM_UP {
        direct();
        via();
    }
    let mut d = Vec::with_capacity(n);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        d.push(direct());
        v.push(via());
    }

    let (dm, dmed) = (mean(&d), median(&mut d));
    let (vm, vmed) = (mean(&v), median(&mut v));
    println!("runs: {n} each (after {WARM_UP} warm-up runs), interleaved");
    println!("mamfast: {}", mamfast.display());
    println!(
        "direct (mamfast-state-noop -> {truth}):  mean {:>8.3} ms  median {:>8.3} ms",
        ms(dm),
        ms(dmed)
    );
    println!(
        "via `mamfast state noop`:              mean {:>8.3} ms  median {:>8.3} ms",
        ms(vm),
        ms(vmed)
    );
    println!(
        "overhead:                              mean {:>8.3} ms  median {:>8.3} ms",
        ms(vm) - ms(dm),
        ms(vmed) - ms(dmed)
    );
    println!(
        "ratio via/direct:                      mean {:>8.2}x   median {:>8.2}x",
        ms(vm) / ms(dm),
        ms(vmed) / ms(dmed)
    );
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
