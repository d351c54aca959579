//! `mamfast state show <ID>`: one entry, processed and failed; `--infohash H` finds the
//! release by its torrent.

use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::cli::Ctx;
use mamfast::error::{exit, Result};
use mamfast::escape::escape;
use mamfast::state::select::infohash_matches;
use mamfast::state::{FailedEntry, ProcessedEntry, Stage};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The release's ID (its ASIN, or its source directory)
    #[arg(required_unless_present = "infohash", conflicts_with = "infohash")]
    pub id: Option<String>,
    /// Find the release by its torrent's infohash instead (case-insensitive)
    #[arg(long, value_name = "H")]
    pub infohash: Option<String>,
    /// Print {"id", "processed": entry|null, "failed": entry|null}; with --infohash, a list
    /// of them, one per release found
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ShowJson<'a> {
    failed: Option<&'a FailedEntry>,
    id: &'a str,
    processed: Option<&'a ProcessedEntry>,
}

pub fn run(ctx: &Ctx, args: ShowArgs) -> Result<i32> {
    let Some(hash) = &args.infohash else {
        let id = args.id.as_deref().unwrap_or_default();
        return show_id(ctx, id, args.json);
    };
    // Every entry is looked at: the whole state is read.
    let state = ctx.store().read()?;
    let mut ids: Vec<&str> = state
        .processed
        .iter()
        .filter(|(_, e)| infohash_matches(e, hash))
        .map(|(id, _)| id.as_str())
        .collect();
    ids.sort_unstable();
    if args.json {
        let docs: Vec<ShowJson> = ids
            .iter()
            .map(|&id| ShowJson {
                failed: state.failed.get(id),
                id,
                processed: state.processed.get(id),
            })
            .collect();
        ctx.console.json(&docs)?;
        return Ok(found_code(!ids.is_empty()));
    }
    if ids.is_empty() {
        ctx.console.info(format!(
            "infohash {}: no processed entry records it",
            escape(hash)
        ));
        return Ok(exit::NOT_FOUND);
    }
    let texts: Vec<String> = ids
        .iter()
        .map(|&id| entry_text(id, state.processed.get(id), state.failed.get(id)))
        .collect();
    ctx.console.data(texts.join("\n"))?;
    Ok(0)
}

fn show_id(ctx: &Ctx, id: &str, json: bool) -> Result<i32> {
    let state = ctx.store().read_lazy()?;
    let processed = state.processed.get(id);
    let failed = state.failed.get(id);
    if json {
        ctx.console.json(&ShowJson {
            failed,
            id,
            processed,
        })?;
        return Ok(found_code(processed.is_some() || failed.is_some()));
    }
    if processed.is_none() && failed.is_none() {
        ctx.console
            .info(format!("{}: not found in processed or failed", escape(id)));
        return Ok(exit::NOT_FOUND);
    }
    ctx.console.data(entry_text(id, processed, failed))?;
    Ok(0)
}

/// The exit code of a lookup: 0 when something was found, [`exit::NOT_FOUND`] (3) when not,
/// with or without `--json`.
fn found_code(found: bool) -> i32 {
    if found {
        exit::OK
    } else {
        exit::NOT_FOUND
    }
}

/// An ID's entries as `show` prints them: each kind under its heading.
fn entry_text(
    id: &str,
    processed: Option<&ProcessedEntry>,
    failed: Option<&FailedEntry>,
) -> String {
    let mut text = String::new();
    if let Some(entry) = processed {
        text.push_str(&format!("{} (processed)\n", escape(id)));
        text.push_str(&fields_text(
            &serde_json::to_value(entry).unwrap_or_default(),
        ));
    }
    if let Some(entry) = failed {
        if processed.is_some() {
            text.push('\n');
        }
        text.push_str(&format!("{} (failed)\n", escape(id)));
        text.push_str(&fields_text(
            &serde_json::to_value(entry).unwrap_or_default(),
        ));
    }
    text
}

/// An entry's keys as aligned `key  value` lines, nested objects indented below their key.
fn fields_text(value: &Value) -> String {
    let mut out = String::new();
    write_fields(value, 1, false, &mut out);
    out
}

/// Writes an object's keys, sorted, or for the checkpoints in the order the pipeline reaches
/// them (`staged_at`, `metadata_at`, `torrent_at`, `uploaded_at`; other keys after, sorted).
fn write_fields(value: &Value, depth: usize, pipeline_order: bool, out: &mut String) {
    let Value::Object(map) = value else {
        return;
    };
    let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let indent = "  ".repeat(depth);
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if pipeline_order {
        let rank = |key: &str| Stage::ALL.iter().position(|s| s.key() == key);
        // Stable: keys of no stage keep their sorted order, after the stages.
        entries.sort_by_key(|(key, _)| rank(key).unwrap_or(Stage::ALL.len()));
    }
    for (key, value) in entries {
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{indent}{}\n", escape(key)));
                write_fields(value, depth + 1, depth == 1 && key == "checkpoints", out);
            }
            _ => out.push_str(&format!(
                "{indent}{:width$}  {}\n",
                escape(key),
                scalar(value)
            )),
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        // Escaped here, newlines included: a value is one line of the listing.
        Value::String(s) => escape(s).into_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_are_indented_under_their_key() {
        let value = serde_json::json!({"b": {"x": "1"}, "a": null, "long_key": 3});
        let text = fields_text(&value);
        assert_eq!(text, "  a         -\n  b\n    x  1\n  long_key  3\n");
    }

    #[test]
    fn checkpoints_are_listed_in_pipeline_order() {
        let value = serde_json::json!({"checkpoints": {
            "metadata_at": "2", "staged_at": "1", "torrent_at": null, "uploaded_at": "4", "a_key": 5
        }, "b": {"staged_at": 1, "metadata_at": 2}});
        let text = fields_text(&value);
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "b",
                "metadata_at",
                "staged_at",
                "checkpoints",
                "staged_at",
                "metadata_at",
                "torrent_at",
                "uploaded_at",
                "a_key"
            ]
        );
    }
}
