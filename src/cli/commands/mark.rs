//! `mamfast state mark-processed` and `mark-failed`: what the pipeline records when a release
//! finishes or fails. The fields shared with `checkpoint` are parsed here too.

use std::path::PathBuf;

use clap::Args;

use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::escape::escape;
use mamfast::state::ops::{self, ReleaseFields};
use mamfast::state::stored_path::python_path;
use mamfast::state::Status;
use mamfast::store::Outcome;

/// What names a release, for processed and failed entries alike.
#[derive(Debug, Clone, Args)]
pub struct ReleaseNames {
    /// Title of the release
    #[arg(long)]
    pub title: Option<String>,
    /// Author of the release
    #[arg(long)]
    pub author: Option<String>,
    /// ASIN (a new entry's ASIN is its ID unless the ID is a path)
    #[arg(long)]
    pub asin: Option<String>,
}

/// Fields of a processed entry a write command may set; a field not given keeps its value.
#[derive(Debug, Clone, Args)]
pub struct ProcessedFields {
    #[command(flatten)]
    pub names: ReleaseNames,
    /// Staging directory (stored absolute)
    #[arg(long, value_name = "DIR")]
    pub staging_dir: Option<PathBuf>,
    /// Torrent file (stored absolute)
    #[arg(long, value_name = "FILE")]
    pub torrent_path: Option<PathBuf>,
    /// Torrent infohash
    #[arg(long, value_name = "HASH")]
    pub infohash: Option<String>,
    /// Status to record instead of the command's own
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Record the status even if the transition table forbids it
    #[arg(long)]
    pub force: bool,
}

impl ProcessedFields {
    pub fn to_fields(&self) -> Result<ReleaseFields> {
        Ok(ReleaseFields {
            asin: self.names.asin.clone(),
            title: self.names.title.clone(),
            author: self.names.author.clone(),
            staging_dir: absolute(self.staging_dir.as_ref(), "--staging-dir")?,
            torrent_path: absolute(self.torrent_path.as_ref(), "--torrent-path")?,
            source_dir: None,
            infohash: self.infohash.clone(),
            status: self.status.clone(),
        })
    }
}

/// Reads a status name given by a user; the error lists the known ones.
pub fn parse_status(text: &str) -> std::result::Result<Status, String> {
    Status::from_user(text).ok_or_else(|| {
        let known: Vec<&str> = Status::KNOWN.iter().map(Status::as_str).collect();
        format!("unknown status; expected one of {}", known.join(", "))
    })
}

/// Paths are stored absolute, resolved against the current directory, and spelled as the
/// Python tool spells them (`str(Path(p).absolute())`: no trailing slash). The file holds
/// text, so a path that is not UTF-8 cannot be recorded: storing it altered would name
/// another path, which `should-skip` and `prune` would then find missing.
pub fn absolute(path: Option<&PathBuf>, option: &str) -> Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let not_utf8 = |what: &str, shown: &std::path::Path| {
        Error::Usage(format!(
            "{option}: {what} {shown:?} is not valid UTF-8, and processed.json can only \
             record text; rename it to a UTF-8 name (or run from a directory whose path is \
             UTF-8)"
        ))
    };
    let text = path.to_str().ok_or_else(|| not_utf8("the path", path))?;
    if path.is_absolute() {
        return Ok(Some(python_path(text)));
    }
    let cwd = std::env::current_dir().map_err(|e| {
        Error::Usage(format!(
            "{option}: cannot make {path:?} absolute, as the current directory cannot be \
             read ({e}); give an absolute path"
        ))
    })?;
    let cwd = cwd
        .to_str()
        .ok_or_else(|| not_utf8("the current directory", &cwd))?;
    Ok(Some(python_path(&format!("{cwd}/{text}"))))
}

#[derive(Debug, Args)]
pub struct MarkProcessedArgs {
    /// The release's ID (its ASIN, or its source directory)
    #[arg(value_parser = super::parse_id)]
    pub id: String,
    #[command(flatten)]
    pub fields: ProcessedFields,
}

#[derive(Debug, Args)]
pub struct MarkFailedArgs {
    /// The release's ID (its ASIN, or its source directory)
    #[arg(value_parser = super::parse_id)]
    pub id: String,
    /// What went wrong
    #[arg(long, value_name = "MSG")]
    pub error: String,
    /// Kind of error, e.g. the exception's class name
    #[arg(long, value_name = "TYPE")]
    pub error_type: Option<String>,
    #[command(flatten)]
    pub names: ReleaseNames,
    /// Source directory (stored absolute)
    #[arg(long, value_name = "DIR")]
    pub source_dir: Option<PathBuf>,
}

pub fn run_processed(ctx: &Ctx, args: MarkProcessedArgs) -> Result<i32> {
    let fields = args.fields.to_fields()?;
    let now = ctx.now_text()?;
    let status = ctx.store().update(|state| {
        ops::mark_processed(state, &args.id, &fields, &now, args.fields.force)?;
        Ok(Outcome::Changed(
            state.processed[&args.id].effective_status(),
        ))
    })?;
    ctx.console.success(format!(
        "{}: {} ({status})",
        escape(&args.id),
        ctx.did("mark processed", "marked processed")
    ));
    Ok(0)
}

pub fn run_failed(ctx: &Ctx, args: MarkFailedArgs) -> Result<i32> {
    let fields = ReleaseFields {
        asin: args.names.asin.clone(),
        title: args.names.title.clone(),
        author: args.names.author.clone(),
        source_dir: absolute(args.source_dir.as_ref(), "--source-dir")?,
        ..ReleaseFields::default()
    };
    let now = ctx.now_text()?;
    let count = ctx.store().update(|state| {
        ops::mark_failed(
            state,
            &args.id,
            &args.error,
            args.error_type.as_deref(),
            &fields,
            &now,
        )?;
        Ok(Outcome::Changed(
            state.failed[&args.id].retry_count.unwrap_or(0),
        ))
    })?;
    ctx.console.success(format!(
        "{}: {} (failure {count})",
        escape(&args.id),
        ctx.did("mark failed", "marked failed")
    ));
    Ok(0)
}
