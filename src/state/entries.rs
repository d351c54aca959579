//! [`Entries`]: the `processed` and `failed` maps of the state, ID → entry, sorted by ID.
//!
//! A state loaded for an update keeps each entry as the text it was read as until something
//! looks at it. A single-entry update of a 100 000-entry state then parses one entry instead
//! of all of them, and writes the others back as the bytes they were. The loader only leaves
//! an entry as text after checking that the text is exactly what the writer would produce for
//! it and that it parses (`store::format::canonical`), so neither reading it later nor writing it
//! back can differ from a state parsed in full.

use std::collections::btree_map::{self, BTreeMap};
use std::fmt;
use std::ops::{Bound, Index, Range};
use std::sync::{Arc, OnceLock};

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::view::View;

/// A sorted map of entries keyed by ID, with the part of `BTreeMap`'s interface the state
/// needs. Entries still held as text are parsed on first access, which cannot fail (they were
/// checked at load).
pub struct Entries<T> {
    map: BTreeMap<String, Slot<T>>,
    /// Entries kept as their text because a value in them cannot be used as it is (a known
    /// key of the wrong type, an entry that is not an object, a `NaN` or a lone surrogate):
    /// ID → what is wrong, naming the key. Such an entry is written back as its text, is
    /// shown as well as it can be, and must not be changed (see [`Entries::problem`]).
    problems: BTreeMap<String, String>,
}

/// One entry: its text as read (while it is still exactly that) and its parsed value (once
/// something asked for it). At least one of the two is always there. The value is boxed:
/// a slot of an entry never looked at is then 40 bytes, not the size of an entry, which
/// keeps building the map of a large file cheap.
struct Slot<T> {
    text: Option<EntryText>,
    value: OnceLock<Box<T>>,
}

/// The text of one entry inside the loaded file, shared by all the entries of that file.
#[derive(Clone)]
struct EntryText {
    file: Arc<String>,
    range: Range<usize>,
}

impl EntryText {
    fn new(file: Arc<String>, range: Range<usize>) -> EntryText {
        debug_assert!(file.get(range.clone()).is_some());
        EntryText { file, range }
    }

    fn as_str(&self) -> &str {
        &self.file[self.range.clone()]
    }
}

/// Parses the text of an entry that the load checked (`store::format::canonical`): it cannot
/// fail, and failing would be a bug in that check.
pub(crate) fn parse_checked<T: DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("an entry checked when loaded does not parse: {e}"))
}

/// How the writer finds an entry: as the text it was read as, or as a value.
pub(crate) enum Stored<'a, T> {
    Text(&'a str),
    Value(&'a T),
}

impl<T: Clone> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot {
            text: self.text.clone(),
            value: self.value.clone(),
        }
    }
}

impl<T: DeserializeOwned> Slot<T> {
    fn parsed(value: T) -> Slot<T> {
        Slot {
            text: None,
            value: OnceLock::from(Box::new(value)),
        }
    }

    fn get(&self) -> &T {
        self.value.get_or_init(|| {
            let text = self
                .text
                .as_ref()
                .expect("an entry without a value has its text");
            Box::new(parse_checked(text.as_str()))
        })
    }

    /// The value, for a change: the text no longer describes it.
    fn make_mut(&mut self) -> &mut T {
        self.get();
        self.text = None;
        self.value.get_mut().expect("parsed just now")
    }

    fn into_value(self) -> T {
        self.get();
        *self.value.into_inner().expect("parsed just now")
    }

    fn view<'a, V: View<'a, Entry = T>>(&'a self) -> V {
        if let (Some(text), None) = (&self.text, self.value.get()) {
            if let Some(view) = V::from_text(text.as_str()) {
                return view;
            }
        }
        V::of(self.get())
    }

    fn stored(&self) -> Stored<'_, T> {
        match &self.text {
            Some(text) => Stored::Text(text.as_str()),
            None => Stored::Value(self.get()),
        }
    }
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries {
            map: BTreeMap::new(),
            problems: BTreeMap::new(),
        }
    }
}

impl<T: Clone> Clone for Entries<T> {
    fn clone(&self) -> Self {
        Entries {
            map: self.map.clone(),
            problems: self.problems.clone(),
        }
    }
}

impl<T: DeserializeOwned> Entries<T> {
    pub fn new() -> Entries<T> {
        Entries::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.map.get(id).map(Slot::get)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.map.get_mut(id).map(Slot::make_mut)
    }

    /// Puts `entry` under `id`; the entry it replaces, if any.
    pub fn insert(&mut self, id: String, entry: T) -> Option<T> {
        self.problems.remove(&id);
        self.map
            .insert(id, Slot::parsed(entry))
            .map(Slot::into_value)
    }

    pub fn remove(&mut self, id: &str) -> Option<T> {
        self.problems.remove(id);
        self.map.remove(id).map(Slot::into_value)
    }

    /// What is wrong with the entry under `id`, when it was kept as its text because a value
    /// in it cannot be used (see `problems` above): one line naming the key. A command that
    /// must change such an entry refuses it; removing it is fine.
    pub fn problem(&self, id: &str) -> Option<&str> {
        self.problems.get(id).map(String::as_str)
    }

    /// Every entry kept as its text for a problem, with the problem, in ID order.
    pub fn problems(&self) -> impl Iterator<Item = (&String, &str)> + '_ {
        self.problems.iter().map(|(id, why)| (id, why.as_str()))
    }

    /// Puts under `id` an entry that must stay `text` (the bytes the writer puts there, at
    /// an entry's depth), with `value` as well as it could be read, for `problem`.
    pub(crate) fn insert_kept(&mut self, id: String, value: T, text: String, problem: String) {
        let text = Arc::new(text);
        let slot = Slot {
            text: Some(EntryText::new(text.clone(), 0..text.len())),
            value: OnceLock::from(Box::new(value)),
        };
        self.map.insert(id.clone(), slot);
        self.problems.insert(id, problem);
    }

    /// The entry under `id`, first made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, id: String, make: impl FnOnce() -> T) -> &mut T {
        match self.map.entry(id) {
            btree_map::Entry::Occupied(slot) => slot.into_mut().make_mut(),
            btree_map::Entry::Vacant(slot) => slot.insert(Slot::parsed(make())).make_mut(),
        }
    }

    /// Keeps the entries for which `keep` is true (an entry looked at is not changed).
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &T) -> bool) {
        self.map.retain(|id, slot| keep(id, slot.get()));
        let map = &self.map;
        self.problems.retain(|id, _| map.contains_key(id));
    }

    /// The entries in ID order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &T)> + '_ {
        self.map.iter().map(|(id, slot)| (id, slot.get()))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + '_ {
        self.map.keys()
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.map.values().map(Slot::get)
    }

    /// The entries in ID order as views (see [`View`]): an entry still held as its text is
    /// viewed from the text, neither parsed whole nor kept parsed; any other from its value.
    pub fn views<'a, V: View<'a, Entry = T>>(
        &'a self,
    ) -> impl Iterator<Item = (&'a String, V)> + 'a {
        self.map.iter().map(|(id, slot)| (id, slot.view()))
    }

    /// Every entry for a change, except those kept as their text for a problem (see
    /// [`Entries::problem`]): a change would lose what they hold.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> + '_ {
        let problems = &self.problems;
        self.map
            .iter_mut()
            .filter(|(id, _)| !problems.contains_key(*id))
            .map(|(_, slot)| slot.make_mut())
    }

    /// Entries kept as their text in `file` (each ID with the range of its entry), given sorted
    /// by ID without duplicates.
    pub(crate) fn from_text(
        file: &Arc<String>,
        entries: Vec<(String, Range<usize>)>,
    ) -> Entries<T> {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let map = entries
            .into_iter()
            .map(|(id, range)| {
                let slot = Slot {
                    text: Some(EntryText::new(file.clone(), range)),
                    value: OnceLock::new(),
                };
                (id, slot)
            })
            .collect();
        Entries {
            map,
            problems: BTreeMap::new(),
        }
    }

    /// How many entries are still the text they were read as.
    pub fn unparsed(&self) -> usize {
        self.map
            .values()
            .filter(|slot| slot.text.is_some() && slot.value.get().is_none())
            .count()
    }

    /// The entries for the writer, in ID order.
    pub(crate) fn stored(&self) -> impl Iterator<Item = (&String, Stored<'_, T>)> + '_ {
        self.map.iter().map(|(id, slot)| (id, slot.stored()))
    }

    /// [`Entries::stored`] cut in two at the middle entry, for two writers.
    #[allow(clippy::type_complexity)] // two iterators of the same item: clearer spelled out
    pub(crate) fn stored_halves(
        &self,
    ) -> (
        impl Iterator<Item = (&String, Stored<'_, T>)> + '_,
        impl Iterator<Item = (&String, Stored<'_, T>)> + '_,
    ) {
        fn stored<'a, T: DeserializeOwned>(
            (id, slot): (&'a String, &'a Slot<T>),
        ) -> (&'a String, Stored<'a, T>) {
            (id, slot.stored())
        }
        // Every ID sorts at or after "": an empty map gives two empty halves.
        let middle = self
            .map
            .keys()
            .nth(self.map.len() / 2)
            .map_or("", String::as_str);
        let head = self
            .map
            .range::<str, _>((Bound::Unbounded, Bound::Excluded(middle)));
        let tail = self
            .map
            .range::<str, _>((Bound::Included(middle), Bound::Unbounded));
        (head.map(stored::<T>), tail.map(stored::<T>))
    }
}

impl<T: DeserializeOwned> Index<&str> for Entries<T> {
    type Output = T;

    fn index(&self, id: &str) -> &T {
        self.get(id)
            .unwrap_or_else(|| panic!("no entry with ID {id:?}"))
    }
}

impl<T: DeserializeOwned> FromIterator<(String, T)> for Entries<T> {
    fn from_iter<I: IntoIterator<Item = (String, T)>>(entries: I) -> Self {
        Entries {
            map: entries
                .into_iter()
                .map(|(id, entry)| (id, Slot::parsed(entry)))
                .collect(),
            problems: BTreeMap::new(),
        }
    }
}

impl<T: DeserializeOwned> Extend<(String, T)> for Entries<T> {
    fn extend<I: IntoIterator<Item = (String, T)>>(&mut self, entries: I) {
        for (id, entry) in entries {
            self.insert(id, entry);
        }
    }
}

impl<T: DeserializeOwned, const N: usize> From<[(String, T); N]> for Entries<T> {
    fn from(entries: [(String, T); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<'a, T: DeserializeOwned> IntoIterator for &'a Entries<T> {
    type Item = (&'a String, &'a T);
    type IntoIter = Box<dyn Iterator<Item = (&'a String, &'a T)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<T: DeserializeOwned + PartialEq> PartialEq for Entries<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: DeserializeOwned + fmt::Debug> fmt::Debug for Entries<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T: DeserializeOwned + Serialize> Serialize for Entries<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (id, entry) in self.iter() {
            map.serialize_entry(id, entry)?;
        }
        map.end()
    }
}

/// `{ID: entry}` read with duplicate IDs refused (a later duplicate would silently win).
impl<'de, T: DeserializeOwned> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of entries keyed by ID")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(id) = map.next_key::<String>()? {
                    let entry: T = map.next_value()?;
                    match out.entry(id) {
                        btree_map::Entry::Vacant(slot) => {
                            slot.insert(Slot::parsed(entry));
                        }
                        btree_map::Entry::Occupied(slot) => {
                            return Err(de::Error::custom(format_args!(
                                "duplicate ID \"{}\"",
                                slot.key()
                            )));
                        }
                    }
                }
                Ok(Entries {
                    map: out,
                    problems: BTreeMap::new(),
                })
            }
        }
        d.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FailedEntry;

    fn from_file(file: &str, entries: &[(&str, &str)]) -> Entries<FailedEntry> {
        let file = Arc::new(file.to_string());
        let entries = entries
            .iter()
            .map(|(id, text)| {
                let start = file.find(text).unwrap();
                (id.to_string(), start..start + text.len())
            })
            .collect();
        Entries::from_text(&file, entries)
    }

    #[test]
    fn entries_kept_as_text_parse_on_first_access() {
        let a = r#"{"retry_count": 1}"#;
        let b = r#"{"retry_count": 2}"#;
        let mut entries = from_file(&format!("[{a}, {b}]"), &[("A", a), ("B", b)]);
        assert_eq!(entries.unparsed(), 2);
        assert_eq!(entries["B"].retry_count, Some(2));
        assert_eq!(entries.unparsed(), 1);
        // Read but unchanged: still written as its text.
        assert!(matches!(entries.stored().nth(1), Some((_, Stored::Text(t))) if t == b));
        entries.get_mut("A").unwrap().retry_count = Some(5);
        assert!(
            matches!(entries.stored().next(), Some((_, Stored::Value(e))) if e.retry_count == Some(5))
        );
        assert_eq!(entries.remove("B").unwrap().retry_count, Some(2));
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn entries_compare_by_value_however_held() {
        let a = r#"{"retry_count": 1}"#;
        let lazy = from_file(a, &[("A", a)]);
        let parsed: Entries<FailedEntry> =
            [("A".to_string(), serde_json::from_str(a).unwrap())].into();
        assert_eq!(lazy, parsed);
        assert_eq!(format!("{lazy:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn halves_cover_the_map_once_in_order() {
        for n in [0, 1, 2, 5] {
            let entries: Entries<FailedEntry> = (0..n)
                .map(|i| (format!("B{i}"), FailedEntry::default()))
                .collect();
            let (head, tail) = entries.stored_halves();
            let ids: Vec<&String> = head.chain(tail).map(|(id, _)| id).collect();
            assert_eq!(ids, entries.keys().collect::<Vec<_>>(), "{n} entries");
        }
    }

    #[test]
    fn retain_does_not_count_as_a_change() {
        let a = r#"{"error_type": "X"}"#;
        let b = r#"{"error_type": "Y"}"#;
        let mut entries = from_file(&format!("{a}{b}"), &[("A", a), ("B", b)]);
        entries.retain(|_, e| e.error_type.as_deref() == Some("Y"));
        assert!(
            matches!(entries.stored().next(), Some((id, Stored::Text(t))) if id == "B" && t == b)
        );
    }

    #[test]
    fn views_read_the_text_without_parsing_and_the_value_once_parsed() {
        use crate::state::view::FailedView;
        let a = r#"{"error_type": "X", "title": "T"}"#;
        let b = r#"{"error_type": "Y"}"#;
        let mut entries = from_file(&format!("{a}{b}"), &[("A", a), ("B", b)]);
        let types = |entries: &Entries<FailedEntry>| -> Vec<Option<String>> {
            entries
                .views::<FailedView>()
                .map(|(_, v)| v.error_type.map(|t| t.0.into_owned()))
                .collect()
        };
        assert_eq!(types(&entries), [Some("X".into()), Some("Y".into())]);
        assert_eq!(entries.unparsed(), 2, "a view parses nothing for good");
        // A changed entry is viewed as it is now, not as its old text.
        entries.get_mut("B").unwrap().error_type = Some("Z".into());
        assert_eq!(types(&entries), [Some("X".into()), Some("Z".into())]);
        assert_eq!(entries.unparsed(), 1);
    }

    #[test]
    fn a_duplicate_id_is_refused() {
        let err =
            serde_json::from_str::<Entries<FailedEntry>>(r#"{"A": {}, "A": {}}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate ID \"A\""), "{err}");
    }
}
