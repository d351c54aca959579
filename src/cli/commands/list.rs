//! `mamfast state list`: counts and the most recent entries of each kind.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use clap::Args;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{or_dash, recency, short_time};
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::state::{Entries, FailedEntry, ProcessedEntry, State};

/// Entries shown per kind when --limit is not given.
const DEFAULT_LIMIT: usize = 20;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only processed entries
    #[arg(long, conflicts_with = "failed")]
    pub processed: bool,
    /// Only failed entries
    #[arg(long)]
    pub failed: bool,
    /// How many of the most recent entries to show per kind (default 20; all with --json)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the Python tool's JSON shape: {"processed", "failed", "stats"}
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: ListArgs) -> Result<i32> {
    let state = ctx.store().read()?;
    let show_processed = !args.failed;
    let show_failed = !args.processed;

    if args.json {
        // References, not copies: a state of 100k entries is printed without cloning it. The
        // document is keyed by ID, so entries are sorted by time only to pick the `--limit`
        // most recent.
        let doc = ListJson {
            processed: show_processed.then(|| match args.limit {
                None => by_id(&state.processed),
                Some(limit) => recent_processed(&state)
                    .into_iter()
                    .take(limit)
                    .map(|id| (id, &state.processed[id]))
                    .collect(),
            }),
            failed: show_failed.then(|| match args.limit {
                None => by_id(&state.failed),
                Some(limit) => recent_failed(&state)
                    .into_iter()
                    .take(limit)
                    .map(|id| (id, &state.failed[id]))
                    .collect(),
            }),
            stats: Stats {
                failed: state.failed.len(),
                processed: state.processed.len(),
            },
        };
        ctx.console.json(&doc)?;
        return Ok(0);
    }

    let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
    ctx.console.data(format!(
        "Processed: {}  Failed: {}\n",
        state.processed.len(),
        state.failed.len()
    ))?;
    if show_processed && !state.processed.is_empty() {
        ctx.console.data(format!(
            "\nProcessed ({}):\n",
            shown(limit, state.processed.len())
        ))?;
        let rows = recent_processed(&state).into_iter().take(limit).map(|id| {
            let e = &state.processed[id];
            vec![
                id.to_string(),
                e.effective_status().to_string(),
                short_time(e.processed_at.as_deref()),
                or_dash(e.author.as_deref()),
                or_dash(e.title.as_deref()),
            ]
        });
        ctx.console
            .table(&["ID", "STATUS", "PROCESSED", "AUTHOR", "TITLE"], rows)?;
    }
    if show_failed && !state.failed.is_empty() {
        ctx.console.data(format!(
            "\nFailed ({}):\n",
            shown(limit, state.failed.len())
        ))?;
        let rows = recent_failed(&state).into_iter().take(limit).map(|id| {
            let e = &state.failed[id];
            vec![
                id.to_string(),
                e.retry_count.unwrap_or(0).to_string(),
                short_time(e.failed_at.as_deref()),
                or_dash(e.error_type.as_deref()),
                or_dash(e.title.as_deref()),
                or_dash(e.error.as_deref()),
            ]
        });
        ctx.console.table(
            &["ID", "RETRIES", "FAILED", "ERROR TYPE", "TITLE", "ERROR"],
            rows,
        )?;
    }
    Ok(0)
}

/// The Python tool's `state list --json` shape; fields in sorted order, as it writes them.
#[derive(Serialize)]
struct ListJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<BTreeMap<&'a str, &'a FailedEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processed: Option<BTreeMap<&'a str, &'a ProcessedEntry>>,
    stats: Stats,
}

#[derive(Serialize)]
struct Stats {
    failed: usize,
    processed: usize,
}

fn shown(limit: usize, total: usize) -> String {
    if limit >= total {
        format!("all {total}")
    } else {
        format!("most recent {limit} of {total}")
    }
}

/// Every entry, keyed by ID.
fn by_id<T: DeserializeOwned>(entries: &Entries<T>) -> BTreeMap<&str, &T> {
    entries.iter().map(|(id, e)| (id.as_str(), e)).collect()
}

/// Processed IDs, most recently processed first (then by ID).
fn recent_processed(state: &State) -> Vec<&str> {
    most_recent_first(
        state
            .processed
            .iter()
            .map(|(id, e)| (id, e.processed_at.as_deref())),
    )
}

/// Failed IDs, most recently failed first (then by ID).
fn recent_failed(state: &State) -> Vec<&str> {
    most_recent_first(
        state
            .failed
            .iter()
            .map(|(id, e)| (id, e.failed_at.as_deref())),
    )
}

/// IDs by time, most recent first, then by ID. Each time is parsed once (not once per
/// comparison: that made `state list` on 100k entries take seconds).
fn most_recent_first<'a>(
    entries: impl Iterator<Item = (&'a String, Option<&'a str>)>,
) -> Vec<&'a str> {
    let mut keyed: Vec<_> = entries
        .map(|(id, at)| (Reverse(recency(at)), id.as_str()))
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, id)| id).collect()
}
