//! `mamfast state log [ID] [--since DUR|TIME] [--limit N|all] [--json]`: the journal, newest
//! first; for one ID, every record that touched it (its whole story).

use chrono::{DateTime, FixedOffset};
use clap::Args;

use super::history::diff_lines;
use super::list::{parse_limit, Limit};
use crate::cli::Ctx;
use mamfast::config::{at_most, parse_duration, MAX_FAILED_TTL};
use mamfast::error::{Error, Result};
use mamfast::escape::escape;
use mamfast::state::time::parse_timestamp;
use mamfast::store::{JournalRecord, JournalRecordKind};

/// Records shown when --limit is not given.
const DEFAULT_LIMIT: usize = 20;

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the records that changed this entry (processed or failed), its whole story
    pub id: Option<String>,
    /// Only records since this long ago (30m, 12h, 7d) or this time (2026-11-26T10:00:00+00:00)
    #[arg(long, value_name = "DUR|TIME")]
    pub since: Option<String>,
    /// How many records to show, newest first (default 20; all for one ID)
    #[arg(long, value_name = "N|all", value_parser = parse_limit)]
    pub limit: Option<Limit>,
    /// Print the records as a JSON array, exactly as journaled, newest first
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: LogArgs) -> Result<i32> {
    let since = match &args.since {
        Some(text) => Some(parse_since(text, ctx.now()?)?),
        None => None,
    };
    let store = ctx.store();
    // A change made outside mamfast since the last record is recorded first, as the next
    // write would record it, so that the log is whole up to now.
    if let Err(e) = store.record_outside_changes() {
        ctx.console.warn(format!(
            "could not check {} for changes made outside mamfast: {e}",
            store.path().display()
        ));
    }
    let read = store.journal();
    for why in &read.skipped {
        ctx.console.warn(why);
    }
    let limit = match args.limit {
        Some(Limit::Most(n)) => n,
        Some(Limit::All) => usize::MAX,
        None if args.id.is_some() => usize::MAX,
        None => DEFAULT_LIMIT,
    };
    let id = args.id.as_deref();
    let records: Vec<&JournalRecord> = read
        .records
        .iter()
        .rev()
        .filter(|r| id.is_none_or(|id| r.changes.as_ref().is_some_and(|c| c.mentions(id))))
        .filter(|r| since.is_none_or(|s| parse_timestamp(&r.time).is_some_and(|t| t >= s)))
        .take(limit)
        .collect();
    if args.json {
        ctx.console.json(&records)?;
        return Ok(0);
    }
    if records.is_empty() {
        let journal = store.journal_path();
        ctx.console.info(match (id, journal.exists()) {
            (Some(id), _) => format!("no record in {} changed {}", journal.display(), escape(id)),
            (None, false) => format!(
                "no journal yet: {} is written by the first change mamfast makes",
                journal.display()
            ),
            (None, true) => format!("no record in {}", journal.display()),
        });
        return Ok(0);
    }
    let mut text = String::new();
    for record in records {
        text.push_str(&heading(record));
        text.push('\n');
        if let Some(note) = &record.note {
            text.push_str(&format!("  ({})\n", escape(note)));
        }
        if let Some(changes) = &record.changes {
            for line in diff_lines(changes, id, "  ") {
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    ctx.console.data(text)?;
    Ok(0)
}

/// `2026-11-26 10:00:00  root (pid 42)  mamfast state retry B0…: failed +0 -1 ~0` and its
/// kind of change.
fn heading(record: &JournalRecord) -> String {
    // The program by its name: where it was installed says little.
    let mut command = record.command.clone();
    if let Some(program) = command.first_mut() {
        if let Some(name) = std::path::Path::new(program.as_str()).file_name() {
            *program = name.to_string_lossy().into_owned();
        }
    }
    let who = format!(
        "{} (pid {}): {}",
        escape(&record.user),
        record.pid,
        escape(&command.join(" "))
    );
    let counts = record
        .changes
        .as_ref()
        .map_or_else(|| counts_of(record), |c| c.counts());
    let what = match record.kind {
        JournalRecordKind::Write => format!("write by {who}"),
        JournalRecordKind::Restore => format!("restore by {who}"),
        JournalRecordKind::Recover => format!("recovery by {who}"),
        JournalRecordKind::Outside => format!(
            "changed outside mamfast between {} and {} (noticed by {who})",
            record.since.as_deref().map_or("?".into(), shown_time),
            shown_time(&record.time)
        ),
    };
    format!("{}  {what}\n  {counts}", shown_time(&record.time))
}

/// The counts before and after, when the entries that changed are not known.
fn counts_of(record: &JournalRecord) -> String {
    let side = |f: &Option<mamfast::store::JournalFingerprint>| match f {
        Some(f) => format!("{} processed, {} failed", f.processed, f.failed),
        None => "no file".into(),
    };
    format!(
        "entries not known: before {}, after {}",
        side(&record.before),
        side(&record.after)
    )
}

fn shown_time(text: &str) -> String {
    match parse_timestamp(text) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => escape(text).into_owned(),
    }
}

/// `--since`: a duration back from now, or a time.
fn parse_since(text: &str, now: DateTime<FixedOffset>) -> Result<DateTime<FixedOffset>> {
    if let Some(at) = parse_timestamp(text) {
        return Ok(at);
    }
    let back = parse_duration(text, false)
        .and_then(|d| at_most(d, MAX_FAILED_TTL))
        .map_err(|why| {
            Error::Usage(format!(
                "invalid value {:?} for --since: {why}; expected a duration (30m, 12h, 7d) or a \
                 time (2026-11-26T10:00:00+00:00)",
                text
            ))
        })?;
    let back = chrono::Duration::from_std(back)
        .map_err(|e| Error::Usage(format!("invalid value {text:?} for --since: {e}")))?;
    Ok(now - back)
}
