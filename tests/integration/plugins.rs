//! Plugins end to end: the real `mamfast` binary finds and `exec`s `mamfast-state-*` and
//! `mamfast-*` programs, hands them the settings in their environment, and gives back their
//! exit status and signals unchanged; `mamfast plugins` lists what it finds, with warnings; the
//! Rust example plugin runs against a fixture written by the Python tool.
//!
//! Hermetic: every run starts from an empty environment with its own HOME, PATH and config.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MAMFAST: &str = env!("CARGO_BIN_EXE_mamfast");

/// A plugin that prints its arguments (one per line), its standard input and its MAMFAST_*
/// environment.
const ECHO_PLUGIN: &str = r#"#!/bin/sh
for a in "$@"; do printf 'arg: [%s]\n' "$a"; done
printf 'stdin: [%s]\n' "$(cat)"
env | grep '^MAMFAST_' | sort
"#;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let sb = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(sb.path("bin")).unwrap();
        fs::create_dir_all(sb.path("home")).unwrap();
        sb
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `text` to `rel` with the given permission bits.
    fn file(&self, rel: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// `mamfast args…` with an empty environment but for HOME, PATH (`bin/`, then the system)
    /// and `extra`; `stdin` is fed to it.
    fn run(&self, args: &[&str], extra: &[(&str, &str)], stdin: &str) -> Output {
        let mut cmd = Command::new(MAMFAST);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.path("home"))
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("bin").display()),
            )
            .envs(extra.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `KEY=value` lines of the echo plugin's output.
fn env_of(out: &Output) -> BTreeMap<String, String> {
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn args_of(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("arg: [")?.strip_suffix(']'))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_plugin_on_path_gets_its_args_stdin_and_the_settings() {
    let sb = Sandbox::new();
    sb.file("bin/mamfast-state-echo", ECHO_PLUGIN, 0o755);
    let config = sb.file(
        "conf/mamfast.toml",
        "[state]\nfile = \"../data/processed.json\"\nbackup_depth = 5\nlock_timeout = \"2m\"\nfailed_ttl = \"30d\"\n",
        0o644,
    );
    let out = sb.run(
        &[
            "--config",
            config.to_str().unwrap(),
            "-n",
            "state",
            "echo",
            "a b",
            "--state-file",
            "x",
            "-n",
            "--",
            "--help",
        ],
        &[],
        "line 1\nline 2\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Everything after the plugin name is the plugin's, untouched.
    assert_eq!(
        args_of(&out),
        ["a b", "--state-file", "x", "-n", "--", "--help"]
    );
    assert!(
        text(&out.stdout).contains("stdin: [line 1\nline 2]"),
        "{}",
        text(&out.stdout)
    );
    let env = env_of(&out);
    assert_eq!(
        env["MAMFAST_STATE_FILE"],
        sb.path("data/processed.json").display().to_string()
    );
    assert_eq!(env["MAMFAST_CONFIG"], config.display().to_string());
    assert_eq!(env["MAMFAST_BACKUP_DEPTH"], "5");
    assert_eq!(env["MAMFAST_LOCK_TIMEOUT"], "2m");
    assert_eq!(env["MAMFAST_FAILED_TTL"], "30d");
    assert_eq!(env["MAMFAST_DRY_RUN"], "1");
    assert_eq!(env["MAMFAST_PLUGIN_API"], "1");
    assert_eq!(env["MAMFAST_QUIET"], "0");
    let bin = PathBuf::from(&env["MAMFAST_BIN"]);
    assert!(bin.is_absolute(), "{bin:?}");
    assert_eq!(
        fs::canonicalize(&bin).unwrap(),
        fs::canonicalize(MAMFAST).unwrap()
    );
}

#[test]
fn a_plugin_in_plugins_dirs_wins_over_path_and_options_before_its_name_reach_it() {
    let sb = Sandbox::new();
    sb.file("bin/mamfast-hello", "#!/bin/sh\necho from PATH\n", 0o755);
    sb.file(
        "libexec/mamfast-hello",
        "#!/bin/sh\necho \"from plugins.dirs: $*\"\nenv | grep '^MAMFAST_' | sort\n",
        0o755,
    );
    let dirs = sb.path("libexec").display().to_string();
    let out = sb.run(
        &[
            "--state-file",
            "s/p.json",
            "-q",
            "--color",
            "never",
            "hello",
            "--state-file",
            "other",
        ],
        &[("MAMFAST_PLUGIN_DIRS", &dirs)],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("from plugins.dirs: --state-file other\n"),
        "{stdout}"
    );
    let env = env_of(&out);
    assert_eq!(
        env["MAMFAST_STATE_FILE"],
        sb.path("s/p.json").display().to_string()
    );
    assert_eq!(env["MAMFAST_PLUGIN_DIRS"], dirs);
    assert_eq!(env["MAMFAST_CONFIG"], "");
    assert_eq!(env["MAMFAST_DRY_RUN"], "0");
    assert_eq!(env["MAMFAST_FAILED_TTL"], "");
    assert_eq!(env["MAMFAST_QUIET"], "1");
    assert_eq!(env["MAMFAST_COLOR"], "never");
}

#[test]
fn the_plugins_exit_code_comes_back_unchanged() {
    let sb = Sandbox::new();
    sb.file(
        "bin/mamfast-state-exit",
        "#!/bin/sh\necho \"exiting $1\" >&2\nexit \"$1\"\n",
        0o755,
    );
    for code in [0, 1, 3, 65, 200] {
        let out = sb.run(&["state", "exit", &code.to_string()], &[], "");
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        assert_eq!(text(&out.stderr), format!("exiting {code}\n"));
    }
}

#[test]
fn a_plugin_killed_by_a_signal_ends_mamfast_by_the_same_signal() {
    let sb = Sandbox::new();
    sb.file(
        "bin/mamfast-state-die",
        "#!/bin/sh\nkill -\"$1\" $$\nsleep 5\n",
        0o755,
    );
    // Started in the background by a shell, this process may have SIGINT ignored, and an
    // ignored signal stays ignored across exec: the plugin could not die of it. The default
    // (what a terminal's Ctrl-C meets) is what is tested.
    // SAFETY: setting a signal to its default disposition installs no handler.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }
    .unwrap();
    for (name, signal) in [("TERM", 15), ("KILL", 9), ("INT", 2)] {
        let out = sb.run(&["state", "die", name], &[], "");
        assert_eq!(out.status.code(), None, "{name}: {:?}", out.status);
        assert_eq!(out.status.signal(), Some(signal), "{name}");
    }
}

#[test]
fn empty_and_relative_path_entries_are_never_searched() {
    let sb = Sandbox::new();
    sb.file("rel/mamfast-state-here", "#!/bin/sh\necho ran\n", 0o755);
    sb.file("mamfast-state-here", "#!/bin/sh\necho ran\n", 0o755);
    for path in ["rel", "::/usr/bin", ".:/usr/bin", "rel:"] {
        let out = Command::new(MAMFAST)
            .args(["state", "here"])
            .current_dir(sb.dir.path())
            .env_clear()
            .env("HOME", sb.path("home"))
            .env("PATH", path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "PATH={path}");
        assert!(text(&out.stdout).is_empty());
        assert!(
            text(&out.stderr).contains("unknown command `mamfast state here`"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn errors_say_what_happened_with_their_exit_codes() {
    let sb = Sandbox::new();
    let noexec = sb.file("bin/mamfast-state-noexec", "#!/bin/sh\n", 0o644);
    let bad = sb.file(
        "bin/mamfast-state-bad",
        "#!/no/such/interpreter -x\necho\n",
        0o755,
    );
    let crlf = sb.file("bin/mamfast-state-crlf", "#!/bin/sh\r\necho\r\n", 0o755);
    sb.file("bin/mamfast-state-stats", "#!/bin/sh\n", 0o755);

    let out = sb.run(&["state", "noexec"], &[], "");
    assert_eq!(out.status.code(), Some(126));
    let err = text(&out.stderr);
    assert!(err.contains("is not executable"), "{err}");
    assert!(
        err.contains(&format!("chmod +x {}", noexec.display())),
        "{err}"
    );

    let out = sb.run(&["state", "bad"], &[], "");
    assert_eq!(out.status.code(), Some(126));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("could not start {}", bad.display())),
        "{err}"
    );
    assert!(err.contains("/no/such/interpreter"), "{err}");

    let out = sb.run(&["state", "crlf"], &[], "");
    assert_eq!(out.status.code(), Some(126));
    let err = text(&out.stderr);
    assert!(err.contains("carriage return"), "{err}");
    assert!(err.contains(&crlf.display().to_string()), "{err}");

    // Not found: exit 2 and a suggestion among the built-ins and the plugins found.
    let out = sb.run(&["state", "lst"], &[], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("a similar command exists: `mamfast state list`"),
        "{}",
        text(&out.stderr)
    );
    let out = sb.run(&["state", "stat"], &[], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`mamfast state stats`"),
        "{}",
        text(&out.stderr)
    );

    for name in ["../bin/mamfast-state-stats", "", "state-stats"] {
        let args: Vec<&str> = if name == "state-stats" {
            vec![name]
        } else {
            vec!["state", name]
        };
        let out = sb.run(&args, &[], "");
        assert_eq!(out.status.code(), Some(2), "{name:?}");
    }
    let out = sb.run(&["state", "--", "-x"], &[], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot start with '-'"));
}

#[test]
fn a_broken_config_stops_before_the_plugin_runs() {
    let sb = Sandbox::new();
    sb.file("bin/mamfast-state-echo", ECHO_PLUGIN, 0o755);
    let out = sb.run(&["state", "echo"], &[("MAMFAST_BACKUP_DEPTH", "three")], "");
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stdout).is_empty());
    assert!(text(&out.stderr).contains("MAMFAST_BACKUP_DEPTH"));
}

#[test]
fn the_listing_warns_about_shadowed_and_non_executable_files() {
    let sb = Sandbox::new();
    let first = sb.file("libexec/mamfast-state-twice", "#!/bin/sh\n", 0o755);
    let second = sb.file("bin/mamfast-state-twice", "#!/bin/sh\n", 0o755);
    let builtin = sb.file("bin/mamfast-state-list", "#!/bin/sh\n", 0o755);
    let noexec = sb.file("libexec/mamfast-tool", "#!/bin/sh\n", 0o644);
    let dirs = sb.path("libexec").display().to_string();
    let env = [("MAMFAST_PLUGIN_DIRS", dirs.as_str()), ("COLUMNS", "200")];

    let out = sb.run(&["plugins", "--json"], &env, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |path: &Path| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == path.display().to_string())
            .unwrap_or_else(|| panic!("{} not listed in {list}", path.display()))
            .clone()
    };
    let p = find(&first);
    assert_eq!(p["name"], "twice");
    assert_eq!(p["command"], "mamfast state twice");
    assert_eq!(p["shadowed_by"], serde_json::Value::Null);
    assert_eq!(p["runs"], true);
    let p = find(&second);
    assert_eq!(p["shadowed_by"], first.display().to_string());
    assert_eq!(p["runs"], false);
    let p = find(&builtin);
    assert_eq!(p["shadowed_by"], "built-in");
    assert_eq!(p["executable"], true);
    let p = find(&noexec);
    assert_eq!(p["command"], "mamfast tool");
    assert_eq!(p["executable"], false);
    assert_eq!(p["runs"], false);

    let out = sb.run(&["plugins"], &env, "");
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stdout.contains("shadowed by an earlier file"), "{stdout}");
    assert!(stdout.contains("shadowed by a built-in"), "{stdout}");
    assert!(stdout.contains("not executable"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "warning: {} never runs: {} is found first",
            second.display(),
            first.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("`mamfast state list` is a built-in command"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("chmod +x {}", noexec.display())),
        "{stderr}"
    );

    // Help lists the plugins that run, under their own heading.
    let out = sb.run(&["state", "--help"], &env, "");
    let help = text(&out.stdout);
    assert!(
        help.contains("Plugins (in plugins.dirs, then PATH):"),
        "{help}"
    );
    assert!(
        help.contains(&format!("twice  {}", first.display())),
        "{help}"
    );
    assert!(!help.contains(&second.display().to_string()), "{help}");
}

#[test]
fn help_runs_the_plugins_own_help_and_completions_offer_plugins() {
    let sb = Sandbox::new();
    sb.file("bin/mamfast-state-echo", ECHO_PLUGIN, 0o755);
    sb.file("bin/mamfast-greet", ECHO_PLUGIN, 0o755);
    for args in [
        &["help", "state", "echo"][..],
        &["state", "help", "echo"][..],
        &["help", "greet"][..],
    ] {
        let out = sb.run(args, &[], "");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(args_of(&out), ["--help"], "{args:?}");
    }
    // Completions ask mamfast at TAB time: the plugins found then are offered.
    let tab = |index: &str, words: &[&str]| {
        let mut args = vec!["--", "mamfast"];
        args.extend(words);
        let env = [
            ("_MAMFAST_COMPLETE", "bash"),
            ("_CLAP_COMPLETE_INDEX", index),
        ];
        let out = sb.run(&args, &env, "");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        tab("2", &["state", ""]).contains(&"echo".into()),
        "state plugin missing"
    );
    assert!(
        tab("1", &[""]).contains(&"greet".into()),
        "top-level plugin missing"
    );
}

/// The example plugin, `target/<profile>/examples/mamfast-state-stats`. `cargo test
/// --all-targets` builds it; `cargo build --example` is run here as well, so that a run of this
/// test alone never uses a stale or missing build (a no-op when it is up to date).
fn stats_example() -> PathBuf {
    let bin_dir = Path::new(MAMFAST).parent().unwrap();
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", "mamfast-state-stats"])
        .arg("--target-dir")
        .arg(bin_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if bin_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(
        status.success(),
        "cargo build --example mamfast-state-stats failed"
    );
    let example = bin_dir.join("examples/mamfast-state-stats");
    assert!(example.exists(), "{} was not built", example.display());
    example
}

#[test]
fn the_rust_example_plugin_reads_a_python_written_state() {
    let sb = Sandbox::new();
    std::os::unix::fs::symlink(stats_example(), sb.path("bin/mamfast-state-stats")).unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline-written.json");
    fs::create_dir_all(sb.path("data")).unwrap();
    fs::copy(&fixture, sb.path("data/processed.json")).unwrap();

    let out = sb.run(
        &[
            "--state-file",
            "data/processed.json",
            "state",
            "stats",
            "--json",
        ],
        &[],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["processed"], 2);
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["by_status"]["COMPLETE"], 1);
    assert_eq!(stats["by_status"]["STAGED"], 1);
    assert_eq!(stats["failed_by_error_type"]["AudnexError"], 1);
    assert_eq!(stats["oldest_failure"]["id"], "B08G9PRS1K");
    assert_eq!(
        stats["oldest_failure"]["since"],
        "2026-11-26T09:09:35.067172"
    );
    assert_eq!(stats["retries"]["2"], 1);

    let out = sb.run(
        &["--state-file", "data/processed.json", "state", "stats"],
        &[],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Processed: 2  Failed: 1\n"), "{stdout}");
    assert!(stdout.contains("AudnexError  1"), "{stdout}");
    // Read-only: the file is byte for byte what the Python tool wrote.
    assert_eq!(
        fs::read(sb.path("data/processed.json")).unwrap(),
        fs::read(&fixture).unwrap()
    );

    // A state that cannot be read ends the plugin with mamfast's exit code for it.
    fs::write(sb.path("data/processed.json"), "{ not json").unwrap();
    let out = sb.run(
        &["--state-file", "data/processed.json", "state", "stats"],
        &[],
        "",
    );
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("error: "));
}

#[test]
fn the_shell_example_changes_the_state_only_through_mamfast() {
    if Command::new("jq").arg("--version").output().is_err() {
        eprintln!("skipped: jq is not installed");
        return;
    }
    let sb = Sandbox::new();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/mamfast-state-retry-all");
    std::os::unix::fs::symlink(&script, sb.path("bin/mamfast-state-retry-all")).unwrap();
    fs::create_dir_all(sb.path("data")).unwrap();
    let state = sb.path("data/processed.json");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipeline-written.json"),
        &state,
    )
    .unwrap();
    let before = fs::read(&state).unwrap();
    let sf = state.to_str().unwrap();

    let out = sb.run(
        &[
            "-n",
            "--state-file",
            sf,
            "state",
            "retry-all",
            "AudnexError",
        ],
        &[],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Would retry 1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read(&state).unwrap(),
        before,
        "a dry run changed the file"
    );

    let out = sb.run(
        &["--state-file", sf, "state", "retry-all", "AudnexError"],
        &[],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after: serde_json::Value = crate::support::read_json(&state);
    assert_eq!(after["failed"], serde_json::json!({}));
    // Written by mamfast: the previous generation is the backup.
    assert_eq!(
        fs::read(sb.path("data/processed.json.bak")).unwrap(),
        before
    );
}
