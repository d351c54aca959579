//! `mamfast completions <SHELL>`: the shell's registration script for completions computed at
//! TAB time (clap_complete's dynamic completion). The script calls mamfast back with
//! `_MAMFAST_COMPLETE=<shell>`; [`answer_request`] answers from the command tree as it is
//! then: the plugins found, stage and status names, the backup generations and the IDs in the
//! state file. Nothing needs regenerating after adding a plugin or an entry.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{CompleteEnv, Shells};
use clap_complete::Shell;

use crate::cli::output::stdout_written;
use crate::cli::{plugins, Cli, GlobalArgs};
use mamfast::config::{Overrides, Settings};
use mamfast::error::{Error, Result};
use mamfast::state::{Stage, Status};
use mamfast::store::backup_suffix;

/// The variable the registration script sets when it asks for candidates. Not `MAMFAST_*`:
/// it is no setting, and it is removed before anything else runs.
pub const REQUEST_VAR: &str = "_MAMFAST_COMPLETE";

/// Backup generations looked for at TAB time (`state.backup_depth` is at most 100).
const MAX_GENERATION: usize = 100;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

/// Needs no settings: the script only names the binary to call back.
pub fn run(_global: &GlobalArgs, args: CompletionsArgs) -> Result<i32> {
    let name = args.shell.to_string();
    let shells = Shells::builtins();
    let shell = shells
        .completer(&name)
        .ok_or_else(|| Error::Usage(format!("no completion support for {name}")))?;
    let mut out = Vec::new();
    shell
        .write_registration(REQUEST_VAR, "mamfast", "mamfast", &completer(), &mut out)
        .map_err(Error::Stdout)?;
    let mut stdout = std::io::stdout().lock();
    use std::io::Write;
    stdout_written(stdout.write_all(&out).and_then(|()| stdout.flush()))?;
    Ok(0)
}

/// The program the script calls back: this binary by its absolute path when that path is
/// plain (the scripts quote it, but not every quoting survives every shell's second
/// evaluation), else `mamfast` as found on `PATH`.
fn completer() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
        .filter(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c))
        })
        .unwrap_or_else(|| "mamfast".into())
}

/// Answers a completion request and exits, when the environment holds one; else returns at
/// once (one variable looked up), and the command line is parsed as usual.
pub fn answer_request() {
    CompleteEnv::with_factory(completion_command)
        .var(REQUEST_VAR)
        .complete();
}

/// The command tree as completion sees it: the plugins that run, and candidates for the
/// values mamfast knows.
fn completion_command() -> clap::Command {
    let found = plugins::scan_lenient(plugins::config_arg(&request_words()));
    with_value_candidates(plugins::with_plugin_subcommands(Cli::command(), &found))
}

/// Adds candidates to every argument of the tree by its name: stages, statuses, backup
/// generations and release IDs.
fn with_value_candidates(mut cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, with_value_candidates);
    }
    let command = cmd.get_name().to_string();
    let ids = match command.as_str() {
        "retry" => Some(Kind::Failed),
        "clear" | "should-skip" | "checkpoint" => Some(Kind::Processed),
        "show" | "mark-processed" | "mark-failed" => Some(Kind::Any),
        _ => None,
    };
    let arg_ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in arg_ids {
        cmd = match (id.as_str(), ids) {
            ("stage", _) => cmd.mut_arg(id, |a| a.add(ArgValueCandidates::new(stages))),
            ("status", _) => cmd.mut_arg(id, |a| a.add(ArgValueCandidates::new(statuses))),
            ("generation", _) => cmd.mut_arg(id, |a| a.add(ArgValueCandidates::new(generations))),
            ("id" | "ids", Some(kind)) => cmd.mut_arg(id, move |a| {
                a.add(ArgValueCompleter::new(move |current: &OsStr| {
                    release_ids(kind, current)
                }))
            }),
            _ => cmd,
        };
    }
    cmd
}

fn stages() -> Vec<CompletionCandidate> {
    Stage::ALL
        .iter()
        .map(|s| CompletionCandidate::new(s.name()))
        .collect()
}

fn statuses() -> Vec<CompletionCandidate> {
    Status::KNOWN
        .iter()
        .map(|s| CompletionCandidate::new(s.as_str()))
        .collect()
}

/// The settings a completion request works with: those of the command line being completed
/// (`--config`, `--state-file`) when given, else the environment and config files. In dry-run
/// mode, so that reading never repairs or writes anything.
fn settings() -> Option<Settings> {
    let args = request_words();
    let overrides = Overrides {
        config: plugins::config_arg(&args),
        state_file: option_value(&args, "--state-file").map(PathBuf::from),
        dry_run: true,
    };
    Settings::load(&overrides).ok()
}

/// The command line being completed: the words after the first `--` (`mamfast state …`).
fn request_words() -> Vec<OsString> {
    std::env::args_os()
        .skip_while(|a| a != "--")
        .skip(1)
        .collect()
}

/// The value of `--NAME VALUE` or `--NAME=VALUE` on a command line, the last one given.
fn option_value(args: &[OsString], name: &str) -> Option<OsString> {
    let mut found = None;
    let mut iter = args.iter();
    let with_eq = format!("{name}=");
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if text == name {
            found = iter.next().cloned();
        } else if let Some(value) = text.strip_prefix(&with_eq) {
            found = Some(OsString::from(value));
        }
    }
    found
}

/// The backup generations that exist, as `state restore` takes them (`.bak`, `.bak.1`, …).
/// Only their names are looked at: a file is not loaded at TAB time.
fn generations() -> Vec<CompletionCandidate> {
    let Some(settings) = settings() else {
        return Vec::new();
    };
    // Backups live beside the real file when the state file is a symlink.
    let main = std::fs::canonicalize(&settings.state_file).unwrap_or(settings.state_file);
    (0..=MAX_GENERATION)
        .map(backup_suffix)
        .filter(|suffix| {
            let mut path = main.clone().into_os_string();
            path.push(suffix);
            Path::new(&path).symlink_metadata().is_ok()
        })
        .map(CompletionCandidate::new)
        .collect()
}

/// Which entries a command's IDs name.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Processed,
    Failed,
    Any,
}

/// The IDs in the state file that start with what is typed. An ID that could not be put on a
/// shell line as it is ([`is_plain_id`]) is never offered.
fn release_ids(kind: Kind, current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(settings) = settings() else {
        return Vec::new();
    };
    // Notices (a missing file, a recovery) would land in the shell's line: kept quiet.
    let store = settings.store().with_notices(|_| {});
    let Ok(state) = store.read_lazy() else {
        return Vec::new();
    };
    let prefix = current.to_string_lossy();
    let processed = matches!(kind, Kind::Processed | Kind::Any).then(|| state.processed.keys());
    let failed = matches!(kind, Kind::Failed | Kind::Any).then(|| state.failed.keys());
    let mut ids: Vec<&String> = processed
        .into_iter()
        .flatten()
        .chain(failed.into_iter().flatten())
        .filter(|id| id.starts_with(prefix.as_ref()) && is_plain_id(id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().map(CompletionCandidate::new).collect()
}

/// Whether an ID can be offered on a shell line as it is: letters, digits and `/ . _ - + @`
/// only, not starting with `-` (an option): no space, quote, `$`, glob or control character
/// that the shell would read as something else, and no `:` (zsh's scripts split a candidate
/// from its description there).
pub fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_offered() {
        for plain in ["B0DK9T5P28", "/srv/books/Dune_1", "Übersetzung-2", "a+b@d"] {
            assert!(is_plain_id(plain), "{plain}");
        }
        for odd in [
            "",
            "-rf",
            "a b",
            "x$(reboot)",
            "a`b`",
            "a;b",
            "a|b",
            "a'b",
            "a\"b",
            "a\\b",
            "a*b",
            "a\u{1b}[2J",
            "a\nb",
            "a\u{b}b",
            "a\u{202e}b",
            "~root",
            "a&b",
            "a>b",
            "a{b,c}",
            "a:b",
        ] {
            assert!(!is_plain_id(odd), "{odd:?}");
        }
    }

    #[test]
    fn option_values_are_read_in_both_spellings_and_the_last_wins() {
        let args: Vec<OsString> = ["mamfast", "--state-file", "a.json", "--state-file=b.json"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            option_value(&args, "--state-file"),
            Some(OsString::from("b.json"))
        );
        assert_eq!(
            option_value(&args[..3], "--state-file"),
            Some("a.json".into())
        );
        assert_eq!(option_value(&args, "--config"), None);
    }
}
