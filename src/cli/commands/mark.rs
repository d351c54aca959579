//! `mamfast state mark-processed` and `mark-failed`: what the pipeline records when a release
//! finishes or fails. The fields shared with `checkpoint` are parsed here too.

use std::path::PathBuf;

use clap::Args;

use super::report;
use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::escape::escape;
use mamfast::state::ops::{self, ReleaseFields, Unset};
use mamfast::state::stored_path::python_path;
use mamfast::state::Status;

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
    /// Set FIELD to null (asin, title, author, staging_dir, torrent_path, infohash); repeatable
    #[arg(long, value_name = "FIELD", value_parser = parse_processed_unset)]
    pub unset: Vec<Unset>,
}

impl ProcessedFields {
    pub fn to_fields(&self) -> Result<ReleaseFields> {
        let given = [
            (Unset::Asin, self.names.asin.is_some()),
            (Unset::Title, self.names.title.is_some()),
            (Unset::Author, self.names.author.is_some()),
            (Unset::StagingDir, self.staging_dir.is_some()),
            (Unset::TorrentPath, self.torrent_path.is_some()),
            (Unset::Infohash, self.infohash.is_some()),
        ];
        refuse_given_and_unset(&self.unset, &given)?;
        Ok(ReleaseFields {
            asin: self.names.asin.clone(),
            title: self.names.title.clone(),
            author: self.names.author.clone(),
            staging_dir: absolute(self.staging_dir.as_ref(), "--staging-dir")?,
            torrent_path: absolute(self.torrent_path.as_ref(), "--torrent-path")?,
            source_dir: None,
            infohash: self.infohash.clone(),
            status: self.status.clone(),
            unset: self.unset.clone(),
            ..ReleaseFields::default()
        })
    }
}

/// `--unset` of a field also given a value says two things at once: refused (exit 2).
fn refuse_given_and_unset(unset: &[Unset], given: &[(Unset, bool)]) -> Result<()> {
    match given
        .iter()
        .find(|(key, is_given)| *is_given && unset.contains(key))
    {
        Some((key, _)) => Err(Error::Usage(format!(
            "--unset {0} and --{1} both given: a field is either set or unset; drop one of them",
            key.name(),
            key.name().replace('_', "-")
        ))),
        None => Ok(()),
    }
}

fn parse_unset(text: &str, allowed: &[Unset]) -> std::result::Result<Unset, String> {
    Unset::from_name(text)
        .filter(|key| allowed.contains(key))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
            format!(
                "not a field this command can unset; expected one of {}",
                names.join(", ")
            )
        })
}

fn parse_processed_unset(text: &str) -> std::result::Result<Unset, String> {
    use Unset::*;
    parse_unset(
        text,
        &[Asin, Title, Author, StagingDir, TorrentPath, Infohash],
    )
}

fn parse_failed_unset(text: &str) -> std::result::Result<Unset, String> {
    use Unset::*;
    parse_unset(text, &[Asin, Title, Author, SourceDir])
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
    /// Report what changed as JSON on stdout (a refused change too)
    #[arg(long)]
    pub json: bool,
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
    /// Set FIELD to null (asin, title, author, source_dir); repeatable
    #[arg(long, value_name = "FIELD", value_parser = parse_failed_unset)]
    pub unset: Vec<Unset>,
    /// Report what changed as JSON on stdout (a refused change too)
    #[arg(long)]
    pub json: bool,
}

pub fn run_processed(ctx: &Ctx, args: MarkProcessedArgs) -> Result<i32> {
    report::json_on_error(ctx, args.json, || {
        let fields = args.fields.to_fields()?;
        let now = ctx.now_text()?;
        let report = report::update_entry(
            ctx,
            "mark-processed",
            &args.id,
            report::processed_value,
            |state| ops::mark_processed(state, &args.id, &fields, &now, args.fields.force),
        )?;
        if args.json {
            return report::print(ctx, &report);
        }
        ctx.console.success(format!(
            "{}: {} ({})",
            escape(&args.id),
            ctx.did("mark processed", "marked processed"),
            report.status().unwrap_or_default()
        ));
        Ok(())
    })?;
    Ok(0)
}

pub fn run_failed(ctx: &Ctx, args: MarkFailedArgs) -> Result<i32> {
    report::json_on_error(ctx, args.json, || {
        let given = [
            (Unset::Asin, args.names.asin.is_some()),
            (Unset::Title, args.names.title.is_some()),
            (Unset::Author, args.names.author.is_some()),
            (Unset::SourceDir, args.source_dir.is_some()),
        ];
        refuse_given_and_unset(&args.unset, &given)?;
        let fields = ReleaseFields {
            asin: args.names.asin.clone(),
            title: args.names.title.clone(),
            author: args.names.author.clone(),
            source_dir: absolute(args.source_dir.as_ref(), "--source-dir")?,
            unset: args.unset.clone(),
            ..ReleaseFields::default()
        };
        let now = ctx.now_text()?;
        let report = report::update_entry(
            ctx,
            "mark-failed",
            &args.id,
            report::failed_value,
            |state| {
                ops::mark_failed(
                    state,
                    &args.id,
                    &args.error,
                    args.error_type.as_deref(),
                    &fields,
                    &now,
                )
            },
        )?;
        if args.json {
            return report::print(ctx, &report);
        }
        ctx.console.success(format!(
            "{}: {} (failure {})",
            escape(&args.id),
            ctx.did("mark failed", "marked failed"),
            report.retry_count().unwrap_or(0)
        ));
        Ok(())
    })?;
    Ok(0)
}
