//! `mamfast state show <ID>`: one entry, processed and failed.

use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::cli::Ctx;
use mamfast::error::Result;
use mamfast::escape::escape;
use mamfast::state::{FailedEntry, ProcessedEntry};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The release's ID (its ASIN, or its source directory)
    pub id: String,
    /// Print {"id", "processed": entry|null, "failed": entry|null}
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
    let state = ctx.store().read_lazy()?;
    let processed = state.processed.get(&args.id);
    let failed = state.failed.get(&args.id);
    if args.json {
        ctx.console.json(&ShowJson {
            failed,
            id: &args.id,
            processed,
        })?;
        return Ok(0);
    }
    if processed.is_none() && failed.is_none() {
        ctx.console.info(format!(
            "{}: not found in processed or failed",
            escape(&args.id)
        ));
        return Ok(0);
    }
    let mut text = String::new();
    if let Some(entry) = processed {
        text.push_str(&format!("{} (processed)\n", escape(&args.id)));
        text.push_str(&fields_text(
            &serde_json::to_value(entry).unwrap_or_default(),
        ));
    }
    if let Some(entry) = failed {
        if processed.is_some() {
            text.push('\n');
        }
        text.push_str(&format!("{} (failed)\n", escape(&args.id)));
        text.push_str(&fields_text(
            &serde_json::to_value(entry).unwrap_or_default(),
        ));
    }
    ctx.console.data(text)?;
    Ok(0)
}

/// An entry's keys as aligned `key  value` lines, nested objects indented below their key.
fn fields_text(value: &Value) -> String {
    let mut out = String::new();
    write_fields(value, 1, &mut out);
    out
}

fn write_fields(value: &Value, depth: usize, out: &mut String) {
    let Value::Object(map) = value else {
        return;
    };
    let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    let indent = "  ".repeat(depth);
    for (key, value) in map {
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push_str(&format!("{indent}{}\n", escape(key)));
                write_fields(value, depth + 1, out);
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
}
