//! `mamfast state checkpoint <ID> <STAGE>`: record that a pipeline stage finished.

use clap::Args;

use super::mark::ProcessedFields;
use super::report;
use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::{ops, Stage};

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
    /// --title, --author and --asin (given or unset) apply only if the entry is created now;
    /// an existing entry keeps its names
    #[arg(long)]
    pub names_if_new: bool,
    /// Report what changed as JSON on stdout (a refused change too)
    #[arg(long)]
    pub json: bool,
}

/// Reads a stage name; the error lists the known ones.
pub fn parse_stage(text: &str) -> std::result::Result<Stage, String> {
    Stage::from_name(text).ok_or_else(|| {
        let known: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        format!("unknown stage; expected one of {}", known.join(", "))
    })
}

pub fn run(ctx: &Ctx, args: CheckpointArgs) -> Result<i32> {
    report::json_on_error(ctx, args.json, || {
        let mut fields = args.fields.to_fields()?;
        fields.names_if_new = args.names_if_new;
        let now = ctx.now_text()?;
        let report = report::update_entry(
            ctx,
            "checkpoint",
            &args.id,
            report::processed_value,
            |state| {
                ops::checkpoint_stage(
                    state,
                    &args.id,
                    args.stage,
                    &fields,
                    &now,
                    args.fields.force,
                )
            },
        )?;
        if args.json {
            return report::print(ctx, &report);
        }
        ctx.console.success(format!(
            "{}: {} {} at {now} (status {})",
            escape(&args.id),
            ctx.did("record", "recorded"),
            args.stage.key(),
            report.status().unwrap_or_default()
        ));
        Ok(())
    })?;
    Ok(0)
}
