//! What the pipeline and the operator do to the state: pure functions on [`State`], no I/O.
//!
//! Whether a path exists is asked through a closure, so callers decide (the CLI asks the file
//! system, tests answer from a list). Timestamps come in as arguments: the clock is the
//! caller's.

use std::path::Path;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::artifact::ArtifactField;
use super::entries::Entries;
use super::model::{
    Checkpoints, FailedEntry, FailedKey, ProcessedEntry, ProcessedKey, Stage, State,
};
use super::status::Status;
use super::time::parse_timestamp;
use crate::error::{Error, Result};

/// Fields a caller gives for a release; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReleaseFields {
    pub asin: Option<String>,
    pub title: Option<String>,
    pub author: Option<String>,
    pub staging_dir: Option<String>,
    pub torrent_path: Option<String>,
    pub source_dir: Option<String>,
    pub infohash: Option<String>,
    /// The status to record; each operation has its own default.
    pub status: Option<Status>,
    /// Keys to set to `null` (`--unset`), as the Python tool writes `None` for what a release
    /// does not have. A key is never both given and unset (the command line refuses it).
    pub unset: Vec<Unset>,
    /// `asin`, `title` and `author` (given or unset) apply only to an entry created now, as
    /// the Python tool's `checkpoint_stage` has it: an existing entry keeps its names.
    pub names_if_new: bool,
}

/// A key a write command may set to `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    Asin,
    Title,
    Author,
    StagingDir,
    TorrentPath,
    Infohash,
    SourceDir,
}

impl Unset {
    /// Every key, spelt as in the file (and on the command line).
    pub const ALL: [Unset; 7] = [
        Unset::Asin,
        Unset::Title,
        Unset::Author,
        Unset::StagingDir,
        Unset::TorrentPath,
        Unset::Infohash,
        Unset::SourceDir,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Unset::Asin => "asin",
            Unset::Title => "title",
            Unset::Author => "author",
            Unset::StagingDir => "staging_dir",
            Unset::TorrentPath => "torrent_path",
            Unset::Infohash => "infohash",
            Unset::SourceDir => "source_dir",
        }
    }

    /// Reads a key name (`staging-dir` as well as `staging_dir`).
    pub fn from_name(text: &str) -> Option<Unset> {
        let text = text.replace('-', "_");
        Unset::ALL.into_iter().find(|u| u.name() == text)
    }

    /// Whether the key names the release (`asin`, `title`, `author`).
    fn is_name(self) -> bool {
        matches!(self, Unset::Asin | Unset::Title | Unset::Author)
    }
}

/// The ID the Python tool used: the ASIN, else the source directory.
pub fn release_id(asin: Option<&str>, source_dir: Option<&str>) -> Option<String> {
    asin.filter(|a| !a.trim().is_empty())
        .or(source_dir.filter(|s| !s.trim().is_empty()))
        .map(str::to_string)
}

/// The `asin` a new entry gets: its ID, unless the ID is a source directory path.
fn default_asin(id: &str) -> Option<String> {
    (!id.contains('/')).then(|| id.to_string())
}

fn require_id(id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::Data(
            "no identifier: a release needs an ASIN or a source directory".into(),
        ));
    }
    Ok(())
}

/// Refuses `current -> new` unless the table allows it. A missing or unknown current status
/// never blocks (legacy entries, newer tools).
pub fn validate_transition(id: &str, current: Option<&Status>, new: &Status) -> Result<()> {
    match current {
        Some(current) if !current.can_become(new) => Err(Error::IllegalTransition {
            id: id.to_string(),
            from: current.to_string(),
            to: new.to_string(),
            allowed: current.allowed_text(),
        }),
        _ => Ok(()),
    }
}

/// Applies `fields` to a processed entry; `created` says whether it is new (for
/// [`ReleaseFields::names_if_new`]).
fn apply_fields(entry: &mut ProcessedEntry, fields: &ReleaseFields, created: bool) {
    let names = created || !fields.names_if_new;
    let pairs = [
        (&mut entry.asin, &fields.asin, names),
        (&mut entry.title, &fields.title, names),
        (&mut entry.author, &fields.author, names),
        (&mut entry.staging_dir, &fields.staging_dir, true),
        (&mut entry.torrent_path, &fields.torrent_path, true),
        (&mut entry.infohash, &fields.infohash, true),
    ];
    for (slot, given, applies) in pairs {
        if let (Some(value), true) = (given, applies) {
            *slot = Some(value.clone());
        }
    }
    for &key in &fields.unset {
        if key.is_name() && !names {
            continue;
        }
        let (slot, known) = match key {
            Unset::Asin => (&mut entry.asin, ProcessedKey::Asin),
            Unset::Title => (&mut entry.title, ProcessedKey::Title),
            Unset::Author => (&mut entry.author, ProcessedKey::Author),
            Unset::StagingDir => (&mut entry.staging_dir, ProcessedKey::StagingDir),
            Unset::TorrentPath => (&mut entry.torrent_path, ProcessedKey::TorrentPath),
            Unset::Infohash => (&mut entry.infohash, ProcessedKey::Infohash),
            // Not a key of a processed entry: the command line offers it to mark-failed only.
            Unset::SourceDir => continue,
        };
        *slot = None;
        entry.mark_present(known);
    }
}

/// Refuses a change to the entry `id` of `entries` (the `map` one) when it is kept as its
/// text because a value in it cannot be used (see [`Entries::problem`]): changing it would
/// lose or mangle that value. Removing it (`clear`, `retry`) is not refused.
fn require_changeable<T: serde::de::DeserializeOwned>(
    entries: &Entries<T>,
    map: &str,
    id: &str,
) -> Result<()> {
    let Some(problem) = entries.problem(id) else {
        return Ok(());
    };
    let remove = if map == "processed" { "clear" } else { "retry" };
    Err(Error::Data(format!(
        "cannot change the {map} entry {id:?}: {problem}.\n\
         Nothing was changed; the entry is kept in the file as it is. Fix that value in the \
         state file, or remove the entry with `mamfast state {remove} -- ID` and record it again."
    )))
}

/// The processed entry for `id`, created (with the keys the Python tool writes) when new.
fn processed_entry<'a>(state: &'a mut State, id: &str, now: &str) -> &'a mut ProcessedEntry {
    state.processed.get_or_insert_with(id.to_string(), || {
        let mut entry = ProcessedEntry::default();
        entry.asin = default_asin(id);
        entry.processed_at = Some(now.to_string());
        entry.checkpoints = Some(Checkpoints::default());
        entry.mark_all_present();
        entry
    })
}

/// The processed entry for `id` (created if new) moved to `status` (checked against the
/// transition table unless `force`), with `fields` applied.
fn record<'a>(
    state: &'a mut State,
    id: &str,
    status: Status,
    fields: &ReleaseFields,
    now: &str,
    force: bool,
) -> Result<&'a mut ProcessedEntry> {
    require_id(id)?;
    require_changeable(&state.processed, "processed", id)?;
    if !force {
        let current = state.processed.get(id).and_then(|e| e.status.as_ref());
        validate_transition(id, current, &status)?;
    }
    let created = !state.processed.contains_key(id);
    let entry = processed_entry(state, id, now);
    apply_fields(entry, fields, created);
    entry.status = Some(status);
    Ok(entry)
}

/// Records a finished release (status `COMPLETE` unless `fields.status`), `uploaded_at`
/// set if it was not. Earlier checkpoints are kept (the Python tool wiped them). The release
/// leaves `failed`.
pub fn mark_processed(
    state: &mut State,
    id: &str,
    fields: &ReleaseFields,
    now: &str,
    force: bool,
) -> Result<()> {
    let status = fields.status.clone().unwrap_or(Status::Complete);
    let entry = record(state, id, status, fields, now, force)?;
    entry.processed_at = Some(now.to_string());
    entry.mark_all_present();
    let checkpoints = entry.checkpoints.get_or_insert_with(Checkpoints::default);
    if checkpoints.uploaded_at.is_none() {
        checkpoints.set(Stage::Uploaded, now.to_string());
    }
    checkpoints.mark_all_present();
    state.failed.remove(id);
    Ok(())
}

/// Records a failure: `retry_count` + 1, `first_failed_at` kept, `error` and `error_type`
/// replaced. Keys the entry already had (legacy `path`, unknown ones) are kept.
pub fn mark_failed(
    state: &mut State,
    id: &str,
    error: &str,
    error_type: Option<&str>,
    fields: &ReleaseFields,
    now: &str,
) -> Result<()> {
    require_id(id)?;
    require_changeable(&state.failed, "failed", id)?;
    let entry = state.failed.get_or_insert_with(id.to_string(), || {
        let mut entry = FailedEntry::default();
        entry.asin = default_asin(id);
        entry
    });
    for (slot, given) in [
        (&mut entry.asin, &fields.asin),
        (&mut entry.title, &fields.title),
        (&mut entry.author, &fields.author),
        (&mut entry.source_dir, &fields.source_dir),
    ] {
        if let Some(value) = given {
            *slot = Some(value.clone());
        }
    }
    for &key in &fields.unset {
        match key {
            Unset::Asin => entry.asin = None,
            Unset::Title => entry.title = None,
            Unset::Author => entry.author = None,
            Unset::SourceDir => entry.source_dir = None,
            // Not keys of a failed entry: the command line offers them to the others only.
            Unset::StagingDir | Unset::TorrentPath | Unset::Infohash => {}
        }
    }
    if entry.first_failed_at.is_none() {
        entry.first_failed_at = Some(entry.failed_at.clone().unwrap_or_else(|| now.to_string()));
    }
    entry.failed_at = Some(now.to_string());
    entry.error = Some(error.to_string());
    entry.error_type = error_type.map(str::to_string);
    // At the largest count a failure is still recorded; the count stays there, never wraps.
    entry.retry_count = Some(entry.retry_count.unwrap_or(0).saturating_add(1));
    for key in [
        FailedKey::Asin,
        FailedKey::Title,
        FailedKey::Author,
        FailedKey::FailedAt,
        FailedKey::FirstFailedAt,
        FailedKey::Error,
        FailedKey::ErrorType,
        FailedKey::SourceDir,
        FailedKey::RetryCount,
    ] {
        entry.mark_present(key);
    }
    Ok(())
}

/// Records that `stage` finished now. The status follows the stage unless `fields.status`.
pub fn checkpoint_stage(
    state: &mut State,
    id: &str,
    stage: Stage,
    fields: &ReleaseFields,
    now: &str,
    force: bool,
) -> Result<()> {
    let status = fields.status.clone().unwrap_or_else(|| stage.status());
    let entry = record(state, id, status, fields, now, force)?;
    entry
        .checkpoints
        .get_or_insert_with(Checkpoints::default)
        .set(stage, now.to_string());
    entry.mark_present(ProcessedKey::Checkpoints);
    Ok(())
}

/// When `stage` finished for `id`, if recorded and readable.
pub fn get_checkpoint(state: &State, id: &str, stage: Stage) -> Option<DateTime<FixedOffset>> {
    state
        .processed
        .get(id)?
        .checkpoint(stage)
        .and_then(parse_timestamp)
}

/// The torrent's infohash for `id`, if recorded.
pub fn get_infohash<'a>(state: &'a State, id: &str) -> Option<&'a str> {
    state.processed.get(id)?.infohash.as_deref()
}

/// Why a stage may be skipped or must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipDecision {
    /// Done, and its artifact (if it has one) still exists: skip.
    Done {
        at: String,
    },
    /// Done, and no path of its artifact is known (none recorded, or the caller named none):
    /// skip, as the Python tool does; there is nothing to check.
    DoneNoPath {
        at: String,
        field: ArtifactField,
    },
    NoIdentifier,
    NoEntry,
    NoCheckpoint,
    /// Done, but the artifact is gone.
    ArtifactMissing {
        field: ArtifactField,
        path: String,
    },
}

impl SkipDecision {
    pub fn skip(&self) -> bool {
        matches!(
            self,
            SkipDecision::Done { .. } | SkipDecision::DoneNoPath { .. }
        )
    }
}

/// The field holding the artifact a stage leaves behind, if any.
pub fn stage_artifact(stage: Stage) -> Option<ArtifactField> {
    match stage {
        Stage::Staged | Stage::Metadata => Some(ArtifactField::StagingDir),
        Stage::Torrent => Some(ArtifactField::TorrentPath),
        Stage::Uploaded => None,
    }
}

/// The artifact paths a caller names to check instead of the recorded ones (the Python tool
/// checks the paths of the release it holds). `Some("")` names no path: nothing to check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GivenPaths<'a> {
    pub staging_dir: Option<&'a str>,
    pub torrent_path: Option<&'a str>,
}

impl<'a> GivenPaths<'a> {
    fn get(&self, field: ArtifactField) -> Option<&'a str> {
        match field {
            ArtifactField::StagingDir => self.staging_dir,
            ArtifactField::TorrentPath => self.torrent_path,
        }
    }
}

/// Whether `stage` may be skipped for `id`: its checkpoint exists and its artifact is still
/// there (`exists` is asked about the path).
pub fn skip_decision(
    state: &State,
    id: &str,
    stage: Stage,
    exists: impl Fn(&Path) -> bool,
) -> SkipDecision {
    skip_decision_with(state, id, stage, GivenPaths::default(), exists)
}

/// [`skip_decision`], checking the paths `given` instead of the recorded ones where given.
pub fn skip_decision_with(
    state: &State,
    id: &str,
    stage: Stage,
    given: GivenPaths<'_>,
    exists: impl Fn(&Path) -> bool,
) -> SkipDecision {
    if id.trim().is_empty() {
        return SkipDecision::NoIdentifier;
    }
    let Some(entry) = state.processed.get(id) else {
        return SkipDecision::NoEntry;
    };
    let Some(at) = entry.checkpoint(stage) else {
        return SkipDecision::NoCheckpoint;
    };
    let at = at.to_string();
    let Some(field) = stage_artifact(stage) else {
        return SkipDecision::Done { at };
    };
    let path = match given.get(field) {
        Some(given) => Some(given).filter(|p| !p.is_empty()),
        None => entry.artifact_path(field),
    };
    match path {
        None => SkipDecision::DoneNoPath { at, field },
        Some(path) if !exists(Path::new(path)) => SkipDecision::ArtifactMissing {
            field,
            path: path.to_string(),
        },
        Some(_) => SkipDecision::Done { at },
    }
}

/// `skip_decision(…).skip()`.
pub fn should_skip_stage(
    state: &State,
    id: &str,
    stage: Stage,
    exists: impl Fn(&Path) -> bool,
) -> bool {
    skip_decision(state, id, stage, exists).skip()
}

/// Removes `id` from `failed` (its retry count starts over). The removed entry, if any.
pub fn clear_failed(state: &mut State, id: &str) -> Option<FailedEntry> {
    state.failed.remove(id)
}

/// Removes `id` from `processed`, checkpoints included. The removed entry, if any.
pub fn clear_processed(state: &mut State, id: &str) -> Option<ProcessedEntry> {
    state.processed.remove(id)
}

/// The IDs a bulk command acts on, each once, in the order first given: `retry A B A` acts
/// on `A` then `B`. Whatever selects the IDs (the command line today) hands its list here.
pub fn unique_ids<I, S>(ids: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut seen = std::collections::HashSet::new();
    let mut unique = Vec::new();
    for id in ids {
        let id = id.into();
        if seen.insert(id.clone()) {
            unique.push(id);
        }
    }
    unique
}

/// Removes each of `ids` from `failed` ([`clear_failed`] for each): every ID with the entry
/// removed, or `None` where it was not there, in the order given.
pub fn clear_failed_many(state: &mut State, ids: &[String]) -> Vec<(String, Option<FailedEntry>)> {
    ids.iter()
        .map(|id| (id.clone(), clear_failed(state, id)))
        .collect()
}

/// Removes each of `ids` from `processed` ([`clear_processed`] for each): every ID with the
/// entry removed, or `None` where it was not there, in the order given.
pub fn clear_processed_many(
    state: &mut State,
    ids: &[String],
) -> Vec<(String, Option<ProcessedEntry>)> {
    ids.iter()
        .map(|id| (id.clone(), clear_processed(state, id)))
        .collect()
}

/// The paths an entry must still have at each status (docs/FORMAT.md, *Paths a status needs*): after upload the staging
/// directory may go, after completion everything may.
pub fn required_paths(status: &Status) -> &'static [ArtifactField] {
    use ArtifactField::{StagingDir, TorrentPath};
    match status {
        Status::Staged | Status::MetadataFetched => &[StagingDir],
        Status::TorrentCreated => &[StagingDir, TorrentPath],
        Status::Uploaded => &[TorrentPath],
        _ => &[],
    }
}

/// A processed entry whose required-for-status paths are gone. Serialized with its fields in
/// sorted order, as `state prune --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleEntry {
    pub id: String,
    /// The fields whose paths are missing.
    pub missing: Vec<ArtifactField>,
    pub status: Status,
    pub title: Option<String>,
}

/// Entries whose recorded required paths no longer exist. A path that was never recorded is
/// not counted missing, and statuses without requirements are never stale.
pub fn find_stale_entries(state: &State, exists: impl Fn(&Path) -> bool) -> Vec<StaleEntry> {
    let mut stale = Vec::new();
    for (id, entry) in &state.processed {
        // Kept as it is: what it records cannot be trusted enough to remove it for.
        if state.processed.problem(id).is_some() {
            continue;
        }
        let status = entry.effective_status();
        let missing: Vec<ArtifactField> = required_paths(&status)
            .iter()
            .copied()
            .filter(|&field| {
                let path = entry.artifact_path(field);
                path.is_some_and(|p| !exists(Path::new(p)))
            })
            .collect();
        if !missing.is_empty() {
            stale.push(StaleEntry {
                id: id.clone(),
                title: entry.title.clone(),
                status,
                missing,
            });
        }
    }
    stale
}

/// A failed entry whose last failure is older than the TTL. Serialized with its fields in
/// sorted order, as `state prune --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredFailed {
    pub failed_at: String,
    pub id: String,
    pub title: Option<String>,
}

/// Failed entries whose `failed_at` is more than `ttl` before `now`. Entries without a
/// readable `failed_at` are kept: they cannot be shown to be old.
pub fn expired_failed(
    state: &State,
    ttl: std::time::Duration,
    now: DateTime<FixedOffset>,
) -> Vec<ExpiredFailed> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let Some(cutoff) = now.checked_sub_signed(ttl) else {
        return Vec::new();
    };
    state
        .failed
        .iter()
        .filter_map(|(id, entry)| {
            // Kept as it is: what it records cannot be trusted enough to remove it for.
            if state.failed.problem(id).is_some() {
                return None;
            }
            let failed_at = entry.failed_at.as_deref()?;
            let at = parse_timestamp(failed_at)?;
            (at < cutoff).then(|| ExpiredFailed {
                id: id.clone(),
                title: entry.title.clone(),
                failed_at: failed_at.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const NOW: &str = "2026-11-26T10:00:00.000000+00:00";
    const LATER: &str = "2026-11-26T11:00:00.000000+00:00";

    fn fields() -> ReleaseFields {
        ReleaseFields {
            title: Some("Dune".into()),
            author: Some("Frank Herbert".into()),
            staging_dir: Some("/staging/dune".into()),
            ..ReleaseFields::default()
        }
    }

    fn exists_in(paths: &[&str]) -> impl Fn(&Path) -> bool {
        let set: HashSet<String> = paths.iter().map(|p| p.to_string()).collect();
        move |p: &Path| set.contains(p.to_str().unwrap())
    }

    fn staged(id: &str) -> State {
        let mut state = State::default();
        checkpoint_stage(&mut state, id, Stage::Staged, &fields(), NOW, false).unwrap();
        state
    }

    /// Recording a stage (the Python tool's checkpoint tests)
    fn legacy(entry: &str) -> State {
        serde_json::from_str(&format!(r#"{{"processed": {{"L": {entry}}}}}"#)).unwrap()
    }

    mod checkpoint_stage {
        use super::*;
        #[test]
        fn creates_checkpoint_structure() {
            let state = staged("B1");
            let entry = &state.processed["B1"];
            assert_eq!(entry.checkpoint(Stage::Staged), Some(NOW));
            assert_eq!(entry.asin.as_deref(), Some("B1"));
            assert_eq!(entry.processed_at.as_deref(), Some(NOW));
            let json = serde_json::to_value(entry).unwrap();
            assert_eq!(json["checkpoints"], serde_json::json!({"staged_at": NOW}));
            assert!(json["infohash"].is_null() && json.get("torrent_path").is_some());
        }

        #[test]
        fn updates_existing_entry() {
            let mut state = staged("B1");
            let more = ReleaseFields {
                title: Some("Dune (Unabridged)".into()),
                ..ReleaseFields::default()
            };
            checkpoint_stage(&mut state, "B1", Stage::Metadata, &more, LATER, false).unwrap();
            let entry = &state.processed["B1"];
            assert_eq!(entry.checkpoint(Stage::Staged), Some(NOW));
            assert_eq!(entry.checkpoint(Stage::Metadata), Some(LATER));
            assert_eq!(entry.title.as_deref(), Some("Dune (Unabridged)"));
            assert_eq!(entry.author.as_deref(), Some("Frank Herbert"));
            assert_eq!(entry.processed_at.as_deref(), Some(NOW));
        }

        #[test]
        fn handles_missing_identifier() {
            let mut state = State::default();
            let err = checkpoint_stage(&mut state, "", Stage::Staged, &fields(), NOW, false);
            assert!(matches!(err, Err(Error::Data(_))));
            assert!(state.processed.is_empty());
            assert_eq!(release_id(None, Some("/lib/x")), Some("/lib/x".into()));
            assert_eq!(release_id(Some(""), None), None);
        }

        #[test]
        fn stores_infohash_when_provided() {
            let mut state = staged("B1");
            checkpoint_stage(&mut state, "B1", Stage::Metadata, &fields(), NOW, false).unwrap();
            let torrent = ReleaseFields {
                infohash: Some("abc123".into()),
                torrent_path: Some("/t/dune.torrent".into()),
                ..ReleaseFields::default()
            };
            checkpoint_stage(&mut state, "B1", Stage::Torrent, &torrent, NOW, false).unwrap();
            assert_eq!(get_infohash(&state, "B1"), Some("abc123"));
        }

        #[test]
        fn updates_status() {
            let mut state = staged("B1");
            assert_eq!(state.processed["B1"].status, Some(Status::Staged));
            checkpoint_stage(&mut state, "B1", Stage::Metadata, &fields(), NOW, false).unwrap();
            assert_eq!(state.processed["B1"].status, Some(Status::MetadataFetched));
        }

        #[test]
        fn updates_paths() {
            let mut state = staged("B1");
            let moved = ReleaseFields {
                staging_dir: Some("/staging/dune-2".into()),
                ..ReleaseFields::default()
            };
            checkpoint_stage(&mut state, "B1", Stage::Staged, &moved, NOW, false).unwrap();
            assert_eq!(
                state.processed["B1"].staging_dir.as_deref(),
                Some("/staging/dune-2")
            );
        }
    }

    /// Reading a stage's checkpoint
    mod get_checkpoint {
        use super::*;
        #[test]
        fn returns_none_when_missing_entry() {
            assert_eq!(get_checkpoint(&State::default(), "B1", Stage::Staged), None);
        }

        #[test]
        fn returns_none_when_missing_stage() {
            assert_eq!(get_checkpoint(&staged("B1"), "B1", Stage::Torrent), None);
        }

        #[test]
        fn returns_datetime_when_present() {
            let at = get_checkpoint(&staged("B1"), "B1", Stage::Staged).unwrap();
            assert_eq!(
                at,
                DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z").unwrap()
            );
        }

        #[test]
        fn handles_legacy_entry_without_checkpoints() {
            let state: State =
                serde_json::from_str(r#"{"processed": {"B1": {"title": "old"}}}"#).unwrap();
            assert_eq!(get_checkpoint(&state, "B1", Stage::Staged), None);
            assert!(!should_skip_stage(&state, "B1", Stage::Staged, |_| true));
        }
    }

    /// Reading the infohash
    mod get_infohash {
        use super::*;
        #[test]
        fn returns_none_when_missing_infohash() {
            assert_eq!(get_infohash(&staged("B1"), "B1"), None);
        }

        #[test]
        fn returns_infohash_when_present() {
            let mut state = staged("B1");
            state.processed.get_mut("B1").unwrap().infohash = Some("ff".into());
            assert_eq!(get_infohash(&state, "B1"), Some("ff"));
        }

        #[test]
        fn returns_none_when_missing_entry() {
            assert_eq!(get_infohash(&State::default(), "B1"), None);
        }
    }

    /// The skip decision of `should-skip`
    mod should_skip_stage {
        use super::*;
        #[test]
        fn returns_false_no_identifier() {
            assert!(!should_skip_stage(&staged("B1"), "", Stage::Staged, |_| {
                true
            }));
        }

        #[test]
        fn returns_false_no_checkpoint() {
            let state = staged("B1");
            assert!(!should_skip_stage(&state, "B1", Stage::Metadata, |_| true));
        }

        #[test]
        fn returns_true_when_checkpoint_exists() {
            let state = staged("B1");
            assert!(should_skip_stage(
                &state,
                "B1",
                Stage::Staged,
                exists_in(&["/staging/dune"])
            ));
        }

        #[test]
        fn returns_false_when_staging_dir_missing() {
            let state = staged("B1");
            let decision = skip_decision(&state, "B1", Stage::Staged, exists_in(&[]));
            assert_eq!(
                decision,
                SkipDecision::ArtifactMissing {
                    field: ArtifactField::StagingDir,
                    path: "/staging/dune".into()
                }
            );
        }

        #[test]
        fn returns_false_when_torrent_path_missing() {
            let mut state = staged("B1");
            checkpoint_stage(&mut state, "B1", Stage::Metadata, &fields(), NOW, false).unwrap();
            let torrent = ReleaseFields {
                torrent_path: Some("/t/x.torrent".into()),
                ..ReleaseFields::default()
            };
            checkpoint_stage(&mut state, "B1", Stage::Torrent, &torrent, NOW, false).unwrap();
            let all = exists_in(&["/staging/dune", "/t/x.torrent"]);
            assert!(should_skip_stage(&state, "B1", Stage::Torrent, &all));
            let no_torrent = exists_in(&["/staging/dune"]);
            assert!(!should_skip_stage(&state, "B1", Stage::Torrent, no_torrent));
        }
    }

    /// Legacy entries: keys null or missing
    mod legacy_entries {
        use super::*;

        #[test]
        fn entry_missing_checkpoints_key() {
            let state = legacy(r#"{"status": "STAGED", "staging_dir": "/s"}"#);
            assert_eq!(get_checkpoint(&state, "L", Stage::Staged), None);
            assert!(!should_skip_stage(&state, "L", Stage::Staged, |_| true));
            let mut state = state;
            checkpoint_stage(
                &mut state,
                "L",
                Stage::Metadata,
                &ReleaseFields::default(),
                NOW,
                false,
            )
            .unwrap();
            assert_eq!(state.processed["L"].checkpoint(Stage::Metadata), Some(NOW));
        }

        #[test]
        fn entry_missing_torrent_path() {
            let state = legacy(
                r#"{"status": "TORRENT_CREATED", "staging_dir": "/s", "checkpoints": {"torrent_at": "x"}}"#,
            );
            assert_eq!(
                skip_decision(&state, "L", Stage::Torrent, |_| true),
                SkipDecision::DoneNoPath {
                    at: "x".into(),
                    field: ArtifactField::TorrentPath
                }
            );
            assert!(find_stale_entries(&state, |_| true).is_empty());
        }

        #[test]
        fn entry_missing_staging_dir() {
            // Done with no path recorded: skip, as the Python tool does (nothing to check).
            let state = legacy(r#"{"status": "STAGED", "checkpoints": {"staged_at": "x"}}"#);
            assert!(should_skip_stage(&state, "L", Stage::Staged, |_| false));
            assert!(find_stale_entries(&state, |_| false).is_empty());
        }

        #[test]
        fn entry_missing_infohash() {
            let state = legacy(r#"{"status": "UPLOADED"}"#);
            assert_eq!(get_infohash(&state, "L"), None);
        }
    }

    /// What the Python tool's side needs: given paths, `--unset`, names only at creation
    mod machine {
        use super::*;

        #[test]
        fn given_paths_are_checked_instead_of_the_recorded_ones() {
            let state = staged("B1");
            let exists = exists_in(&["/other"]);
            let given = |p| GivenPaths {
                staging_dir: Some(p),
                torrent_path: None,
            };
            let decide = |g| skip_decision_with(&state, "B1", Stage::Staged, g, &exists);
            assert!(decide(given("/other")).skip());
            assert_eq!(
                decide(given("/gone")),
                SkipDecision::ArtifactMissing {
                    field: ArtifactField::StagingDir,
                    path: "/gone".into()
                }
            );
            // An empty path names none: nothing to check, so skip.
            assert!(matches!(decide(given("")), SkipDecision::DoneNoPath { .. }));
            // Not given: the recorded path (/staging/dune, missing here).
            assert!(!decide(GivenPaths::default()).skip());
        }

        #[test]
        fn unset_writes_null_and_keeps_the_key() {
            let mut state = staged("B1");
            let unset = ReleaseFields {
                unset: vec![Unset::Title, Unset::StagingDir],
                ..ReleaseFields::default()
            };
            checkpoint_stage(&mut state, "B1", Stage::Metadata, &unset, LATER, false).unwrap();
            let json = serde_json::to_value(&state.processed["B1"]).unwrap();
            assert!(json["title"].is_null() && json["staging_dir"].is_null());
            assert_eq!(json["author"], "Frank Herbert");

            mark_failed(&mut state, "F1", "boom", None, &fields(), NOW).unwrap();
            let unset = ReleaseFields {
                unset: vec![Unset::Author, Unset::Asin],
                ..ReleaseFields::default()
            };
            mark_failed(&mut state, "F1", "boom", None, &unset, NOW).unwrap();
            let json = serde_json::to_value(&state.failed["F1"]).unwrap();
            assert!(json["author"].is_null() && json["asin"].is_null());
            assert_eq!(json["title"], "Dune");
        }

        #[test]
        fn names_if_new_apply_only_to_a_new_entry() {
            let mut state = staged("B1");
            let later = ReleaseFields {
                title: Some("Other".into()),
                unset: vec![Unset::Author],
                staging_dir: Some("/moved".into()),
                names_if_new: true,
                ..ReleaseFields::default()
            };
            checkpoint_stage(&mut state, "B1", Stage::Metadata, &later, LATER, false).unwrap();
            let entry = &state.processed["B1"];
            assert_eq!(entry.title.as_deref(), Some("Dune"));
            assert_eq!(entry.author.as_deref(), Some("Frank Herbert"));
            assert_eq!(entry.staging_dir.as_deref(), Some("/moved"));

            checkpoint_stage(&mut state, "B2", Stage::Staged, &later, LATER, false).unwrap();
            let entry = &state.processed["B2"];
            assert_eq!(entry.title.as_deref(), Some("Other"));
            assert_eq!(entry.author, None);
        }
    }

    /// Failures: retry_count and first_failed_at
    mod retry_count {
        use super::*;
        #[test]
        fn retry_count_increments_on_each_failure() {
            let mut state = State::default();
            for n in 1..=3 {
                mark_failed(&mut state, "B1", "boom", None, &fields(), NOW).unwrap();
                assert_eq!(state.failed["B1"].retry_count, Some(n));
            }
        }

        #[test]
        fn first_failed_at_preserved_across_retries() {
            let mut state = State::default();
            mark_failed(&mut state, "B1", "boom", None, &fields(), NOW).unwrap();
            mark_failed(&mut state, "B1", "boom again", None, &fields(), LATER).unwrap();
            let entry = &state.failed["B1"];
            assert_eq!(entry.first_failed_at.as_deref(), Some(NOW));
            assert_eq!(entry.failed_at.as_deref(), Some(LATER));
            assert_eq!(entry.error.as_deref(), Some("boom again"));
        }

        #[test]
        fn error_type_captured_for_debugging() {
            let mut state = State::default();
            mark_failed(&mut state, "B1", "404", Some("AudnexError"), &fields(), NOW).unwrap();
            assert_eq!(
                state.failed["B1"].error_type.as_deref(),
                Some("AudnexError")
            );
        }

        #[test]
        fn mark_failed_keeps_legacy_and_unknown_keys() {
            let mut state: State = serde_json::from_str(
                r#"{"failed": {"B1": {"path": "/lib/x", "retry_count": 2, "x_note": 7, "failed_at": "2025-01-01T00:00:00"}}}"#,
            )
            .unwrap();
            mark_failed(&mut state, "B1", "e", None, &ReleaseFields::default(), NOW).unwrap();
            let entry = &state.failed["B1"];
            assert_eq!(entry.path.as_deref(), Some("/lib/x"));
            assert_eq!(entry.extra["x_note"], 7);
            assert_eq!(entry.retry_count, Some(3));
            assert_eq!(
                entry.first_failed_at.as_deref(),
                Some("2025-01-01T00:00:00")
            );
        }

        #[test]
        fn mark_processed_keeps_earlier_checkpoints() {
            let mut state = staged("B1");
            for stage in [Stage::Metadata, Stage::Torrent] {
                checkpoint_stage(&mut state, "B1", stage, &fields(), LATER, false).unwrap();
            }
            mark_failed(&mut state, "B1", "flaky", None, &fields(), NOW).unwrap();
            mark_processed(&mut state, "B1", &ReleaseFields::default(), LATER, false).unwrap();
            let entry = &state.processed["B1"];
            assert_eq!(entry.checkpoint(Stage::Staged), Some(NOW));
            assert_eq!(entry.checkpoint(Stage::Torrent), Some(LATER));
            assert_eq!(entry.checkpoint(Stage::Uploaded), Some(LATER));
            assert_eq!(entry.status, Some(Status::Complete));
            assert!(!state.failed.contains_key("B1"));
        }

        #[test]
        fn new_entry_asin_is_the_id_unless_a_path() {
            let mut state = State::default();
            mark_processed(
                &mut state,
                "/lib/Some Book",
                &ReleaseFields::default(),
                NOW,
                false,
            )
            .unwrap();
            mark_failed(&mut state, "B9", "e", None, &ReleaseFields::default(), NOW).unwrap();
            assert_eq!(state.processed["/lib/Some Book"].asin, None);
            assert!(state.processed["/lib/Some Book"].has_key(ProcessedKey::Asin));
            assert_eq!(state.failed["B9"].asin.as_deref(), Some("B9"));
        }
    }

    /// The status transition table
    mod transitions {
        use super::*;
        #[test]
        fn illegal_transitions_raise_clear_error() {
            let mut state = staged("B1");
            let err = mark_processed(&mut state, "B1", &ReleaseFields::default(), NOW, false)
                .unwrap_err();
            let text = err.to_string();
            assert_eq!(err.exit_code(), 65);
            assert!(text.contains("STAGED -> COMPLETE"), "{text}");
            assert!(
                text.contains("allowed from STAGED: STAGED, METADATA_FETCHED"),
                "{text}"
            );
            assert_eq!(state.processed["B1"].status, Some(Status::Staged));
            let err = checkpoint_stage(&mut state, "B1", Stage::Torrent, &fields(), NOW, false);
            assert!(matches!(err, Err(Error::IllegalTransition { .. })));
        }

        #[test]
        fn same_status_writes_allowed() {
            let mut state = staged("B1");
            checkpoint_stage(&mut state, "B1", Stage::Staged, &fields(), LATER, false).unwrap();
            assert_eq!(state.processed["B1"].checkpoint(Stage::Staged), Some(LATER));
        }

        #[test]
        fn force_records_an_illegal_transition() {
            let mut state = staged("B1");
            mark_processed(&mut state, "B1", &ReleaseFields::default(), NOW, true).unwrap();
            assert_eq!(state.processed["B1"].status, Some(Status::Complete));
        }

        #[test]
        fn unknown_current_status_never_blocks() {
            let mut state = legacy(r#"{"status": "ARCHIVED"}"#);
            mark_processed(&mut state, "L", &ReleaseFields::default(), NOW, false).unwrap();
            assert_eq!(state.processed["L"].status, Some(Status::Complete));
        }
    }

    /// Stale entries: only the paths a status needs count
    mod stale_entries {
        use super::*;
        fn with_status(status: &str) -> State {
            legacy(&format!(
                r#"{{"status": "{status}", "staging_dir": "/s", "torrent_path": "/t"}}"#
            ))
        }

        #[test]
        fn prune_does_not_flag_entries_whose_files_moved_after_completion() {
            assert!(find_stale_entries(&with_status("COMPLETE"), |_| false).is_empty());
            assert!(
                find_stale_entries(&legacy(r#"{"staging_dir": "/gone"}"#), |_| false).is_empty()
            );
            let uploaded = with_status("UPLOADED");
            assert!(find_stale_entries(&uploaded, exists_in(&["/t"])).is_empty());
        }

        #[test]
        fn only_flags_entries_missing_required_for_status_paths() {
            let stale = find_stale_entries(&with_status("TORRENT_CREATED"), exists_in(&["/s"]));
            assert_eq!(stale.len(), 1);
            assert_eq!(stale[0].missing, vec![ArtifactField::TorrentPath]);
            let stale = find_stale_entries(&with_status("STAGED"), exists_in(&["/t"]));
            assert_eq!(stale[0].missing, vec![ArtifactField::StagingDir]);
            assert!(find_stale_entries(&with_status("DISCOVERED"), |_| false).is_empty());
            assert!(find_stale_entries(&with_status("WEIRD"), |_| false).is_empty());
        }

        #[test]
        fn expired_failed_entries_follow_the_ttl() {
            let state: State = serde_json::from_str(
                r#"{"failed": {
                    "old": {"failed_at": "2026-10-01T00:00:00+00:00"},
                    "new": {"failed_at": "2026-11-25T00:00:00+00:00"},
                    "naive": {"failed_at": "2020-01-01T00:00:00"},
                    "none": {"failed_at": null},
                    "junk": {"failed_at": "last tuesday"}}}"#,
            )
            .unwrap();
            let now = DateTime::parse_from_rfc3339(NOW).unwrap();
            let month = std::time::Duration::from_secs(30 * 86400);
            let ids: Vec<String> = expired_failed(&state, month, now)
                .into_iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(ids, vec!["naive".to_string(), "old".to_string()]);
        }

        #[test]
        fn clearing_returns_what_was_removed() {
            let mut state = staged("B1");
            mark_failed(&mut state, "B2", "e", None, &fields(), NOW).unwrap();
            assert!(clear_processed(&mut state, "B1").is_some());
            assert!(clear_processed(&mut state, "B1").is_none());
            assert!(clear_failed(&mut state, "B2").is_some());
            assert!(clear_failed(&mut state, "nope").is_none());
        }

        #[test]
        fn duplicated_ids_count_once_in_the_order_first_given() {
            assert_eq!(unique_ids(["B", "A", "B", "C", "A"]), vec!["B", "A", "C"]);
            assert!(unique_ids(Vec::<String>::new()).is_empty());
        }

        #[test]
        fn clearing_many_reports_each_id_in_order() {
            let mut state = staged("B1");
            checkpoint_stage(&mut state, "B3", Stage::Staged, &fields(), NOW, false).unwrap();
            mark_failed(&mut state, "B2", "e", None, &fields(), NOW).unwrap();
            mark_failed(&mut state, "B4", "e", None, &fields(), NOW).unwrap();

            let ids = unique_ids(["B4", "nope", "B2"]);
            let done: Vec<(String, bool)> = clear_failed_many(&mut state, &ids)
                .into_iter()
                .map(|(id, entry)| (id, entry.is_some()))
                .collect();
            assert_eq!(
                done,
                vec![
                    ("B4".to_string(), true),
                    ("nope".to_string(), false),
                    ("B2".to_string(), true)
                ]
            );
            assert_eq!(state.failed.len(), 0);

            let ids = unique_ids(["B3", "B1", "B3"]);
            let done = clear_processed_many(&mut state, &ids);
            assert_eq!(done.len(), 2);
            assert!(done.iter().all(|(_, entry)| entry.is_some()));
            assert_eq!(state.processed.len(), 0);
        }
    }
}
