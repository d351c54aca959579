//! What changed between two states, entry by entry and field by field: the journal records
//! it for every write, and `state diff` shows it. A pure function of the two states.
//!
//! Entries still held as the text they were read as are compared as text first (an entry no
//! write touched is the same text, often the very same bytes), so the diff of a change to a
//! few entries of a large state parses only those.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::entries::{Entries, Stored};
use super::State;

/// One value before and after; `None` where the key was not there (a `null` value is
/// `Some(Value::Null)`, and stays so through JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub after: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub before: Option<Value>,
}

/// A key that is there is `Some`, even when its value is `null` (serde would read `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The changes to one kind of entries (`processed` or `failed`), by ID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindDiff {
    /// New entries, as they are after.
    #[serde(default)]
    pub added: BTreeMap<String, Value>,
    /// Entries in both whose fields differ: field (nested ones as `checkpoints.staged_at`) →
    /// before and after.
    #[serde(default)]
    pub changed: BTreeMap<String, BTreeMap<String, FieldChange>>,
    /// Entries gone, as they were before.
    #[serde(default)]
    pub removed: BTreeMap<String, Value>,
}

impl KindDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Whether `id` is added, removed or changed here.
    pub fn mentions(&self, id: &str) -> bool {
        self.added.contains_key(id)
            || self.removed.contains_key(id)
            || self.changed.contains_key(id)
    }
}

/// Everything that differs between two states.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateDiff {
    #[serde(default)]
    pub failed: KindDiff,
    #[serde(default)]
    pub processed: KindDiff,
    /// Top-level keys other than `processed` and `failed` (`version`, unknown keys).
    #[serde(default)]
    pub top: BTreeMap<String, FieldChange>,
}

impl StateDiff {
    pub fn is_empty(&self) -> bool {
        self.processed.is_empty() && self.failed.is_empty() && self.top.is_empty()
    }

    /// Whether the entry `id` (of either kind) changed.
    pub fn mentions(&self, id: &str) -> bool {
        self.processed.mentions(id) || self.failed.mentions(id)
    }

    /// `processed +1 -0 ~2, failed +0 -1 ~0`: the counts, first thing an operator reads.
    pub fn counts(&self) -> String {
        let kind = |name: &str, d: &KindDiff| {
            format!(
                "{name} +{} -{} ~{}",
                d.added.len(),
                d.removed.len(),
                d.changed.len()
            )
        };
        let mut text = format!(
            "{}, {}",
            kind("processed", &self.processed),
            kind("failed", &self.failed)
        );
        if !self.top.is_empty() {
            text.push_str(&format!(", {} top-level key(s) changed", self.top.len()));
        }
        text
    }
}

/// What changed from `before` to `after`.
pub fn diff(before: &State, after: &State) -> StateDiff {
    let mut top = BTreeMap::new();
    if before.version != after.version {
        top.insert(
            "version".to_string(),
            FieldChange {
                before: Some(Value::from(before.version)),
                after: Some(Value::from(after.version)),
            },
        );
    }
    diff_maps("", &before.extra, &after.extra, &mut top);
    StateDiff {
        processed: diff_entries(&before.processed, &after.processed),
        failed: diff_entries(&before.failed, &after.failed),
        top,
    }
}

fn diff_entries<T: serde::de::DeserializeOwned + Serialize + PartialEq>(
    before: &Entries<T>,
    after: &Entries<T>,
) -> KindDiff {
    let mut out = KindDiff::default();
    let mut old = before.stored().peekable();
    let mut new = after.stored().peekable();
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (id, entry) = old.next().expect("peeked");
                out.removed.insert(id.clone(), to_value(&entry));
            }
            std::cmp::Ordering::Greater => {
                let (id, entry) = new.next().expect("peeked");
                out.added.insert(id.clone(), to_value(&entry));
            }
            std::cmp::Ordering::Equal => {
                let (id, a) = old.next().expect("peeked");
                let (_, b) = new.next().expect("peeked");
                // The cheap comparisons first: most entries of a write are untouched.
                match (&a, &b) {
                    (Stored::Text(x), Stored::Text(y)) if x == y => continue,
                    (Stored::Value(x), Stored::Value(y)) if x == y => continue,
                    _ => {}
                }
                let mut fields = BTreeMap::new();
                diff_values("", &to_value(&a), &to_value(&b), &mut fields);
                if !fields.is_empty() {
                    out.changed.insert(id.clone(), fields);
                }
            }
        }
    }
    out
}

/// An entry as JSON. Text that serde cannot read (an entry kept as it is for a `NaN` or a
/// lone surrogate) is shown as that text, as a string.
fn to_value<T: Serialize>(entry: &Stored<'_, T>) -> Value {
    match entry {
        Stored::Text(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        }
        Stored::Value(value) => serde_json::to_value(value).unwrap_or(Value::Null),
    }
}

/// Field-level differences: objects on both sides are compared key by key (nested keys as
/// `outer.inner`), anything else as a whole.
fn diff_values(prefix: &str, a: &Value, b: &Value, out: &mut BTreeMap<String, FieldChange>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => diff_maps(prefix, x, y, out),
        _ if a == b => {}
        _ => {
            out.insert(
                if prefix.is_empty() {
                    "(entry)".into()
                } else {
                    prefix.into()
                },
                FieldChange {
                    before: Some(a.clone()),
                    after: Some(b.clone()),
                },
            );
        }
    }
}

fn diff_maps(
    prefix: &str,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    out: &mut BTreeMap<String, FieldChange>,
) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    for (k, va) in a {
        match b.get(k) {
            Some(vb) => diff_values(&key(k), va, vb, out),
            None => {
                out.insert(
                    key(k),
                    FieldChange {
                        before: Some(va.clone()),
                        after: None,
                    },
                );
            }
        }
    }
    for (k, vb) in b {
        if !a.contains_key(k) {
            out.insert(
                key(k),
                FieldChange {
                    before: None,
                    after: Some(vb.clone()),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{FailedEntry, ProcessedEntry};
    use serde_json::json;

    fn state(text: &str) -> State {
        crate::store::format::parse_state(text.as_bytes()).unwrap()
    }

    #[test]
    fn equal_states_have_no_diff() {
        let a = state(r#"{"version": 2, "processed": {"A": {"title": "x"}}, "failed": {}}"#);
        let d = diff(&a, &a.clone());
        assert!(d.is_empty());
        assert_eq!(d.counts(), "processed +0 -0 ~0, failed +0 -0 ~0");
    }

    #[test]
    fn added_removed_and_changed_entries_are_told_apart_field_by_field() {
        let a = state(
            r#"{"version": 2, "processed": {"A": {"title": "x", "status": "STAGED",
            "checkpoints": {"staged_at": "t1"}}, "B": {"title": "b"}},
            "failed": {"F": {"retry_count": 1, "error": "e"}}}"#,
        );
        let b = state(
            r#"{"version": 2, "processed": {"A": {"title": "x", "status": "COMPLETE",
            "checkpoints": {"staged_at": "t1", "uploaded_at": "t2"}}, "C": {"title": "c"}},
            "failed": {"F": {"retry_count": 2}}, "note": 1}"#,
        );
        let d = diff(&a, &b);
        assert_eq!(d.processed.added["C"], json!({"title": "c"}));
        assert_eq!(d.processed.removed["B"], json!({"title": "b"}));
        let a_changes = &d.processed.changed["A"];
        assert_eq!(
            a_changes["status"],
            FieldChange {
                before: Some(json!("STAGED")),
                after: Some(json!("COMPLETE"))
            }
        );
        assert_eq!(
            a_changes["checkpoints.uploaded_at"],
            FieldChange {
                before: None,
                after: Some(json!("t2"))
            }
        );
        assert_eq!(a_changes.len(), 2);
        let f = &d.failed.changed["F"];
        assert_eq!(f["retry_count"].after, Some(json!(2)));
        assert_eq!(f["error"].after, None);
        assert_eq!(f["error"].before, Some(json!("e")));
        assert_eq!(d.top["note"].after, Some(json!(1)));
        assert_eq!(
            d.counts(),
            "processed +1 -1 ~1, failed +0 -0 ~1, 1 top-level key(s) changed"
        );
        assert!(d.mentions("A") && d.mentions("F") && !d.mentions("Z"));
    }

    #[test]
    fn a_null_and_a_missing_key_differ() {
        let mut a = State::default();
        let mut b = State::default();
        a.failed.insert("F".into(), FailedEntry::default());
        let mut with_null = FailedEntry::default();
        with_null.mark_present(crate::state::FailedKey::Error);
        b.failed.insert("F".into(), with_null);
        let d = diff(&a, &b);
        assert_eq!(
            d.failed.changed["F"]["error"],
            FieldChange {
                before: None,
                after: Some(Value::Null)
            }
        );
    }

    #[test]
    fn the_diff_round_trips_through_json_a_null_included() {
        let mut a = State::default();
        let mut b = State::default();
        let mut entry = ProcessedEntry::default();
        entry.title = Some("t".into());
        b.processed.insert("P".into(), entry);
        b.failed.insert("F".into(), {
            let mut f = FailedEntry::default();
            f.mark_present(crate::state::FailedKey::Error);
            f
        });
        a.failed.insert("F".into(), FailedEntry::default());
        let d = diff(&a, &b);
        assert_eq!(d.failed.changed["F"]["error"].after, Some(Value::Null));
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<StateDiff>(&text).unwrap(), d);
    }
}
