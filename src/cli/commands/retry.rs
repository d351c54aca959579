//! `mamfast state retry`: remove releases from `failed`, so the pipeline tries them again with
//! their retry counts starting over. The releases are given by ID, or selected by the filters
//! of failed entries (`--error-type`, `--grep`, `--older-than`, `--newer-than`), or all of
//! them (`--all`); whichever, the command is one update: one lock, one durable write, one
//! backup generation.

use clap::Args;

use super::bulk::{self, Place, TargetArgs};
use super::count;
use super::filters::{failed_filter, CommonFilters, FailedFilters};
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::ops::clear_failed_many;
use mamfast::state::select::matching_failed;
use mamfast::state::FailedEntry;

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Report each ID and whether it was found as JSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub failed: FailedFilters,
    #[command(flatten)]
    pub common: CommonFilters,
}

/// What `retry` acts on: failed entries.
const FAILED: Place<FailedEntry> = Place {
    name: "failed",
    verb: "retry",
    past: "retried",
    filters: "--error-type, --grep, --older-than, --newer-than",
    len: |state| state.failed.len(),
    select: matching_failed,
    remove: clear_failed_many,
};

pub fn run(ctx: &Ctx, args: RetryArgs) -> Result<i32> {
    let removal = super::report::json_on_error(ctx, args.json, || {
        let filter = failed_filter(&args.failed, &args.common, || ctx.now())?;
        bulk::remove(ctx, args.target, filter, &FAILED)
    })?;
    if args.json {
        super::report::print(ctx, &bulk::Report::new(ctx, &FAILED, &removal))?;
        return Ok(0);
    }
    for (id, entry) in &removal.results {
        match entry {
            Some(entry) => ctx.console.success(format!(
                "{}: {} from failed (after {}); it will be retried on the next run",
                escape(id),
                ctx.did("remove", "removed"),
                count(
                    entry.retry_count.unwrap_or(0) as usize,
                    "failure",
                    "failures"
                )
            )),
            None => ctx
                .console
                .info(format!("{}: not found in failed", escape(id))),
        }
    }
    bulk::summary(ctx, &FAILED, &removal);
    Ok(0)
}
