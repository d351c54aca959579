//! One file per command: its clap `Args` and its `run`. Commands read and change the state
//! only through [`Store`](mamfast::store::Store) and [`state::ops`](mamfast::state::ops).

pub mod apply;
pub mod backups;
pub mod bulk;
pub mod checkpoint;
pub mod clear;
pub mod completions;
pub mod config;
pub mod diff;
pub mod export;
pub mod filters;
pub mod help;
pub mod history;
pub mod import;
pub mod list;
pub mod log;
pub mod man;
pub mod mark;
pub mod plugins;
pub mod prune;
pub mod report;
pub mod restore;
pub mod retry;
pub mod should_skip;
pub mod show;
pub mod verify;

use std::ffi::OsString;
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use nix::errno::Errno;

use super::output::Console;
use super::plugins::{self as external, Level};
use super::{Cli, Command, ConfigArgs, ConfigCommand, Ctx, StateArgs, StateCommand};
use mamfast::error::Result;
use mamfast::state::stored_path::python_path;
use mamfast::state::time::parse_timestamp;

/// Reads a release ID for a command that records one: an empty ID (an unset shell variable,
/// typically) would name no release.
pub fn parse_id(text: &str) -> std::result::Result<String, String> {
    if text.trim().is_empty() {
        return Err(
            "an empty ID names no release: pass its ASIN, or its source directory when \
                    it has none (is the shell variable that should hold it empty?)"
                .into(),
        );
    }
    Ok(text.to_string())
}

/// Runs a parsed command line; the value is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let Cli { global, command } = cli;
    // These need no settings, so they work with a broken config file too (help and
    // completions fall back to the plugins on PATH).
    match command {
        Command::Config(ConfigArgs {
            command: ConfigCommand::Path,
        }) => {
            let console = Console::new(global.color, global.quiet, global.verbose);
            config::path(&global, &console)
        }
        Command::Help(args) => help::run(global, args.command),
        Command::State(StateArgs {
            command: StateCommand::Help(args),
        }) => {
            let mut words = vec![OsString::from("state")];
            words.extend(args.command);
            help::run(global, words)
        }
        Command::Completions(args) => completions::run(&global, args),
        Command::Man(args) => man::run(&global, args),
        command => run_with_settings(&Ctx::new(global)?, command),
    }
}

fn run_with_settings(ctx: &Ctx, command: Command) -> Result<i32> {
    match command {
        Command::State(state) => match state.command {
            StateCommand::List(args) => list::run(ctx, args),
            StateCommand::Show(args) => show::run(ctx, args),
            StateCommand::Prune(args) => prune::run(ctx, args),
            StateCommand::Retry(args) => retry::run(ctx, args),
            StateCommand::Clear(args) => clear::run(ctx, args),
            StateCommand::Export(args) => export::run(ctx, args),
            StateCommand::MarkProcessed(args) => mark::run_processed(ctx, *args),
            StateCommand::MarkFailed(args) => mark::run_failed(ctx, args),
            StateCommand::Checkpoint(args) => checkpoint::run(ctx, *args),
            StateCommand::ShouldSkip(args) => should_skip::run(ctx, args),
            StateCommand::Backups(args) => backups::run(ctx, args),
            StateCommand::Restore(args) => restore::run(ctx, args),
            StateCommand::Verify(args) => verify::run(ctx, args),
            StateCommand::Apply(args) => apply::run(ctx, args),
            StateCommand::Import(args) => import::run(ctx, args),
            StateCommand::Log(args) => log::run(ctx, args),
            StateCommand::Diff(args) => diff::run(ctx, args),
            StateCommand::External(args) => external::dispatch(ctx, Level::State, &args),
            StateCommand::Help(_) => unreachable!("run without settings"),
        },
        Command::Config(config) => match config.command {
            ConfigCommand::Show(args) => config::show(ctx, args),
            ConfigCommand::Path => unreachable!("run without settings"),
        },
        Command::Plugins(args) => plugins::run(ctx, args),
        Command::External(args) => external::dispatch(ctx, Level::Top, &args),
        Command::Help(_) | Command::Completions(_) | Command::Man(_) => {
            unreachable!("run without settings")
        }
    }
}

/// Whether a recorded path still exists (the one place commands ask the file system), read
/// as the Python tool reads it (`Path(p).exists()`: a trailing slash does not make a file
/// missing). A path that cannot be checked (no permission to search a directory on the way,
/// say) is not called missing: `prune` would otherwise remove a release that is still there.
pub(crate) fn path_exists(path: &Path) -> bool {
    let normalized = path.to_str().map(python_path);
    let path = normalized.as_deref().map_or(path, Path::new);
    match path.try_exists() {
        Ok(exists) => exists,
        // The errors Python's `Path.exists()` takes for "no" (3.11's `_IGNORED_ERRNOS`).
        Err(e) => !matches!(
            e.raw_os_error().map(Errno::from_raw),
            Some(Errno::ENOENT | Errno::ENOTDIR | Errno::EBADF | Errno::ELOOP)
        ),
    }
}

/// A stored timestamp for a table: `2026-11-26 09:09` in its own offset, or as stored.
pub(crate) fn short_time(text: Option<&str>) -> String {
    match text {
        None => "-".into(),
        Some(t) => match parse_timestamp(t) {
            Some(at) => at.format("%Y-%m-%d %H:%M").to_string(),
            None => t.to_string(),
        },
    }
}

/// Sort key for "most recent first": unreadable or missing times sort last.
pub(crate) fn recency(text: Option<&str>) -> Option<DateTime<FixedOffset>> {
    text.and_then(parse_timestamp)
}

/// `1 entry`, `2 entries`: a count with its noun in the right number.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `Some("x")` → "x", `None` → "-".
pub(crate) fn or_dash(text: Option<&str>) -> String {
    text.unwrap_or("-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_right_number() {
        assert_eq!(count(0, "entry", "entries"), "0 entries");
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(count(2, "entry", "entries"), "2 entries");
    }
}
