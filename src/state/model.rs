//! The state file's data: [`State`] and its entries, read and written exactly as stored.
//!
//! Every entry keeps the keys this build does not know (`extra`) and remembers which known keys
//! were present, so a value that was `null` stays `null` and a key that was missing stays
//! missing: loading and writing an unchanged file gives the same bytes. Known keys are named
//! by an enum per entry type ([`ProcessedKey`], [`FailedKey`], [`CheckpointKey`]), so a
//! misspelt key does not compile:
//!
//! ```compile_fail
//! let mut entry = mamfast::FailedEntry::default();
//! entry.mark_present("eror");
//! ```

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::artifact::ArtifactField;
use super::entries::Entries;
use super::status::Status;

/// The newest schema version this build reads and writes.
pub const CURRENT_VERSION: u64 = 2;

/// Defines an entry struct whose known keys are `Option` fields (listed in sorted key order),
/// with unknown keys kept in `extra` and the presence of each known key remembered, and an
/// enum of its known keys, so that a misspelt key does not compile.
macro_rules! record {
    (
        $(#[$meta:meta])*
        $name:ident keyed by $keys:ident {
            $( $(#[$fmeta:meta])* $variant:ident => $field:ident : $ty:ty = $key:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
            /// Keys this build does not know, kept as they were read.
            pub extra: Map<String, Value>,
            /// Bit i set: known key i is written even when its value is `None` (as `null`).
            present: u32,
        }

        #[doc = concat!("A known key of [`", stringify!($name), "`], in the order keys are written.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $keys {
            $( $variant, )*
        }

        impl $keys {
            /// The key as it is written in the file.
            pub fn name(self) -> &'static str {
                $name::KEYS[self as usize]
            }
        }

        impl $name {
            /// The known keys, sorted as they are written.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// The known keys and what their values must be.
            pub(crate) const SCHEMA: Schema = Schema {
                keys: Self::KEYS,
                kinds: &[$(<$ty as HasKind>::KIND),*],
            };

            fn bit(key: $keys) -> u32 {
                1 << key as u32
            }

            /// Makes a known key appear in the file even while its value is `None` (as `null`).
            pub fn mark_present(&mut self, key: $keys) {
                self.present |= Self::bit(key);
            }

            /// Makes every known key appear in the file.
            pub fn mark_all_present(&mut self) {
                self.present = (1 << Self::KEYS.len()) - 1;
            }

            /// Whether a known key will be written (it was read, was marked, or has a value).
            pub fn has_key(&self, key: $keys) -> bool {
                match key {
                    $( $keys::$variant => self.$field.is_some() || self.present & Self::bit(key) != 0, )*
                }
            }
        }

        impl HasKind for $name {
            const KIND: Kind = Kind::Record(&$name::SCHEMA);
        }

        impl Record for $name {
            const SCHEMA: Schema = $name::SCHEMA;
            fn extra_mut(&mut self) -> &mut Map<String, Value> {
                &mut self.extra
            }
        }

        impl Fields for $name {
            fn each_field<E>(
                &self,
                mut f: impl FnMut(&str, Field<'_>) -> Result<(), E>,
            ) -> Result<(), E> {
                let mut extra = self.extra.iter().peekable();
                $(
                    while let Some((k, v)) = extra.next_if(|(k, _)| k.as_str() < $key) {
                        f(k, Field::Value(v))?;
                    }
                    if self.$field.is_some() || self.present & Self::bit($keys::$variant) != 0 {
                        f($key, self.$field.as_field())?;
                        // A value of the wrong type kept under the known key's name (see
                        // `Record`) gives way to a value set since: never a key twice.
                        let _ = extra.next_if(|(k, _)| k.as_str() == $key);
                    }
                )*
                for (k, v) in extra {
                    f(k, Field::Value(v))?;
                }
                Ok(())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_fields(self, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct EntryVisitor;
                impl<'de> Visitor<'de> for EntryVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("an object (", stringify!($name), ")"))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key_seed(KeyOf($name::KEYS))? {
                            match key {
                                Key::Known(i) => {
                                    let bit = 1 << i;
                                    if out.present & bit != 0 {
                                        return Err(de::Error::custom(format_args!(
                                            "duplicate key \"{}\"", $name::KEYS[i]
                                        )));
                                    }
                                    out.present |= bit;
                                    match $name::KEYS[i] {
                                        $( $key => out.$field = map.next_value()?, )*
                                        _ => unreachable!("KEYS lists every field"),
                                    }
                                }
                                Key::Other(key) => {
                                    let value = unknown_value(&mut map)?;
                                    if out.extra.contains_key(&key) {
                                        return Err(de::Error::custom(format_args!("duplicate key \"{key}\"")));
                                    }
                                    out.extra.insert(key, value);
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(EntryVisitor)
            }
        }
    };
}

/// The known keys of an entry (or of its checkpoints) and the kind of value each must have:
/// what the lazy loader checks an entry against before it keeps it as text
/// (`store::format::canonical`), so that parsing it later cannot fail.
pub(crate) struct Schema {
    pub keys: &'static [&'static str],
    pub kinds: &'static [Kind],
}

/// What a known key's value must be (besides `null`, which every known key accepts).
pub(crate) enum Kind {
    /// A string (a [`Status`] is any string too).
    Str,
    /// An integer from 0 to `u64::MAX`.
    U64,
    /// An object of this schema.
    Record(&'static Schema),
}

/// The [`Kind`] of a known field's type.
pub(crate) trait HasKind {
    const KIND: Kind;
}

impl HasKind for String {
    const KIND: Kind = Kind::Str;
}

impl HasKind for Status {
    const KIND: Kind = Kind::Str;
}

impl HasKind for u64 {
    const KIND: Kind = Kind::U64;
}

/// One value of an object of the state file, as it is written: a known field's value (see
/// [`Fields`]) or an unknown key's value, kept as read.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Null,
    Str(&'a str),
    U64(u64),
    Checkpoints(&'a Checkpoints),
    Processed(&'a Entries<ProcessedEntry>),
    Failed(&'a Entries<FailedEntry>),
    Value(&'a Value),
}

/// An object of the state file (the state, an entry, its checkpoints): its keys and values in
/// the order they are written, unknown keys merged in sorted order. The one place that order
/// is decided: [`Serialize`] and the fast writer of [`crate::store::format`] both walk it.
pub trait Fields {
    fn each_field<E>(&self, f: impl FnMut(&str, Field<'_>) -> Result<(), E>) -> Result<(), E>;
}

fn serialize_fields<T: Fields, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    value.each_field(|key, field| map.serialize_entry(key, &field))?;
    map.end()
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Field::Null => s.serialize_none(),
            Field::Str(text) => s.serialize_str(text),
            Field::U64(n) => s.serialize_u64(n),
            Field::Checkpoints(c) => c.serialize(s),
            Field::Processed(m) => m.serialize(s),
            Field::Failed(m) => m.serialize(s),
            Field::Value(v) => v.serialize(s),
        }
    }
}

/// A known field's value as a [`Field`] (`None` is `null`).
trait AsField {
    fn as_field(&self) -> Field<'_>;
}

impl AsField for Option<String> {
    fn as_field(&self) -> Field<'_> {
        self.as_deref().map_or(Field::Null, Field::Str)
    }
}

impl AsField for Option<u64> {
    fn as_field(&self) -> Field<'_> {
        self.map_or(Field::Null, Field::U64)
    }
}

impl AsField for Option<Status> {
    fn as_field(&self) -> Field<'_> {
        self.as_ref()
            .map_or(Field::Null, |s| Field::Str(s.as_str()))
    }
}

impl AsField for Option<Checkpoints> {
    fn as_field(&self) -> Field<'_> {
        self.as_ref().map_or(Field::Null, Field::Checkpoints)
    }
}

/// The value of a key this build does not know, kept as read. A number too large for a
/// float (`1e400`) is kept too: Python reads it as `inf` and writes `Infinity`, and so does
/// the writer (see `store::format::python_number`).
fn unknown_value<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Value, A::Error> {
    map.next_value()
}

/// An entry type of the state file (an entry, or its checkpoints): its known keys and where
/// its unknown keys go. A file that Python reads but whose known key has a value of the
/// wrong type (`"retry_count": 3.0`) is loaded with that value kept among the unknown keys,
/// under its own name, where the writer puts it back in its place (see
/// `store::format::python`).
pub(crate) trait Record: Fields + Default + serde::de::DeserializeOwned {
    const SCHEMA: Schema;
    fn extra_mut(&mut self) -> &mut Map<String, Value>;
}

/// Why `value` cannot be the value of a known key of `kind`, to follow the key's name:
/// ` is 3.0, not a whole number …`, or `.staged_at is 5, not a string` where a nested record
/// holds the misfit. `None`: it fits (`null` fits every kind).
pub(crate) fn misfit(kind: &Kind, value: &Value) -> Option<String> {
    let whole =
        |n: &serde_json::Number| n.as_u64().is_some() && !n.as_str().contains(['.', 'e', 'E']);
    let what = match value {
        Value::Null => return None,
        Value::Bool(_) => "a boolean",
        Value::Number(n) if whole(n) => "a whole number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let expected = match (kind, value) {
        (Kind::Str, Value::String(_)) => return None,
        (Kind::Str, _) => "a string",
        (Kind::U64, Value::Number(n)) if whole(n) => return None,
        (Kind::U64, _) => "a whole number from 0 to 18446744073709551615",
        (Kind::Record(schema), Value::Object(map)) => {
            return schema
                .keys
                .iter()
                .zip(schema.kinds)
                .find_map(|(key, kind)| Some(format!(".{key}{}", misfit(kind, map.get(*key)?)?)));
        }
        (Kind::Record(_), _) => "an object",
    };
    let shown = match value {
        Value::Number(n) => crate::store::format::python_number(n.as_str()),
        _ => what.to_string(),
    };
    Some(format!(" is {shown}, not {expected}"))
}

/// A key of an entry as read: the index of a known key in `KEYS`, or an unknown key.
enum Key {
    Known(usize),
    Other(String),
}

/// Reads an entry's key, allocating only for a key not in the list (known keys are the
/// common case: one allocation saved per key of every entry).
struct KeyOf(&'static [&'static str]);

impl<'de> de::DeserializeSeed<'de> for KeyOf {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyOf {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|k| *k == key) {
            Some(i) => Key::Known(i),
            None => Key::Other(key.to_owned()),
        })
    }
    fn visit_string<E: de::Error>(self, key: String) -> Result<Key, E> {
        Ok(match self.0.iter().position(|k| *k == key) {
            Some(i) => Key::Known(i),
            None => Key::Other(key),
        })
    }
}

record! {
    /// When each pipeline stage finished (local ISO 8601 strings as stored).
    Checkpoints keyed by CheckpointKey {
        MetadataAt => metadata_at: String = "metadata_at",
        StagedAt => staged_at: String = "staged_at",
        TorrentAt => torrent_at: String = "torrent_at",
        UploadedAt => uploaded_at: String = "uploaded_at",
    }
}

record! {
    /// A release that went (part of) the way through the pipeline.
    ProcessedEntry keyed by ProcessedKey {
        Asin => asin: String = "asin",
        Author => author: String = "author",
        Checkpoints => checkpoints: Checkpoints = "checkpoints",
        Infohash => infohash: String = "infohash",
        ProcessedAt => processed_at: String = "processed_at",
        StagingDir => staging_dir: String = "staging_dir",
        Status => status: Status = "status",
        Title => title: String = "title",
        TorrentPath => torrent_path: String = "torrent_path",
    }
}

record! {
    /// A release whose last attempt failed.
    FailedEntry keyed by FailedKey {
        Asin => asin: String = "asin",
        Author => author: String = "author",
        Error => error: String = "error",
        ErrorType => error_type: String = "error_type",
        FailedAt => failed_at: String = "failed_at",
        FirstFailedAt => first_failed_at: String = "first_failed_at",
        /// Legacy (version 1) name of the source directory.
        Path => path: String = "path",
        RetryCount => retry_count: u64 = "retry_count",
        SourceDir => source_dir: String = "source_dir",
        Title => title: String = "title",
    }
}

/// A pipeline stage that leaves a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Staged,
    Metadata,
    Torrent,
    Uploaded,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Staged,
        Stage::Metadata,
        Stage::Torrent,
        Stage::Uploaded,
    ];

    /// The stage's name on the command line: `staged metadata torrent uploaded`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Staged => "staged",
            Stage::Metadata => "metadata",
            Stage::Torrent => "torrent",
            Stage::Uploaded => "uploaded",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .find(|s| s.name() == name.trim().to_ascii_lowercase())
    }

    /// The checkpoint key: `staged_at`, …
    pub fn key(self) -> &'static str {
        match self {
            Stage::Staged => "staged_at",
            Stage::Metadata => "metadata_at",
            Stage::Torrent => "torrent_at",
            Stage::Uploaded => "uploaded_at",
        }
    }

    /// The status an entry has once this stage is done.
    pub fn status(self) -> Status {
        match self {
            Stage::Staged => Status::Staged,
            Stage::Metadata => Status::MetadataFetched,
            Stage::Torrent => Status::TorrentCreated,
            Stage::Uploaded => Status::Uploaded,
        }
    }
}

impl Checkpoints {
    pub fn get(&self, stage: Stage) -> Option<&str> {
        match stage {
            Stage::Staged => self.staged_at.as_deref(),
            Stage::Metadata => self.metadata_at.as_deref(),
            Stage::Torrent => self.torrent_at.as_deref(),
            Stage::Uploaded => self.uploaded_at.as_deref(),
        }
    }

    pub fn set(&mut self, stage: Stage, at: String) {
        let slot = match stage {
            Stage::Staged => &mut self.staged_at,
            Stage::Metadata => &mut self.metadata_at,
            Stage::Torrent => &mut self.torrent_at,
            Stage::Uploaded => &mut self.uploaded_at,
        };
        *slot = Some(at);
    }
}

impl ProcessedEntry {
    /// The status, as the Python tool read it: a missing status counts as `COMPLETE`.
    pub fn effective_status(&self) -> Status {
        self.status.clone().unwrap_or(Status::Complete)
    }

    pub fn checkpoint(&self, stage: Stage) -> Option<&str> {
        self.checkpoints.as_ref().and_then(|c| c.get(stage))
    }

    /// The path recorded in an artifact field; an empty one is no path, as for the Python tool.
    pub fn artifact_path(&self, field: ArtifactField) -> Option<&str> {
        let value = match field {
            ArtifactField::StagingDir => self.staging_dir.as_deref(),
            ArtifactField::TorrentPath => self.torrent_path.as_deref(),
        };
        super::stored_path::recorded(value)
    }
}

impl FailedEntry {
    /// The source directory, from `source_dir` or the legacy `path`.
    pub fn source(&self) -> Option<&str> {
        self.source_dir.as_deref().or(self.path.as_deref())
    }
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub version: u64,
    pub processed: Entries<ProcessedEntry>,
    pub failed: Entries<FailedEntry>,
    /// Top-level keys this build does not know, kept as they were read.
    pub extra: Map<String, Value>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: CURRENT_VERSION,
            processed: Entries::new(),
            failed: Entries::new(),
            extra: Map::new(),
        }
    }
}

impl Fields for State {
    fn each_field<E>(&self, mut f: impl FnMut(&str, Field<'_>) -> Result<(), E>) -> Result<(), E> {
        let known = [
            ("failed", Field::Failed(&self.failed)),
            ("processed", Field::Processed(&self.processed)),
            ("version", Field::U64(self.version)),
        ];
        let mut extra = self.extra.iter().peekable();
        for (key, field) in known {
            while let Some((k, v)) = extra.next_if(|(k, _)| k.as_str() < key) {
                f(k, Field::Value(v))?;
            }
            f(key, field)?;
        }
        for (k, v) in extra {
            f(k, Field::Value(v))?;
        }
        Ok(())
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_fields(self, s)
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StateVisitor;
        impl<'de> Visitor<'de> for StateVisitor {
            type Value = State;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with \"version\", \"processed\" and \"failed\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<State, A::Error> {
                let mut version: Option<Option<u64>> = None;
                let mut processed: Option<Option<Entries<ProcessedEntry>>> = None;
                let mut failed: Option<Option<Entries<FailedEntry>>> = None;
                let mut extra = Map::new();
                fn once<T, E: de::Error>(slot: &Option<T>, key: &str) -> Result<(), E> {
                    match slot {
                        Some(_) => Err(E::custom(format_args!("duplicate key \"{key}\""))),
                        None => Ok(()),
                    }
                }
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "version" => {
                            once(&version, "version")?;
                            version = Some(map.next_value()?);
                        }
                        "processed" => {
                            once(&processed, "processed")?;
                            processed = Some(map.next_value()?);
                        }
                        "failed" => {
                            once(&failed, "failed")?;
                            failed = Some(map.next_value()?);
                        }
                        _ => {
                            let value = unknown_value(&mut map)?;
                            if extra.contains_key(&key) {
                                return Err(de::Error::custom(format_args!(
                                    "duplicate key \"{key}\""
                                )));
                            }
                            extra.insert(key, value);
                        }
                    }
                }
                // A file without a version predates versioning: version 1.
                let version = version.flatten().unwrap_or(1);
                if version == 0 {
                    return Err(de::Error::custom("\"version\" must be 1 or more, found 0"));
                }
                Ok(State {
                    version,
                    processed: processed.flatten().unwrap_or_default(),
                    failed: failed.flatten().unwrap_or_default(),
                    extra,
                })
            }
        }
        d.deserialize_map(StateVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_null_keys_are_told_apart() {
        let entry: ProcessedEntry =
            serde_json::from_str(r#"{"title": null, "zeta": 1, "asin": "B1"}"#).unwrap();
        assert_eq!(entry.asin.as_deref(), Some("B1"));
        assert!(entry.has_key(ProcessedKey::Title) && entry.title.is_none());
        assert!(!entry.has_key(ProcessedKey::Status));
        let back = serde_json::to_string(&entry).unwrap();
        assert_eq!(back, r#"{"asin":"B1","title":null,"zeta":1}"#);
    }

    #[test]
    fn a_value_set_in_code_counts_as_a_key() {
        // Migration asks has_key(); a value set without mark_present() must count, or a v1
        // state built in code would have its checkpoints replaced.
        let mut entry = ProcessedEntry::default();
        assert!(!entry.has_key(ProcessedKey::Checkpoints));
        entry.checkpoints = Some(Checkpoints::default());
        assert!(entry.has_key(ProcessedKey::Checkpoints));
    }

    #[test]
    fn unknown_keys_are_merged_in_sorted_order() {
        let mut entry = FailedEntry::default();
        entry.extra.insert("aaa".into(), Value::Bool(true));
        entry.extra.insert("mam".into(), Value::Null);
        entry.retry_count = Some(3);
        entry.mark_present(FailedKey::Error);
        let text = serde_json::to_string(&entry).unwrap();
        assert_eq!(
            text,
            r#"{"aaa":true,"error":null,"mam":null,"retry_count":3}"#
        );
    }

    #[test]
    fn duplicate_keys_and_ids_are_refused() {
        let dup_key = r#"{"version": 2, "processed": {"A": {"title": "x", "title": "y"}}}"#;
        assert!(serde_json::from_str::<State>(dup_key).is_err());
        let dup_id = r#"{"version": 2, "processed": {"A": {}, "A": {}}}"#;
        let err = serde_json::from_str::<State>(dup_id).unwrap_err();
        assert!(err.to_string().contains("duplicate ID"), "{err}");
    }

    #[test]
    fn wrong_types_are_refused() {
        for bad in [
            r#"[]"#,
            r#"{"version": "2"}"#,
            r#"{"processed": []}"#,
            r#"{"processed": {"A": 3}}"#,
            r#"{"failed": {"A": {"retry_count": "x"}}}"#,
            r#"{"processed": {"A": {"checkpoints": []}}}"#,
        ] {
            assert!(serde_json::from_str::<State>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_beyond_a_float_and_big_integers_are_kept_in_unknown_values() {
        // Python reads 1e400 as inf and writes Infinity; the writer does the same.
        for text in [
            r#"{"x": 1e400}"#,
            r#"{"processed": {"A": {"x": [1, {"y": -1E+999}]}}}"#,
            r#"{"failed": {"A": {"checkpoints_like": {"z": 1.5e308, "w": 2e308}}}}"#,
        ] {
            let state: State = serde_json::from_str(text).unwrap();
            let written = String::from_utf8(crate::store::format::to_python_json(&state)).unwrap();
            assert!(written.contains("Infinity"), "{text}: {written}");
        }
        let big = r#"{"x": 123456789012345678901234567890, "y": 1e-400, "z": 1.7e308}"#;
        let state: State = serde_json::from_str(big).unwrap();
        assert_eq!(
            state.extra["x"].to_string(),
            "123456789012345678901234567890"
        );
    }

    #[test]
    fn a_known_key_of_the_wrong_type_is_named_with_what_it_should_be() {
        let retry = &FailedEntry::SCHEMA.kinds[FailedEntry::KEYS
            .iter()
            .position(|k| *k == "retry_count")
            .unwrap()];
        let checkpoints = &ProcessedEntry::SCHEMA.kinds[2];
        let cases: [(&Kind, Value, Option<&str>); 8] = [
            (retry, serde_json::json!(3), None),
            (retry, Value::Null, None),
            (
                retry,
                serde_json::from_str("3.0").unwrap(),
                Some(" is 3.0, not a whole number from 0 to 18446744073709551615"),
            ),
            (
                retry,
                serde_json::from_str("18446744073709551616").unwrap(),
                Some(" is 18446744073709551616, not a whole number from 0 to 18446744073709551615"),
            ),
            (
                retry,
                serde_json::json!(true),
                Some(" is a boolean, not a whole number from 0 to 18446744073709551615"),
            ),
            (
                retry,
                serde_json::json!("3"),
                Some(" is a string, not a whole number from 0 to 18446744073709551615"),
            ),
            (
                checkpoints,
                serde_json::json!([]),
                Some(" is a list, not an object"),
            ),
            (
                checkpoints,
                serde_json::json!({"staged_at": 5, "zz": 1}),
                Some(".staged_at is 5, not a string"),
            ),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(misfit(kind, &value).as_deref(), expected, "{value}");
        }
    }

    #[test]
    fn nulls_are_tolerated_everywhere() {
        let text = r#"{"version": null, "processed": {"A": {"checkpoints": null, "status": null}},
                       "failed": null}"#;
        let state: State = serde_json::from_str(text).unwrap();
        assert_eq!(state.version, 1);
        assert_eq!(state.processed["A"].effective_status(), Status::Complete);
        assert!(state.failed.is_empty());
    }

    #[test]
    fn stage_names_keys_and_statuses() {
        assert_eq!(Stage::from_name("Metadata"), Some(Stage::Metadata));
        assert_eq!(Stage::Torrent.key(), "torrent_at");
        assert_eq!(Stage::Uploaded.status(), Status::Uploaded);
        assert_eq!(Stage::from_name("bogus"), None);
    }
}
