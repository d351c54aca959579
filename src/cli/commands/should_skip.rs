//! `mamfast state should-skip <ID> <STAGE>`: exit 0 if the stage is done and its artifact
//! still exists, 1 if it must run, 3 if it must run because the ID is not in processed. For shell pipelines: `mamfast state should-skip X staged || stage X`.

use clap::Args;

use super::checkpoint::parse_stage;
use super::path_exists;
use crate::cli::Ctx;
use mamfast::error::{exit, Result};
use mamfast::escape::escape;
use mamfast::state::ops::{skip_decision, SkipDecision};
use mamfast::state::Stage;

#[derive(Debug, Args)]
pub struct ShouldSkipArgs {
    /// The release's ID (its ASIN, or its source directory)
    pub id: String,
    /// The stage: staged, metadata, torrent or uploaded
    #[arg(value_parser = parse_stage)]
    pub stage: Stage,
}

pub fn run(ctx: &Ctx, args: ShouldSkipArgs) -> Result<i32> {
    let state = ctx.store().read_lazy()?;
    let decision = skip_decision(&state, &args.id, args.stage, path_exists);
    let stage = args.stage.name();
    let why = match &decision {
        SkipDecision::Done { at } => format!("skip: {stage} done at {at}"),
        SkipDecision::NoIdentifier => "run: no ID given".to_string(),
        SkipDecision::NoEntry => "run: not in processed".to_string(),
        SkipDecision::NoCheckpoint => format!("run: no {stage} checkpoint"),
        SkipDecision::ArtifactUnknown { field } => {
            format!("run: {stage} done but no {field} recorded")
        }
        SkipDecision::ArtifactMissing { field, path } => {
            format!("run: {stage} done but {field} {path} is gone")
        }
    };
    ctx.console.info(format!("{}: {why}", escape(&args.id)));
    Ok(match decision {
        _ if decision.skip() => exit::OK,
        // Must run too (`should-skip X staged || stage X` still works), but a script can
        // tell an ID the state has never seen.
        SkipDecision::NoEntry => exit::NOT_FOUND,
        _ => exit::FAILURE,
    })
}
