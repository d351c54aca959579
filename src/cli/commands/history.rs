//! How `state log` and `state diff` show a [`StateDiff`] to a person: one line an entry
//! added or removed, one line a field changed, values as JSON, outside text escaped.

use mamfast::escape::escape;
use mamfast::state::diff::{FieldChange, KindDiff, StateDiff};
use serde_json::Value;

/// The fields worth naming when an entry is added or removed.
const NOTABLE: [&str; 5] = ["status", "title", "error_type", "retry_count", "error"];

/// The lines of `diff` (for one ID only, when given), each indented by `indent`.
pub fn diff_lines(diff: &StateDiff, only: Option<&str>, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, kind) in [("processed", &diff.processed), ("failed", &diff.failed)] {
        kind_lines(name, kind, only, indent, &mut lines);
    }
    if only.is_none() {
        for (key, change) in &diff.top {
            lines.push(format!(
                "{indent}~ {}: {}",
                escape(key),
                change_text(change)
            ));
        }
    }
    lines
}

fn kind_lines(
    name: &str,
    kind: &KindDiff,
    only: Option<&str>,
    indent: &str,
    out: &mut Vec<String>,
) {
    let wanted = |id: &str| only.is_none_or(|o| o == id);
    for (id, entry) in kind.added.iter().filter(|(id, _)| wanted(id)) {
        out.push(format!("{indent}+ {name} {}{}", escape(id), notable(entry)));
    }
    for (id, entry) in kind.removed.iter().filter(|(id, _)| wanted(id)) {
        out.push(format!("{indent}- {name} {}{}", escape(id), notable(entry)));
    }
    for (id, fields) in kind.changed.iter().filter(|(id, _)| wanted(id)) {
        for (field, change) in fields {
            out.push(format!(
                "{indent}~ {name} {} {}: {}",
                escape(id),
                escape(field),
                change_text(change)
            ));
        }
    }
}

/// `: status "STAGED", title "Dune"`: the notable fields of an added or removed entry.
fn notable(entry: &Value) -> String {
    let Value::Object(map) = entry else {
        return String::new();
    };
    let parts: Vec<String> = NOTABLE
        .iter()
        .filter_map(|key| {
            map.get(*key)
                .map(|v| format!("{key} {}", value_text(Some(v))))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

/// `"STAGED" → "COMPLETE"`; a key that was not there is `(none)`.
fn change_text(change: &FieldChange) -> String {
    format!(
        "{} → {}",
        value_text(change.before.as_ref()),
        value_text(change.after.as_ref())
    )
}

/// A value as JSON (so `null`, numbers and strings are told apart), escaped for a terminal.
fn value_text(value: Option<&Value>) -> String {
    match value {
        None => "(none)".into(),
        Some(v) => escape(&serde_json::to_string(v).unwrap_or_default()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_name_kind_id_field_and_escape_outside_text() {
        let mut d = StateDiff::default();
        d.processed.added.insert(
            "B\u{1b}1".into(),
            json!({"status": "STAGED", "title": "T\u{202e}"}),
        );
        d.failed.changed.insert(
            "F".into(),
            [(
                "retry_count".to_string(),
                FieldChange {
                    before: Some(json!(1)),
                    after: Some(json!(2)),
                },
            )]
            .into(),
        );
        d.failed.removed.insert("G".into(), json!({}));
        let lines = diff_lines(&d, None, "  ");
        assert_eq!(
            lines,
            [
                "  + processed B\\u{1b}1: status \"STAGED\", title \"T\\u{202e}\"",
                "  - failed G",
                "  ~ failed F retry_count: 1 → 2",
            ]
        );
        assert_eq!(
            diff_lines(&d, Some("F"), ""),
            ["~ failed F retry_count: 1 → 2"]
        );
    }
}
