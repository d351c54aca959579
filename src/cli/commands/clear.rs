//! `mamfast state clear`: remove releases from `processed`, checkpoints included, so the
//! pipeline runs them from the start. The releases are given by ID, or selected by the filters
//! of processed entries (`--status`, `--stage`, `--infohash`, `--grep`, `--older-than`,
//! `--newer-than`), or all of them (`--all`); whichever, the command is one update: one lock,
//! one durable write, one backup generation.

use clap::Args;

use super::bulk::{self, Place, TargetArgs};
use super::filters::{processed_filter, CommonFilters, ProcessedFilters};
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::ops::clear_processed_many;
use mamfast::state::select::matching_processed;
use mamfast::state::ProcessedEntry;

#[derive(Debug, Args)]
pub struct ClearArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Report each ID and whether it was found as JSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub processed: ProcessedFilters,
    #[command(flatten)]
    pub common: CommonFilters,
}

/// What `clear` acts on: processed entries.
const PROCESSED: Place<ProcessedEntry> = Place {
    name: "processed",
    verb: "clear",
    past: "cleared",
    filters: "--status, --stage, --infohash, --grep, --older-than, --newer-than",
    len: |state| state.processed.len(),
    select: matching_processed,
    remove: clear_processed_many,
};

pub fn run(ctx: &Ctx, args: ClearArgs) -> Result<i32> {
    let removal = super::report::json_on_error(ctx, args.json, || {
        let filter = processed_filter(&args.processed, &args.common, || ctx.now())?;
        bulk::remove(ctx, args.target, filter, &PROCESSED)
    })?;
    if args.json {
        super::report::print(ctx, &bulk::Report::new(ctx, &PROCESSED, &removal))?;
        return Ok(0);
    }
    for (id, entry) in &removal.results {
        match entry {
            Some(entry) => ctx.console.success(format!(
                "{}: {} from processed (was {}), checkpoints included",
                escape(id),
                ctx.did("remove", "removed"),
                entry.effective_status()
            )),
            None => ctx
                .console
                .info(format!("{}: not found in processed", escape(id))),
        }
    }
    bulk::summary(ctx, &PROCESSED, &removal);
    Ok(0)
}
