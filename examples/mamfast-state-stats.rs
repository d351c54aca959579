//! `mamfast state stats [--json]`: a plugin built with the mamfast library.
//!
//! Counts processed entries by status, failed entries by error type, the oldest failure still
//! recorded, and how many failures were retried how often. Read-only: it takes the shared lock
//! and reads the state through the same [`Store`](mamfast::Store) the built-in commands use.
//!
//! ```sh
//! cargo build --release --example mamfast-state-stats
//! install target/release/examples/mamfast-state-stats ~/.local/libexec/mamfast/
//! mamfast state stats
//! ```

use std::collections::BTreeMap;

use clap::Parser;
use mamfast::state::time::parse_timestamp;
use mamfast::{plugin, State};
use serde::Serialize;

/// Counts by status, failures by error type, the oldest failure and a retry histogram
#[derive(Parser)]
#[command(
    name = "mamfast-state-stats",
    bin_name = "mamfast state stats",
    version
)]
struct Args {
    /// Print one JSON document instead of text
    #[arg(long)]
    json: bool,
}

/// What `--json` prints.
#[derive(Serialize)]
struct Stats {
    /// Number of processed entries.
    processed: usize,
    /// Number of failed entries.
    failed: usize,
    /// Processed entries by status (a missing status counts as COMPLETE, as for the built-ins).
    by_status: BTreeMap<String, usize>,
    /// Failed entries by `error_type` (`"(none)"` when a legacy entry has none).
    failed_by_error_type: BTreeMap<String, usize>,
    /// The failure that has been recorded longest, by `first_failed_at` (else `failed_at`).
    oldest_failure: Option<Oldest>,
    /// Failed entries by `retry_count` (`"0"` when a legacy entry has none).
    retries: BTreeMap<u64, usize>,
}

#[derive(Serialize)]
struct Oldest {
    id: String,
    title: Option<String>,
    error_type: Option<String>,
    since: String,
}

fn main() {
    let args = Args::parse();
    plugin::run(|| {
        let state = plugin::store()?.read()?;
        let stats = stats(&state);
        if args.json {
            let text = serde_json::to_string_pretty(&stats).expect("stats serialize");
            println!("{text}");
        } else {
            print_text(&stats);
        }
        Ok(0)
    })
}

fn stats(state: &State) -> Stats {
    let mut by_status = BTreeMap::new();
    for entry in state.processed.values() {
        *by_status
            .entry(entry.effective_status().to_string())
            .or_default() += 1;
    }
    let mut failed_by_error_type = BTreeMap::new();
    let mut retries = BTreeMap::new();
    let mut oldest: Option<(chrono::DateTime<chrono::FixedOffset>, &str, String)> = None;
    for (id, entry) in &state.failed {
        let kind = entry.error_type.as_deref().unwrap_or("(none)").to_string();
        *failed_by_error_type.entry(kind).or_default() += 1;
        *retries.entry(entry.retry_count.unwrap_or(0)).or_default() += 1;
        let since = entry
            .first_failed_at
            .as_deref()
            .or(entry.failed_at.as_deref());
        if let Some((at, text)) = since.and_then(|t| Some((parse_timestamp(t)?, t))) {
            if oldest.as_ref().is_none_or(|(best, _, _)| at < *best) {
                oldest = Some((at, id.as_str(), text.to_string()));
            }
        }
    }
    let oldest_failure = oldest.map(|(_, id, since)| {
        let entry = &state.failed[id];
        Oldest {
            id: id.to_string(),
            title: entry.title.clone(),
            error_type: entry.error_type.clone(),
            since,
        }
    });
    Stats {
        processed: state.processed.len(),
        failed: state.failed.len(),
        by_status,
        failed_by_error_type,
        oldest_failure,
        retries,
    }
}

fn print_text(stats: &Stats) {
    println!("Processed: {}  Failed: {}", stats.processed, stats.failed);
    section("By status", &stats.by_status);
    section("Failures by error type", &stats.failed_by_error_type);
    if let Some(o) = &stats.oldest_failure {
        println!("\nOldest failure:");
        println!(
            "  {} {} ({}) failing since {}",
            o.id,
            o.title.as_deref().unwrap_or("-"),
            o.error_type.as_deref().unwrap_or("(none)"),
            o.since
        );
    }
    let retries: BTreeMap<String, usize> = stats
        .retries
        .iter()
        .map(|(n, count)| (format!("retry_count {n}"), *count))
        .collect();
    section("Failures by retry count", &retries);
}

fn section(title: &str, counts: &BTreeMap<String, usize>) {
    if counts.is_empty() {
        return;
    }
    println!("\n{title}:");
    let width = counts.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    for (key, count) in counts {
        println!("  {key:<width$}  {count}");
    }
}
