//! The byte-exact writer: what Python's
//! `json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)` writes, and the parser
//! that goes with it.
//!
//! Key order comes from the model (sorted maps, sorted known keys); this module supplies the
//! layout (two-space indent, `": "` and `","`), the string escapes (serde_json escapes exactly
//! the characters Python does, with lowercase hex) and Python's number spelling.
//!
//! The state file itself is read by [`parse_state`] and written by [`write_state`], which are
//! built for large files (a second CPU, one pass, few allocations); [`write_python_json`] writes
//! any other document (command output) in the same format.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::ser::Formatter;

use canonical::Scanned;

use super::two_cpus;
use crate::state::entries::{parse_checked, Stored};
use crate::state::model::{Field, Fields};
use crate::state::Entries;
use crate::state::{FailedEntry, ProcessedEntry, State};

/// Parses a state file. The whole file must be UTF-8 (Python's `json.load` on a file opened
/// with `encoding="utf-8"` refuses anything else too); it is checked once, up front, which
/// spares the JSON parser a check per string. The error is one line, for the operator.
///
/// A large file in the byte format mamfast and the Python tool write is scanned (see the
/// `canonical` module) and its entries parsed by two threads, with the same result; anything
/// else, and every error, goes through serde_json alone, so its messages and rules are the
/// only ones.
pub fn parse_state(bytes: &[u8]) -> Result<State, String> {
    load(bytes).map_err(Refused::into_message)
}

/// Why a file was not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Python's `json.load` could not read it either (or its top level is not an object):
    /// the file is corrupt.
    Corrupt(String),
    /// Python reads it, but its `version`, `processed` or `failed` cannot be used (see
    /// [`python::state_of`]): not corrupt, so never moved aside nor replaced by a backup.
    Unusable(String),
}

impl Refused {
    pub(crate) fn into_message(self) -> String {
        match self {
            Refused::Corrupt(why) | Refused::Unusable(why) => why,
        }
    }
}

/// [`parse_state`], telling a corrupt file from an unusable one.
pub(crate) fn load(bytes: &[u8]) -> Result<State, Refused> {
    parse(bytes, SCAN_IN_TWO_FROM).map(Parsed::assemble)
}

/// [`parse_state`] for an update: the entries of a file in the writer's own layout are kept as
/// their text until looked at (see the `canonical` module), which spares a single-entry update
/// the parse of every other entry. Any other file is parsed in full.
pub fn parse_state_lazy(bytes: Vec<u8>) -> Result<State, String> {
    load_lazy(bytes).map_err(Refused::into_message)
}

/// [`parse_state_lazy`], telling a corrupt file from an unusable one.
pub(crate) fn load_lazy(bytes: Vec<u8>) -> Result<State, Refused> {
    utf8(&bytes, SCAN_IN_TWO_FROM).map_err(Refused::Corrupt)?;
    // SAFETY: checked as UTF-8 just now.
    let file = Arc::new(unsafe { String::from_utf8_unchecked(bytes) });
    let Some(scanned) = canonical::scan(&file) else {
        let bytes = Arc::try_unwrap(file)
            .expect("nothing else holds the file")
            .into_bytes();
        return load_owned(bytes);
    };
    let mut state = scanned.state;
    state.processed = Entries::from_text(&file, scanned.processed);
    state.failed = Entries::from_text(&file, scanned.failed);
    Ok(state)
}

/// [`parse_state`] for bytes no longer needed afterwards: they are freed before the maps are
/// built, which lowers the peak memory of a large load by about a third of the file.
pub(crate) fn load_owned(bytes: Vec<u8>) -> Result<State, Refused> {
    let parsed = parse(&bytes, SCAN_IN_TWO_FROM)?;
    drop(bytes);
    Ok(parsed.assemble())
}

/// The state in `bytes`; from `scan_from` bytes on, by way of the scan. What the strict
/// parse refuses is read again as Python reads it ([`python`]): the file is corrupt only when
/// that fails too, with the strict parse's message (the more precise one).
fn parse(bytes: &[u8], scan_from: usize) -> Result<Parsed, Refused> {
    let text = utf8(bytes, scan_from).map_err(Refused::Corrupt)?;
    if text.len() >= scan_from {
        if let Some(scanned) = canonical::scan(text) {
            return Ok(parse_scanned(text, scanned));
        }
    }
    let strict = match serde_json::from_str(text) {
        Ok(state) => return Ok(Parsed::Whole(state)),
        Err(e) => e.to_string(),
    };
    match python::parse(text) {
        Ok(value) => match python::state_of(value) {
            Ok(state) => Ok(Parsed::Whole(state)),
            Err(Refused::Corrupt(_)) => Err(Refused::Corrupt(strict)),
            Err(unusable) => Err(unusable),
        },
        Err(_) => Err(Refused::Corrupt(strict)),
    }
}

/// The entries the scan found, parsed (they cannot fail): the processed ones by two threads
/// where there are two CPUs.
fn parse_scanned(text: &str, scanned: Scanned) -> Parsed {
    fn parse_all<T: DeserializeOwned>(
        text: &str,
        entries: Vec<(String, Range<usize>)>,
    ) -> Vec<(String, T)> {
        let parse = |(id, range): (String, Range<usize>)| (id, parse_checked(&text[range]));
        entries.into_iter().map(parse).collect()
    }
    let Scanned {
        state,
        mut processed,
        failed,
    } = scanned;
    let mut parsed = Vec::new();
    if two_cpus() && processed.len() >= 2 {
        // Behind a lock only so that the tail is still here if no thread can be started.
        let tail = Mutex::new(processed.split_off(processed.len() / 2));
        let take_tail = || std::mem::take(&mut *tail.lock().unwrap_or_else(|e| e.into_inner()));
        std::thread::scope(|scope| {
            let job =
                std::thread::Builder::new().spawn_scoped(scope, || parse_all(text, take_tail()));
            parsed.push(parse_all(text, std::mem::take(&mut processed)));
            if let Ok(job) = job {
                // A panic there is a bug in the scan; it must not pass for fewer entries.
                parsed.push(job.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        });
        processed = take_tail();
    }
    parsed.push(parse_all(text, processed));
    Parsed::Scanned {
        state,
        processed: parsed,
        failed: parse_all(text, failed),
    }
}

/// The file as text, or where it stops being UTF-8. From `split_from` bytes on, the two halves
/// are checked by two threads.
fn utf8(bytes: &[u8], split_from: usize) -> Result<&str, String> {
    if bytes.len() >= split_from && two_cpus() {
        // A byte that starts a character: the halves are then valid on their own exactly when
        // the whole is.
        let middle = (bytes.len() / 2..bytes.len()).find(|&i| bytes[i] & 0xC0 != 0x80);
        if let Some(middle) = middle {
            let (head, tail) = bytes.split_at(middle);
            let valid = std::thread::scope(|scope| {
                let tail_ok = std::thread::Builder::new()
                    .spawn_scoped(scope, || std::str::from_utf8(tail).is_ok())
                    .ok()?;
                let head_ok = std::str::from_utf8(head).is_ok();
                Some(head_ok && tail_ok.join().unwrap_or(false))
            });
            if valid == Some(true) {
                // SAFETY: both halves were checked, and they meet at the start of a character.
                return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
            }
        }
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let before = &bytes[..at];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let column = 1 + at
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
        format!("invalid UTF-8 at line {line} column {column} (byte {at})")
    })
}

/// Files at least this large are parsed by way of the scan, and the scan is done by two
/// threads.
const SCAN_IN_TWO_FROM: usize = 1 << 20;

/// A parsed state, or one whose entries are still lists in strictly increasing ID order (the
/// maps are built by [`Parsed::assemble`], after the file's bytes may have been freed).
enum Parsed {
    Whole(State),
    Scanned {
        state: State,
        /// In parts (one a thread), in order.
        processed: Vec<Vec<(String, ProcessedEntry)>>,
        failed: Vec<(String, FailedEntry)>,
    },
}

impl Parsed {
    fn assemble(self) -> State {
        match self {
            Parsed::Whole(state) => state,
            Parsed::Scanned {
                mut state,
                processed,
                failed,
            } => {
                // Sorted and without duplicates: built bottom-up, with full nodes (a third
                // smaller than a map grown by inserts).
                state.processed = processed.into_iter().flatten().collect();
                state.failed = failed.into_iter().collect();
                state
            }
        }
    }
}

mod canonical;
mod python;

/// Serializes `value` as Python's `json.dump(indent=2, ensure_ascii=False, sort_keys=True)`.
/// Keys must already be sorted (every map of the model is).
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    write_python_json(&mut out, value).expect("writing JSON to memory cannot fail");
    out
}

/// Streams `value` in the Python byte format into `writer`.
pub fn write_python_json<W: Write, T: Serialize + ?Sized>(writer: W, value: &T) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, PythonFormatter::default());
    value.serialize(&mut ser).map_err(io::Error::from)
}

/// Writes `state` in the Python byte format: the same bytes as [`write_python_json`], faster.
/// The model's keys and values are written directly into a buffer (plain strings copied after
/// a word-at-a-time check that nothing needs escaping); only unknown values go through serde.
/// The buffer goes to `writer` in blocks of about 64 KiB, and the second half of a large
/// processed map is rendered by a second thread where there are two CPUs.
pub fn write_state<W: Write>(mut writer: W, state: &State) -> io::Result<()> {
    let mut out = Out {
        buf: Vec::with_capacity(BLOCK + BLOCK / 4),
        sink: Some(&mut writer),
        parallel_from: PARALLEL_FROM,
    };
    write_object(&mut out, state, 0)?;
    out.flush()
}

/// The size of the blocks handed to the writer.
const BLOCK: usize = 1 << 16;

/// Where the writer puts its bytes: `buf`, passed on to `sink` whenever it holds a block
/// (between entries). Without a sink, everything stays in `buf`.
struct Out<'a> {
    buf: Vec<u8>,
    sink: Option<&'a mut dyn Write>,
    /// Maps with at least this many entries are written by two threads.
    parallel_from: usize,
}

impl Out<'_> {
    fn flush_block(&mut self) -> io::Result<()> {
        if self.buf.len() >= BLOCK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(sink) = &mut self.sink {
            sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// An object whose keys and values [`Fields`] gives, its own `{` at nesting depth `depth`.
fn write_object<T: Fields>(out: &mut Out, object: &T, depth: usize) -> io::Result<()> {
    out.buf.push(b'{');
    let mut first = true;
    object.each_field(|key, field| {
        write_key(&mut out.buf, key, depth + 1, first);
        first = false;
        write_field(out, field, depth + 1)
    })?;
    write_close(&mut out.buf, depth, first);
    Ok(())
}

/// Maps with at least this many entries are written by two threads.
const PARALLEL_FROM: usize = 20_000;

/// A map of entries keyed by ID. A large map is written by two threads where there are two
/// CPUs: the second half is rendered into memory while the first is written, then appended.
fn write_entries<T: Fields + DeserializeOwned + Send + Sync>(
    out: &mut Out,
    entries: &Entries<T>,
    depth: usize,
) -> io::Result<()> {
    out.buf.push(b'{');
    if entries.len() >= out.parallel_from && two_cpus() {
        let (head, tail) = entries.stored_halves();
        let written = std::thread::scope(|scope| {
            let render_tail = move || {
                let mut tail_out = Out {
                    buf: Vec::new(),
                    sink: None,
                    parallel_from: usize::MAX,
                };
                write_entry_list(&mut tail_out, tail, depth, false).map(|()| tail_out.buf)
            };
            let Ok(job) = std::thread::Builder::new().spawn_scoped(scope, render_tail) else {
                return None;
            };
            let done = write_entry_list(out, head, depth, true).and_then(|()| {
                let rendered = job
                    .join()
                    .map_err(|_| io::Error::other("writer thread panicked"))??;
                out.flush()?;
                match &mut out.sink {
                    Some(sink) => sink.write_all(&rendered),
                    None => {
                        out.buf.extend_from_slice(&rendered);
                        Ok(())
                    }
                }
            });
            Some(done)
        });
        if let Some(done) = written {
            done?;
            write_close(&mut out.buf, depth, false);
            return Ok(());
        }
    }
    write_entry_list(out, entries.stored(), depth, true)?;
    write_close(&mut out.buf, depth, entries.is_empty());
    Ok(())
}

/// `"ID": {…}` for each entry, each but the first of the map (`first`) after a comma. An
/// entry still held as the text it was read as is copied: it was checked at load to be the
/// bytes this writer would produce at this depth.
fn write_entry_list<'a, T: Fields + 'a>(
    out: &mut Out,
    entries: impl Iterator<Item = (&'a String, Stored<'a, T>)>,
    depth: usize,
    mut first: bool,
) -> io::Result<()> {
    for (id, entry) in entries {
        write_key(&mut out.buf, id, depth + 1, first);
        first = false;
        match entry {
            Stored::Text(text) => out.buf.extend_from_slice(text.as_bytes()),
            Stored::Value(entry) => write_object(out, entry, depth + 1)?,
        }
        out.flush_block()?;
    }
    Ok(())
}

/// `,` unless first, newline, indentation for `depth`, the key and `": "`.
fn write_key(buf: &mut Vec<u8>, key: &str, depth: usize, first: bool) {
    if !first {
        buf.push(b',');
    }
    newline_indent(buf, depth);
    write_str(buf, key);
    buf.extend_from_slice(b": ");
}

/// The end of an object at `depth`: `}` alone if it was empty, else on a line of its own.
fn write_close(buf: &mut Vec<u8>, depth: usize, empty: bool) {
    if !empty {
        newline_indent(buf, depth);
    }
    buf.push(b'}');
}

fn write_field(out: &mut Out, field: Field<'_>, depth: usize) -> io::Result<()> {
    match field {
        Field::Null => out.buf.extend_from_slice(b"null"),
        Field::Str(text) => write_str(&mut out.buf, text),
        Field::U64(n) => {
            let _ = write!(out.buf, "{n}");
        }
        Field::Checkpoints(c) => write_object(out, c, depth)?,
        Field::Processed(entries) => write_entries(out, entries, depth)?,
        Field::Failed(entries) => write_entries(out, entries, depth)?,
        Field::Value(value) => {
            let formatter = PythonFormatter {
                indent: depth,
                has_value: false,
            };
            let mut ser = serde_json::Serializer::with_formatter(&mut out.buf, formatter);
            value.serialize(&mut ser).map_err(io::Error::from)?;
        }
    }
    Ok(())
}

/// A JSON string: quoted and copied as it is when nothing in it needs escaping (the common
/// case), else escaped by serde_json, whose escapes are Python's.
fn write_str(buf: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        serde_json::to_writer(buf, text).expect("writing to memory cannot fail");
        return;
    }
    buf.reserve(text.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'"');
}

/// Whether `bytes` holds a control character, `"` or `\\`.
fn needs_escape(bytes: &[u8]) -> bool {
    first_special(bytes).is_some()
}

/// Where `bytes` first holds a control character, `"` or `\\`: eight bytes at a time, with
/// the classic "has a zero byte" / "has a byte less than n" word tricks. A word's lowest
/// flagged byte is exact (a false flag can only follow a true one), so its first special
/// byte is the lowest flag.
fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let special = |word: u64| {
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        below_space
            | has_zero(word ^ (ONES * u64::from(b'"')))
            | has_zero(word ^ (ONES * u64::from(b'\\')))
    };
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let flags = special(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        if flags != 0 {
            return Some(at + flags.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let last = words.remainder();
    let flagged = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
    last.iter().position(flagged).map(|i| at + i)
}

/// A newline and the indentation for `depth`.
fn newline_indent(buf: &mut Vec<u8>, depth: usize) {
    let width = 1 + 2 * depth;
    match NEWLINE_INDENT.get(..width) {
        Some(run) => buf.extend_from_slice(run),
        None => {
            buf.push(b'\n');
            buf.resize(buf.len() + 2 * depth, b' ');
        }
    }
}

fn write_newline_indent<W: ?Sized + Write>(w: &mut W, depth: usize) -> io::Result<()> {
    let width = 1 + 2 * depth;
    if width <= NEWLINE_INDENT.len() {
        return w.write_all(&NEWLINE_INDENT[..width]);
    }
    w.write_all(b"\n")?;
    for _ in 0..depth {
        w.write_all(b"  ")?;
    }
    Ok(())
}

/// `PrettyFormatter` with a two-space indent, except for numbers, which are spelled as Python
/// spells them after reading them back (`1.50` → `1.5`, `1E400` → `Infinity`, `-0` → `0`).
#[derive(Default)]
struct PythonFormatter {
    indent: usize,
    has_value: bool,
}

/// A newline and up to 64 levels of indentation, written with one call.
const NEWLINE_INDENT: &[u8; 129] = b"\n                                                                                                                                ";

impl PythonFormatter {
    /// `,` (unless `first`), then a newline and the current indentation.
    fn separator<W: ?Sized + Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline_indent(w)
    }

    fn newline_indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        write_newline_indent(w, self.indent)
    }
}

impl Formatter for PythonFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.newline_indent(w)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.newline_indent(w)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, value as f64)
    }

    fn write_number_str<W: ?Sized + Write>(&mut self, w: &mut W, value: &str) -> io::Result<()> {
        w.write_all(python_number(value).as_bytes())
    }
}

/// Where two shortest digit strings are equally close to `abs` (it is exactly halfway between
/// them, as `262966741290652.625` is between `…652.62` and `…652.63`), Python's `repr` takes the
/// one with the even last digit and Rust's `{:e}` the upper one. Returns Python's choice when it
/// is not `digits` (Rust's, with decimal exponent `exp`).
fn tie_to_even(abs: f64, digits: &str, exp: i32) -> Option<String> {
    let n = digits.len();
    // A tie needs the next digit to be a 5: cheap to rule out first.
    if !format!("{abs:.n$e}").split_once('e')?.0.ends_with('5') {
        return None;
    }
    // The exact value (a double has at most 767 significant digits): the n digits, 5, zeros.
    let exact = format!("{abs:.800e}");
    let (mantissa, exact_exp) = exact.split_once('e')?;
    if exact_exp.parse::<i32>().ok()? != exp {
        return None;
    }
    let all: String = mantissa.chars().filter(|c| *c != '.').collect();
    let (down, rest) = all.split_at(n);
    if !rest.starts_with('5') || !rest[1..].bytes().all(|b| b == b'0') {
        return None;
    }
    // Round `down` up by one in its last digit (no carry past a 9: then the shorter string
    // Rust gives is not one of the two).
    let last = down.bytes().last()?;
    if last == b'9' {
        return None;
    }
    let up = format!("{}{}", &down[..n - 1], char::from(last + 1));
    let even = if (last - b'0').is_multiple_of(2) {
        down
    } else {
        up.as_str()
    };
    let round_trips = format!("{}.{}e{exp}", &even[..1], &even[1..])
        .parse::<f64>()
        .is_ok_and(|v| v == abs);
    (even != digits && round_trips).then(|| even.to_string())
}

/// A JSON number as Python writes it after `json.load`: integers exactly (any size), floats
/// through `float.__repr__`.
pub fn python_number(text: &str) -> String {
    if text.contains(['.', 'e', 'E']) {
        return python_float(text.parse::<f64>().unwrap_or(f64::NAN));
    }
    let digits = text.trim_start_matches('-');
    if digits.bytes().all(|b| b == b'0') {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in -4..16, else `d.ddde+XX`.
pub fn python_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if let Some(even) = tie_to_even(value.abs(), &digits, exp) {
        digits = even;
    }
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat((-point) as usize), digits),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{}{}", digits, "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = if frac.is_empty() {
            "0".to_string()
        } else {
            frac
        };
        format!("{sign}{int}.{frac}")
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A state in the canonical layout, large enough for two threads: IDs that need escapes and
    /// non-ASCII, unknown keys at every level (with floats, big integers, nested values),
    /// legacy entries with missing and null keys.
    fn sample(entries: usize) -> State {
        let mut text = String::from("{\"a_top\": [1.5, {\"x\": null}], \"failed\": {");
        for i in 0..entries / 10 {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                r#""F{i:05}": {{"error": "boom \"{i}\"\n", "retry_count": {i}, "x": 1e5}}"#
            ));
        }
        text.push_str("}, \"processed\": {");
        for i in 0..entries {
            if i > 0 {
                text.push(',');
            }
            let body = match i % 4 {
                0 => format!(
                    r#"{{"asin": "B{i:05}", "title": "Dune \\ {i} — “é”", "status": "COMPLETE", "checkpoints": {{"staged_at": null, "zz": [1, 2]}}}}"#
                ),
                1 => r#"{"title": null, "mam_id": 123456789012345678901234567890}"#.into(),
                2 => r#"{"status": "QUARANTINED", "infohash": "ab", "extra": {"deep": [[[{}]]]}}"#
                    .into(),
                _ => "{}".into(),
            };
            text.push_str(&format!(r#""/lib/é{i:05}\t\"x": {body}"#));
        }
        text.push_str("}, \"version\": 2, \"x_owner\": {\"name\": \"ünï\"}}");
        let state: State = serde_json::from_str(&text).unwrap();
        assert_eq!(state.processed.len(), entries);
        state
    }

    fn parsed_by_scan(bytes: &[u8]) -> bool {
        matches!(parse(bytes, 0), Ok(Parsed::Scanned { .. }))
    }

    /// The full parse of `text` (never by way of the scan).
    fn full(text: &str) -> Result<State, Refused> {
        parse(text.as_bytes(), usize::MAX).map(Parsed::assemble)
    }

    #[test]
    fn the_parse_by_way_of_the_scan_gives_the_full_parse_result() {
        let mut state = sample(300);
        for round in 0..2 {
            let bytes = to_python_json(&state);
            let text = std::str::from_utf8(&bytes).unwrap();
            assert!(parsed_by_scan(&bytes), "round {round}");
            let expected = full(text);
            assert!(expected.is_ok(), "round {round}");
            assert!(
                parse(&bytes, 0).map(Parsed::assemble) == expected,
                "round {round}"
            );
            assert!(load_owned(bytes.clone()) == expected, "round {round}");
            // Then with an object after the map: the guessed end is wrong, the result is not.
            state.extra.insert("zz".into(), json!({"a": {"b": 1}}));
        }
    }

    #[test]
    fn anything_unusual_takes_the_full_parse_with_its_result_or_error() {
        let canonical = String::from_utf8(to_python_json(&sample(40))).unwrap();
        let cases = [
            // Not sorted (hand-edited): still read, by the full parse.
            canonical.replacen("\"/lib/é00000", "\"/lib/ž", 1),
            // A duplicate ID.
            canonical.replacen("\"/lib/é00001", "\"/lib/é00000", 1),
            // The pattern inside another value, not a top-level key.
            canonical.replacen("\"a_top\": [", "\"a_top\": [{\n  \"processed\": {}},", 1),
            // Trailing garbage, a trailing comma, a missing brace.
            format!("{canonical} x"),
            canonical.replacen("{}\n  },\n  \"version\"", "{},\n  },\n  \"version\"", 1),
            canonical[..canonical.len() - 1].to_string(),
            // processed twice.
            canonical.replacen("\"version\": 2", "\"processed\": {}, \"version\": 2", 1),
        ];
        for (i, text) in cases.iter().enumerate() {
            assert!(text != &canonical, "case {i} changed nothing");
            let scanned = parse(text.as_bytes(), 0).map(Parsed::assemble);
            assert!(scanned == full(text), "case {i}: {:?}", full(text).err());
            assert!(!parsed_by_scan(text.as_bytes()), "case {i}");
        }
    }

    #[test]
    fn nesting_near_the_recursion_limit_is_left_to_the_full_parse() {
        for levels in [90, 126, 900] {
            let mut deep = json!(1);
            for _ in 0..levels {
                deep = json!([deep]);
            }
            let mut state = sample(40);
            state
                .processed
                .get_mut("/lib/é00003\t\"x")
                .unwrap()
                .extra
                .insert("deep".into(), deep);
            let text = String::from_utf8(to_python_json(&state)).unwrap();
            let expected = full(&text);
            // Python reads several hundred levels, and so does the full parse.
            assert!(expected.is_ok(), "{levels}");
            assert!(parse(text.as_bytes(), 0).map(Parsed::assemble) == expected);
        }
    }

    #[test]
    fn utf8_is_checked_in_halves_with_the_same_answer() {
        let text = "é".repeat(1000) + "abc";
        assert_eq!(utf8(text.as_bytes(), 0), Ok(text.as_str()));
        let mut bad = text.clone().into_bytes();
        bad[1500] = 0xFF;
        let whole = utf8(&bad, usize::MAX).unwrap_err();
        assert_eq!(utf8(&bad, 0).unwrap_err(), whole);
        assert!(whole.contains("byte 1500"), "{whole}");
    }

    #[test]
    fn the_direct_writer_writes_the_serde_bytes_in_one_thread_or_two() {
        let state = sample(300);
        let expected = to_python_json(&state);
        for parallel_from in [usize::MAX, 2] {
            let mut written = Vec::new();
            let mut out = Out {
                buf: Vec::new(),
                sink: Some(&mut written),
                parallel_from,
            };
            write_object(&mut out, &state, 0).unwrap();
            out.flush().unwrap();
            assert!(written == expected, "parallel from {parallel_from}");
        }
        let mut written = Vec::new();
        write_state(&mut written, &State::default()).unwrap();
        assert_eq!(written, to_python_json(&State::default()));
    }

    #[test]
    fn layout_matches_python_indent_2() {
        let value = json!({"a": {}, "b": [], "c": [1, {"d": null}], "e": "x"});
        let text = String::from_utf8(to_python_json(&value)).unwrap();
        let expected = "{\n  \"a\": {},\n  \"b\": [],\n  \"c\": [\n    1,\n    {\n      \"d\": null\n    }\n  ],\n  \"e\": \"x\"\n}";
        assert_eq!(text, expected);
    }

    #[test]
    fn strings_escape_like_python_with_ensure_ascii_false() {
        let value = json!("q\"b\\n\n\t\u{1}\u{7f}é“”\u{2028}");
        let text = String::from_utf8(to_python_json(&value)).unwrap();
        assert_eq!(text, "\"q\\\"b\\\\n\\n\\t\\u0001\u{7f}é“”\u{2028}\"");
    }

    #[test]
    fn floats_are_spelled_as_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e100, "1.2345e+100"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            // Halfway between two shortest strings: the even last digit, as Python.
            // (the double nearest to this is exactly -262966741290652.625)
            (-262966741290652.62, "-262966741290652.62"),
            (0.125, "0.125"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float(value), expected, "{value:?}");
        }
    }

    #[test]
    fn numbers_from_a_file_are_respelled_as_python_would() {
        assert_eq!(python_number("1.50"), "1.5");
        assert_eq!(python_number("1E400"), "Infinity");
        assert_eq!(python_number("-0"), "0");
        assert_eq!(
            python_number("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
        let value: serde_json::Value =
            serde_json::from_str("[1.50, 2e3, 99999999999999999999999]").unwrap();
        let text = String::from_utf8(to_python_json(&value)).unwrap();
        assert_eq!(text, "[\n  1.5,\n  2000.0,\n  99999999999999999999999\n]");
    }
}
