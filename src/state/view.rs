//! Views of entries: the few fields a selection reads (`state list`, `state show --infohash`),
//! borrowed from the entry's text without building the entry, nor keeping it.
//!
//! A state loaded lazily holds most entries as the text they were read as, checked at load
//! to parse (see [`Entries`]). Parsing that text into a whole entry allocates every string
//! and every unknown value, and [`Entries`] keeps what it parsed: a filter over 100 000
//! entries would build and keep them all. A view reads only its fields, borrows strings
//! without escapes from the file, and is dropped once looked at. An entry already parsed is
//! viewed from its value, so both give the same answers.
//!
//! [`Entries`]: super::Entries

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

use memchr::memmem;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

use super::model::{FailedEntry, ProcessedEntry, Stage};
use super::status::Status;

/// The fields of an entry a selection reads, taken from the entry (`of`) or from its text.
pub trait View<'a>: Sized {
    type Entry;
    fn of(entry: &'a Self::Entry) -> Self;
    /// The view of an entry's text as the load checked it; `None` if it does not parse
    /// (never, for a checked text: the caller then parses the whole entry instead).
    fn from_text(text: &'a str) -> Option<Self>;
}

/// A string of an entry: borrowed from the file when it holds no escape, else unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

fn text(value: &Option<String>) -> Option<Text<'_>> {
    value.as_deref().map(|s| Text(Cow::Borrowed(s)))
}

/// What a selection reads of a processed entry.
#[derive(Debug, Default, Deserialize)]
pub struct ProcessedView<'a> {
    #[serde(borrow)]
    pub author: Option<Text<'a>>,
    #[serde(borrow)]
    pub checkpoints: Option<CheckpointsView<'a>>,
    #[serde(borrow)]
    pub infohash: Option<Text<'a>>,
    #[serde(borrow)]
    pub processed_at: Option<Text<'a>>,
    pub status: Option<Status>,
    #[serde(borrow)]
    pub title: Option<Text<'a>>,
}

/// The checkpoints of a [`ProcessedView`].
#[derive(Debug, Default, Deserialize)]
pub struct CheckpointsView<'a> {
    #[serde(borrow)]
    pub metadata_at: Option<Text<'a>>,
    #[serde(borrow)]
    pub staged_at: Option<Text<'a>>,
    #[serde(borrow)]
    pub torrent_at: Option<Text<'a>>,
    #[serde(borrow)]
    pub uploaded_at: Option<Text<'a>>,
}

/// What a selection reads of a failed entry.
#[derive(Debug, Default, Deserialize)]
pub struct FailedView<'a> {
    #[serde(borrow)]
    pub author: Option<Text<'a>>,
    #[serde(borrow)]
    pub error_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub failed_at: Option<Text<'a>>,
    #[serde(borrow)]
    pub title: Option<Text<'a>>,
}

impl ProcessedView<'_> {
    /// As [`ProcessedEntry::effective_status`]: a missing status counts as `COMPLETE`.
    pub fn effective_status(&self) -> Status {
        self.status.clone().unwrap_or(Status::Complete)
    }

    /// As [`ProcessedEntry::checkpoint`].
    pub fn checkpoint(&self, stage: Stage) -> Option<&str> {
        let c = self.checkpoints.as_ref()?;
        let at = match stage {
            Stage::Staged => &c.staged_at,
            Stage::Metadata => &c.metadata_at,
            Stage::Torrent => &c.torrent_at,
            Stage::Uploaded => &c.uploaded_at,
        };
        at.as_deref()
    }
}

impl<'a> View<'a> for ProcessedView<'a> {
    type Entry = ProcessedEntry;

    fn of(e: &'a ProcessedEntry) -> Self {
        ProcessedView {
            author: text(&e.author),
            checkpoints: e.checkpoints.as_ref().map(|c| CheckpointsView {
                metadata_at: text(&c.metadata_at),
                staged_at: text(&c.staged_at),
                torrent_at: text(&c.torrent_at),
                uploaded_at: text(&c.uploaded_at),
            }),
            infohash: text(&e.infohash),
            processed_at: text(&e.processed_at),
            status: e.status.clone(),
            title: text(&e.title),
        }
    }

    fn from_text(text: &'a str) -> Option<Self> {
        let Some(members) = members(text) else {
            return serde_json::from_str(text).ok();
        };
        let mut view = ProcessedView::default();
        for (key, value) in members {
            match key {
                "author" => view.author = text_field(value)?,
                "checkpoints" => view.checkpoints = field(value)?,
                "infohash" => view.infohash = text_field(value)?,
                "processed_at" => view.processed_at = text_field(value)?,
                "status" => view.status = field(value)?,
                "title" => view.title = text_field(value)?,
                _ => {}
            }
        }
        Some(view)
    }
}

impl<'a> View<'a> for FailedView<'a> {
    type Entry = FailedEntry;

    fn of(e: &'a FailedEntry) -> Self {
        FailedView {
            author: text(&e.author),
            error_type: text(&e.error_type),
            failed_at: text(&e.failed_at),
            title: text(&e.title),
        }
    }

    fn from_text(text: &'a str) -> Option<Self> {
        let Some(members) = members(text) else {
            return serde_json::from_str(text).ok();
        };
        let mut view = FailedView::default();
        for (key, value) in members {
            match key {
                "author" => view.author = text_field(value)?,
                "error_type" => view.error_type = text_field(value)?,
                "failed_at" => view.failed_at = text_field(value)?,
                "title" => view.title = text_field(value)?,
                _ => {}
            }
        }
        Some(view)
    }
}

/// The members of an entry's text in the writer's layout, as the load found it (an object
/// whose `{` is at depth 2 of the file): each key as written between its quotes, and the text
/// of its value. `None` for any other text.
///
/// Parsing the entry with serde_json to read a few fields parses all the others as well
/// (half the time of `state list` on 100 000 entries); here only the fields read are parsed.
/// In that layout a member begins a line of its own indented by exactly six spaces: a nested
/// value's lines are indented further (but for its closing bracket), and a string holds no
/// raw newline. A key holding an escape is cut short at it, and so never taken for a field's
/// name (none holds a quote or a backslash).
fn members(text: &str) -> Option<impl Iterator<Item = (&str, &str)>> {
    /// Between two members: the comma, and the next line up to the key's quote.
    const NEXT: &[u8] = b",\n      \"";
    static FINDER: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    let finder = FINDER.get_or_init(|| memmem::Finder::new(NEXT));
    let mut rest = Some(text.strip_prefix("{\n      \"")?.strip_suffix("\n    }")?);
    Some(std::iter::from_fn(move || loop {
        let text = rest?;
        let member = match finder.find(text.as_bytes()) {
            Some(end) => {
                rest = Some(&text[end + NEXT.len()..]);
                &text[..end]
            }
            None => {
                rest = None;
                text
            }
        };
        let Some(quote) = memchr::memchr(b'"', member.as_bytes()) else {
            continue;
        };
        if let Some(value) = member[quote..].strip_prefix("\": ") {
            return Some((&member[..quote], value));
        }
    }))
}

/// One member's value, of the field's type.
fn field<'a, T: Deserialize<'a>>(value: &'a str) -> Option<T> {
    serde_json::from_str(value).ok()
}

/// [`field`] for a string: one without an escape (most) is borrowed as it is.
fn text_field(value: &str) -> Option<Option<Text<'_>>> {
    if value == "null" {
        return Some(None);
    }
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(plain) if memchr::memchr(b'\\', plain.as_bytes()).is_none() => {
            Some(Some(Text(Cow::Borrowed(plain))))
        }
        _ => field(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_of_the_text_is_the_view_of_the_entry() {
        let text = r#"{
      "author": "A \"quoted\" author",
      "checkpoints": {
        "metadata_at": null,
        "staged_at": "2026-01-01T00:00:00",
        "zz": [1, 2]
      },
      "infohash": "ABC",
      "processed_at": "2026-01-02T00:00:00",
      "status": "ODD",
      "title": "Ünïcödé",
      "zz_unknown": {"a": 1e400}
    }"#;
        let entry: ProcessedEntry = serde_json::from_str(text).unwrap();
        let from_text = ProcessedView::from_text(text).unwrap();
        let of_entry = ProcessedView::of(&entry);
        assert_eq!(format!("{from_text:?}"), format!("{of_entry:?}"));
        // Borrowed from the text unless it holds an escape.
        assert!(matches!(
            from_text.title,
            Some(Text(Cow::Borrowed("Ünïcödé")))
        ));
        assert!(
            matches!(&from_text.author, Some(Text(Cow::Owned(a))) if a == "A \"quoted\" author")
        );
        assert_eq!(
            from_text.checkpoint(Stage::Staged),
            Some("2026-01-01T00:00:00")
        );
        assert_eq!(from_text.checkpoint(Stage::Metadata), None);
        assert_eq!(from_text.effective_status(), Status::Unknown("ODD".into()));
        assert_eq!(
            ProcessedView::from_text("{}").unwrap().effective_status(),
            Status::Complete
        );
    }

    #[test]
    fn members_are_found_by_their_lines() {
        let text = "{\n      \"a\": [\n        1,\n        {\n          \"b\": \"x, y\"\n        }\n      ],\n      \"k\\\": v\": \"s\\\"\",\n      \"title\": \"T\"\n    }";
        let found: Vec<_> = members(text).unwrap().collect();
        assert_eq!(
            found,
            [
                (
                    "a",
                    "[\n        1,\n        {\n          \"b\": \"x, y\"\n        }\n      ]"
                ),
                ("k\\", "v\": \"s\\\"\""),
                ("title", "\"T\""),
            ]
        );
        // Any other layout is parsed whole.
        assert!(members("{}").is_none());
        assert!(members("{\"title\": \"T\"}").is_none());
        let compact = ProcessedView::from_text("{\"title\": \"T\"}").unwrap();
        assert_eq!(compact.title.as_deref(), Some("T"));
        // A value of the wrong type makes no view (the entry is then parsed whole).
        assert!(FailedView::from_text("{\n      \"title\": 5\n    }").is_none());
    }

    #[cfg(feature = "sample")]
    #[test]
    fn views_of_a_file_in_the_writers_layout_are_the_views_of_its_entries() {
        let sample = crate::sample::realistic_state(500, 5);
        let text = crate::store::format::to_python_json(&sample);
        let lazy = crate::store::format::parse_state_lazy(text.clone()).unwrap();
        let full = crate::store::format::parse_state(&text).unwrap();
        assert_eq!(lazy.processed.unparsed(), lazy.processed.len());
        let processed = lazy.processed.views::<ProcessedView>();
        for ((id, view), (full_id, entry)) in processed.zip(full.processed.iter()) {
            assert_eq!(id, full_id);
            assert_eq!(
                format!("{view:?}"),
                format!("{:?}", ProcessedView::of(entry))
            );
        }
        for ((id, view), (full_id, entry)) in
            lazy.failed.views::<FailedView>().zip(full.failed.iter())
        {
            assert_eq!(id, full_id);
            assert_eq!(format!("{view:?}"), format!("{:?}", FailedView::of(entry)));
        }
        assert_eq!(lazy.processed.unparsed(), lazy.processed.len());
    }

    #[test]
    fn a_failed_view_reads_its_four_fields() {
        let text = r#"{"error": "x", "error_type": "E", "failed_at": null, "retry_count": 3, "title": "T"}"#;
        let view = FailedView::from_text(text).unwrap();
        let entry: FailedEntry = serde_json::from_str(text).unwrap();
        assert_eq!(format!("{view:?}"), format!("{:?}", FailedView::of(&entry)));
        assert_eq!(view.error_type.as_deref(), Some("E"));
        assert!(view.failed_at.is_none());
        // What does not parse as a view is left to the whole entry.
        assert!(FailedView::from_text(r#"{"title": 5}"#).is_none());
    }
}
