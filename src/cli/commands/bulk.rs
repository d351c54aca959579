//! What `retry` and `clear` share: how they are told what to act on (IDs, or filters, or
//! `--all`), the one update that removes it, and the closing summary.
//!
//! IDs and filters are not combined: a command is given either IDs (each acted on, or "not
//! found") or filters (every entry they select, or every entry with `--all`). Filters are
//! evaluated inside the update, on the state as it is under the lock, so another writer
//! between an earlier read and this one cannot make the selection stale.

use clap::Args;
use serde::Serialize;

use super::count;
use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::state::ops::unique_ids;
use mamfast::state::select::Filter;
use mamfast::state::State;
use mamfast::store::Outcome;

/// What a removal found for each ID: the entry removed, or `None` when it was not there.
pub type Removed<T> = Vec<(String, Option<T>)>;

/// What a bulk command is given to act on, besides its filters (one definition for both).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The releases' IDs (an ASIN, or a source directory); an ID given twice counts once.
    /// Not with filters or --all
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Act on every entry the filters select, even when that is all of them; alone, on every
    /// entry
    #[arg(long)]
    pub all: bool,
}

/// The kind of entry a bulk command acts on, and what it does to it.
pub struct Place<T> {
    /// `failed` or `processed`.
    pub name: &'static str,
    /// What the command does, `retry`, and has done, `retried`.
    pub verb: &'static str,
    pub past: &'static str,
    /// The filter options the command takes, for the message when it is given nothing.
    pub filters: &'static str,
    /// How many entries of the kind there are.
    pub len: fn(&State) -> usize,
    /// The IDs of the entries of the kind a filter selects.
    pub select: fn(&State, &Filter) -> Vec<String>,
    /// Removes the entries of these IDs (`state::ops::clear_*_many`).
    pub remove: fn(&mut State, &[String]) -> Removed<T>,
}

/// What a bulk command removed.
pub struct Removal<T> {
    /// Each ID acted on, with its entry or `None` when it was not there (given IDs only).
    pub results: Removed<T>,
    /// With filters or `--all`: how many entries of the kind there were.
    pub selected_from: Option<usize>,
}

/// Removes what `target` and `filter` select from `place`, in one update: one lock, one
/// durable write, one backup generation; nothing is written when nothing was removed.
pub fn remove<T>(
    ctx: &Ctx,
    target: TargetArgs,
    filter: Filter,
    place: &Place<T>,
) -> Result<Removal<T>> {
    let filtered = !filter.is_empty();
    if !target.ids.is_empty() {
        if filtered || target.all {
            let mut given = filter.option_names();
            if target.all {
                given.push("--all");
            }
            return Err(Error::Usage(format!(
                "IDs cannot be combined with {}: give either IDs, or filters that select the \
                 entries to {}",
                given.join(", "),
                place.verb
            )));
        }
        let results = remove_in_one_update(ctx, target.ids, place.remove)?;
        return Ok(Removal {
            results,
            selected_from: None,
        });
    }
    if !filtered && !target.all {
        return Err(Error::Usage(format!(
            "nothing to {verb}: give the IDs to {verb}, or filters that select them ({}), or \
             --all for every entry in {}",
            place.filters,
            place.name,
            verb = place.verb
        )));
    }
    // Every entry is looked at: parsed up front, as a read does.
    ctx.store().update_all(|state| {
        let total = (place.len)(state);
        let ids = (place.select)(state, &filter);
        if filtered && !target.all && total > 0 && ids.len() == total {
            return Err(Error::Usage(format!(
                "the filters given ({}) select every entry in {} ({}); add --all to {} them \
                 all, or narrow the filters",
                filter.option_names().join(", "),
                place.name,
                count(total, "entry", "entries"),
                place.verb
            )));
        }
        let removal = Removal {
            results: (place.remove)(state, &ids),
            selected_from: Some(total),
        };
        Ok(if ids.is_empty() {
            Outcome::Unchanged(removal)
        } else {
            Outcome::Changed(removal)
        })
    })
}

/// Removes `ids` (duplicates dropped, order kept) with `remove` in one update: one lock, one
/// durable write, one backup generation; nothing is written when none of them was there.
fn remove_in_one_update<T>(
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

/// What `retry` and `clear` report with `--json`: each ID acted on and whether it was found
/// (and so removed), how many were, and, given filters or `--all`, how many entries of the
/// kind there were.
#[derive(Debug, Serialize)]
pub struct Report {
    pub command: &'static str,
    pub dry_run: bool,
    pub changed: usize,
    pub ids: Vec<Found>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_from: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Found {
    pub id: String,
    pub found: bool,
}

impl Report {
    pub fn new<T>(ctx: &Ctx, place: &Place<T>, removal: &Removal<T>) -> Report {
        let ids: Vec<Found> = removal
            .results
            .iter()
            .map(|(id, entry)| Found {
                id: id.clone(),
                found: entry.is_some(),
            })
            .collect();
        Report {
            command: place.verb,
            dry_run: ctx.dry_run(),
            changed: ids.iter().filter(|f| f.found).count(),
            ids,
            selected_from: removal.selected_from,
        }
    }
}

/// The line after the per-entry lines of a bulk command. Given IDs, said only when more than
/// one ID was given (after duplicates are dropped): `Retried 3 of 4 (1 not found in failed)`,
/// `Would clear 2 of 2` in a dry run. Given filters or `--all`, always said: `Retried 3 of 5
/// entries in failed`, `Retried 0 of 5 entries in failed: none matches`. Silent with
/// `--quiet`.
pub fn summary<T>(ctx: &Ctx, place: &Place<T>, removal: &Removal<T>) {
    let total = removal.results.len();
    let changed = removal
        .results
        .iter()
        .filter(|(_, entry)| entry.is_some())
        .count();
    let done = done(ctx.dry_run(), place.verb, place.past);
    let text = match removal.selected_from {
        None if total < 2 => return,
        None => ids_summary(&done, changed, total, place.name),
        Some(of) => selection_summary(&done, changed, of, place.name),
    };
    if changed > 0 {
        ctx.console.success(text);
    } else {
        ctx.console.info(text);
    }
}

/// `Retried`, or `Would retry` in a dry run.
fn done(dry_run: bool, verb: &str, past: &str) -> String {
    if dry_run {
        format!("Would {verb}")
    } else {
        let mut chars = past.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }
}

fn ids_summary(done: &str, changed: usize, total: usize, place: &str) -> String {
    let missing = total - changed;
    if missing == 0 {
        format!("{done} {changed} of {total}")
    } else {
        format!("{done} {changed} of {total} ({missing} not found in {place})")
    }
}

fn selection_summary(done: &str, changed: usize, of: usize, place: &str) -> String {
    let of = count(of, "entry", "entries");
    if changed == 0 {
        format!("{done} 0 of {of} in {place}: none matches")
    } else {
        format!("{done} {changed} of {of} in {place}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_what_changed_and_what_was_not_there() {
        assert_eq!(
            ids_summary(&done(false, "retry", "retried"), 3, 4, "failed"),
            "Retried 3 of 4 (1 not found in failed)"
        );
        assert_eq!(
            ids_summary(&done(false, "clear", "cleared"), 2, 2, "processed"),
            "Cleared 2 of 2"
        );
        assert_eq!(
            ids_summary(&done(true, "retry", "retried"), 0, 2, "failed"),
            "Would retry 0 of 2 (2 not found in failed)"
        );
    }

    #[test]
    fn a_selection_summary_counts_what_was_selected_of_how_many() {
        assert_eq!(
            selection_summary(&done(false, "retry", "retried"), 3, 5, "failed"),
            "Retried 3 of 5 entries in failed"
        );
        assert_eq!(
            selection_summary(&done(true, "clear", "cleared"), 0, 5, "processed"),
            "Would clear 0 of 5 entries in processed: none matches"
        );
        assert_eq!(
            selection_summary(&done(false, "clear", "cleared"), 1, 1, "processed"),
            "Cleared 1 of 1 entry in processed"
        );
    }
}
