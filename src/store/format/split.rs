//! The fast path for large files in the canonical layout (two-space indent, sorted keys), where
//! nearly all of the file is the `processed` map:
//!
//! 1. `\n  "processed": {` is found, and a scan of what comes before it (the `failed` map)
//!    proves that it is a key of the top-level object, not text inside some other value.
//! 2. The processed map is read entry by entry, each ID and entry by serde_json exactly as in
//!    the full parse. Where there are two CPUs, a second thread reads the entries from the
//!    first entry boundary (`\n    },\n    "`) after the middle of the file; the first thread
//!    reads up to there and so proves that the boundary is one (else the second thread's work is
//!    thrown away and the first goes on alone).
//! 3. The rest of the file, with `{}` in place of the processed map, is parsed by serde_json
//!    as a [`State`]: the top-level rules (version, duplicate keys, unknown keys) are the full
//!    parse's own. The first thread does this while the second finishes, on the guess that the
//!    map ends at the last `\n  }` of the file, and again if the guess was wrong.
//!
//! `None` (use the full parse) for any error or doubt: another layout, IDs not in strictly
//! increasing order (a duplicate, or a file not written sorted), nesting deep enough that the
//! recursion limit of the full parse might be reached.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Parsed;
use crate::state::{ProcessedEntry, State};
use crate::store::two_cpus;

const PROCESSED: &str = "\n  \"processed\": {";
const ENTRY_BOUNDARY: &str = "\n    },\n    \"";

/// The state in `text`, or `None` when the full parse must decide.
pub(super) fn parse(text: &str) -> Option<Parsed> {
    let key_at = text.find(PROCESSED)?;
    let open = key_at + PROCESSED.len() - 1;
    let middle = (text.len() / 2..text.len()).find(|i| text.is_char_boundary(*i))?;
    let boundary = (middle > open && two_cpus())
        .then(|| text[middle..].find(ENTRY_BOUNDARY))
        .flatten()
        .map(|i| middle + i + ENTRY_BOUNDARY.len() - 1);
    let (processed, end, guessed) = std::thread::scope(|scope| {
        let tail = boundary.and_then(|at| {
            std::thread::Builder::new()
                .spawn_scoped(scope, move || entries(text, at, false, None))
                .ok()
        });
        if !top_level_key_at(text.as_bytes(), key_at + 3) {
            return None;
        }
        let boundary = boundary.filter(|_| tail.is_some());
        let (mut head, stop) = entries(text, open + 1, true, boundary)?;
        // While the second thread finishes, the rest of the file is parsed on the guess that
        // the map is closed by the last `\n  }` (true unless an object follows it).
        let guess = match stop {
            Stop::End(end) => end,
            Stop::AtBoundary(_) => text.rfind("\n  }").map(|i| i + 4)?,
        };
        let guessed = (guess, rest_of_state(text, open, guess));
        let end = match (stop, tail) {
            (Stop::AtBoundary(at), Some(tail)) => match tail.join().ok().flatten() {
                Some((rest, Stop::End(end))) => {
                    head.extend(rest);
                    end
                }
                _ => {
                    let (rest, stop) = entries(text, at, false, None)?;
                    head.extend(rest);
                    stop.end()?
                }
            },
            (stop, _) => stop.end()?,
        };
        Some((head, end, guessed))
    })?;
    if !processed.windows(2).all(|w| w[0].0 < w[1].0) {
        return None;
    }
    let state = match guessed {
        (guess, state) if guess == end => state?,
        _ => rest_of_state(text, open, end)?,
    };
    Some(Parsed::Split { state, processed })
}

/// The state without its processed map: the file with `{}` for the map, which starts at
/// `open` and ends before `end`, parsed by serde_json.
fn rest_of_state(text: &str, open: usize, end: usize) -> Option<State> {
    let tail = text.get(end..)?;
    let mut rest = String::with_capacity(open + 2 + tail.len());
    rest.push_str(&text[..open]);
    rest.push_str("{}");
    rest.push_str(tail);
    let state: State = serde_json::from_str(&rest).ok()?;
    state.processed.is_empty().then_some(state)
}

/// Where reading a list of entries stopped.
enum Stop {
    /// At the closing `}`; the map ends before this offset.
    End(usize),
    /// At the boundary asked for, the start of the next ID.
    AtBoundary(usize),
}

impl Stop {
    fn end(self) -> Option<usize> {
        match self {
            Stop::End(end) => Some(end),
            Stop::AtBoundary(_) => None,
        }
    }
}

/// The entries of a map from `at`: just after its `{` (`first`), or at an ID that follows
/// a comma. Stops at `boundary` if an ID starts exactly there, else at the closing `}`.
fn entries(
    text: &str,
    mut at: usize,
    mut first: bool,
    boundary: Option<usize>,
) -> Option<(Vec<(String, ProcessedEntry)>, Stop)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    loop {
        at = skip_space(bytes, at);
        if first && bytes.get(at) == Some(&b'}') {
            return Some((out, Stop::End(at + 1)));
        }
        if !first && boundary == Some(at) {
            return Some((out, Stop::AtBoundary(at)));
        }
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let id: String = one_value(text, &mut at)?;
        at = skip_space(bytes, at);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at += 1;
        let entry: ProcessedEntry = one_value(text, &mut at)?;
        if nests_deeply(&entry) {
            return None;
        }
        out.push((id, entry));
        at = skip_space(bytes, at);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b'}') => return Some((out, Stop::End(at + 1))),
            _ => return None,
        }
        first = false;
    }
}

/// One JSON value starting at `*at` (after optional whitespace), read by serde_json;
/// `*at` moves past it.
fn one_value<T: DeserializeOwned>(text: &str, at: &mut usize) -> Option<T> {
    let mut stream = serde_json::Deserializer::from_str(&text[*at..]).into_iter::<T>();
    let value = stream.next()?.ok()?;
    *at += stream.byte_offset();
    Some(value)
}

/// Whether an entry holds unknown values nested so deeply that the recursion limit of the
/// full parse, where the entry starts two levels further down, might refuse it.
fn nests_deeply(entry: &ProcessedEntry) -> bool {
    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let checkpoints = entry.checkpoints.iter().flat_map(|c| c.extra.values());
    entry
        .extra
        .values()
        .chain(checkpoints)
        .any(|v| depth(v) > 100)
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        at += 1;
    }
    at
}

/// Whether offset `at` (a `"`) is at depth 1 outside any string: a string directly inside
/// the top-level object. Scans everything before it.
fn top_level_key_at(bytes: &[u8], at: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < at {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < at && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= at {
                    return false;
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
        i += 1;
    }
    depth == 1 && bytes.get(at) == Some(&b'"')
}
