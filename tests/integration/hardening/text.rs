//! Outside text on the terminal and in shell code: plugin names in completion scripts, control
//! characters in IDs, titles and errors, output that cannot be written, and plugin directories
//! that anyone could write to.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::cli::{mamfast, mamfast_run, run, Run};

/// An executable shell script at `path` that runs `body`.
fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `mamfast` with `dirs` as its plugin directories and `cwd` as its current directory.
fn with_plugins(state: &Path, dirs: &str, cwd: &Path) -> Command {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_CONFIG", "")
        .env("MAMFAST_PLUGIN_DIRS", dirs)
        .current_dir(cwd);
    cmd
}

/// Hostile plugin names: shell code, a space, a quote, an escape sequence, a newline.
const HOSTILE: [&str; 5] = [
    "mamfast-x$(touch${IFS}PWNED)",
    "mamfast-sp ace",
    "mamfast-state-q'z",
    "mamfast-e\x1b]0;title\x07",
    "mamfast-state-n\nl",
];

fn hostile_plugin_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("plugins");
    fs::create_dir(&dir).unwrap();
    for name in HOSTILE {
        script(&dir.join(name), "touch PWNED");
    }
    script(&dir.join("mamfast-good"), "echo good");
    dir
}

#[test]
fn hostile_plugin_names_stay_out_of_every_completion_script() {
    let root = tempfile::tempdir().unwrap();
    let dir = hostile_plugin_dir(root.path());
    let work = root.path().join("work");
    fs::create_dir(&work).unwrap();
    let state = root.path().join("processed.json");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let cmd = with_plugins(&state, dir.to_str().unwrap(), &work);
        let out = run(cmd, ["completions", shell]);
        out.expect_code(0, shell);
        for bad in ["PWNED", "sp ace", "q'z", "\x1b", "n\nl"] {
            assert!(!out.stdout.contains(bad), "{shell} script holds {bad:?}");
        }
        // The scripts name no plugin: the candidates are asked for at TAB time (below).
        if shell == "bash" {
            let file = root.path().join("completion.bash");
            fs::write(&file, &out.stdout).unwrap();
            let parsed = Command::new("bash").arg("-n").arg(&file).status().unwrap();
            assert!(parsed.success(), "bash -n rejects the script");
            // TAB after `mamfast ` and after `mamfast state `, in a directory an attacker chose.
            for line in [
                "mamfast ",
                "mamfast state ",
                "mamfast x ",
                "mamfast state y ",
            ] {
                let words = line.split(' ').collect::<Vec<_>>();
                let program = format!(
                    "source {file}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                     COMP_LINE='{line}'; COMP_POINT={point}; \
                     _clap_complete_mamfast mamfast '' mamfast; \
                     printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                    file = file.display(),
                    words = words
                        .iter()
                        .map(|w| format!("'{w}'"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    cword = words.len() - 1,
                    point = line.len(),
                );
                let done = Command::new("bash")
                    .arg("-c")
                    .arg(&program)
                    .current_dir(&work)
                    .env("MAMFAST_CONFIG", "")
                    .env("MAMFAST_PLUGIN_DIRS", &dir)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .output()
                    .unwrap();
                let offered = String::from_utf8_lossy(&done.stdout);
                assert!(!offered.contains("PWNED"), "{line:?}: {offered}");
                for bad in ["sp ace", "q'z", "\x1b", "n\nl", "touch"] {
                    assert!(!offered.contains(bad), "{line:?} offers {bad:?}: {offered}");
                }
                if line == "mamfast " {
                    assert!(
                        offered.lines().any(|l| l == "good"),
                        "safe plugin: {offered}"
                    );
                    assert!(offered.lines().any(|l| l == "state"), "{offered}");
                }
                assert!(!work.join("PWNED").exists(), "{line:?}: TAB ran the name");
                assert!(!root.path().join("PWNED").exists(), "{line:?}");
            }
        }
    }
}

#[test]
fn unsafe_plugin_names_are_listed_with_why_and_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let dir = hostile_plugin_dir(root.path());
    let state = root.path().join("processed.json");
    let dirs = dir.to_str().unwrap();

    let out = run(with_plugins(&state, dirs, root.path()), ["plugins"]);
    out.expect_code(0, "plugins");
    assert!(!out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'));
    assert!(out.stdout.contains("unsafe name"), "{out:#?}");
    assert!(
        out.stderr.contains("mamfast-sp ace") && out.stderr.contains("A-Z a-z 0-9 . _ + -"),
        "the warning names the file and the safe set: {out:#?}"
    );
    assert!(
        out.stderr.contains(r"mamfast-e\u{1b}]0;title\u{7}"),
        "{out:#?}"
    );

    let out = run(
        with_plugins(&state, dirs, root.path()),
        ["plugins", "--json"],
    );
    out.expect_code(0, "plugins --json");
    let docs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let bad = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "sp ace")
        .expect("the unsafe name is listed");
    assert_eq!(bad["runs"], false);
    assert!(
        bad["note"].as_str().unwrap().contains("unsafe name"),
        "{bad}"
    );
    // The exact name is kept in JSON.
    assert!(docs
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "e\u{1b}]0;title\u{7}"));

    let out = run(with_plugins(&state, dirs, root.path()), ["sp ace"]);
    out.expect_code(2, "an unsafe name is refused");
    assert!(out.stderr.contains("A-Z a-z 0-9 . _ + -"), "{out:#?}");
    assert!(!root.path().join("PWNED").exists());

    let out = run(with_plugins(&state, dirs, root.path()), ["--help"]);
    out.expect_code(0, "--help");
    assert!(
        out.stdout.contains("good") && !out.stdout.contains("PWNED"),
        "{out:#?}"
    );
}

/// A state whose IDs, titles and errors hold terminal escapes and carriage returns.
const HOSTILE_STATE: &str = r#"{
  "failed": {
    "F\u001b[2J1": {
      "error": "boom\r\u001b]0;owned\u0007done",
      "error_type": "upload\u009b",
      "failed_at": "2026-11-26T09:00:00+00:00",
      "retry_count": 1,
      "title": "T\u202eitle"
    }
  },
  "processed": {
    "B\u001b]0;pwn\u0007X": {
      "author": "A\ru",
      "processed_at": "2026-11-26T09:09:00+00:00",
      "status": "COMPLETE",
      "title": "Ti\u001b[2Jtle \u001b[31mred\u001b[0m and a long tail to be cut somewhere in the middle"
    }
  },
  "version": 2
}
"#;

fn assert_no_controls(what: &str, text: &str) {
    for c in text.chars() {
        let bad = (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c);
        assert!(!bad, "{what}: raw {c:?} in\n{text}");
    }
}

#[test]
fn control_characters_are_escaped_in_human_output_and_kept_in_json() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("processed.json");
    fs::write(&state, HOSTILE_STATE).unwrap();
    let id = "B\u{1b}]0;pwn\u{7}X";

    for width in ["200", "40", "25"] {
        let mut cmd = mamfast(&state);
        cmd.env("MAMFAST_CONFIG", "").env("COLUMNS", width);
        let out = run(cmd, ["state", "list"]);
        out.expect_code(0, "list");
        assert_no_controls("list", &out.stdout);
        if width == "200" {
            assert!(
                out.stdout.contains(r"B\u{1b}]0;pwn\u{7}X"),
                "{}",
                out.stdout
            );
            assert!(
                out.stdout.contains(r"boom\r\u{1b}]0;owned"),
                "{}",
                out.stdout
            );
            assert!(out.stdout.contains(r"T\u{202e}itle"), "{}", out.stdout);
        }
        // A cut cell never ends inside an escape.
        for line in out.stdout.lines() {
            let parts: Vec<&str> = line.split('…').collect();
            for part in &parts[..parts.len() - 1] {
                let tail = part.rsplit('\\').next().unwrap_or("");
                let unfinished =
                    part.contains('\\') && tail.starts_with('u') && !tail.contains('}');
                assert!(!unfinished, "half an escape: {line:?}");
            }
        }
    }

    let out = mamfast_run(&state, ["state", "show", id]);
    out.expect_code(0, "show");
    assert_no_controls("show", &out.stdout);
    assert!(out.stdout.contains(r"A\ru"), "{}", out.stdout);

    let out = mamfast_run(&state, ["state", "show", "F\u{1b}[2J1"]);
    assert_no_controls("show failed", &out.stdout);

    // Messages on stderr: not found, a status message, an error naming the ID.
    let out = mamfast_run(&state, ["state", "show", "N\u{1b}[2Jo"]);
    assert_no_controls("not found", &out.stderr);
    assert!(out.stderr.contains(r"N\u{1b}[2Jo"), "{}", out.stderr);
    let out = mamfast_run(&state, ["state", "retry", "F\u{1b}[2J1"]);
    out.expect_code(0, "retry");
    assert_no_controls("retry", &out.stderr);
    assert!(out.stderr.contains(r"F\u{1b}[2J1"), "{}", out.stderr);
    let out = mamfast_run(
        &state,
        [
            "state",
            "mark-failed",
            "M\r1",
            "--error",
            "e\u{1b}[2J",
            "--error-type",
            "x",
        ],
    );
    assert_no_controls("mark-failed", &out.stderr);
    let out = mamfast_run(&state, ["state", "checkpoint", id, "staged"]);
    assert_no_controls("checkpoint error", &out.stderr);

    // JSON keeps the exact values.
    let out = mamfast_run(&state, ["state", "list", "--json"]);
    out.expect_code(0, "list --json");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(doc["processed"].get(id).is_some(), "{}", out.stdout);
    let out = mamfast_run(&state, ["state", "show", id, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["id"], id);
}

#[test]
fn export_keeps_control_characters_byte_for_byte() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("processed.json");
    fs::write(&state, HOSTILE_STATE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mamfast"))
        .env_clear()
        .env("MAMFAST_CONFIG", "")
        .env("HOME", "/nonexistent/home")
        .args(["--state-file", state.to_str().unwrap(), "state", "export"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want: serde_json::Value = serde_json::from_str(HOSTILE_STATE).unwrap();
    assert_eq!(doc, want);
}

/// Runs mamfast with its standard output on `/dev/full`.
fn to_dev_full(state: &Path, args: &[&str]) -> Run {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_CONFIG", "")
        .stdout(fs::File::create("/dev/full").unwrap());
    let out = cmd.args(args).output().unwrap();
    Run {
        code: out.status.code().expect("not killed"),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_stdout_that_cannot_be_written_is_an_error_with_exit_74() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("processed.json");
    fs::write(&state, HOSTILE_STATE).unwrap();
    let commands: &[&[&str]] = &[
        &["state", "list", "--json"],
        &["state", "list"],
        &["state", "show", "B\u{1b}]0;pwn\u{7}X"],
        &["state", "show", "x", "--json"],
        &["state", "export"],
        &["state", "backups"],
        &["state", "backups", "--json"],
        &["state", "verify", "--json"],
        &["--dry-run", "state", "prune", "--json"],
        &["config", "show"],
        &["config", "show", "--json"],
        &["config", "path"],
        &["plugins", "--json"],
        &["completions", "bash"],
        &["--help"],
        &["state", "--help"],
        &["--version"],
    ];
    for args in commands {
        let out = to_dev_full(&state, args);
        assert_eq!(out.code, 74, "{args:?}: {out:#?}");
        assert!(out.stderr.contains("standard output"), "{args:?}: {out:#?}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {out:#?}");
    }
}

#[test]
fn a_closed_pipe_stays_quiet() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("processed.json");
    fs::write(&state, HOSTILE_STATE).unwrap();
    for args in [
        &["state", "list", "--json"][..],
        &["state", "list"][..],
        &["completions", "bash"][..],
        &["--help"][..],
    ] {
        let mut child = mamfast(&state)
            .env("MAMFAST_CONFIG", "")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_relative_plugin_dir_is_skipped_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("processed.json");
    script(&root.path().join("mamfast-hello"), "touch RAN");
    for dirs in [".", "plugins", "./x:."] {
        let out = run(with_plugins(&state, dirs, root.path()), ["hello"]);
        out.expect_code(2, "not found");
        assert!(
            !root.path().join("RAN").exists(),
            "{dirs}: ran from the current directory"
        );
        assert!(
            out.stderr.contains("relative") && out.stderr.contains("absolute path"),
            "{out:#?}"
        );
        let out = run(with_plugins(&state, dirs, root.path()), ["plugins"]);
        assert!(out.stderr.contains("relative"), "{out:#?}");
        assert!(!out.stdout.contains("hello"), "{out:#?}");
    }
}

#[test]
fn a_plugin_anyone_may_replace_runs_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("processed.json");
    let dir = root.path().join("shared");
    fs::create_dir(&dir).unwrap();
    script(&dir.join("mamfast-hello"), "echo hello");
    let dirs = dir.to_str().unwrap();

    // Safe: no warning.
    let out = run(with_plugins(&state, dirs, root.path()), ["hello"]);
    out.expect_code(0, "hello");
    assert!(out.stderr.is_empty(), "{out:#?}");

    // World-writable directory without the sticky bit.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let out = run(with_plugins(&state, dirs, root.path()), ["hello"]);
    out.expect_code(0, "it still runs");
    assert_eq!(out.stdout, "hello\n");
    assert!(
        out.stderr.contains(dirs) && out.stderr.contains("chmod o-w"),
        "{out:#?}"
    );
    let out = run(with_plugins(&state, dirs, root.path()), ["plugins"]);
    assert!(out.stderr.contains("chmod o-w"), "{out:#?}");
    let out = run(
        with_plugins(&state, dirs, root.path()),
        ["plugins", "--json"],
    );
    assert!(out.stdout.contains("chmod o-w"), "{out:#?}");

    // Sticky (as /tmp): fine for the directory; a world-writable file is not.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run(with_plugins(&state, dirs, root.path()), ["hello"]);
    assert!(out.stderr.is_empty(), "{out:#?}");
    fs::set_permissions(dir.join("mamfast-hello"), fs::Permissions::from_mode(0o777)).unwrap();
    let out = run(with_plugins(&state, dirs, root.path()), ["hello"]);
    assert!(out.stderr.contains("chmod o-w"), "{out:#?}");
    fs::set_permissions(dir.join("mamfast-hello"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

    // Owned by another user (not root, not us).
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&dir, Some(54321), None).unwrap();
        let out = run(with_plugins(&state, dirs, root.path()), ["hello"]);
        out.expect_code(0, "it still runs");
        assert!(
            out.stderr.contains("54321") && out.stderr.contains(dirs),
            "{out:#?}"
        );
    }
}

/// A rejected value is quoted in clap's usage error: what was typed must not reach the terminal
/// raw either (before, `--limit $'\e]0;…\a'` set the terminal's title).
#[test]
fn a_rejected_command_line_value_is_quoted_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    for args in [
        vec![
            "state",
            "list",
            "--limit",
            "\u{1b}]0;PWNED\u{7}\u{1b}[2J\r\u{202e}",
        ],
        vec![
            "state",
            "should-skip",
            "B0X",
            "\u{1b}[31mstage\u{85}\u{2028}",
        ],
        vec!["--color", "\u{1b}[5mblink", "state", "list"],
    ] {
        let out = mamfast_run(&state, &args);
        out.expect_code(2, "usage error");
        assert_no_controls("usage error", &out.stderr);
    }
}

/// An ID holding a line break cannot fake a line of its own in a status message.
#[test]
fn an_id_with_a_line_break_stays_on_its_line_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("processed.json");
    // An existing state, so that the only line is the command's own.
    fs::write(
        &state,
        "{\"failed\": {}, \"processed\": {}, \"version\": 2}",
    )
    .unwrap();
    let id = "B0NL\nerror: the state file is corrupt, run rm -rf";
    for args in [
        vec!["state", "mark-failed", id, "--error", "e"],
        vec!["state", "checkpoint", id, "staged"],
        vec!["state", "should-skip", id, "staged"],
        vec!["state", "retry", id],
        vec!["state", "clear", id],
        vec!["state", "clear", id],
        vec!["state", "show", id],
    ] {
        let out = mamfast_run(&state, &args);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:#?}");
        assert!(out.stderr.contains(r"B0NL\nerror"), "{args:?}: {out:#?}");
    }
}
