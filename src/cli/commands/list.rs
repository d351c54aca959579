//! `mamfast state list`: counts and the most recent entries of each kind, selected by the
//! filters of [`FilterArgs`] (all given must match).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use anstyle::{AnsiColor, Style};
use clap::Args;
use serde::Serialize;

use super::filters::FilterArgs;
use super::{or_dash, recency, short_time};
use crate::cli::output::Paint;
use crate::cli::Ctx;
use chrono::{DateTime, FixedOffset};
use mamfast::error::{Error, Result};
use mamfast::state::select::Filter;
use mamfast::state::view::{FailedView, ProcessedView};
use mamfast::state::{FailedEntry, ProcessedEntry, State, Status};

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
    /// How many of the most recent entries to show per kind, or all (default 20; all with --json)
    #[arg(long, value_name = "N|all", value_parser = parse_limit)]
    pub limit: Option<Limit>,
    /// Print the Python tool's JSON shape: {"processed", "failed", "stats"}
    #[arg(long)]
    pub json: bool,
    /// Count what matches instead: processed by status, failed by error type
    #[arg(long)]
    pub counts: bool,
    #[command(flatten)]
    pub filters: FilterArgs,
}

/// `--limit`: a number of entries per kind, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Most(usize),
    All,
}

impl Limit {
    fn get(self) -> usize {
        match self {
            Limit::Most(n) => n,
            Limit::All => usize::MAX,
        }
    }
}

/// The colour of a status in a table: done green, failed red, on its way yellow; a status
/// this build does not know stays plain.
pub fn status_style(status: &str) -> Style {
    match Status::parse(status) {
        Status::Complete => AnsiColor::Green.on_default(),
        Status::Failed => AnsiColor::Red.on_default(),
        Status::Unknown(_) => Style::new(),
        _ => AnsiColor::Yellow.on_default(),
    }
}

pub fn parse_limit(text: &str) -> std::result::Result<Limit, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(Limit::All);
    }
    text.trim()
        .parse()
        .map(Limit::Most)
        .map_err(|_| "expected a number of entries, or \"all\"".to_string())
}

pub fn run(ctx: &Ctx, args: ListArgs) -> Result<i32> {
    let filter = args.filters.to_filter(ctx.now()?)?;
    kind_fits(&args, &filter)?;
    // Entries stay the text they were read as: the selection looks at views of them (see
    // `mamfast::state::view`), and only the entries shown are parsed whole.
    // Never freed: the process ends once the list is printed, and the system takes back a
    // state of 100 000 entries at once where dropping it entry by entry takes some 20 ms.
    let state: &State = Box::leak(Box::new(ctx.store().read_lazy()?));
    let kinds = filter.kinds();
    let show_processed = !args.failed && kinds.processed;
    let show_failed = !args.processed && kinds.failed;
    if args.counts {
        return counts(ctx, &args, state, &filter);
    }
    let limit = args.limit.map(Limit::get);
    // Without --limit, JSON shows every entry and a table the default number.
    let most = limit.unwrap_or(if args.json { usize::MAX } else { DEFAULT_LIMIT });
    // The `most` most recent selected IDs, most recent first: every entry when no filter is
    // given.
    let processed = if show_processed {
        recent_processed(state, &filter, most)
    } else {
        Selected::default()
    };
    let failed = if show_failed {
        recent_failed(state, &filter, most)
    } else {
        Selected::default()
    };

    if args.json {
        // References, not copies: a state of 100k entries is printed without cloning it. The
        // document is keyed by ID, so entries are sorted by time only to pick the `--limit`
        // most recent.
        let (processed, failed) = (processed.recent, failed.recent);
        let doc = ListJson {
            processed: show_processed.then(|| {
                processed
                    .iter()
                    .map(|&id| (id, &state.processed[id]))
                    .collect()
            }),
            failed: show_failed.then(|| failed.iter().map(|&id| (id, &state.failed[id])).collect()),
            stats: Stats {
                failed: state.failed.len(),
                processed: state.processed.len(),
            },
        };
        ctx.console.json(&doc)?;
        return Ok(0);
    }

    let limit = most;
    ctx.console.data(header(
        state,
        &filter,
        show_processed,
        show_failed,
        processed.matched,
        failed.matched,
    ))?;
    if processed.matched > 0 {
        ctx.console.data(format!(
            "\nProcessed ({}):\n",
            shown(limit, processed.matched)
        ))?;
        let rows = processed.recent.iter().map(|&id| {
            let e = &state.processed[id];
            vec![
                id.to_string(),
                e.effective_status().to_string(),
                short_time(e.processed_at.as_deref()),
                or_dash(e.author.as_deref()),
                or_dash(e.title.as_deref()),
            ]
        });
        ctx.console.table_painted(
            &["ID", "STATUS", "PROCESSED", "AUTHOR", "TITLE"],
            rows,
            Some(Paint {
                column: 1,
                style: status_style,
            }),
        )?;
    }
    if failed.matched > 0 {
        ctx.console
            .data(format!("\nFailed ({}):\n", shown(limit, failed.matched)))?;
        let rows = failed.recent.iter().map(|&id| {
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

/// `--processed` with a filter of failed entries (or `--failed` with one of processed
/// entries) could list nothing: a usage error rather than an empty list.
fn kind_fits(args: &ListArgs, filter: &Filter) -> Result<()> {
    let clash = if args.processed {
        filter.failed_only().first().map(|f| ("--processed", *f))
    } else if args.failed {
        filter.processed_only().first().map(|f| ("--failed", *f))
    } else {
        None
    };
    match clash {
        Some((kind, option)) => Err(Error::Usage(format!(
            "{option} never matches what {kind} lists; drop one of them"
        ))),
        None => Ok(()),
    }
}

/// The first line: the counts of the whole state, or with a filter how many of each kind
/// listed matched out of how many there are.
fn header(
    state: &State,
    filter: &Filter,
    show_processed: bool,
    show_failed: bool,
    processed: usize,
    failed: usize,
) -> String {
    if filter.is_empty() {
        return format!(
            "Processed: {}  Failed: {}\n",
            state.processed.len(),
            state.failed.len()
        );
    }
    let mut parts = Vec::new();
    if show_processed {
        parts.push(format!(
            "{} of {} processed",
            processed,
            state.processed.len()
        ));
    }
    if show_failed {
        parts.push(format!("{} of {} failed", failed, state.failed.len()));
    }
    format!("Matching: {}\n", parts.join(", "))
}

/// `--counts`: how many selected entries have each status, and each error type.
fn counts(ctx: &Ctx, args: &ListArgs, state: &State, filter: &Filter) -> Result<i32> {
    let kinds = filter.kinds();
    let show_processed = !args.failed && kinds.processed;
    let show_failed = !args.processed && kinds.failed;
    let mut processed = Vec::new();
    let mut statuses = Vec::new();
    if show_processed {
        for (id, e) in state.processed.views::<ProcessedView>() {
            if filter.matches_processed_view(id, &e) {
                processed.push(id.as_str());
                statuses.push(Some(e.effective_status().to_string()));
            }
        }
    }
    let mut failed = Vec::new();
    let mut error_types = Vec::new();
    if show_failed {
        for (id, e) in state.failed.views::<FailedView>() {
            if filter.matches_failed_view(id, &e) {
                failed.push(id.as_str());
                error_types.push(e.error_type.map(|t| t.0.into_owned()));
            }
        }
    }
    let (processed, failed) = (processed.len(), failed.len());
    let by_status = tally(statuses.into_iter());
    let by_error_type = tally(error_types.into_iter());
    if args.json {
        let doc = CountsJson {
            failed: show_failed.then(|| FailedCounts {
                by_error_type: by_error_type
                    .iter()
                    .map(|(t, count)| ErrorTypeCount {
                        count: *count,
                        error_type: t.as_deref(),
                    })
                    .collect(),
                matched: failed,
                total: state.failed.len(),
            }),
            processed: show_processed.then(|| ProcessedCounts {
                by_status: by_status
                    .iter()
                    .map(|(s, count)| StatusCount {
                        count: *count,
                        status: s.as_deref().unwrap_or_default(),
                    })
                    .collect(),
                matched: processed,
                total: state.processed.len(),
            }),
        };
        ctx.console.json(&doc)?;
        return Ok(0);
    }
    ctx.console.data(header(
        state,
        filter,
        show_processed,
        show_failed,
        processed,
        failed,
    ))?;
    if show_processed && !by_status.is_empty() {
        ctx.console.data("\nProcessed by status:\n")?;
        let rows = by_status
            .iter()
            .map(|(s, n)| vec![or_dash(s.as_deref()), n.to_string()]);
        ctx.console.table_painted(
            &["STATUS", "COUNT"],
            rows,
            Some(Paint {
                column: 0,
                style: status_style,
            }),
        )?;
    }
    if show_failed && !by_error_type.is_empty() {
        ctx.console.data("\nFailed by error type:\n")?;
        let rows = by_error_type
            .iter()
            .map(|(t, n)| vec![or_dash(t.as_deref()), n.to_string()]);
        ctx.console.table(&["ERROR TYPE", "COUNT"], rows)?;
    }
    Ok(0)
}

/// How many times each value occurs: most frequent first, then by value (none last).
fn tally(values: impl Iterator<Item = Option<String>>) -> Vec<(Option<String>, usize)> {
    let mut counts: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|(a, n), (b, m)| {
        m.cmp(n)
            .then_with(|| a.is_none().cmp(&b.is_none()))
            .then_with(|| a.cmp(b))
    });
    counts
}

/// `state list --counts --json`; fields in sorted order.
#[derive(Serialize)]
struct CountsJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<FailedCounts<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processed: Option<ProcessedCounts<'a>>,
}

#[derive(Serialize)]
struct FailedCounts<'a> {
    by_error_type: Vec<ErrorTypeCount<'a>>,
    matched: usize,
    total: usize,
}

#[derive(Serialize)]
struct ErrorTypeCount<'a> {
    count: usize,
    error_type: Option<&'a str>,
}

#[derive(Serialize)]
struct ProcessedCounts<'a> {
    by_status: Vec<StatusCount<'a>>,
    matched: usize,
    total: usize,
}

#[derive(Serialize)]
struct StatusCount<'a> {
    count: usize,
    status: &'a str,
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

/// What a selection of one kind found: how many entries match, and the most recent of them
/// (up to the number asked for), most recent first.
#[derive(Default)]
struct Selected<'a> {
    matched: usize,
    recent: Vec<&'a str>,
}

/// Selected processed IDs, the `most` most recently processed first (then by ID).
fn recent_processed<'a>(state: &'a State, filter: &Filter, most: usize) -> Selected<'a> {
    most_recent_first(
        state
            .processed
            .views::<ProcessedView>()
            .filter(|(id, e)| filter.matches_processed_view(id, e))
            .map(|(id, e)| (id, recency(e.processed_at.as_deref()))),
        most,
    )
}

/// Selected failed IDs, the `most` most recently failed first (then by ID).
fn recent_failed<'a>(state: &'a State, filter: &Filter, most: usize) -> Selected<'a> {
    most_recent_first(
        state
            .failed
            .views::<FailedView>()
            .filter(|(id, e)| filter.matches_failed_view(id, e))
            .map(|(id, e)| (id, recency(e.failed_at.as_deref()))),
        most,
    )
}

/// The `most` first IDs by time, most recent first, then by ID. Each time is parsed once
/// (not once per comparison: that made `state list` on 100k entries take seconds), and only
/// the `most` kept are sorted.
fn most_recent_first<'a>(
    entries: impl Iterator<Item = (&'a String, Option<DateTime<FixedOffset>>)>,
    most: usize,
) -> Selected<'a> {
    let mut keyed: Vec<_> = entries.map(|(id, at)| (Reverse(at), id.as_str())).collect();
    let matched = keyed.len();
    if most < matched {
        // IDs are unique: the order is total, so the `most` first are the same as a full sort's.
        keyed.select_nth_unstable(most);
        keyed.truncate(most);
    }
    keyed.sort_unstable();
    Selected {
        matched,
        recent: keyed.into_iter().map(|(_, id)| id).collect(),
    }
}
