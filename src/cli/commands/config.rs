//! `mamfast config show` and `mamfast config path`: the configuration in effect, where each
//! value came from, and which files were looked for.

use clap::Args;
use serde_json::{Map, Value};

use crate::cli::output::Console;
use crate::cli::{Ctx, GlobalArgs};
use mamfast::config::config_candidates;
use mamfast::error::Result;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Say where each value came from: default, a file, a variable or a flag
    #[arg(long)]
    pub origin: bool,
    /// Print a JSON object (with --origin: {key: {"value", "origin"}})
    #[arg(long)]
    pub json: bool,
}

pub fn show(ctx: &Ctx, args: ShowArgs) -> Result<i32> {
    let rows = ctx.settings.rows();
    if args.json {
        let mut doc = Map::new();
        for row in rows {
            let value = if args.origin {
                serde_json::json!({"value": row.value, "origin": row.origin.to_string()})
            } else {
                row.value
            };
            doc.insert(row.key.to_string(), value);
        }
        ctx.console.json(&Value::Object(doc))?;
        return Ok(0);
    }
    let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let lines: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            let value = match &row.value {
                Value::Null => "(unset)".to_string(),
                other => other.to_string(),
            };
            (
                format!("{:width$} = {value}", row.key),
                row.origin.to_string(),
            )
        })
        .collect();
    let line_width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (line, origin) in lines {
        if args.origin {
            text.push_str(&format!("{line:line_width$}  # {origin}\n"));
        } else {
            text.push_str(&format!("{line}\n"));
        }
    }
    ctx.console.data(text)?;
    Ok(0)
}

/// Needs no loaded settings, so it works when the configuration itself is broken.
pub fn path(global: &GlobalArgs, console: &Console) -> Result<i32> {
    let env = |name: &str| std::env::var(name).ok();
    let candidates = config_candidates(&global.overrides(), &env);
    let mut text = String::new();
    if candidates.is_empty() {
        text.push_str("no config file (MAMFAST_CONFIG is set but empty)\n");
    }
    for c in candidates {
        let status = if c.exists { "found" } else { "not found" };
        text.push_str(&format!("{}  ({}, {status})\n", c.path.display(), c.why));
    }
    console.data(text)?;
    Ok(0)
}
