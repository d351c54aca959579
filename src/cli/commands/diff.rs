//! `mamfast state diff [FROM] [TO] [--json]`: what changed between two states, entry by
//! entry and field by field. FROM and TO are generations (`main`, `bak`, `1`, … as `state
//! backups` lists them) or paths to state files; by default the newest backup against main.
//! Exit 0 when they are equal, 1 when they differ, as `diff` does.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::history::diff_lines;
use super::restore::parse_generation;
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::diff::{diff, KindDiff, StateDiff};
use mamfast::store::Store;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier state: main, bak (.bak), 1 (.bak.1), … or a path to a state file (default: bak)
    pub from: Option<String>,
    /// The later state, as FROM (default: main)
    pub to: Option<String>,
    /// Print one JSON document: the files, the counts and every change
    #[arg(long)]
    pub json: bool,
}

/// A state to compare: its name as given and its file.
pub struct Side {
    pub name: String,
    pub path: PathBuf,
}

/// `main` → the state file; a generation (`bak`, `.bak.1`, `2`) → that backup, named by the
/// store; anything else (and anything with a `/`) → a path.
pub fn resolve(store: &Store, text: &str) -> Side {
    let path = if text == "main" {
        store.path().to_path_buf()
    } else if let Some(generation) = parse_generation(text).filter(|_| !text.contains('/')) {
        store.backup_path(generation)
    } else {
        PathBuf::from(text)
    };
    Side {
        name: text.to_string(),
        path,
    }
}

#[derive(Serialize)]
struct Counts {
    added: usize,
    changed: usize,
    removed: usize,
}

impl Counts {
    fn of(kind: &KindDiff) -> Counts {
        Counts {
            added: kind.added.len(),
            changed: kind.changed.len(),
            removed: kind.removed.len(),
        }
    }
}

#[derive(Serialize)]
struct CountsJson {
    failed: Counts,
    processed: Counts,
}

#[derive(Serialize)]
struct DiffJson<'a> {
    changes: &'a StateDiff,
    counts: CountsJson,
    equal: bool,
    from: String,
    to: String,
}

pub fn run(ctx: &Ctx, args: DiffArgs) -> Result<i32> {
    let store = ctx.store();
    let from = resolve(&store, args.from.as_deref().unwrap_or("bak"));
    let to = resolve(&store, args.to.as_deref().unwrap_or("main"));
    let changes = diff(&Store::load_file(&from.path)?, &Store::load_file(&to.path)?);
    let code = if changes.is_empty() { 0 } else { 1 };
    if args.json {
        ctx.console.json(&DiffJson {
            counts: CountsJson {
                failed: Counts::of(&changes.failed),
                processed: Counts::of(&changes.processed),
            },
            changes: &changes,
            equal: changes.is_empty(),
            from: from.path.display().to_string(),
            to: to.path.display().to_string(),
        })?;
        return Ok(code);
    }
    ctx.console.data(show(&from, &to, &changes))?;
    Ok(code)
}

/// The human diff: which files, the counts, then a line a change.
pub fn show(from: &Side, to: &Side, changes: &StateDiff) -> String {
    let mut text = format!(
        "from {} ({})\nto   {} ({})\n",
        escape(&from.name),
        escape(&from.path.display().to_string()),
        escape(&to.name),
        escape(&to.path.display().to_string())
    );
    if changes.is_empty() {
        text.push_str("no difference\n");
        return text;
    }
    text.push_str(&changes.counts());
    text.push('\n');
    for line in diff_lines(changes, None, "  ") {
        text.push_str(&line);
        text.push('\n');
    }
    text
}
