//! Selecting entries: the filters of `state list` (and of any command that selects entries),
//! as data, without I/O. Every filter given must match (AND); a filter left unset matches all.
//!
//! Some filters only make sense for one kind of entry: `statuses`, `stage` and `infohash`
//! read fields only processed entries have, `error_type` one only failed entries have. Such a
//! filter selects that kind: a failed entry never matches `--status`, a processed entry never
//! matches `--error-type` ([`Filter::kinds`]).

use chrono::{DateTime, FixedOffset};

use super::model::{FailedEntry, ProcessedEntry, Stage};
use super::status::Status;
use super::time::parse_timestamp;
use super::view::{FailedView, ProcessedView, View};
use super::State;

/// What an entry must match to be selected. `Default` selects everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Processed entries whose status (a missing one counts as `COMPLETE`) is any of these.
    pub statuses: Vec<Status>,
    /// Processed entries whose last checkpoint reached (in pipeline order) is this stage.
    pub stage: Option<Stage>,
    /// Processed entries with this infohash (hex, compared without regard to case).
    pub infohash: Option<String>,
    /// Failed entries with this error type (compared without regard to ASCII case).
    pub error_type: Option<String>,
    /// Entries whose ID, title or author contains this text (without regard to case).
    pub grep: Option<String>,
    /// Entries whose time (`processed_at` / `failed_at`) is before this instant.
    pub before: Option<DateTime<FixedOffset>>,
    /// Entries whose time (`processed_at` / `failed_at`) is at or after this instant.
    pub since: Option<DateTime<FixedOffset>>,
}

/// Which kinds of entry a filter can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub processed: bool,
    pub failed: bool,
}

impl Filter {
    /// Whether any filter is set (an empty filter selects every entry).
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// The filters set that only processed entries can match, by their option names.
    pub fn processed_only(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if !self.statuses.is_empty() {
            names.push("--status");
        }
        if self.stage.is_some() {
            names.push("--stage");
        }
        if self.infohash.is_some() {
            names.push("--infohash");
        }
        names
    }

    /// The filters set that only failed entries can match, by their option names.
    pub fn failed_only(&self) -> Vec<&'static str> {
        if self.error_type.is_some() {
            vec!["--error-type"]
        } else {
            Vec::new()
        }
    }

    /// Every filter set, by its option name, in the order `--help` lists them.
    pub fn option_names(&self) -> Vec<&'static str> {
        let mut names = self.processed_only();
        names.extend(self.failed_only());
        let common = [
            ("--grep", self.grep.is_some()),
            ("--older-than", self.before.is_some()),
            ("--newer-than", self.since.is_some()),
        ];
        names.extend(common.into_iter().filter(|(_, set)| *set).map(|(n, _)| n));
        names
    }

    /// Which kinds of entry this filter can select: a filter of one kind leaves the other out.
    pub fn kinds(&self) -> Kinds {
        // Asked once per entry: no allocation here.
        Kinds {
            processed: self.error_type.is_none(),
            failed: self.statuses.is_empty() && self.stage.is_none() && self.infohash.is_none(),
        }
    }

    /// Whether a processed entry, stored under `id`, is selected.
    pub fn matches_processed(&self, id: &str, entry: &ProcessedEntry) -> bool {
        self.matches_processed_view(id, &ProcessedView::of(entry))
    }

    /// [`Filter::matches_processed`] on a view of the entry (see [`Entries::views`]).
    ///
    /// [`Entries::views`]: super::Entries::views
    pub fn matches_processed_view(&self, id: &str, entry: &ProcessedView<'_>) -> bool {
        if !self.kinds().processed {
            return false;
        }
        if !self.statuses.is_empty() && !self.statuses.contains(&entry.effective_status()) {
            return false;
        }
        if let Some(stage) = self.stage {
            if last_stage_of(entry) != Some(stage) {
                return false;
            }
        }
        if let Some(hash) = &self.infohash {
            if !hash_matches(entry.infohash.as_deref(), hash) {
                return false;
            }
        }
        self.common(
            id,
            entry.title.as_deref(),
            entry.author.as_deref(),
            entry.processed_at.as_deref(),
        )
    }

    /// Whether a failed entry, stored under `id`, is selected.
    pub fn matches_failed(&self, id: &str, entry: &FailedEntry) -> bool {
        self.matches_failed_view(id, &FailedView::of(entry))
    }

    /// [`Filter::matches_failed`] on a view of the entry.
    pub fn matches_failed_view(&self, id: &str, entry: &FailedView<'_>) -> bool {
        if !self.kinds().failed {
            return false;
        }
        if let Some(wanted) = &self.error_type {
            match entry.error_type.as_deref() {
                Some(t) if t.eq_ignore_ascii_case(wanted) => {}
                _ => return false,
            }
        }
        self.common(
            id,
            entry.title.as_deref(),
            entry.author.as_deref(),
            entry.failed_at.as_deref(),
        )
    }

    /// The filters both kinds share: text and time.
    fn common(
        &self,
        id: &str,
        title: Option<&str>,
        author: Option<&str>,
        at: Option<&str>,
    ) -> bool {
        if let Some(needle) = &self.grep {
            let needle = needle.to_lowercase();
            let found = [Some(id), title, author]
                .into_iter()
                .flatten()
                .any(|text| text.to_lowercase().contains(&needle));
            if !found {
                return false;
            }
        }
        if self.before.is_some() || self.since.is_some() {
            // An entry without a readable time is neither older nor newer than anything.
            let Some(at) = at.and_then(parse_timestamp) else {
                return false;
            };
            if self.before.is_some_and(|before| at >= before) {
                return false;
            }
            if self.since.is_some_and(|since| at < since) {
                return false;
            }
        }
        true
    }
}

/// The IDs of the processed entries `filter` selects, in ID order.
pub fn matching_processed(state: &State, filter: &Filter) -> Vec<String> {
    state
        .processed
        .iter()
        .filter(|(id, entry)| filter.matches_processed(id, entry))
        .map(|(id, _)| id.clone())
        .collect()
}

/// The IDs of the failed entries `filter` selects, in ID order.
pub fn matching_failed(state: &State, filter: &Filter) -> Vec<String> {
    state
        .failed
        .iter()
        .filter(|(id, entry)| filter.matches_failed(id, entry))
        .map(|(id, _)| id.clone())
        .collect()
}

/// The last stage (in pipeline order) whose checkpoint is recorded, if any.
pub fn last_stage(entry: &ProcessedEntry) -> Option<Stage> {
    last_stage_of(&ProcessedView::of(entry))
}

fn last_stage_of(entry: &ProcessedView<'_>) -> Option<Stage> {
    Stage::ALL
        .into_iter()
        .rev()
        .find(|&stage| entry.checkpoint(stage).is_some_and(|at| !at.is_empty()))
}

/// Whether a processed entry records this infohash (hex, compared without regard to case;
/// surrounding blanks ignored).
pub fn infohash_matches(entry: &ProcessedEntry, hash: &str) -> bool {
    hash_matches(entry.infohash.as_deref(), hash)
}

fn hash_matches(recorded: Option<&str>, hash: &str) -> bool {
    recorded.is_some_and(|h| h.trim().eq_ignore_ascii_case(hash.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processed(json: &str) -> ProcessedEntry {
        serde_json::from_str(json).unwrap()
    }

    fn failed(json: &str) -> FailedEntry {
        serde_json::from_str(json).unwrap()
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn an_empty_filter_selects_everything() {
        let f = Filter::default();
        assert!(f.is_empty());
        assert!(f.matches_processed("A", &processed("{}")));
        assert!(f.matches_failed("A", &failed("{}")));
    }

    #[test]
    fn statuses_are_any_of_and_a_missing_status_is_complete() {
        let f = Filter {
            statuses: vec![Status::Staged, Status::Complete],
            ..Filter::default()
        };
        assert!(f.matches_processed("A", &processed(r#"{"status": "STAGED"}"#)));
        assert!(f.matches_processed("A", &processed("{}")));
        assert!(!f.matches_processed("A", &processed(r#"{"status": "UPLOADED"}"#)));
        assert!(!f.matches_processed("A", &processed(r#"{"status": "ODD"}"#)));
        // A status filter selects processed entries only.
        assert!(!f.matches_failed("A", &failed("{}")));
    }

    #[test]
    fn stage_is_the_last_checkpoint_reached() {
        let f = Filter {
            stage: Some(Stage::Metadata),
            ..Filter::default()
        };
        let metadata =
            r#"{"checkpoints": {"staged_at": "t", "metadata_at": "t", "torrent_at": null}}"#;
        assert!(f.matches_processed("A", &processed(metadata)));
        let torrent =
            r#"{"checkpoints": {"staged_at": "t", "metadata_at": "t", "torrent_at": "t"}}"#;
        assert!(!f.matches_processed("A", &processed(torrent)));
        assert!(!f.matches_processed("A", &processed("{}")));
        assert_eq!(
            last_stage(&processed(r#"{"checkpoints": {"uploaded_at": ""}}"#)),
            None
        );
    }

    #[test]
    fn infohash_ignores_case() {
        let f = Filter {
            infohash: Some("3F78".into()),
            ..Filter::default()
        };
        assert!(f.matches_processed("A", &processed(r#"{"infohash": "3f78"}"#)));
        assert!(!f.matches_processed("A", &processed(r#"{"infohash": "3f79"}"#)));
        assert!(!f.matches_processed("A", &processed(r#"{"infohash": null}"#)));
    }

    #[test]
    fn error_type_selects_failed_entries_only() {
        let f = Filter {
            error_type: Some("audnexerror".into()),
            ..Filter::default()
        };
        assert!(f.matches_failed("A", &failed(r#"{"error_type": "AudnexError"}"#)));
        assert!(!f.matches_failed("A", &failed(r#"{"error_type": "Other"}"#)));
        assert!(!f.matches_failed("A", &failed("{}")));
        assert!(!f.matches_processed("A", &processed("{}")));
        assert_eq!(
            f.kinds(),
            Kinds {
                processed: false,
                failed: true
            }
        );
    }

    #[test]
    fn grep_looks_at_id_title_and_author_without_case() {
        let f = Filter {
            grep: Some("HERB".into()),
            ..Filter::default()
        };
        assert!(f.matches_processed("A", &processed(r#"{"author": "Frank Herbert"}"#)));
        assert!(f.matches_processed("xherbx", &processed("{}")));
        assert!(f.matches_failed("A", &failed(r#"{"title": "Herbs"}"#)));
        assert!(!f.matches_failed("A", &failed(r#"{"error": "herb"}"#)));
        let unicode = Filter {
            grep: Some("ÉTÉ".into()),
            ..Filter::default()
        };
        assert!(unicode.matches_processed("A", &processed(r#"{"title": "L'été"}"#)));
    }

    #[test]
    fn times_bound_processed_at_and_failed_at() {
        let f = Filter {
            before: Some(at("2026-11-20T00:00:00+00:00")),
            since: Some(at("2026-11-01T00:00:00+00:00")),
            ..Filter::default()
        };
        let p = |t: &str| processed(&format!(r#"{{"processed_at": "{t}"}}"#));
        assert!(f.matches_processed("A", &p("2026-11-10T00:00:00+00:00")));
        assert!(f.matches_processed("A", &p("2026-11-01T00:00:00+00:00")));
        assert!(!f.matches_processed("A", &p("2026-11-20T00:00:00+00:00")));
        assert!(!f.matches_processed("A", &p("2026-10-31T23:59:59+00:00")));
        assert!(!f.matches_processed("A", &p("last tuesday")));
        assert!(!f.matches_processed("A", &processed("{}")));
        let failed_at = failed(r#"{"failed_at": "2026-11-10T01:00:00+01:00"}"#);
        assert!(f.matches_failed("A", &failed_at));
    }

    #[test]
    fn kinds_follow_the_options_named_for_each_kind() {
        let filters = [
            Filter::default(),
            Filter {
                statuses: vec![Status::Staged],
                ..Filter::default()
            },
            Filter {
                stage: Some(Stage::Staged),
                ..Filter::default()
            },
            Filter {
                infohash: Some("x".into()),
                ..Filter::default()
            },
            Filter {
                error_type: Some("x".into()),
                ..Filter::default()
            },
        ];
        for f in filters {
            let kinds = f.kinds();
            assert_eq!(kinds.processed, f.failed_only().is_empty(), "{f:?}");
            assert_eq!(kinds.failed, f.processed_only().is_empty(), "{f:?}");
        }
    }

    #[test]
    fn option_names_name_every_filter_set() {
        assert!(Filter::default().option_names().is_empty());
        let f = Filter {
            stage: Some(Stage::Staged),
            error_type: Some("x".into()),
            grep: Some("x".into()),
            since: Some(at("2026-11-01T00:00:00+00:00")),
            ..Filter::default()
        };
        assert_eq!(
            f.option_names(),
            ["--stage", "--error-type", "--grep", "--newer-than"]
        );
    }

    #[test]
    fn matching_ids_are_those_selected_in_id_order() {
        let state: State = serde_json::from_str(
            r#"{"version": 2,
                "processed": {"P2": {"status": "STAGED"}, "P1": {"status": "STAGED"}, "P3": {}},
                "failed": {"F2": {"error_type": "A"}, "F1": {"error_type": "B"}, "F3": {"error_type": "a"}}}"#,
        )
        .unwrap();
        let staged = Filter {
            statuses: vec![Status::Staged],
            ..Filter::default()
        };
        assert_eq!(matching_processed(&state, &staged), ["P1", "P2"]);
        assert!(matching_failed(&state, &staged).is_empty());
        let a = Filter {
            error_type: Some("A".into()),
            ..Filter::default()
        };
        assert_eq!(matching_failed(&state, &a), ["F2", "F3"]);
        assert!(matching_processed(&state, &a).is_empty());
    }

    #[test]
    fn filters_combine() {
        let f = Filter {
            statuses: vec![Status::Complete],
            grep: Some("weir".into()),
            ..Filter::default()
        };
        assert!(f.matches_processed("A", &processed(r#"{"author": "Andy Weir"}"#)));
        assert!(!f.matches_processed(
            "A",
            &processed(r#"{"author": "Andy Weir", "status": "STAGED"}"#)
        ));
        assert!(!f.matches_processed("A", &processed(r#"{"author": "Frank"}"#)));
    }
}
