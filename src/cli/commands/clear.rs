//! `mamfast state clear <ID>`: remove a release from `processed`, checkpoints included, so
//! the pipeline runs it from the start.

use clap::Args;

use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::ops::clear_processed;
use mamfast::store::Outcome;

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// The release's ID (its ASIN, or its source directory)
    pub id: String,
}

pub fn run(ctx: &Ctx, args: ClearArgs) -> Result<i32> {
    let removed = ctx.store().update(|state| {
        Ok(match clear_processed(state, &args.id) {
            Some(entry) => Outcome::Changed(Some(entry)),
            None => Outcome::Unchanged(None),
        })
    })?;
    match removed {
        Some(entry) => ctx.console.success(format!(
            "{}: {} from processed (was {}), checkpoints included",
            escape(&args.id),
            ctx.did("remove", "removed"),
            entry.effective_status()
        )),
        None => ctx
            .console
            .info(format!("{}: not found in processed", escape(&args.id))),
    }
    Ok(0)
}
