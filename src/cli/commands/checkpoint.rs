//! `mamfast state checkpoint <ID> <STAGE>`: record that a pipeline stage finished.

use clap::Args;

use super::mark::ProcessedFields;
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::{ops, Stage};
use mamfast::store::Outcome;

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// The release's ID (its ASIN, or its source directory)
    #[arg(value_parser = super::parse_id)]
    pub id: String,
    /// The stage that finished: staged, metadata, torrent or uploaded
    #[arg(value_parser = parse_stage)]
    pub stage: Stage,
    #[command(flatten)]
    pub fields: ProcessedFields,
}

/// Reads a stage name; the error lists the known ones.
pub fn parse_stage(text: &str) -> std::result::Result<Stage, String> {
    Stage::from_name(text).ok_or_else(|| {
        let known: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        format!("unknown stage; expected one of {}", known.join(", "))
    })
}

pub fn run(ctx: &Ctx, args: CheckpointArgs) -> Result<i32> {
    let fields = args.fields.to_fields()?;
    let now = ctx.now_text()?;
    let status = ctx.store().update(|state| {
        ops::checkpoint_stage(
            state,
            &args.id,
            args.stage,
            &fields,
            &now,
            args.fields.force,
        )?;
        Ok(Outcome::Changed(
            state.processed[&args.id].effective_status(),
        ))
    })?;
    ctx.console.success(format!(
        "{}: {} {} at {now} (status {status})",
        escape(&args.id),
        ctx.did("record", "recorded"),
        args.stage.key()
    ));
    Ok(0)
}
