//! At home in the shell: completion requests answered at TAB time, manual pages, tables at
//! terminal widths and in pipes, colour, and the exit codes of "not found".

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::cli::{mamfast, mamfast_run, run, Run};

/// A state file in the Python tool's byte format, with `processed` and `failed` as given.
fn state_file(dir: &Path, processed: serde_json::Value, failed: serde_json::Value) -> PathBuf {
    let path = dir.join("processed.json");
    let state = json!({"version": 2, "processed": processed, "failed": failed});
    let mut text = serde_json::to_string_pretty(&state).unwrap();
    text.push('\n');
    std::fs::write(&path, text.trim_end()).unwrap();
    path
}

fn entry(status: &str, title: &str) -> serde_json::Value {
    json!({
        "asin": null, "author": "An Author", "checkpoints": {"staged_at": null},
        "infohash": null, "processed_at": "2026-11-26T09:09:35.479852", "staging_dir": null,
        "status": status, "title": title, "torrent_path": null
    })
}

fn failed_entry() -> serde_json::Value {
    json!({"error": "boom", "error_type": "AudnexError", "failed_at": "2026-11-26T09:09:35",
           "retry_count": 1, "title": "t"})
}

/// The candidates mamfast gives bash for word `index` of `words` (`mamfast` being word 0).
fn complete(state: Option<&Path>, index: usize, words: &[&str]) -> Vec<String> {
    // As the scripts call it: nothing before `--` but the program.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamfast"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent/home")
        .env("XDG_CONFIG_HOME", "/nonexistent/config")
        .env("MAMFAST_CONFIG", "")
        .env("_MAMFAST_COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", index.to_string());
    if let Some(state) = state {
        cmd.env("MAMFAST_STATE_FILE", state);
    }
    let mut args = vec!["--", "mamfast"];
    args.extend(words);
    let out = run(cmd, args);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.stderr, "", "a request says nothing on stderr");
    out.stdout.lines().map(str::to_string).collect()
}

/// The candidates that are not options.
fn values(candidates: Vec<String>) -> Vec<String> {
    candidates
        .into_iter()
        .filter(|c| !c.starts_with('-'))
        .collect()
}

#[test]
fn a_stage_is_offered_after_checkpoint_id_and_statuses_after_status() {
    let got = values(complete(None, 4, &["state", "checkpoint", "B0X", ""]));
    assert_eq!(got, ["staged", "metadata", "torrent", "uploaded"]);
    let got = complete(None, 4, &["state", "should-skip", "B0X", "t"]);
    assert_eq!(got, ["torrent"]);
    let got = complete(None, 5, &["state", "mark-processed", "B0X", "--status", ""]);
    assert_eq!(
        got,
        [
            "DISCOVERED",
            "STAGED",
            "METADATA_FETCHED",
            "TORRENT_CREATED",
            "UPLOADED",
            "COMPLETE",
            "FAILED"
        ]
    );
    let got = complete(None, 4, &["state", "list", "--status", "UP"]);
    assert_eq!(got, ["UPLOADED"]);
}

#[test]
fn ids_come_from_the_state_at_tab_time_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_file(
        dir.path(),
        json!({"B0P1": entry("COMPLETE", "a"), "B0P2": entry("STAGED", "b")}),
        json!({"B0F1": failed_entry()}),
    );
    let s = Some(state.as_path());
    assert_eq!(
        values(complete(s, 3, &["state", "show", "B0"])),
        ["B0F1", "B0P1", "B0P2"]
    );
    assert_eq!(values(complete(s, 3, &["state", "retry", "B"])), ["B0F1"]);
    assert_eq!(
        values(complete(s, 4, &["state", "clear", "B0P1", "B0P"])),
        ["B0P1", "B0P2"]
    );
    assert_eq!(
        values(complete(s, 3, &["state", "checkpoint", "B0P2"])),
        ["B0P2"]
    );
    // The state file named on the line being completed wins over the configured one.
    let other = tempfile::tempdir().unwrap();
    let other_state = state_file(
        other.path(),
        json!({"B0OTHER": entry("COMPLETE", "o")}),
        json!({}),
    );
    let flag = other_state.to_str().unwrap();
    assert_eq!(
        values(complete(
            s,
            5,
            &["state", "show", "--state-file", flag, "B"]
        )),
        ["B0OTHER"]
    );
    // A new entry appears at the next TAB: nothing is generated again.
    mamfast_run(&state, ["state", "mark-failed", "B0F2", "--error", "x"]).expect_code(0, "mark");
    assert_eq!(
        values(complete(s, 3, &["state", "retry", "B"])),
        ["B0F1", "B0F2"]
    );
}

#[test]
fn an_id_a_shell_line_could_not_hold_is_never_offered() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = [
        "B0 space",
        "B0$(touch pwned)",
        "B0`id`",
        "B0'quote",
        "B0\"dq",
        "B0;ls",
        "B0|x",
        "B0\u{1b}[2J",
        "B0\nnewline",
        "B0\u{b}vt",
        "B0:colon",
        "B0*",
        "B0\u{202e}rtl",
    ];
    let mut processed = serde_json::Map::new();
    for id in hostile {
        processed.insert(id.to_string(), entry("COMPLETE", "x"));
    }
    processed.insert("B0SAFE".into(), entry("COMPLETE", "x"));
    processed.insert("-B0dash".into(), entry("COMPLETE", "x"));
    let state = state_file(dir.path(), processed.into(), json!({}));
    let got = complete(Some(&state), 3, &["state", "show", ""]);
    assert_eq!(values(got), ["B0SAFE"]);
    assert!(!dir.path().join("pwned").exists());
}

#[test]
fn generations_are_the_backups_that_exist_and_no_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_file(dir.path(), json!({}), json!({}));
    for suffix in [".bak", ".bak.1", ".bak.3"] {
        std::fs::copy(&state, dir.path().join(format!("processed.json{suffix}"))).unwrap();
    }
    let before = files(dir.path());
    let got = complete(Some(&state), 3, &["state", "restore", ""]);
    assert_eq!(values(got), [".bak", ".bak.1", ".bak.3"]);
    // Reading for a completion never repairs, locks or backs up: no file appears.
    let corrupt = dir.path().join("processed.json");
    std::fs::write(&corrupt, "{ not json").unwrap();
    complete(Some(&state), 3, &["state", "show", ""]);
    assert_eq!(files(dir.path()), before);
    assert_eq!(std::fs::read_to_string(&corrupt).unwrap(), "{ not json");
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn plugins_are_offered_at_tab_time_and_unsafe_names_never() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "mamfast-state-stats",
        "mamfast-state-x$(id)",
        "mamfast-hello",
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = mamfast(Path::new("unused.json"));
    cmd.env("MAMFAST_PLUGIN_DIRS", dir.path())
        .env("MAMFAST_CONFIG", "")
        .env("_MAMFAST_COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2");
    // The request's own command line follows `--`; what `mamfast()` put before it is ignored.
    let out = run(cmd, ["--", "mamfast", "state", ""]);
    let got: Vec<&str> = out.stdout.lines().collect();
    assert!(got.contains(&"stats"), "{got:?}");
    assert!(got.contains(&"list"), "{got:?}");
    assert!(!got.iter().any(|c| c.contains('$')), "{got:?}");
}

#[test]
fn the_registration_scripts_call_mamfast_back() {
    for (shell, line) in [
        ("bash", "_MAMFAST_COMPLETE=\"bash\""),
        ("zsh", "_MAMFAST_COMPLETE=\"zsh\""),
        ("fish", "_MAMFAST_COMPLETE=fish"),
        ("elvish", "_MAMFAST_COMPLETE=\"elvish\""),
        ("powershell", "_MAMFAST_COMPLETE"),
    ] {
        let out = mamfast_run(Path::new("x.json"), ["completions", shell]);
        out.expect_code(0, shell);
        assert!(out.stdout.contains(line), "{shell}:\n{}", out.stdout);
        assert!(
            out.stdout.contains(env!("CARGO_BIN_EXE_mamfast")),
            "{shell}"
        );
    }
}

#[test]
fn a_real_bash_completes_a_stage_and_an_id() {
    if Command::new("bash")
        .arg("-c")
        .arg("complete")
        .output()
        .is_err()
    {
        eprintln!("skipped: bash cannot be run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = state_file(
        dir.path(),
        json!({"B0DUNE": entry("STAGED", "Dune")}),
        json!({}),
    );
    let script = mamfast_run(&state, ["completions", "bash"]).stdout;
    std::fs::write(dir.path().join("completion.bash"), script).unwrap();
    // What bash does on TAB: fill COMP_WORDS/COMP_CWORD and call the function.
    let driver = r#"
        source ./completion.bash
        tab() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_TYPE=9
                _clap_complete_mamfast mamfast "${COMP_WORDS[COMP_CWORD]}" ""
                printf '%s\n' "${COMPREPLY[@]}"; echo --; }
        tab mamfast state checkpoint B0DUNE s
        tab mamfast state show B0D
    "#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(driver)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent/home")
        .env("MAMFAST_CONFIG", "")
        .env("MAMFAST_STATE_FILE", &state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "staged\n--\nB0DUNE\n--\n", "{out:?}");
}

#[test]
fn manual_pages_are_one_per_command_and_name_each() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    mamfast_run(
        Path::new("x.json"),
        ["man", "--out", out_dir.to_str().unwrap()],
    )
    .expect_code(0, "man --out");
    let top = std::fs::read_to_string(out_dir.join("mamfast.1")).unwrap();
    let state = std::fs::read_to_string(out_dir.join("mamfast-state.1")).unwrap();
    for command in ["state", "config", "plugins", "completions", "man"] {
        assert!(top.contains(command), "mamfast.1 names {command}");
        assert!(
            out_dir.join(format!("mamfast-{command}.1")).exists(),
            "{command}"
        );
    }
    for command in [
        "list",
        "show",
        "prune",
        "retry",
        "clear",
        "export",
        "mark-processed",
        "mark-failed",
        "checkpoint",
        "should-skip",
        "backups",
        "restore",
        "verify",
        "apply",
    ] {
        let page = out_dir.join(format!("mamfast-state-{command}.1"));
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(
            text.contains(&format!(".TH mamfast-state-{command} 1")),
            "{command}"
        );
        assert!(
            state.contains(&command.replace('-', "\\-")),
            "mamfast-state.1 names {command}"
        );
        // The page on stdout is the same as the file.
        let one = mamfast_run(Path::new("x.json"), ["man", "state", command]);
        one.expect_code(0, command);
        assert_eq!(one.stdout, text, "{command}");
    }
}

#[test]
fn an_output_directory_that_cannot_be_made_is_exit_73() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = mamfast_run(
        Path::new("x.json"),
        ["man", "--out", file.join("man1").to_str().unwrap()],
    );
    out.expect_code(73, "man --out under a file");
    assert!(out.stderr.contains("cannot create"), "{}", out.stderr);
}

fn wide_state(dir: &Path) -> PathBuf {
    let long_id = "/srv/audiobooks/Some Author - A Book Without Any ASIN At All";
    let title = "A Title Long Enough To Be Cut In Any Terminal Narrower Than Two Hundred Columns";
    state_file(
        dir,
        json!({ long_id: entry("METADATA_FETCHED", title), "B0SHORT": entry("COMPLETE", "x") }),
        json!({}),
    )
}

fn list(state: &Path, columns: Option<&str>) -> Run {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_CONFIG", "");
    if let Some(c) = columns {
        cmd.env("COLUMNS", c);
    }
    let out = run(cmd, ["state", "list", "--processed"]);
    out.expect_code(0, "list");
    out
}

#[test]
fn the_id_column_is_never_cut_at_40_80_or_200_columns() {
    let dir = tempfile::tempdir().unwrap();
    let state = wide_state(dir.path());
    for columns in ["40", "80", "200"] {
        let out = list(&state, Some(columns));
        let row = out
            .stdout
            .lines()
            .find(|l| l.contains("/srv/"))
            .unwrap_or_else(|| panic!("{columns}: {}", out.stdout));
        assert!(
            row.starts_with(" /srv/audiobooks/Some Author - A Book Without Any ASIN At All   "),
            "{columns}: {row}"
        );
        let width: usize = columns.parse().unwrap();
        if width >= 200 {
            assert!(row.contains("Two Hundred Columns"), "{row}");
        } else {
            assert!(row.ends_with('…'), "{columns}: the title is cut: {row}");
        }
    }
}

#[test]
fn a_pipe_gets_the_whole_table() {
    let dir = tempfile::tempdir().unwrap();
    let state = wide_state(dir.path());
    let out = list(&state, None);
    assert!(
        out.stdout.contains(
            "A Title Long Enough To Be Cut In Any Terminal Narrower Than Two Hundred Columns"
        ),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('…'), "{}", out.stdout);
}

#[test]
fn status_is_coloured_by_clicolor_force_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let state = wide_state(dir.path());
    let mut cmd = mamfast(&state);
    cmd.env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .env("MAMFAST_CONFIG", "");
    let out = run(cmd, ["state", "list", "--processed"]);
    assert!(
        out.stdout.contains("\u{1b}[32mCOMPLETE\u{1b}[0m"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\u{1b}[33mMETADATA_FETCHED\u{1b}[0m"),
        "{}",
        out.stdout
    );
    // The rest of the table is plain, and --json never coloured.
    assert!(!out.stdout.contains("\u{1b}[32mB0SHORT"), "{}", out.stdout);
    let mut cmd = mamfast(&state);
    cmd.env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .env("MAMFAST_CONFIG", "");
    let json = run(cmd, ["state", "list", "--json"]);
    assert!(!json.stdout.contains('\u{1b}'));
    // A pipe without CLICOLOR_FORCE, or NO_COLOR: plain.
    assert!(!list(&state, None).stdout.contains('\u{1b}'));
    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_CONFIG", "")
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1");
    assert!(!run(cmd, ["state", "list"]).stdout.contains('\u{1b}'));
}

#[test]
fn show_lists_checkpoints_in_pipeline_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = entry("UPLOADED", "x");
    e["checkpoints"] =
        json!({"metadata_at": "2", "staged_at": "1", "torrent_at": "3", "uploaded_at": "4"});
    let state = state_file(dir.path(), json!({"B0X": e}), json!({}));
    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_CONFIG", "");
    let out = run(cmd, ["state", "show", "B0X"]);
    let order: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("    "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["staged_at", "metadata_at", "torrent_at", "uploaded_at"],
        "{}",
        out.stdout
    );
}

#[test]
fn not_found_has_its_own_exit_code_for_show_and_should_skip() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_file(dir.path(), json!({"B0X": entry("STAGED", "x")}), json!({}));
    let code = |args: &[&str]| {
        let mut cmd = mamfast(&state);
        cmd.env("MAMFAST_CONFIG", "");
        run(cmd, args).code
    };
    assert_eq!(code(&["state", "show", "NOPE"]), 3);
    assert_eq!(code(&["state", "show", "NOPE", "--json"]), 3);
    assert_eq!(code(&["state", "show", "--infohash", "00"]), 3);
    assert_eq!(code(&["state", "show", "B0X"]), 0);
    assert_eq!(code(&["state", "should-skip", "NOPE", "staged"]), 3);
    // Known, but the stage must run: still 1.
    assert_eq!(code(&["state", "should-skip", "B0X", "metadata"]), 1);
    // retry and clear keep 0 for "not found".
    assert_eq!(code(&["state", "retry", "NOPE"]), 0);
    assert_eq!(code(&["state", "clear", "NOPE"]), 0);
}

#[test]
fn a_fifo_as_state_file_neither_hangs_a_tab_nor_leaves_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("processed.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // No writer ever opens it: a read that waited would hang the test.
    let got = complete(Some(&fifo), 3, &["state", "show", ""]);
    assert_eq!(values(got), Vec::<String>::new());
    assert_eq!(files(dir.path()), ["processed.json"]);
}
