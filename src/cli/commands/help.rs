//! `mamfast help [COMMAND]…`: the help of a built-in command, with the plugins found listed
//! (as `--help` shows it), or, for a plugin, the plugin's own `--help`.

use std::ffi::OsString;

use clap::{Args, CommandFactory};

use crate::cli::output::print_clap;
use crate::cli::plugins::{self, Level};
use crate::cli::{Cli, Ctx, GlobalArgs};
use mamfast::error::{Error, Result};

#[derive(Debug, Args)]
pub struct HelpArgs {
    /// The command, e.g. `state list`, or a plugin: `state stats` runs `mamfast-state-stats --help`
    #[arg(value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Prints the help of the command named by `words` (`[]` is `mamfast` itself).
pub fn run(global: GlobalArgs, words: Vec<OsString>) -> Result<i32> {
    let root = Cli::command();
    let mut cmd = &root;
    let mut names: Vec<String> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if let Some(sub) = cmd.find_subcommand(word) {
            names.push(sub.get_name().to_string());
            cmd = sub;
            continue;
        }
        let shown = |w: &OsString| w.to_string_lossy().into_owned();
        let so_far = std::iter::once("mamfast".to_string())
            .chain(names.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let level = match names.as_slice() {
            [] => Level::Top,
            [state] if state == "state" => Level::State,
            _ => {
                return Err(Error::Usage(format!(
                    "`{so_far}` has no subcommand {:?}.\nRun `{so_far} --help` for what it takes.",
                    shown(word)
                )))
            }
        };
        if let Some(extra) = words.get(i + 1) {
            return Err(Error::Usage(format!(
                "unexpected {:?} after the plugin name {:?}: `mamfast help` runs `{} --help` \
                 and passes nothing else.",
                shown(extra),
                shown(word),
                level.command(&shown(word))
            )));
        }
        let ctx = Ctx::new(global)?;
        return plugins::dispatch(&ctx, level, &[word.clone(), "--help".into()]);
    }

    let found = plugins::scan_lenient(global.config.clone());
    let mut argv: Vec<String> = vec!["mamfast".into()];
    argv.extend(names);
    argv.push("--help".into());
    match plugins::with_plugin_help(Cli::command(), &found).try_get_matches_from(argv) {
        Err(err) => {
            print_clap(&err)?;
            Ok(err.exit_code())
        }
        Ok(_) => Ok(0),
    }
}
