//! `mamfast state apply [FILE|-]`: many operations, one a line (JSON Lines), applied in order
//! under one lock and written once, all or nothing, as `git update-ref --stdin` records many
//! refs at once. Each line is the command it names, with its options spelled as fields
//! (`--staging-dir` is `"staging_dir"`), parsed and checked by the commands' own rules.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use super::checkpoint::parse_stage;
use super::mark::{absolute, parse_status};
use super::{count, parse_id};
use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::escape::escape;
use mamfast::state::ops::{self, ReleaseFields};
use mamfast::state::{Stage, State};
use mamfast::store::Outcome;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// JSON Lines file of operations, `-` (the default) for standard input
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Report each line as JSON
    #[arg(long)]
    pub json: bool,
}

/// One line as written: the operation in `op`, the command's options as fields.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum Line {
    MarkProcessed {
        id: String,
        title: Option<String>,
        author: Option<String>,
        asin: Option<String>,
        staging_dir: Option<PathBuf>,
        torrent_path: Option<PathBuf>,
        infohash: Option<String>,
        status: Option<String>,
        #[serde(default)]
        force: bool,
    },
    MarkFailed {
        id: String,
        error: String,
        error_type: Option<String>,
        title: Option<String>,
        author: Option<String>,
        asin: Option<String>,
        source_dir: Option<PathBuf>,
    },
    Checkpoint {
        id: String,
        stage: String,
        title: Option<String>,
        author: Option<String>,
        asin: Option<String>,
        staging_dir: Option<PathBuf>,
        torrent_path: Option<PathBuf>,
        infohash: Option<String>,
        status: Option<String>,
        #[serde(default)]
        force: bool,
    },
    Retry {
        id: String,
    },
    Clear {
        id: String,
    },
}

/// A line checked and ready to apply: what the command would have after clap.
#[derive(Debug)]
enum Op {
    MarkProcessed {
        fields: ReleaseFields,
        force: bool,
    },
    MarkFailed {
        error: String,
        error_type: Option<String>,
        fields: ReleaseFields,
    },
    Checkpoint {
        stage: Stage,
        fields: ReleaseFields,
        force: bool,
    },
    Retry,
    Clear,
}

#[derive(Debug)]
struct Parsed {
    line: usize,
    id: String,
    op: Op,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::MarkProcessed { .. } => "mark-processed",
            Op::MarkFailed { .. } => "mark-failed",
            Op::Checkpoint { .. } => "checkpoint",
            Op::Retry => "retry",
            Op::Clear => "clear",
        }
    }
}

/// What one line did (or would do), for the report.
#[derive(Debug, Serialize)]
struct Done {
    line: usize,
    op: &'static str,
    id: String,
    changed: bool,
    /// `processed`: the status recorded; `failed`: the failure count; retry and clear: what
    /// was removed, if anything.
    result: String,
}

/// Processed fields as `ProcessedFields::to_fields` makes them from flags.
#[allow(clippy::too_many_arguments)]
fn processed_fields(
    title: Option<String>,
    author: Option<String>,
    asin: Option<String>,
    staging_dir: Option<PathBuf>,
    torrent_path: Option<PathBuf>,
    infohash: Option<String>,
    status: Option<String>,
) -> std::result::Result<ReleaseFields, String> {
    let status = match status {
        Some(text) => Some(parse_status(&text).map_err(|e| format!("status {text:?}: {e}"))?),
        None => None,
    };
    let path =
        |p: Option<PathBuf>, name: &str| absolute(p.as_ref(), name).map_err(|e| e.to_string());
    Ok(ReleaseFields {
        asin,
        title,
        author,
        staging_dir: path(staging_dir, "staging_dir")?,
        torrent_path: path(torrent_path, "torrent_path")?,
        source_dir: None,
        infohash,
        status,
        ..ReleaseFields::default()
    })
}

/// Parses one non-blank line; the error says why, without the line number.
fn parse_line(text: &[u8]) -> std::result::Result<(String, Op), String> {
    let line: Line = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let checked = |id: String| parse_id(&id).map_err(|e| format!("id: {e}"));
    Ok(match line {
        Line::MarkProcessed {
            id,
            title,
            author,
            asin,
            staging_dir,
            torrent_path,
            infohash,
            status,
            force,
        } => (
            checked(id)?,
            Op::MarkProcessed {
                fields: processed_fields(
                    title,
                    author,
                    asin,
                    staging_dir,
                    torrent_path,
                    infohash,
                    status,
                )?,
                force,
            },
        ),
        Line::Checkpoint {
            id,
            stage,
            title,
            author,
            asin,
            staging_dir,
            torrent_path,
            infohash,
            status,
            force,
        } => (
            checked(id)?,
            Op::Checkpoint {
                stage: parse_stage(&stage).map_err(|e| format!("stage {stage:?}: {e}"))?,
                fields: processed_fields(
                    title,
                    author,
                    asin,
                    staging_dir,
                    torrent_path,
                    infohash,
                    status,
                )?,
                force,
            },
        ),
        Line::MarkFailed {
            id,
            error,
            error_type,
            title,
            author,
            asin,
            source_dir,
        } => (
            checked(id)?,
            Op::MarkFailed {
                error,
                error_type,
                fields: ReleaseFields {
                    asin,
                    title,
                    author,
                    source_dir: absolute(source_dir.as_ref(), "source_dir")
                        .map_err(|e| e.to_string())?,
                    ..ReleaseFields::default()
                },
            },
        ),
        // As `state retry ID` and `state clear ID` take any ID.
        Line::Retry { id } => (id, Op::Retry),
        Line::Clear { id } => (id, Op::Clear),
    })
}

/// Parses every line of `input` (blank lines skipped); a malformed line is a usage error
/// naming its number.
fn parse_all(input: &[u8], source: &str) -> Result<Vec<Parsed>> {
    let mut parsed = Vec::new();
    for (index, text) in input.split(|&b| b == b'\n').enumerate() {
        if text.trim_ascii().is_empty() {
            continue;
        }
        let line = index + 1;
        let (id, op) = parse_line(text).map_err(|why| {
            // serde's message may quote the line's own text (an unknown op or field).
            let why = escape(&why);
            Error::Usage(format!(
                "{source}, line {line}: {why}\nNothing was applied. A line is one JSON object: \
                 {{\"op\": \"checkpoint\", \"id\": \"…\", \"stage\": \"staged\", …}}, with op one \
                 of mark-processed, mark-failed, checkpoint, retry, clear and the command's \
                 options as fields (--staging-dir is \"staging_dir\")."
            ))
        })?;
        parsed.push(Parsed { line, id, op });
    }
    Ok(parsed)
}

/// Applies one operation to `state`, as its command does.
fn apply_one(state: &mut State, item: &Parsed, now: &str) -> Result<Done> {
    let id = &item.id;
    let (changed, result) = match &item.op {
        Op::MarkProcessed { fields, force } => {
            ops::mark_processed(state, id, fields, now, *force)?;
            (
                true,
                format!("status {}", state.processed[id].effective_status()),
            )
        }
        Op::Checkpoint {
            stage,
            fields,
            force,
        } => {
            ops::checkpoint_stage(state, id, *stage, fields, now, *force)?;
            (
                true,
                format!("status {}", state.processed[id].effective_status()),
            )
        }
        Op::MarkFailed {
            error,
            error_type,
            fields,
        } => {
            ops::mark_failed(state, id, error, error_type.as_deref(), fields, now)?;
            let n = state.failed[id].retry_count.unwrap_or(0);
            (true, format!("failure {n}"))
        }
        Op::Retry => match ops::clear_failed(state, id) {
            Some(_) => (true, "removed from failed".to_string()),
            None => (false, "not found in failed".to_string()),
        },
        Op::Clear => match ops::clear_processed(state, id) {
            Some(_) => (true, "removed from processed".to_string()),
            None => (false, "not found in processed".to_string()),
        },
    };
    Ok(Done {
        line: item.line,
        op: item.op.name(),
        id: id.clone(),
        changed,
        result,
    })
}

fn read_input(file: Option<&Path>) -> Result<(Vec<u8>, String)> {
    let mut input = Vec::new();
    match file {
        None => read_stdin(&mut input)?,
        Some(path) if path == Path::new("-") => read_stdin(&mut input)?,
        Some(path) => {
            let shown = escape(&path.display().to_string()).into_owned();
            // The operations file is input given on the command line, not the state: its
            // errors must not send the operator to state.file.
            input = std::fs::read(path).map_err(|e| {
                Error::Usage(format!(
                    "cannot read the operations file {shown}: {e}\nName a file of JSON Lines, \
                     or `-` (or nothing) for standard input. Nothing was written."
                ))
            })?;
            return Ok((input, shown));
        }
    }
    Ok((input, "standard input".to_string()))
}

fn read_stdin(input: &mut Vec<u8>) -> Result<()> {
    std::io::stdin()
        .lock()
        .read_to_end(input)
        .map(drop)
        .map_err(|e| Error::io("reading", "standard input", e))
}

#[derive(Serialize)]
struct Report<'a> {
    dry_run: bool,
    changed: bool,
    lines: &'a [Done],
}

pub fn run(ctx: &Ctx, args: ApplyArgs) -> Result<i32> {
    let (input, source) = read_input(args.file.as_deref())?;
    let parsed = parse_all(&input, &source)?;
    if parsed.is_empty() {
        if args.json {
            ctx.console.json(&Report {
                dry_run: ctx.dry_run(),
                changed: false,
                lines: &[],
            })?;
        } else {
            ctx.console
                .info(format!("{source}: nothing to apply (no operation)"));
        }
        return Ok(0);
    }
    let now = ctx.now_text()?;
    let done = ctx.store().update(|state| {
        let mut done = Vec::with_capacity(parsed.len());
        for item in &parsed {
            let one = apply_one(state, item, &now).map_err(|e| {
                Error::Data(format!(
                    "{source}, line {} ({} {}): {e}\nNothing was written: the operations are \
                     applied all or none. Fix that line (a line takes \"force\": true where \
                     its command takes --force) and apply the whole input again.",
                    item.line,
                    item.op.name(),
                    escape(&item.id)
                ))
            })?;
            done.push(one);
        }
        Ok(if done.iter().any(|d| d.changed) {
            Outcome::Changed(done)
        } else {
            Outcome::Unchanged(done)
        })
    })?;
    let changed = done.iter().any(|d| d.changed);
    if args.json {
        ctx.console.json(&Report {
            dry_run: ctx.dry_run(),
            changed,
            lines: &done,
        })?;
        return Ok(0);
    }
    // A dry run reports what each line would do; a real run says it with --verbose.
    for d in &done {
        let what = if d.changed {
            ctx.did("apply", "applied")
        } else {
            "no change".to_string()
        };
        let text = format!(
            "line {}: {} {}: {what} ({})",
            d.line,
            d.op,
            escape(&d.id),
            d.result
        );
        if ctx.dry_run() {
            ctx.console.info(text);
        } else {
            ctx.console.detail(text);
        }
    }
    let changes = done.iter().filter(|d| d.changed).count();
    ctx.console.success(format!(
        "{source}: {} {} in one write ({} {} the state)",
        ctx.did("apply", "applied"),
        count(done.len(), "operation", "operations"),
        changes,
        ctx.did("change", "changed")
    ));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_its_op_and_takes_the_flags_as_fields() {
        let (id, op) = parse_line(
            br#"{"op": "checkpoint", "id": "B01", "stage": "staged", "staging_dir": "/srv/x/", "force": true}"#,
        )
        .unwrap();
        assert_eq!(id, "B01");
        match op {
            Op::Checkpoint {
                stage,
                fields,
                force,
            } => {
                assert_eq!(stage, Stage::Staged);
                assert_eq!(fields.staging_dir.as_deref(), Some("/srv/x"));
                assert!(force);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_fields_ops_and_bad_values_are_refused() {
        for (text, why) in [
            (
                r#"{"op": "retry", "id": "B01", "force": true}"#,
                "unknown field",
            ),
            (
                r#"{"op": "mark-failed", "id": "B01", "eror": "x"}"#,
                "unknown field",
            ),
            (r#"{"op": "frobnicate", "id": "B01"}"#, "unknown variant"),
            (r#"{"id": "B01"}"#, "missing field `op`"),
            (
                r#"{"op": "checkpoint", "id": "B01", "stage": "nope"}"#,
                "unknown stage",
            ),
            (
                r#"{"op": "mark-processed", "id": "B01", "status": "nope"}"#,
                "unknown status",
            ),
            (r#"{"op": "mark-processed", "id": " "}"#, "empty ID"),
            (
                r#"{"op": "mark-failed", "id": "B01"}"#,
                "missing field `error`",
            ),
            ("not json", "expected"),
        ] {
            let err = parse_line(text.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn blank_lines_are_skipped_and_numbers_count_them() {
        let input =
            b"\n{\"op\": \"retry\", \"id\": \"A\"}\n  \r\n{\"op\": \"clear\", \"id\": \"B\"}\n";
        let parsed = parse_all(input, "x").unwrap();
        let lines: Vec<usize> = parsed.iter().map(|p| p.line).collect();
        assert_eq!(lines, [2, 4]);
        let err = parse_all(b"\n\n{\"op\": 1}", "x").unwrap_err();
        assert!(err.to_string().starts_with("x, line 3: "), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
