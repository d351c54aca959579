//! `mamfast state retry <ID>...`: remove releases from `failed`, so the pipeline tries them
//! again with their retry counts starting over. Several IDs are one update: one lock, one
//! durable write, one backup generation.

use clap::Args;

use super::{bulk, count};
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::ops::clear_failed_many;

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The releases' IDs (an ASIN, or a source directory); an ID given twice counts once
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Report each ID and whether it was found as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: RetryArgs) -> Result<i32> {
    let results = super::report::json_on_error(ctx, args.json, || {
        bulk::remove_in_one_update(ctx, args.ids, clear_failed_many)
    })?;
    if args.json {
        super::report::print(ctx, &bulk::Report::new(ctx, "retry", &results))?;
        return Ok(0);
    }
    let mut changed = 0;
    for (id, entry) in &results {
        match entry {
            Some(entry) => {
                changed += 1;
                ctx.console.success(format!(
                    "{}: {} from failed (after {}); it will be retried on the next run",
                    escape(id),
                    ctx.did("remove", "removed"),
                    count(
                        entry.retry_count.unwrap_or(0) as usize,
                        "failure",
                        "failures"
                    )
                ))
            }
            None => ctx
                .console
                .info(format!("{}: not found in failed", escape(id))),
        }
    }
    bulk::summary(ctx, "retry", "retried", changed, results.len(), "failed");
    Ok(0)
}
