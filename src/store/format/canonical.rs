//! The writer's own layout, recognised: one scan over a file proves, for every entry of the
//! `processed` and `failed` maps, the two things that let its text stand for it, and finds
//! that text:
//!
//! - the text is exactly what the writer would produce for it (two-space indent at its depth,
//!   `": "` and `,`, keys strictly increasing, strings escaped as Python escapes them, numbers
//!   spelled as Python spells them), so writing the text back is writing the entry;
//! - it parses: valid JSON, every known key's value of its type ([`Schema`]), no duplicate
//!   keys (strictly increasing keys), so parsing it cannot fail.
//!
//! The rest of the file, with `{}` in place of the two maps, is parsed by serde_json as a
//! [`State`], under the rules of the full parse. At the first doubt (any other layout, an
//! escape Python would not write, a number Python would spell otherwise, a value of the wrong
//! type, deep nesting) the answer is `None` and the full parse decides, with its own messages.
//!
//! Two loads use it: the lazy load of an update keeps each entry as its text ([`Entries`]
//! parses one when it is first looked at), and the full parse of a large file parses the
//! texts with two threads.
//!
//! [`Entries`]: crate::state::Entries

use std::ops::Range;
use std::thread::ScopedJoinHandle;

use super::{first_special, python_number, SCAN_IN_TWO_FROM};
use crate::state::model::{Kind, Schema};
use crate::state::{FailedEntry, ProcessedEntry, State};
use crate::store::two_cpus;

/// Objects and arrays nested deeper than this are left to the full parse (whose recursion
/// limit is 128).
const MAX_DEPTH: usize = 64;

/// A file in the writer's layout: its state without entries, and each entry's ID and text.
pub(super) struct Scanned {
    /// Everything but the entries of `processed` and `failed` (those maps are empty).
    pub state: State,
    pub processed: Vec<(String, Range<usize>)>,
    pub failed: Vec<(String, Range<usize>)>,
}

/// The state in `text`, scanned; `None` when the full parse must decide.
pub(super) fn scan(text: &str) -> Option<Scanned> {
    let maps = std::thread::scope(|scope| {
        let mut scan = Scan {
            bytes: text.as_bytes(),
            pos: 0,
            tail: None,
        };
        if text.len() >= SCAN_IN_TWO_FROM && two_cpus() {
            scan.tail = second_half(text).and_then(|boundary| {
                let job = std::thread::Builder::new()
                    .spawn_scoped(scope, move || scan_tail(text.as_bytes(), boundary));
                Some((boundary, job.ok()?))
            });
        }
        scan.state()
    })?;
    let mut rest = String::with_capacity(4096);
    let mut from = 0;
    for map in &maps {
        rest.push_str(&text[from..=map.braces.start]);
        from = map.braces.end;
    }
    rest.push_str(&text[from..]);
    let mut scanned = Scanned {
        state: serde_json::from_str(&rest).ok()?,
        processed: Vec::new(),
        failed: Vec::new(),
    };
    for map in maps {
        let entries = map
            .entries
            .into_iter()
            .map(|(id, range)| (unescape(&text.as_bytes()[id]), range))
            .collect();
        if map.processed {
            scanned.processed = entries;
        } else {
            scanned.failed = entries;
        }
    }
    Some(scanned)
}

/// Where a processed entry ends after the middle of the file (at the `,` before the next
/// one), a guess for where the second thread starts. The first thread proves it right by
/// getting there while scanning the processed map; else the second thread's work is not used.
fn second_half(text: &str) -> Option<usize> {
    const END_OF_ENTRY: &str = "\n    },\n    \"";
    let middle = text.len() / 2;
    let found = text.as_bytes()[middle..]
        .windows(END_OF_ENTRY.len())
        .position(|w| w == END_OF_ENTRY.as_bytes())?;
    Some(middle + found + "\n    }".len())
}

/// The second thread: the processed entries from `boundary` (a `,`) to the end of the map.
fn scan_tail(bytes: &[u8], boundary: usize) -> Option<Tail> {
    let mut scan = Scan {
        bytes,
        pos: boundary,
        tail: None,
    };
    let mut entries = Vec::new();
    let mut last = None;
    while scan.comma()? {
        scan.newline_indent(2)?;
        entries.push(scan.entry(&mut last, &ProcessedEntry::SCHEMA)?);
    }
    Some(Tail {
        entries,
        end: scan.pos,
    })
}

/// What the second thread found: entries, and where the last one ends.
struct Tail {
    entries: Vec<(Range<usize>, Range<usize>)>,
    end: usize,
}

/// A `processed` or `failed` map found by the scan.
struct EntryMap {
    processed: bool,
    /// From its `{` to its `}`.
    braces: Range<usize>,
    /// Each entry's ID (the text between the quotes) and its object's text.
    entries: Vec<(Range<usize>, Range<usize>)>,
}

/// A cursor over the file. Every method either consumes what it checks and answers `Some`, or
/// answers `None`: not the canonical layout, or not valid.
struct Scan<'a, 's> {
    bytes: &'a [u8],
    pos: usize,
    /// The second thread scanning the processed map from a boundary, if there is one.
    tail: Option<(usize, ScopedJoinHandle<'s, Option<Tail>>)>,
}

impl<'a> Scan<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        self.bytes[self.pos..].starts_with(text).then(|| {
            self.pos += text.len();
        })
    }

    /// `,` when another member follows (`true`), nothing when the object or array ends.
    fn comma(&mut self) -> Option<bool> {
        let more = self.peek()? == b',';
        self.pos += usize::from(more);
        Some(more)
    }

    /// A newline and two spaces per level of `depth`.
    fn newline_indent(&mut self, depth: usize) -> Option<()> {
        let end = self.pos + 1 + 2 * depth;
        let run = self.bytes.get(self.pos..end)?;
        (run[0] == b'\n' && run[1..].iter().all(|&b| b == b' ')).then(|| {
            self.pos = end;
        })
    }

    /// The top-level object; the entry maps in it.
    fn state(&mut self) -> Option<Vec<EntryMap>> {
        self.literal(b"{")?;
        let mut maps = Vec::new();
        let mut last = None;
        loop {
            self.newline_indent(1)?;
            let key = self.key(&mut last)?;
            self.literal(b": ")?;
            match &self.bytes[key] {
                b"processed" => maps.push(self.entry_map(true, &ProcessedEntry::SCHEMA)?),
                b"failed" => maps.push(self.entry_map(false, &FailedEntry::SCHEMA)?),
                _ => self.value(1, None)?,
            }
            if !self.comma()? {
                break;
            }
        }
        self.newline_indent(0)?;
        self.literal(b"}")?;
        // Nothing follows (the writer adds no newline).
        (self.pos == self.bytes.len()).then_some(maps)
    }

    /// `{"ID": {entry}, …}` at depth 1, each entry an object of `schema`.
    fn entry_map(&mut self, processed: bool, schema: &Schema) -> Option<EntryMap> {
        let open = self.pos;
        self.literal(b"{")?;
        let mut entries = Vec::new();
        if self.peek()? != b'}' {
            let mut last = None;
            loop {
                self.newline_indent(2)?;
                entries.push(self.entry(&mut last, schema)?);
                if processed && self.tail.as_ref().is_some_and(|(at, _)| *at == self.pos) {
                    if let Some(tail) = self.join_tail(&last) {
                        entries.extend(tail.entries);
                        self.pos = tail.end;
                        break;
                    }
                }
                if !self.comma()? {
                    break;
                }
            }
            self.newline_indent(1)?;
        }
        let close = self.pos;
        self.literal(b"}")?;
        Some(EntryMap {
            processed,
            braces: open..close,
            entries,
        })
    }

    /// `"ID": {entry}` (after its indentation): the ID's and the entry's text.
    fn entry(
        &mut self,
        last: &mut Option<Range<usize>>,
        schema: &Schema,
    ) -> Option<(Range<usize>, Range<usize>)> {
        let id = self.key(last)?;
        self.literal(b": ")?;
        let start = self.pos;
        if self.peek()? != b'{' {
            return None;
        }
        self.object(2, Some(schema))?;
        Some((id, start..self.pos))
    }

    /// The second thread's entries, if it found them and they follow the entry with ID
    /// `last` in sort order.
    fn join_tail(&mut self, last: &Option<Range<usize>>) -> Option<Tail> {
        let (_, job) = self.tail.take()?;
        let tail = job.join().ok()??;
        if let (Some(last), Some((first, _))) = (last, tail.entries.first()) {
            if !in_order(self.bytes, last, first) {
                return None;
            }
        }
        Some(tail)
    }

    /// An object whose `{` is at nesting `depth`; with a schema, its known keys' values are
    /// checked against their kinds.
    fn object(&mut self, depth: usize, schema: Option<&Schema>) -> Option<()> {
        let mut last = None;
        self.members(depth, b'{', b'}', |scan| {
            let key = &scan.bytes[scan.key(&mut last)?];
            scan.literal(b": ")?;
            let kind = schema.and_then(|schema| {
                let known = schema.keys.iter().position(|k| k.as_bytes() == key)?;
                Some(&schema.kinds[known])
            });
            scan.value(depth + 1, kind)
        })
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        self.members(depth, b'[', b']', |scan| scan.value(depth + 1, None))
    }

    /// `open` at nesting `depth`, the members (each read by `member`) on lines of their own,
    /// `close` on a line of its own; or `open` and `close` alone when there are none.
    fn members(
        &mut self,
        depth: usize,
        open: u8,
        close: u8,
        mut member: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.literal(&[open])?;
        if self.peek()? == close {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.newline_indent(depth + 1)?;
            member(self)?;
            if !self.comma()? {
                break;
            }
        }
        self.newline_indent(depth)?;
        self.literal(&[close])
    }

    /// A value at `depth`: of `kind` (or `null`) for a known key, any value otherwise.
    fn value(&mut self, depth: usize, kind: Option<&Kind>) -> Option<()> {
        match (self.peek()?, kind) {
            (b'n', _) => self.literal(b"null"),
            (b'"', None | Some(Kind::Str)) => self.string().map(drop),
            (b'0'..=b'9', Some(Kind::U64)) => {
                let digits = &self.bytes[self.number()];
                let canonical = digits == b"0" || digits[0] != b'0';
                let fits = std::str::from_utf8(digits).ok()?.parse::<u64>().is_ok();
                (canonical && fits).then_some(())
            }
            (b'{', Some(Kind::Record(schema))) => self.object(depth, Some(schema)),
            (_, Some(_)) => None,
            (b'{', None) => self.object(depth, None),
            (b'[', None) => self.array(depth),
            (b't', None) => self.literal(b"true"),
            (b'f', None) => self.literal(b"false"),
            (b'-' | b'0'..=b'9', None) => {
                let token = std::str::from_utf8(&self.bytes[self.number()]).ok()?;
                (json_number(token) && python_number(token) == token).then_some(())
            }
            _ => None,
        }
    }

    /// The characters a number can be made of (checked by the caller).
    fn number(&mut self) -> Range<usize> {
        let start = self.pos;
        let len = self.bytes[start..]
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(self.bytes.len() - start);
        self.pos += len;
        start..start + len
    }

    /// An object key after `last` in sort order: the text between its quotes.
    fn key(&mut self, last: &mut Option<Range<usize>>) -> Option<Range<usize>> {
        let (content, _) = self.string()?;
        if let Some(last) = last {
            if !in_order(self.bytes, last, &content) {
                return None;
            }
        }
        *last = Some(content.clone());
        Some(content)
    }

    /// A string escaped as Python escapes it: the text between its quotes, and whether it
    /// holds an escape.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        self.literal(b"\"")?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos += first_special(&self.bytes[self.pos..])?;
            match self.bytes[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Some((start..self.pos - 1, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                // A raw control character: not JSON.
                _ => return None,
            }
        }
    }

    /// One escape, at its backslash: `\"`, `\\`, `\b \f \n \r \t`, or `\u00xx` (lowercase)
    /// for another control character. Python writes no other.
    fn escape(&mut self) -> Option<()> {
        match *self.bytes.get(self.pos + 1)? {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.pos += 2;
                Some(())
            }
            b'u' => {
                let hex = self.bytes.get(self.pos + 2..self.pos + 6)?;
                let lower_hex = |b: u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
                let code = match hex {
                    [b'0', b'0', high @ (b'0' | b'1'), low] if lower_hex(*low) => {
                        (high - b'0') * 16 + (*low as char).to_digit(16)? as u8
                    }
                    _ => return None,
                };
                // These five have short escapes.
                if matches!(code, 0x08 | 0x09 | 0x0A | 0x0C | 0x0D) {
                    return None;
                }
                self.pos += 6;
                Some(())
            }
            _ => None,
        }
    }
}

/// Whether the key between the quotes at `a` sorts strictly before the one at `b`, as Python
/// sorts them (by code point, which is the byte order of UTF-8).
fn in_order(bytes: &[u8], a: &Range<usize>, b: &Range<usize>) -> bool {
    let (a, b) = (&bytes[a.clone()], &bytes[b.clone()]);
    if a.contains(&b'\\') || b.contains(&b'\\') {
        return unescape(a) < unescape(b);
    }
    a < b
}

/// The text of a string whose content (checked by [`Scan::string`]) is `content`.
fn unescape(content: &[u8]) -> String {
    if !content.contains(&b'\\') {
        return std::str::from_utf8(content)
            .expect("the file is UTF-8")
            .to_owned();
    }
    let quoted = [b"\"", content, b"\""].concat();
    serde_json::from_slice(&quoted).expect("a string checked by the scan")
}

/// Whether `token` is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn json_number(token: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut s = token.as_bytes();
    if let [b'-', rest @ ..] = s {
        s = rest;
    }
    let int = digits(s);
    if int == 0 || (int > 1 && s[0] == b'0') {
        return false;
    }
    s = &s[int..];
    if let [b'.', rest @ ..] = s {
        let frac = digits(rest);
        if frac == 0 {
            return false;
        }
        s = &rest[frac..];
    }
    if let [b'e' | b'E', rest @ ..] = s {
        let rest = match rest {
            [b'+' | b'-', rest @ ..] => rest,
            rest => rest,
        };
        let exp = digits(rest);
        if exp == 0 {
            return false;
        }
        s = &rest[exp..];
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format::{parse_state, parse_state_lazy, to_python_json};

    /// The lazy load of `text`, if the scan takes it.
    fn lazy(text: &str) -> Option<State> {
        scan(text)?;
        Some(parse_state_lazy(text.as_bytes().to_vec()).unwrap())
    }

    const FILE: &str = r#"{
  "failed": {
    "B2": {
      "error": "tab\there \"quoted\" \u001f",
      "retry_count": 3,
      "zz_unknown": [
        1.5,
        {
          "a": null,
          "b": true
        },
        []
      ]
    }
  },
  "processed": {
    "B1": {
      "checkpoints": {
        "staged_at": "2026-01-01T00:00:00",
        "uploaded_at": null
      },
      "status": "COMPLETE",
      "title": "Ünïcödé 東京"
    },
    "B3": {}
  },
  "version": 2
}"#;

    #[test]
    fn a_canonical_file_is_loaded_with_its_entries_as_text() {
        let state = lazy(FILE).expect("canonical");
        assert_eq!(state.processed.unparsed(), 2);
        assert_eq!(state.failed.unparsed(), 1);
        assert_eq!(state, parse_state(FILE.as_bytes()).unwrap());
        assert_eq!(to_python_json(&state), FILE.as_bytes());
        assert_eq!(state.failed["B2"].retry_count, Some(3));
    }

    #[test]
    fn anything_not_written_as_the_writer_writes_goes_to_the_full_parse() {
        let cases = [
            ("\"tab\\there", "\"tab\\u0009here"),
            ("\\u001f", "\\u001F"),
            ("\\\"quoted", "\\/quoted"),
            ("Ünïcödé", "\\u00dcn\\u00efc\\u00f6d\\u00e9"),
            ("1.5", "1.50"),
            ("1.5", "1e400"),
            ("1.5", "-0"),
            ("1.5", "01"),
            ("\"retry_count\": 3", "\"retry_count\": 3.0"),
            ("\"retry_count\": 3", "\"retry_count\": -3"),
            (
                "\"retry_count\": 3",
                "\"retry_count\": 18446744073709551616",
            ),
            ("\"retry_count\": 3", "\"retry_count\": \"3\""),
            ("\"status\": \"COMPLETE\"", "\"status\": 7"),
            ("\"B3\": {}", "\"B3\": []"),
            ("\"B3\": {}", "\"B0\": {}"),
            (
                "\"a\": null,\n          \"b\"",
                "\"b\": null,\n          \"a\"",
            ),
            (
                "\"a\": null,\n          \"b\"",
                "\"a\": null,\n          \"a\"",
            ),
            ("\"uploaded_at\": null", "\"uploaded_at\" : null"),
            ("\n  \"version\": 2\n}", "\n  \"version\": 2\n}\n"),
            ("      \"status\"", "     \"status\""),
        ];
        for (from, to) in cases {
            assert!(FILE.contains(from), "{from}");
            let text = FILE.replacen(from, to, 1);
            assert!(lazy(&text).is_none(), "{to:?} was taken as canonical");
        }
    }

    #[test]
    fn numbers_are_checked_against_the_json_grammar() {
        for ok in ["0", "-1", "1.5", "1e5", "1E+5", "-0.5e-3"] {
            assert!(json_number(ok), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1-", "--1", "0x1",
        ] {
            assert!(!json_number(bad), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_goes_to_the_full_parse() {
        let mut value = serde_json::json!(1);
        for _ in 0..MAX_DEPTH {
            value = serde_json::json!([value]);
        }
        let text = String::from_utf8(to_python_json(&serde_json::json!({ "x": value }))).unwrap();
        assert!(parse_state(text.as_bytes()).is_ok());
        assert!(lazy(&text).is_none());
    }

    #[test]
    fn keys_with_escapes_are_read_and_sorted_by_their_text() {
        // `a"` sorts before `a#` (0x22 < 0x23), though its escape `a\"` would sort after.
        let state = State {
            failed: [
                ("a\"".to_string(), FailedEntry::default()),
                ("a#".to_string(), FailedEntry::default()),
            ]
            .into(),
            ..State::default()
        };
        let text = String::from_utf8(to_python_json(&state)).unwrap();
        let loaded = lazy(&text).expect("canonical");
        assert_eq!(loaded.failed.unparsed(), 2);
        assert_eq!(loaded, state);
        let swapped = text
            .replacen("\"a\\\"\"", "\"a%\"", 1)
            .replacen("\"a#\"", "\"a\\\"\"", 1);
        assert!(lazy(&swapped).is_none(), "{swapped}");
    }

    /// A state of `n` processed and `n / 10` failed entries, over 1 MiB from 2000 entries.
    fn large(n: usize) -> State {
        let mut state = State::default();
        for i in 0..n {
            let mut entry = ProcessedEntry::default();
            entry.title = Some(format!("Title {i} — {}", "x".repeat(500)));
            entry.status = Some(crate::Status::Complete);
            state.processed.insert(format!("B{i:09}"), entry);
            if i % 10 == 0 {
                let mut failed = FailedEntry::default();
                failed.retry_count = Some(i as u64);
                state.failed.insert(format!("F{i:09}"), failed);
            }
        }
        state
    }

    #[test]
    fn a_large_file_is_scanned_in_two_halves_that_meet() {
        let state = large(3000);
        let text = String::from_utf8(to_python_json(&state)).unwrap();
        assert!(text.len() >= SCAN_IN_TWO_FROM);
        let boundary = second_half(&text).expect("an entry ends after the middle");
        let tail = scan_tail(text.as_bytes(), boundary).expect("the tail scans");
        let after = state.processed.len() - text[..boundary].matches("\n    \"B").count();
        assert_eq!(tail.entries.len(), after);
        assert_eq!(&text[tail.end..tail.end + 4], "\n  }");

        let loaded = lazy(&text).expect("canonical");
        assert_eq!(loaded.processed.unparsed(), 3000);
        assert!(loaded == parse_state(text.as_bytes()).unwrap());
        assert!(to_python_json(&loaded) == text.as_bytes());
    }

    #[test]
    fn a_second_half_that_starts_outside_the_processed_map_is_not_used() {
        // The failed map holds most of the file: the guessed boundary is in it.
        let mut state = large(100);
        for i in 0..3000 {
            let mut failed = FailedEntry::default();
            failed.error = Some("e".repeat(500));
            state.failed.insert(format!("A{i:09}"), failed);
        }
        let text = String::from_utf8(to_python_json(&state)).unwrap();
        let boundary = second_half(&text).unwrap();
        assert!(boundary < text.find("\n  \"processed\"").unwrap());
        let loaded = lazy(&text).expect("canonical");
        assert_eq!(loaded.failed.unparsed(), state.failed.len());
        assert!(loaded == parse_state(text.as_bytes()).unwrap());
        assert!(to_python_json(&loaded) == text.as_bytes());
    }
}
