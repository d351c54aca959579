//! `mamfast plugins`: every plugin file found in `plugins.dirs` and `PATH`, the command it
//! answers to, and why a file is skipped (shadowed by a built-in or an earlier file, or not
//! executable). The finding itself lives in [`crate::cli::plugins`].

use clap::Args;
use serde::Serialize;

use crate::cli::plugins::{
    location_warnings, relative_dir_warnings, scan, search_dirs, PluginInfo, Shadow,
    SAFE_NAME_CHARS,
};
use crate::cli::Ctx;
use mamfast::error::Result;

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Print a JSON array: [{"name", "command", "path", "executable", "shadowed_by", "runs", "note", "warning"}]
    #[arg(long)]
    pub json: bool,
}

/// One element of `plugins --json`.
#[derive(Serialize)]
struct PluginJson {
    /// The name typed after `mamfast` or `mamfast state`.
    name: String,
    /// The full command: `mamfast state stats`.
    command: String,
    /// The file, absolute.
    path: String,
    /// Whether mamfast may execute it.
    executable: bool,
    /// What runs instead of this file: `"built-in"`, the path of another plugin file, or null.
    shadowed_by: Option<String>,
    /// Whether `command` runs this file (safe name, executable and not shadowed).
    runs: bool,
    /// Why it does not run (the NOTE column), or null.
    note: Option<String>,
    /// Why others could replace it (a world-writable or foreign-owned directory or file), or
    /// null. Such a plugin still runs.
    warning: Option<String>,
}

pub fn run(ctx: &Ctx, args: PluginsArgs) -> Result<i32> {
    for warning in relative_dir_warnings(ctx) {
        ctx.console.warn(warning);
    }
    let dirs = search_dirs(&ctx.settings.plugin_dirs);
    for dir in &dirs {
        ctx.console.detail(format!("searching {}", dir.display()));
    }
    let plugins = scan(&dirs);

    if args.json {
        let docs: Vec<PluginJson> = plugins
            .iter()
            .map(|p| PluginJson {
                name: p.name.clone(),
                command: p.command(),
                path: p.path.display().to_string(),
                executable: p.executable,
                shadowed_by: p.shadowed_by.as_ref().map(|s| match s {
                    Shadow::BuiltIn => "built-in".to_string(),
                    Shadow::By(path) => path.display().to_string(),
                }),
                runs: p.runs(),
                note: Some(note(p)).filter(|n| !n.is_empty()),
                warning: Some(location_warnings(&p.path).join("; ")).filter(|w| !w.is_empty()),
            })
            .collect();
        ctx.console.json(&docs)?;
        return Ok(0);
    }

    if plugins.is_empty() {
        ctx.console.info(
            "No plugins found (mamfast-* and mamfast-state-* files in plugins.dirs, then PATH). \
             Run with -v to see the directories searched.",
        );
        return Ok(0);
    }
    // PATH comes last and is never cut: it is what an operator copies to fix a warning.
    let rows = plugins.iter().map(|p| {
        vec![
            p.name.clone(),
            p.command(),
            note(p),
            p.path.display().to_string(),
        ]
    });
    ctx.console
        .table_uncut(&["NAME", "COMMAND", "NOTE", "PATH"], rows)?;
    for p in &plugins {
        if let Some(warning) = warning(p) {
            ctx.console.warn(warning);
        }
        if p.runs() {
            for warning in location_warnings(&p.path) {
                ctx.console.warn(warning);
            }
        }
    }
    Ok(0)
}

/// The NOTE column: empty for a plugin that runs.
fn note(p: &PluginInfo) -> String {
    if !p.safe_name {
        return "unsafe name".into();
    }
    match (&p.shadowed_by, p.executable) {
        (Some(Shadow::BuiltIn), _) => "shadowed by a built-in".into(),
        (Some(Shadow::By(_)), true) => "shadowed by an earlier file".into(),
        (Some(Shadow::By(_)), false) | (None, false) => "not executable".into(),
        (None, true) => String::new(),
    }
}

/// The warning for a file that does not run, with what to do about it.
fn warning(p: &PluginInfo) -> Option<String> {
    let path = p.path.display();
    let command = p.command();
    if !p.safe_name {
        return Some(format!(
            "{path} is skipped: its name {:?} holds characters other than {SAFE_NAME_CHARS}, \
             which are unsafe in shell completion and on a terminal. Rename the file to use it.",
            p.name
        ));
    }
    Some(match (&p.shadowed_by, p.executable) {
        (None, true) => return None,
        (Some(Shadow::BuiltIn), _) => format!(
            "{path} never runs: `{command}` is a built-in command, and built-ins always win. \
             Rename the file to use it."
        ),
        (Some(Shadow::By(winner)), true) => format!(
            "{path} never runs: {} is found first for `{command}` (plugins.dirs, then PATH).",
            winner.display()
        ),
        (Some(Shadow::By(winner)), false) => format!(
            "{path} is not executable and is skipped: `{command}` runs {}.",
            winner.display()
        ),
        (None, false) => {
            format!("{path} is not executable, so `{command}` cannot run it. Fix: chmod +x {path}")
        }
    })
}
