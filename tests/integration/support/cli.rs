//! The real `mamfast` binary, run hermetically: no configuration file, no `MAMFAST_*` from the
//! developer's shell, a fixed clock. Every run is checked for a panic.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `mamfast --state-file <state> …`, with a clean environment.
pub fn mamfast(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamfast"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent/home")
        .env("XDG_CONFIG_HOME", "/nonexistent/config")
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .arg("--state-file")
        .arg(state);
    cmd
}

/// What a finished run gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the output if it is not the one expected.
    pub fn expect_code(&self, code: i32, what: &str) -> &Run {
        assert_eq!(self.code, code, "{what}: exit code\n{self:#?}");
        self
    }
}

/// Runs `cmd` with `args` to the end. Fails the test on a panic message or a signal.
pub fn run<I, S>(mut cmd: Command, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.args(args).output().expect("run mamfast");
    let run = Run {
        code: status
            .code()
            .unwrap_or_else(|| panic!("mamfast killed: {status}")),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "mamfast panicked:\n{run:#?}"
    );
    run
}

/// Runs `mamfast --state-file <state> <args>`.
pub fn mamfast_run<I, S>(state: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(mamfast(state), args)
}

/// Whether `python3` can be run; prints why not once per caller otherwise.
pub fn python3(why: &str) -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("import fcntl, json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {why}: python3 is not available");
    }
    ok
}
