//! What `retry` and `clear` share when they act on several IDs: the one update that removes
//! them, and the closing summary.

use serde::Serialize;

use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::state::ops::unique_ids;
use mamfast::state::State;
use mamfast::store::Outcome;

/// What a removal found for each ID: the entry removed, or `None` when it was not there.
pub type Removed<T> = Vec<(String, Option<T>)>;

/// Removes `ids` (duplicates dropped, order kept) with `remove` in one update: one lock, one
/// durable write, one backup generation; nothing is written when none of them was there.
pub fn remove_in_one_update<T>(
    ctx: &Ctx,
    ids: Vec<String>,
    remove: impl FnOnce(&mut State, &[String]) -> Removed<T>,
) -> Result<Removed<T>> {
    let ids = unique_ids(ids);
    ctx.store().update(|state| {
        let results = remove(state, &ids);
        Ok(if results.iter().any(|(_, entry)| entry.is_some()) {
            Outcome::Changed(results)
        } else {
            Outcome::Unchanged(results)
        })
    })
}

/// What `retry` and `clear` report with `--json`: each ID and whether it was found (and so
/// removed), and how many were.
#[derive(Debug, Serialize)]
pub struct Report {
    pub command: &'static str,
    pub dry_run: bool,
    pub changed: usize,
    pub ids: Vec<Found>,
}

#[derive(Debug, Serialize)]
pub struct Found {
    pub id: String,
    pub found: bool,
}

impl Report {
    pub fn new<T>(ctx: &Ctx, command: &'static str, results: &Removed<T>) -> Report {
        let ids: Vec<Found> = results
            .iter()
            .map(|(id, entry)| Found {
                id: id.clone(),
                found: entry.is_some(),
            })
            .collect();
        Report {
            command,
            dry_run: ctx.dry_run(),
            changed: ids.iter().filter(|f| f.found).count(),
            ids,
        }
    }
}

/// The line after the per-ID lines of a bulk command, said only when more than one ID was
/// given (after duplicates are dropped): `Retried 3 of 4 (1 not found in failed)`,
/// `Would clear 2 of 2` in a dry run. Silent with `--quiet`.
pub fn summary(ctx: &Ctx, verb: &str, past: &str, changed: usize, total: usize, place: &str) {
    if total < 2 {
        return;
    }
    let text = summary_text(ctx.dry_run(), verb, past, changed, total, place);
    if changed > 0 {
        ctx.console.success(text);
    } else {
        ctx.console.info(text);
    }
}

fn summary_text(
    dry_run: bool,
    verb: &str,
    past: &str,
    changed: usize,
    total: usize,
    place: &str,
) -> String {
    let done = if dry_run {
        format!("Would {verb}")
    } else {
        let mut chars = past.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    };
    let missing = total - changed;
    if missing == 0 {
        format!("{done} {changed} of {total}")
    } else {
        format!("{done} {changed} of {total} ({missing} not found in {place})")
    }
}

#[cfg(test)]
mod tests {
    use super::summary_text;

    #[test]
    fn the_summary_counts_what_changed_and_what_was_not_there() {
        assert_eq!(
            summary_text(false, "retry", "retried", 3, 4, "failed"),
            "Retried 3 of 4 (1 not found in failed)"
        );
        assert_eq!(
            summary_text(false, "clear", "cleared", 2, 2, "processed"),
            "Cleared 2 of 2"
        );
        assert_eq!(
            summary_text(true, "retry", "retried", 0, 2, "failed"),
            "Would retry 0 of 2 (2 not found in failed)"
        );
    }
}
