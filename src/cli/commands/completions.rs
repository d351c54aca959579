//! `mamfast completions <SHELL>`: a completion script for bash, zsh, fish, elvish or
//! PowerShell, generated from the command tree by clap_complete.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    pub shell: Shell,
}

/// Needs no settings: a broken configuration does not stop completions from being installed.
pub fn run(args: &CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mamfast", &mut out);
    std::io::Write::write_all(&mut std::io::stdout(), &out)
        .map_err(|e| crate::error::Error::io("writing completions to", "stdout", e))?;
    Ok(0)
}
