//! `mamfast state prune`: remove stale processed entries (status-aware) and, with a TTL,
//! failed entries older than it. Built to run unattended: `--quiet` and `--json` for cron.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{count, path_exists};
use crate::cli::Ctx;
use mamfast::config::{at_most, format_duration, parse_duration, MAX_FAILED_TTL};
use mamfast::error::{Error, Result};
use mamfast::state::ops::{expired_failed, find_stale_entries, ExpiredFailed, StaleEntry};
use mamfast::store::Outcome;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only stale processed entries; ignore the failed-entry TTL from the configuration
    #[arg(long, conflicts_with = "failed_older_than")]
    pub stale_only: bool,
    /// Also remove failed entries whose last failure is older than this (30d, 12h, 2w, or days)
    #[arg(long, value_name = "DUR")]
    pub failed_older_than: Option<String>,
    /// Print a JSON report: {"dry_run", "stale", "expired_failed", "removed"}; `--json=compact`
    /// prints it on one line (one journal line per run)
    #[arg(
        long,
        value_name = "STYLE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "pretty",
        value_enum
    )]
    pub json: Option<JsonStyle>,
}

/// How `--json` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonStyle {
    /// Indented, one key a line (what `--json` alone prints)
    Pretty,
    /// One line
    Compact,
}

#[derive(Serialize)]
struct Removed {
    failed: usize,
    processed: usize,
}

#[derive(Serialize)]
struct PruneJson<'a> {
    dry_run: bool,
    expired_failed: &'a [ExpiredFailed],
    removed: Removed,
    stale: &'a [StaleEntry],
}

pub fn run(ctx: &Ctx, args: PruneArgs) -> Result<i32> {
    let ttl = failed_ttl(ctx, &args)?;
    let now = ctx.now()?;
    let (stale, expired) = ctx.store().update_all(|state| {
        let stale = find_stale_entries(state, path_exists);
        let expired = match ttl {
            Some(ttl) => expired_failed(state, ttl, now),
            None => Vec::new(),
        };
        for entry in &stale {
            state.processed.remove(&entry.id);
        }
        for entry in &expired {
            state.failed.remove(&entry.id);
        }
        let found = (stale, expired);
        Ok(if found.0.is_empty() && found.1.is_empty() {
            Outcome::Unchanged(found)
        } else {
            Outcome::Changed(found)
        })
    })?;
    report(ctx, &args, ttl, &stale, &expired)?;
    Ok(0)
}

/// The TTL for failed entries: the flag, else `state.failed_ttl`, none with --stale-only.
fn failed_ttl(ctx: &Ctx, args: &PruneArgs) -> Result<Option<Duration>> {
    if args.stale_only {
        return Ok(None);
    }
    match &args.failed_older_than {
        Some(text) => parse_duration(text, true)
            .and_then(|d| at_most(d, MAX_FAILED_TTL))
            .map(Some)
            .map_err(|why| Error::Usage(format!("invalid value for --failed-older-than: {why}"))),
        None => Ok(ctx.settings.failed_ttl),
    }
}

fn report(
    ctx: &Ctx,
    args: &PruneArgs,
    ttl: Option<Duration>,
    stale: &[StaleEntry],
    expired: &[ExpiredFailed],
) -> Result<()> {
    let dry_run = ctx.dry_run();
    if let Some(style) = args.json {
        let removed = |n: usize| if dry_run { 0 } else { n };
        let report = PruneJson {
            dry_run,
            expired_failed: expired,
            removed: Removed {
                failed: removed(expired.len()),
                processed: removed(stale.len()),
            },
            stale,
        };
        return match style {
            JsonStyle::Pretty => ctx.console.json(&report),
            JsonStyle::Compact => ctx.console.json_line(&report),
        };
    }
    let removing = ctx.did("remove", "removed");
    for s in stale {
        ctx.console.info(format!(
            "{removing} {} ({}, {}): missing {}",
            s.id,
            s.status,
            s.title.as_deref().unwrap_or("untitled"),
            s.missing
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for e in expired {
        ctx.console.info(format!(
            "{removing} failed {} ({}): last failed {}",
            e.id,
            e.title.as_deref().unwrap_or("untitled"),
            e.failed_at
        ));
    }
    ctx.console.success(summary(
        dry_run,
        args.stale_only,
        ttl,
        stale.len(),
        expired.len(),
    ));
    Ok(())
}

/// The last line of a prune: what was (or would be) removed, and why failed entries were kept.
fn summary(
    dry_run: bool,
    stale_only: bool,
    ttl: Option<Duration>,
    stale: usize,
    expired: usize,
) -> String {
    let verb = if dry_run { "Would remove" } else { "Removed" };
    let stale = count(stale, "stale processed entry", "stale processed entries");
    match ttl {
        Some(ttl) => format!(
            "{verb} {stale} and {} older than {}",
            count(expired, "failed entry", "failed entries"),
            format_duration(ttl)
        ),
        None if stale_only => {
            format!("{verb} {stale}; failed entries not considered (--stale-only)")
        }
        None => format!(
            "{verb} {stale}; failed entries are kept (no TTL: set state.failed_ttl or pass \
             --failed-older-than)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_in_words_and_says_why_failed_entries_stay() {
        let day = Some(Duration::from_secs(86_400 * 30));
        assert_eq!(
            summary(false, false, day, 1, 2),
            "Removed 1 stale processed entry and 2 failed entries older than 30d"
        );
        assert_eq!(
            summary(true, false, day, 0, 1),
            "Would remove 0 stale processed entries and 1 failed entry older than 30d"
        );
        assert_eq!(
            summary(false, true, None, 2, 0),
            "Removed 2 stale processed entries; failed entries not considered (--stale-only)"
        );
        assert!(summary(false, false, None, 0, 0).contains("no TTL: set state.failed_ttl"));
    }
}
