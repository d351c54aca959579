//! `mamfast state backups`: the main file, every backup generation and every rejected state,
//! each checked, with why the retention policy keeps it.

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
    let generations = store.generations();
    let rejected = store.rejected();
    if args.json {
        let docs: Vec<GenerationJson> = generations.iter().chain(&rejected).map(to_json).collect();
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
            let mut row = describe(g, &mut reasons);
            // The hour or day a periodic rule keeps it for is its MODIFIED time's.
            row.push(match (&g.kept, g.generation) {
                (Some(kept), _) => kept.rule(),
                (None, Some(_)) if g.exists => "not kept".into(),
                _ => "-".into(),
            });
            row
        })
        .collect();
    let columns = [
        "GENERATION",
        "VERSION",
        "PROCESSED",
        "FAILED",
        "BYTES",
        "MODIFIED",
        "STATUS",
    ];
    let mut header = columns.to_vec();
    header.push("KEPT");
    ctx.console.table(&header, rows)?;
    if !rejected.is_empty() {
        // Apart, as their names are long, and they are no generation: recovery never
        // walks them, `state restore NAME` brings one back.
        ctx.console.data(
            "\nRejected by `state restore` (kept, never used by automatic recovery; \
             `mamfast state restore NAME` brings one back):\n",
        )?;
        let rows: Vec<Vec<String>> = rejected.iter().map(|g| describe(g, &mut reasons)).collect();
        let mut header = columns.to_vec();
        header[0] = "NAME";
        ctx.console.table(&header, rows)?;
    }
    if !reasons.is_empty() {
        ctx.console.data(format!("\n{}", reasons.concat()))?;
    }
    Ok(0)
}

/// A row of the table: name, version, counts, size, time and status; why it is invalid is
/// added to `reasons`.
fn describe(g: &Generation, reasons: &mut Vec<String>) -> Vec<String> {
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
    ]
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
