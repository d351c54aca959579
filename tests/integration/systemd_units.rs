//! The shipped units, `examples/systemd/mamfast-prune.{service,timer}`, checked by systemd
//! itself: `systemd-analyze --user verify` (the unit loads, its binary is where it says) and
//! `systemd-analyze --user security --offline` (the hardening rates "OK" or better). Skipped,
//! with the reason printed, where `systemd-analyze` cannot be run.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The highest exposure `systemd-analyze security` may give the service, in tenths (its
/// `--threshold` unit): 4.9 is the top of "OK".
const EXPOSURE_THRESHOLD: &str = "49";

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd")
}

fn service() -> PathBuf {
    units_dir().join("mamfast-prune.service")
}

fn timer() -> PathBuf {
    units_dir().join("mamfast-prune.timer")
}

/// A user's home as `cargo install` leaves it (mamfast in `~/.cargo/bin`) and a runtime
/// directory, so that the user manager `systemd-analyze --user` sets up resolves `%h` there.
struct UserSandbox {
    dir: tempfile::TempDir,
}

impl UserSandbox {
    fn new() -> UserSandbox {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("home/.cargo/bin");
        fs::create_dir_all(&bin).unwrap();
        symlink(env!("CARGO_BIN_EXE_mamfast"), bin.join("mamfast")).unwrap();
        let runtime = dir.path().join("runtime");
        fs::create_dir(&runtime).unwrap();
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
        UserSandbox { dir }
    }

    fn analyze(&self, args: &[&str], units: &[PathBuf]) -> Output {
        Command::new("systemd-analyze")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("runtime"))
            .env("SYSTEMD_LOG_COLOR", "0")
            .arg("--user")
            .args(args)
            .args(units)
            .output()
            .expect("run systemd-analyze")
    }
}

/// Whether `systemd-analyze` can be run; prints why not otherwise.
fn systemd_analyze() -> bool {
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "skipped: systemd-analyze --version failed ({}): the shipped units are not verified",
                out.status
            );
            false
        }
        Err(e) => {
            eprintln!(
                "skipped: systemd-analyze cannot be run ({e}): the shipped units are not verified"
            );
            false
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_shipped_units_pass_systemd_analyze_verify() {
    if !systemd_analyze() {
        return;
    }
    let sandbox = UserSandbox::new();
    let out = sandbox.analyze(&["verify"], &[service(), timer()]);
    assert!(out.status.success(), "verify failed: {}", text(&out));
    // verify reports a unit's problems on stderr even when it exits 0.
    assert!(out.stderr.is_empty(), "verify complained: {}", text(&out));

    // The check is real: without mamfast where ExecStart says, verify fails.
    fs::remove_file(sandbox.dir.path().join("home/.cargo/bin/mamfast")).unwrap();
    let out = sandbox.analyze(&["verify"], &[service(), timer()]);
    assert!(
        !out.status.success(),
        "verify passed without the binary: {}",
        text(&out)
    );
}

#[test]
fn the_shipped_service_rates_ok_or_better_on_systemd_analyze_security() {
    if !systemd_analyze() {
        return;
    }
    let help = Command::new("systemd-analyze")
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    if !(help.contains("--offline") && help.contains("--threshold")) {
        eprintln!(
            "skipped: this systemd-analyze has no `security --offline --threshold`: the \
             service's hardening is not rated"
        );
        return;
    }
    let sandbox = UserSandbox::new();
    let out = sandbox.analyze(
        &[
            "security",
            "--offline=true",
            &format!("--threshold={EXPOSURE_THRESHOLD}"),
        ],
        &[service()],
    );
    let report = text(&out);
    assert!(out.status.success(), "rated worse than OK: {report}");
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall rating: {report}"));
    assert!(
        overall.contains(" OK") || overall.contains(" SAFE"),
        "{overall}"
    );
    eprintln!("{}", overall.trim());
}

/// The unit reads the configuration as a cron line does (no `MAMFAST_*` of its own), runs the
/// binary where `cargo install` puts it, and fails on a stuck lock but not on a busy one.
#[test]
fn the_service_uses_the_cron_lines_configuration_and_fails_on_a_stuck_lock() {
    let unit = fs::read_to_string(service()).unwrap();
    let lines: Vec<&str> = unit
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        !lines.iter().any(|l| l.contains("MAMFAST_")),
        "the unit sets a MAMFAST_ variable: {lines:?}"
    );
    assert!(lines.contains(&"ExecStart=%h/.cargo/bin/mamfast --quiet state prune --json=compact"));
    // 75 (busy) is a success; 74 (stuck, see loud.rs) is not listed, so it fails the unit.
    assert!(lines.contains(&"SuccessExitStatus=75"));
    assert!(lines.contains(&"ReadWritePaths=-%S/mamfast"));
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains("$HOME/.cargo/bin/mamfast --quiet state prune --json=compact"),
        "the README's cron line runs what the unit runs"
    );
}
