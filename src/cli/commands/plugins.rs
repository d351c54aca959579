//! External commands: `mamfast state <name>` runs `mamfast-state-<name>`, `mamfast <name>`
//! runs `mamfast-<name>`, found by exact name in `plugins.dirs`, then `PATH`; and
//! `mamfast plugins`, which lists what is found.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::Ctx;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Print a JSON array of the plugins found
    #[arg(long)]
    pub json: bool,
}

/// The directories searched, in order: `plugins.dirs`, then the absolute entries of `PATH`.
pub fn search_dirs(plugin_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = plugin_dirs.to_vec();
    if let Some(path) = std::env::var_os("PATH") {
        // Empty and relative entries would search the current directory: skipped.
        dirs.extend(std::env::split_paths(&path).filter(|p| p.is_absolute()));
    }
    dirs
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub fn run_external(ctx: &Ctx, prefix: &str, args: Vec<OsString>) -> Result<i32> {
    let name = args
        .first()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if name.is_empty() || name.starts_with('-') || name.contains('/') {
        return Err(Error::Usage(format!(
            "invalid command name {name:?}: a plugin name has no '/' and does not start with '-'"
        )));
    }
    let file = format!("{prefix}{name}");
    let found = search_dirs(&ctx.settings.plugin_dirs)
        .into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file());
    let Some(path) = found else {
        return Err(Error::Usage(format!(
            "unknown command {name:?}: no built-in command and no {file} in plugins.dirs or PATH\n\
             Run `mamfast --help` for the commands, `mamfast plugins` for the plugins found."
        )));
    };
    if !is_executable(&path) {
        return Err(Error::PluginExec(format!(
            "{} is not executable; make it so with: chmod +x {}",
            path.display(),
            path.display()
        )));
    }
    let mut command = std::process::Command::new(&path);
    command.args(&args[1..]);
    for (key, value) in ctx.settings.plugin_env() {
        command.env(key, value);
    }
    if let Ok(bin) = std::env::current_exe() {
        command.env("MAMFAST_BIN", bin);
    }
    command.env("MAMFAST_PLUGIN_API", "1");
    // exec only returns on failure: the plugin's status and signals are then the caller's.
    let err = command.exec();
    Err(Error::PluginExec(format!(
        "could not start {}: {err}\nCheck its #! line and that its interpreter exists.",
        path.display()
    )))
}

pub fn run(ctx: &Ctx, args: PluginsArgs) -> Result<i32> {
    let mut found = Vec::new();
    for dir in search_dirs(&ctx.settings.plugin_dirs) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("mamfast-"))
            })
            .collect();
        names.sort();
        found.extend(names);
    }
    if args.json {
        let docs: Vec<_> = found
            .iter()
            .map(|p| serde_json::json!({"path": p.display().to_string(), "executable": is_executable(p)}))
            .collect();
        ctx.console.json(&docs);
    } else {
        for p in found {
            ctx.console.data(format!("{}\n", p.display()));
        }
    }
    Ok(0)
}
