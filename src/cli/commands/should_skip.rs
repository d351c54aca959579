//! `mamfast state should-skip <ID> <STAGE>`: exit 0 if the stage is done and its artifact
//! still exists (or no path of it is known: nothing to check, as the Python tool has it), 1 if
//! it must run, 3 if it must run because the ID is not in processed. `--staging-dir` and
//! `--torrent-path` name the artifact to check instead of the recorded one. For shell pipelines: `mamfast state should-skip X staged || stage X`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

use super::checkpoint::parse_stage;
use super::mark::absolute;
use super::path_exists;
use crate::cli::Ctx;
use mamfast::error::{exit, Result};
use mamfast::escape::escape;
use mamfast::state::ops::{skip_decision_with, GivenPaths, SkipDecision};
use mamfast::state::Stage;

#[derive(Debug, Args)]
pub struct ShouldSkipArgs {
    /// The release's ID (its ASIN, or its source directory)
    pub id: String,
    /// The stage: staged, metadata, torrent or uploaded
    #[arg(value_parser = parse_stage)]
    pub stage: Stage,
    /// Check this staging directory instead of the recorded one (empty: no path to check)
    #[arg(long, value_name = "DIR", value_parser = clap::value_parser!(OsString))]
    pub staging_dir: Option<OsString>,
    /// Check this torrent file instead of the recorded one (empty: no path to check)
    #[arg(long, value_name = "FILE", value_parser = clap::value_parser!(OsString))]
    pub torrent_path: Option<OsString>,
}

/// A path given to check, made absolute as a stored one is; empty stays empty (no path).
fn given(path: Option<&OsString>, option: &str) -> Result<Option<String>> {
    match path {
        Some(p) if p.is_empty() => Ok(Some(String::new())),
        other => absolute(other.map(PathBuf::from).as_ref(), option),
    }
}

pub fn run(ctx: &Ctx, args: ShouldSkipArgs) -> Result<i32> {
    let staging_dir = given(args.staging_dir.as_ref(), "--staging-dir")?;
    let torrent_path = given(args.torrent_path.as_ref(), "--torrent-path")?;
    let paths = GivenPaths {
        staging_dir: staging_dir.as_deref(),
        torrent_path: torrent_path.as_deref(),
    };
    let state = ctx.store().read_lazy()?;
    let decision = skip_decision_with(&state, &args.id, args.stage, paths, path_exists);
    let stage = args.stage.name();
    let why = match &decision {
        SkipDecision::Done { at } => format!("skip: {stage} done at {at}"),
        SkipDecision::NoIdentifier => "run: no ID given".to_string(),
        SkipDecision::NoEntry => "run: not in processed".to_string(),
        SkipDecision::NoCheckpoint => format!("run: no {stage} checkpoint"),
        SkipDecision::DoneNoPath { at, field } => {
            format!("skip: {stage} done at {at} (no {field} to check)")
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
