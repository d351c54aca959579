//! `mamfast state backups`: the main file and every backup generation, each checked.

use chrono::{DateTime, Local};
use clap::Args;
use serde::Serialize;

use crate::cli::Ctx;
use crate::error::Result;
use crate::store::Generation;

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
        Some(0) => ".bak".into(),
        Some(n) => format!(".bak.{n}"),
    }
}

#[derive(Serialize)]
struct GenerationJson<'a> {
    error: Option<&'a str>,
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
    let generations = ctx.store().generations();
    if args.json {
        let docs: Vec<GenerationJson> = generations.iter().map(to_json).collect();
        ctx.console.json(&docs);
        return Ok(0);
    }
    // Every generation lives in one directory: name it once, show file names in the table.
    if let Some(dir) = generations.first().and_then(|g| g.path.parent()) {
        ctx.console.data(format!("{}:\n", dir.display()));
    }
    let rows = generations.iter().map(|g| {
        let (status, version, processed, failed) = match (&g.summary, g.exists) {
            (_, false) => ("missing".to_string(), "-".into(), "-".into(), "-".into()),
            (Ok(s), true) => (
                "ok".to_string(),
                s.version.to_string(),
                s.processed.to_string(),
                s.failed.to_string(),
            ),
            (Err(why), true) => (
                format!("invalid: {why}"),
                "-".into(),
                "-".into(),
                "-".into(),
            ),
        };
        vec![
            label(g.generation),
            g.path.file_name().map_or_else(
                || g.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            version,
            processed,
            failed,
            g.size.map_or("-".into(), |s| s.to_string()),
            g.modified.map_or("-".into(), |m| {
                DateTime::<Local>::from(m)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            }),
            status,
        ]
    });
    ctx.console.table(
        &[
            "GENERATION",
            "FILE",
            "VERSION",
            "PROCESSED",
            "FAILED",
            "BYTES",
            "MODIFIED",
            "STATUS",
        ],
        rows,
    );
    Ok(0)
}

fn to_json(g: &Generation) -> GenerationJson<'_> {
    let summary = g.summary.as_ref().ok().filter(|_| g.exists);
    GenerationJson {
        error: g
            .summary
            .as_ref()
            .err()
            .map(String::as_str)
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
