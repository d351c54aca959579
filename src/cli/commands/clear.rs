//! `mamfast state clear <ID>...`: remove releases from `processed`, checkpoints included, so
//! the pipeline runs them from the start. Several IDs are one update: one lock, one durable
//! write, one backup generation.

use clap::Args;

use super::bulk;
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::ops::clear_processed_many;

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// The releases' IDs (an ASIN, or a source directory); an ID given twice counts once
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Report each ID and whether it was found as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: ClearArgs) -> Result<i32> {
    let results = super::report::json_on_error(ctx, args.json, || {
        bulk::remove_in_one_update(ctx, args.ids, clear_processed_many)
    })?;
    if args.json {
        super::report::print(ctx, &bulk::Report::new(ctx, "clear", &results))?;
        return Ok(0);
    }
    let mut changed = 0;
    for (id, entry) in &results {
        match entry {
            Some(entry) => {
                changed += 1;
                ctx.console.success(format!(
                    "{}: {} from processed (was {}), checkpoints included",
                    escape(id),
                    ctx.did("remove", "removed"),
                    entry.effective_status()
                ))
            }
            None => ctx
                .console
                .info(format!("{}: not found in processed", escape(id))),
        }
    }
    bulk::summary(ctx, "clear", "cleared", changed, results.len(), "processed");
    Ok(0)
}
