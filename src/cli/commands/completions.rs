//! `mamfast completions <SHELL>`: a completion script for bash, zsh, fish, elvish or
//! PowerShell, generated from the command tree by clap_complete. The plugins found when the
//! script is generated are offered as commands too (regenerate it after adding one).

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::{plugins, Cli, GlobalArgs};
use std::io::Write;

use crate::cli::output::stdout_written;
use mamfast::error::Result;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

/// Needs no settings: with a broken config file, the plugins offered are those on `PATH`.
pub fn run(global: &GlobalArgs, args: CompletionsArgs) -> Result<i32> {
    let found = plugins::scan_lenient(global.config.clone());
    let mut cmd = plugins::with_plugin_subcommands(Cli::command(), &found);
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mamfast", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout_written(stdout.write_all(&out).and_then(|()| stdout.flush()))?;
    Ok(0)
}
