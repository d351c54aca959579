//! The command line: clap types for the global options and the command tree, and the
//! context every command runs with. Each command lives in `commands/<name>.rs`. These are the
//! binary's own modules: the library (`mamfast::…`) knows nothing of them, so a plugin built
//! without the `cli` feature compiles none of clap and its company.

pub mod commands;
pub mod output;
pub mod parse;
pub mod plugins;

use std::ffi::OsString;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset};
use clap::{Args, Parser, Subcommand};

use mamfast::config::{Overrides, Settings};
use mamfast::error::{Error, Result};
use mamfast::state::time::{format_timestamp, local_now};
use mamfast::store::Store;
use output::{ColorChoice, Console};

/// Keeps processed.json, the state of an audiobook upload pipeline, safe.
#[derive(Debug, Parser)]
#[command(
    name = "mamfast",
    version,
    propagate_version = true,
    disable_help_subcommand = true
)]
#[command(about = "Keeps processed.json, the state of an audiobook upload pipeline, safe")]
#[command(
    after_help = "Exit codes: 0 ok, 1 should-skip says run, 2 usage, 3 show/should-skip: \
ID not found, 4 import conflict, 65 data, \
73 cannot create output, 74 I/O, 75 lock timeout, 78 configuration, 126 plugin cannot run."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after its name.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file to use instead of the system and user ones (must exist)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State file to use (overrides state.file)
    #[arg(long, global = true, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Show what would change, change nothing (not even a backup)
    #[arg(short = 'n', long, global = true)]
    pub dry_run: bool,
    /// Colour messages: auto (terminal and no NO_COLOR), always, never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Print nothing on success (errors and warnings still go to stderr)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Say more about what happens
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read and change the state file
    State(StateArgs),
    /// Show the configuration in effect
    Config(ConfigArgs),
    /// List the external commands (plugins) found
    Plugins(commands::plugins::PluginsArgs),
    /// Print a shell completion script
    Completions(commands::completions::CompletionsArgs),
    /// Print a manual page, or write them all (--out DIR)
    Man(commands::man::ManArgs),
    /// Print this message or the help of the given command (a plugin's own --help)
    Help(commands::help::HelpArgs),
    /// Runs `mamfast-<NAME>` (a plugin)
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

#[derive(Debug, Args)]
#[command(disable_help_subcommand = true)]
pub struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Counts and the most recent entries of each kind, or those the filters select
    ///
    /// Without options: the counts of processed and failed entries and the 20 most recent of
    /// each. Filters (all given must match) narrow what is listed; --limit says how many to
    /// show, --counts counts what matches instead (processed by status, failed by error
    /// type), --json prints the Python tool's JSON shape.
    List(commands::list::ListArgs),
    /// One entry, processed and failed
    Show(commands::show::ShowArgs),
    /// Remove stale processed entries and expired failed ones
    Prune(commands::prune::PruneArgs),
    /// Remove releases from failed so they are tried again: by ID, by filters, or --all
    ///
    /// Give the IDs to retry, or filters that select failed entries (--error-type, --grep,
    /// --older-than, --newer-than; all given must match), not both. Filters that would select
    /// every failed entry need --all; --all alone selects every one. The whole command is one
    /// lock, one durable write and one backup generation, and the filters are evaluated under
    /// that lock. Each entry removed gets a line, then a summary counts them; nothing matching
    /// is exit 0 and writes nothing. With --dry-run it lists what it would remove and changes
    /// nothing.
    Retry(commands::retry::RetryArgs),
    /// Remove releases from processed, checkpoints included: by ID, by filters, or --all
    ///
    /// Give the IDs to clear, or filters that select processed entries (--status, --stage,
    /// --infohash, --grep, --older-than, --newer-than; all given must match), not both.
    /// Filters that would select every processed entry need --all; --all alone selects every
    /// one. The whole command is one lock, one durable write and one backup generation, and
    /// the filters are evaluated under that lock. Each entry removed gets a line, then a
    /// summary counts them; nothing matching is exit 0 and writes nothing. With --dry-run it
    /// lists what it would remove and changes nothing.
    Clear(commands::clear::ClearArgs),
    /// Write the whole state in its file format
    Export(commands::export::ExportArgs),
    /// Record a finished release
    MarkProcessed(Box<commands::mark::MarkProcessedArgs>),
    /// Record a failure
    MarkFailed(commands::mark::MarkFailedArgs),
    /// Record that a pipeline stage finished
    Checkpoint(Box<commands::checkpoint::CheckpointArgs>),
    /// Exit 0 if a stage is done and its artifact exists, 1 if it must run
    ShouldSkip(commands::should_skip::ShouldSkipArgs),
    /// The main file and every backup generation
    Backups(commands::backups::BackupsArgs),
    /// Make a backup generation the main file
    Restore(commands::restore::RestoreArgs),
    /// Load and validate the state; exit 1 if usable only from a backup, 65 if not usable
    Verify(commands::verify::VerifyArgs),
    /// Apply operations from JSON Lines, all or nothing, in one write
    Apply(commands::apply::ApplyArgs),
    /// Replace the whole state (only if unchanged since read: --if-token)
    Import(commands::import::ImportArgs),
    /// The journal of changes, newest first; for one ID, its whole story
    Log(commands::log::LogArgs),
    /// What changed between two generations or state files (exit 1 when they differ)
    Diff(commands::diff::DiffArgs),
    /// Print this message or the help of the given command (a plugin's own --help)
    Help(commands::help::HelpArgs),
    /// Runs `mamfast-state-<NAME>` (a plugin)
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration
    Show(commands::config::ShowArgs),
    /// The config files looked for, in order, and which exist
    Path,
}

/// What every command runs with.
pub struct Ctx {
    pub settings: Settings,
    pub console: Console,
    pub global: GlobalArgs,
}

impl Ctx {
    pub fn new(global: GlobalArgs) -> Result<Ctx> {
        let console = Console::new(global.color, global.quiet, global.verbose);
        let settings = Settings::load(&global.overrides())?;
        // Written only when it will be shown: a plugin's dispatch comes through here.
        if global.verbose {
            console.detail(settings_summary(&settings));
        }
        Ok(Ctx {
            settings,
            console,
            global,
        })
    }

    /// The store, configured from the settings as for every caller
    /// ([`Settings::store`]), its warnings going to the console.
    pub fn store(&self) -> Store {
        let console = self.console;
        self.settings
            .store()
            .with_notices(move |notice| console.warn(notice.to_string()))
    }

    pub fn dry_run(&self) -> bool {
        self.settings.dry_run
    }

    /// Now, from `MAMFAST_NOW` when set (fixed clock for tests and replays), else the clock.
    pub fn now(&self) -> Result<DateTime<FixedOffset>> {
        match std::env::var("MAMFAST_NOW") {
            Ok(text) if !text.is_empty() => DateTime::parse_from_rfc3339(&text).map_err(|e| {
                Error::Config(format!(
                    "invalid value for MAMFAST_NOW: {text:?} is not an RFC 3339 time ({e}); \
                     expected e.g. 2026-11-26T10:00:00+00:00, or unset it"
                ))
            }),
            _ => Ok(local_now()),
        }
    }

    pub fn now_text(&self) -> Result<String> {
        Ok(format_timestamp(self.now()?))
    }

    /// "would remove" in a dry run, else "removed": `ctx.did("remove", "removed")`.
    pub fn did(&self, verb: &str, past: &str) -> String {
        if self.dry_run() {
            format!("would {verb}")
        } else {
            past.to_string()
        }
    }
}

/// What `--verbose` says first: the config files read and the state file in use.
fn settings_summary(settings: &Settings) -> String {
    let files: Vec<String> = settings
        .config_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "config: {}\nstate file: {} ({})",
        if files.is_empty() {
            "no file".to_string()
        } else {
            files.join(", ")
        },
        settings.state_file.display(),
        settings.origin("state.file")
    )
}

impl GlobalArgs {
    /// A nested mamfast (run by a plugin, which mamfast hands `MAMFAST_QUIET` and
    /// `MAMFAST_VERBOSE`) says as much as the outer one: `MAMFAST_QUIET=1` acts as `-q` and
    /// `MAMFAST_VERBOSE=1` as `-v`, unless this run was given `-q` or `-v` itself.
    pub fn take_env_hints(&mut self, var: impl Fn(&str) -> Option<String>) {
        if self.quiet || self.verbose {
            return;
        }
        let set = |name: &str| var(name).is_some_and(|v| v == "1");
        if set("MAMFAST_QUIET") {
            self.quiet = true;
        } else if set("MAMFAST_VERBOSE") {
            self.verbose = true;
        }
    }

    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            state_file: self.state_file.clone(),
            dry_run: self.dry_run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(quiet: bool, verbose: bool) -> GlobalArgs {
        GlobalArgs {
            config: None,
            state_file: None,
            dry_run: false,
            color: ColorChoice::Never,
            quiet,
            verbose,
        }
    }

    fn hinted(quiet: bool, verbose: bool, env: &[(&str, &str)]) -> (bool, bool) {
        let mut g = global(quiet, verbose);
        g.take_env_hints(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        (g.quiet, g.verbose)
    }

    #[test]
    fn a_nested_run_takes_quiet_and_verbose_from_its_environment() {
        assert_eq!(
            hinted(false, false, &[("MAMFAST_QUIET", "1")]),
            (true, false)
        );
        assert_eq!(
            hinted(false, false, &[("MAMFAST_VERBOSE", "1")]),
            (false, true)
        );
        assert_eq!(
            hinted(
                false,
                false,
                &[("MAMFAST_QUIET", "0"), ("MAMFAST_VERBOSE", "0")]
            ),
            (false, false)
        );
        assert_eq!(hinted(false, false, &[]), (false, false));
    }

    #[test]
    fn its_own_flags_win_over_the_environment() {
        assert_eq!(
            hinted(false, true, &[("MAMFAST_QUIET", "1")]),
            (false, true)
        );
        assert_eq!(
            hinted(true, false, &[("MAMFAST_VERBOSE", "1")]),
            (true, false)
        );
    }
}
