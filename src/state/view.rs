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
        serde_json::from_str(text).ok()
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
        serde_json::from_str(text).ok()
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
