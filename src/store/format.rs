//! The byte-exact writer: what Python's
//! `json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)` writes, and the parser
//! that goes with it.
//!
//! Key order comes from the model (sorted maps, sorted known keys); this module supplies the
//! layout (two-space indent, `": "` and `","`), the string escapes (serde_json escapes exactly
//! the characters Python does, with lowercase hex) and Python's number spelling.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Bound;

use serde::Serialize;
use serde_json::ser::Formatter;

use crate::state::model::{Field, Fields};
use crate::state::State;

/// Parses a state file. The whole file must be UTF-8 (Python's `json.load` on a file opened
/// with `encoding="utf-8"` refuses anything else too); it is checked once, up front, which
/// spares the JSON parser a check per string. The error is one line, for the operator.
pub fn parse_state(bytes: &[u8]) -> Result<State, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let before = &bytes[..at];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let column = 1 + at
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
        format!("invalid UTF-8 at line {line} column {column} (byte {at})")
    })?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

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
    value.serialize(&mut ser).map_err(io::Error::other)
}

/// Writes `state` in the Python byte format: the same bytes as [`write_python_json`], about
/// three times faster. The model's own keys and values are written directly (plain strings
/// are copied without escaping after one vectorised check); only unknown values go through
/// serde. Writes are gathered in a 64 KiB buffer.
pub fn write_state<W: Write>(writer: W, state: &State) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, writer);
    write_object(&mut out, state, 0)?;
    out.flush()
}

/// An object whose keys and values [`Fields`] gives, its own `{` at nesting depth `depth`.
fn write_object<W: Write, T: Fields>(w: &mut W, object: &T, depth: usize) -> io::Result<()> {
    w.write_all(b"{")?;
    let mut first = true;
    object.each_field(|key, field| {
        write_key(w, key, depth + 1, first)?;
        first = false;
        write_field(w, field, depth + 1)
    })?;
    write_close(w, b"}", depth, first)
}

/// Maps with at least this many entries are written by two threads.
const PARALLEL_FROM: usize = 20_000;

/// A map of entries keyed by ID. A large map is written by two threads where there are two
/// CPUs: the second half is rendered into memory while the first is written, then appended.
fn write_entries<W: Write, T: Fields + Sync>(
    w: &mut W,
    entries: &BTreeMap<String, T>,
    depth: usize,
) -> io::Result<()> {
    w.write_all(b"{")?;
    if entries.len() >= PARALLEL_FROM && two_cpus() {
        let mid = entries
            .keys()
            .nth(entries.len() / 2)
            .expect("a large map")
            .as_str();
        let head = entries.range::<str, _>((Bound::Unbounded, Bound::Excluded(mid)));
        let tail = entries.range::<str, _>((Bound::Included(mid), Bound::Unbounded));
        let written = std::thread::scope(|scope| {
            let render_tail = move || {
                let mut buf = Vec::new();
                write_entry_list(&mut buf, tail, depth, false).map(|()| buf)
            };
            let Ok(job) = std::thread::Builder::new().spawn_scoped(scope, render_tail) else {
                return None;
            };
            let done = write_entry_list(w, head, depth, true).and_then(|()| {
                let buf = job
                    .join()
                    .map_err(|_| io::Error::other("writer thread panicked"))??;
                w.write_all(&buf)
            });
            Some(done)
        });
        if let Some(done) = written {
            return done.and_then(|()| write_close(w, b"}", depth, false));
        }
    }
    write_entry_list(w, entries.iter(), depth, true)?;
    write_close(w, b"}", depth, entries.is_empty())
}

/// `"ID": {…}` for each entry, each but the first of the map (`first`) after a comma.
fn write_entry_list<'a, W: Write, T: Fields + 'a>(
    w: &mut W,
    entries: impl Iterator<Item = (&'a String, &'a T)>,
    depth: usize,
    mut first: bool,
) -> io::Result<()> {
    for (id, entry) in entries {
        write_key(w, id, depth + 1, first)?;
        first = false;
        write_object(w, entry, depth + 1)?;
    }
    Ok(())
}

fn two_cpus() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// `,` unless first, newline, indentation for `depth`, the key and `": "`.
fn write_key<W: Write>(w: &mut W, key: &str, depth: usize, first: bool) -> io::Result<()> {
    if !first {
        w.write_all(b",")?;
    }
    write_newline_indent(w, depth)?;
    write_str(w, key)?;
    w.write_all(b": ")
}

fn write_close<W: Write>(w: &mut W, close: &[u8], depth: usize, empty: bool) -> io::Result<()> {
    if !empty {
        write_newline_indent(w, depth)?;
    }
    w.write_all(close)
}

fn write_field<W: Write>(w: &mut W, field: Field<'_>, depth: usize) -> io::Result<()> {
    match field {
        Field::Null => w.write_all(b"null"),
        Field::Str(text) => write_str(w, text),
        Field::U64(n) => write!(w, "{n}"),
        Field::Checkpoints(c) => write_object(w, c, depth),
        Field::Processed(entries) => write_entries(w, entries, depth),
        Field::Failed(entries) => write_entries(w, entries, depth),
        Field::Value(value) => {
            let formatter = PythonFormatter {
                indent: depth,
                has_value: false,
            };
            let mut ser = serde_json::Serializer::with_formatter(w, formatter);
            value.serialize(&mut ser).map_err(io::Error::other)
        }
    }
}

/// A JSON string: quoted and copied as it is when nothing in it needs escaping (the common
/// case), else escaped by serde_json, whose escapes are Python's.
fn write_str<W: Write>(w: &mut W, text: &str) -> io::Result<()> {
    if needs_escape(text.as_bytes()) {
        return serde_json::to_writer(w, text).map_err(io::Error::other);
    }
    w.write_all(b"\"")?;
    w.write_all(text.as_bytes())?;
    w.write_all(b"\"")
}

/// Whether `bytes` holds a control character, `"` or `\\`: eight bytes at a time, with the
/// classic "has a zero byte" / "has a byte less than n" word tricks (exact, no false hits).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let special = |word: u64| {
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        below_space
            | has_zero(word ^ (ONES * u64::from(b'"')))
            | has_zero(word ^ (ONES * u64::from(b'\\')))
            != 0
    };
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if special(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
            return true;
        }
    }
    // The last 0–7 bytes, padded with a byte that needs no escape.
    let last = words
        .remainder()
        .iter()
        .rev()
        .fold(u64::from_le_bytes([b'a'; 8]), |word, &b| {
            (word << 8) | u64::from(b)
        });
    special(last)
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
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
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
