//! `mamfast completions <SHELL>`: a completion script for bash, zsh, fish, elvish or
//! PowerShell, generated from the command tree by clap_complete. The plugins found when the
//! script is generated are offered as commands too (regenerate it after adding one).

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::{plugins, Cli, Ctx};
use crate::error::Result;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

pub fn run(ctx: &Ctx, args: CompletionsArgs) -> Result<i32> {
    let found = plugins::scan(&plugins::search_dirs(&ctx.settings.plugin_dirs));
    let mut cmd = plugins::with_plugin_subcommands(Cli::command(), &found);
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mamfast", &mut out);
    std::io::Write::write_all(&mut std::io::stdout(), &out)
        .map_err(|e| crate::error::Error::io("writing completions to", "stdout", e))?;
    Ok(0)
}
