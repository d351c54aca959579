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

/// The name a file of the listing goes by on the command line: a generation's [`label`], or
/// for a rejected state what its name adds to the state file's (`.rejected-<UTC time>`).
fn name_of(g: &Generation) -> String {
    if !g.rejected {
        return label(g.generation);
    }
    let name = g.path.file_name().unwrap_or_default().to_string_lossy();
    match name.find(".rejected-") {
        Some(at) => name[at..].to_string(),
        None => name.into_owned(),
    }
}

/// Why the file is there: the retention rule that keeps a backup, or what it is.
fn reason(g: &Generation) -> String {
    match (&g.kept, g.generation) {
        _ if g.rejected => "rejected by restore: never used by recovery".into(),
        (Some(kept), _) => kept.to_string(),
        (None, Some(_)) if g.exists => "not kept: the next write drops it".into(),
        _ => "-".into(),
    }
}

#[derive(Serialize)]
struct GenerationJson {
    error: Option<String>,
    exists: bool,
    failed: Option<usize>,
    generation: String,
    /// Why it is kept (`last 3`, `daily 2026-11-28`, …), `rejected`, or null.
    kept: Option<String>,
    modified: Option<String>,
    path: String,
    processed: Option<usize>,
    size: Option<u64>,
    valid: bool,
    version: Option<u64>,
}

pub fn run(ctx: &Ctx, args: BackupsArgs) -> Result<i32> {
    let store = ctx.store();
    let mut generations = store.generations();
    generations.extend(store.rejected());
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
                    reasons.push(format!("{}: {why}\n", name_of(g)));
                    ("invalid", "-".into(), "-".into(), "-".into())
                }
            };
            vec![
                name_of(g),
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
                reason(g),
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
            "KEPT BECAUSE",
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
        generation: name_of(g),
        kept: match &g.kept {
            _ if g.rejected => Some("rejected".into()),
            Some(kept) => Some(kept.to_string()),
            None => None,
        },
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
