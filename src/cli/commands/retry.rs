//! `mamfast state retry <ID>`: remove a release from `failed`, so the pipeline tries it again
//! with its retry count starting over.

use clap::Args;

use super::count;
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::ops::clear_failed;
use mamfast::store::Outcome;

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The release's ID (its ASIN, or its source directory)
    pub id: String,
}

pub fn run(ctx: &Ctx, args: RetryArgs) -> Result<i32> {
    let removed = ctx.store().update(|state| {
        Ok(match clear_failed(state, &args.id) {
            Some(entry) => Outcome::Changed(Some(entry)),
            None => Outcome::Unchanged(None),
        })
    })?;
    match removed {
        Some(entry) => ctx.console.success(format!(
            "{}: {} from failed (after {}); it will be retried on the next run",
            escape(&args.id),
            ctx.did("remove", "removed"),
            count(
                entry.retry_count.unwrap_or(0) as usize,
                "failure",
                "failures"
            )
        )),
        None => ctx
            .console
            .info(format!("{}: not found in failed", escape(&args.id))),
    }
    Ok(0)
}
