//! `mamfast state backups`: the main file and every backup generation, each checked.

use chrono::{DateTime, Local};
use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::store::{backup_suffix, Generation};

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// Print a JSON array, one object per file
    #[arg(long)]
    pub json: bool,
}

/// The name a generation goes by on the command line: `main`, `.bak`, `.bak.1`, …
pub fn label(generation: Option<usize>) -> String {
    match generation {
        None => "main".into(),
        Some(n) => backup_suffix(n),
    }
}

#[derive(Serialize)]
struct GenerationJson {
    error: Option<String>,
    exists: bool,
    failed: Option<usize>,
    generation: String,
    modified: Option<String>,
    path: String,
    processed: Option<usize>,
    size: Option<u64>,
    valid: bool,
    version: Option<u64>,
}

pub fn run(ctx: &Ctx, args: BackupsArgs) -> Result<i32> {
    let store = ctx.store();
    let generations = store.generations();
    if args.json {
        let docs: Vec<GenerationJson> = generations.iter().map(to_json).collect();
        ctx.console.json(&docs)?;
        return Ok(0);
    }
    // The main file is named once above the table; each row is a generation of it, by the
    // name `state restore` takes. Why a file is invalid goes below the table, uncut.
    ctx.console.data(format!("{}\n", store.path().display()))?;
    let mut reasons = Vec::new();
    let rows: Vec<Vec<String>> = generations
        .iter()
        .map(|g| {
            let (status, version, processed, failed) = match (&g.summary, g.exists) {
                (_, false) => ("missing", "-".into(), "-".into(), "-".into()),
                (Ok(s), true) => (
                    "ok",
                    s.version.to_string(),
                    s.processed.to_string(),
                    s.failed.to_string(),
                ),
                (Err(why), true) => {
                    reasons.push(format!("{}: {why}\n", label(g.generation)));
                    ("invalid", "-".into(), "-".into(), "-".into())
                }
            };
            vec![
                label(g.generation),
                version,
                processed,
                failed,
                g.size.map_or("-".into(), |s| s.to_string()),
                g.modified.map_or("-".into(), |m| {
                    DateTime::<Local>::from(m)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                }),
                status.to_string(),
            ]
        })
        .collect();
    ctx.console.table(
        &[
            "GENERATION",
            "VERSION",
            "PROCESSED",
            "FAILED",
            "BYTES",
            "MODIFIED",
            "STATUS",
        ],
        rows,
    )?;
    if !reasons.is_empty() {
        ctx.console.data(format!("\n{}", reasons.concat()))?;
    }
    Ok(0)
}

fn to_json(g: &Generation) -> GenerationJson {
    let summary = g.summary.as_ref().ok().filter(|_| g.exists);
    GenerationJson {
        error: g
            .summary
            .as_ref()
            .err()
            .map(ToString::to_string)
            .filter(|_| g.exists),
        exists: g.exists,
        failed: summary.map(|s| s.failed),
        generation: label(g.generation),
        modified: g
            .modified
            .map(|m| DateTime::<Local>::from(m).fixed_offset().to_rfc3339()),
        path: g.path.display().to_string(),
        processed: summary.map(|s| s.processed),
        size: g.size,
        valid: summary.is_some(),
        version: summary.map(|s| s.version),
    }
}
