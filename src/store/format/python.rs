//! What Python's `json.load` reads, read the same way: the parse a file falls back to when the
//! strict parse refuses it, so that mamfast calls a file corrupt only when Python could not
//! read it either.
//!
//! Python's `json` module accepts more than RFC 8259: `NaN`, `Infinity` and `-Infinity`
//! (its own `json.dump` writes them), a number too large for a float (`1e400` is `inf`),
//! integers of any size (up to its limit of 4300 digits), a duplicate key (the last value
//! wins), a lone surrogate escape (`"\ud800"` is a `str`), and nesting as deep as its
//! recursion limit allows (about 990 levels by default). [`parse`] reads exactly that, into
//! [`Py`], which [`dump`] writes back as `json.dump(indent=2, ensure_ascii=False,
//! sort_keys=True)` writes it, with one necessary difference: a lone surrogate, which Python
//! cannot encode as UTF-8 at all (its `json.dump` raises), is written as its `\udxxx` escape,
//! which reads back as the same string.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::{newline_indent, python_number, write_str, Refused};
use crate::state::model::{misfit, Record};
use crate::state::{Entries, State};

/// Python's default recursion limit is 1000 frames; its JSON scanner uses one per level, so
/// a file nested 1000 deep is already refused by Python. mamfast reads up to this depth.
pub(crate) const MAX_DEPTH: usize = 1000;

/// Python refuses to convert an integer of more digits than this (`sys.int_info`,
/// `default_max_str_digits`), and `json.load` with it.
const MAX_INT_DIGITS: usize = 4300;

/// A JSON value as Python holds it after `json.load`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Py {
    Null,
    Bool(bool),
    /// A number token as read (`1.50`, `-0`, `1e400`) or `NaN`, `Infinity`, `-Infinity`.
    Num(String),
    Str(PyStr),
    Arr(Vec<Py>),
    /// Sorted by key (by code point, as `sort_keys` sorts), each key once (the last value).
    Obj(Vec<(PyStr, Py)>),
}

/// A Python `str`: UTF-8 text, or, when it holds a lone surrogate (which UTF-8 cannot), its
/// code points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PyStr {
    /// The text; a lone surrogate is U+FFFD here.
    pub text: String,
    /// Every code point, surrogates included, when the string holds a lone surrogate.
    pub lone: Option<Vec<u32>>,
}

impl PyStr {
    fn code_points(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match &self.lone {
            Some(points) => Box::new(points.iter().copied()),
            None => Box::new(self.text.chars().map(u32::from)),
        }
    }

    /// Python's order of two `str`: by code point (for UTF-8 text, the byte order).
    fn cmp(&self, other: &PyStr) -> Ordering {
        if self.lone.is_none() && other.lone.is_none() {
            return self.text.as_bytes().cmp(other.text.as_bytes());
        }
        self.code_points().cmp(other.code_points())
    }
}

/// Reads `text` as Python's `json.loads` does; the error is one line.
pub(crate) fn parse(text: &str) -> Result<Py, String> {
    if text.starts_with('\u{feff}') {
        return Err("unexpected UTF-8 BOM at the start of the file".into());
    }
    let mut reader = Reader {
        bytes: text.as_bytes(),
        pos: 0,
    };
    reader.whitespace();
    let value = reader.value(0)?;
    reader.whitespace();
    if reader.pos != reader.bytes.len() {
        return Err(reader.error("extra data after the value"));
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> String {
        let before = &self.bytes[..self.pos.min(self.bytes.len())];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let column = 1 + before.len()
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
        format!("{what} at line {line} column {column}")
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Python's JSON whitespace: space, tab, newline, carriage return.
    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, literal: &[u8]) -> bool {
        let found = self.bytes[self.pos..].starts_with(literal);
        if found {
            self.pos += literal.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Result<Py, String> {
        const LITERALS: [(&[u8], &str); 6] = [
            (b"null", ""),
            (b"true", ""),
            (b"false", ""),
            (b"NaN", "NaN"),
            (b"Infinity", "Infinity"),
            (b"-Infinity", "-Infinity"),
        ];
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Py::Str),
            Some(b'-' | b'0'..=b'9') if !self.bytes[self.pos..].starts_with(b"-I") => self.number(),
            _ => {
                for (literal, number) in LITERALS {
                    if self.eat(literal) {
                        return Ok(match literal {
                            b"null" => Py::Null,
                            b"true" => Py::Bool(true),
                            b"false" => Py::Bool(false),
                            _ => Py::Num(number.to_owned()),
                        });
                    }
                }
                Err(self.error("expecting a value"))
            }
        }
    }

    fn enter(&self, depth: usize) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            return Err(self.error(&format!(
                "nested more than {} levels deep (Python's json.load stops there too)",
                MAX_DEPTH - 1
            )));
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Py, String> {
        self.enter(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        self.whitespace();
        if self.eat(b"]") {
            return Ok(Py::Arr(items));
        }
        loop {
            self.whitespace();
            items.push(self.value(depth)?);
            self.whitespace();
            if self.eat(b"]") {
                return Ok(Py::Arr(items));
            }
            if !self.eat(b",") {
                return Err(self.error("expecting ',' or ']'"));
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Py, String> {
        self.enter(depth)?;
        self.pos += 1;
        let mut members = Vec::new();
        self.whitespace();
        if !self.eat(b"}") {
            loop {
                self.whitespace();
                if self.peek() != Some(b'"') {
                    return Err(self.error("expecting a key in double quotes"));
                }
                let key = self.string()?;
                self.whitespace();
                if !self.eat(b":") {
                    return Err(self.error("expecting ':'"));
                }
                self.whitespace();
                members.push((key, self.value(depth)?));
                self.whitespace();
                if self.eat(b"}") {
                    break;
                }
                if !self.eat(b",") {
                    return Err(self.error("expecting ',' or '}'"));
                }
            }
        }
        Ok(Py::Obj(sorted_last_wins(members)))
    }

    fn number(&mut self) -> Result<Py, String> {
        let start = self.pos;
        let digits = |r: &mut Self| {
            let from = r.pos;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.pos += 1;
            }
            r.pos - from
        };
        self.eat(b"-");
        let int_start = self.pos;
        match digits(self) {
            0 => return Err(self.error("expecting a value")),
            // A leading zero ends the number (`01` is `0`, then extra data).
            _ if self.bytes[int_start] == b'0' => self.pos = int_start + 1,
            _ => {}
        }
        let int_digits = self.pos - int_start;
        let mut float = false;
        let save = self.pos;
        if self.eat(b".") {
            if digits(self) == 0 {
                self.pos = save;
            } else {
                float = true;
            }
        }
        let save = self.pos;
        if self.eat(b"e") || self.eat(b"E") {
            let _ = self.eat(b"+") || self.eat(b"-");
            if digits(self) == 0 {
                self.pos = save;
            } else {
                float = true;
            }
        }
        if !float && int_digits > MAX_INT_DIGITS {
            self.pos = start;
            return Err(self.error(&format!(
                "an integer of {int_digits} digits (Python's limit is {MAX_INT_DIGITS})"
            )));
        }
        let token = std::str::from_utf8(&self.bytes[start..self.pos]).expect("ASCII");
        Ok(Py::Num(token.to_owned()))
    }

    /// A string at its opening quote, as Python's `scanstring` reads it (strict: no raw
    /// control character).
    fn string(&mut self) -> Result<PyStr, String> {
        self.pos += 1;
        let mut points: Vec<u32> = Vec::new();
        let mut lone = false;
        loop {
            let start = self.pos;
            while matches!(self.peek(), Some(b) if b >= 0x20 && b != b'"' && b != b'\\') {
                self.pos += 1;
            }
            let run = std::str::from_utf8(&self.bytes[start..self.pos]).expect("UTF-8 text");
            points.extend(run.chars().map(u32::from));
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let point = self.escape()?;
                    lone |= (0xD800..0xE000).contains(&point);
                    points.push(point);
                }
                Some(_) => return Err(self.error("invalid control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
        let text = points
            .iter()
            .map(|&p| char::from_u32(p).unwrap_or('\u{fffd}'))
            .collect();
        Ok(PyStr {
            text,
            lone: lone.then_some(points),
        })
    }

    /// One escape at its backslash; a surrogate pair is one code point, a lone surrogate is
    /// itself.
    fn escape(&mut self) -> Result<u32, String> {
        let Some(&kind) = self.bytes.get(self.pos + 1) else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 2;
        let simple = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode(),
            _ => {
                self.pos -= 2;
                return Err(self.error("invalid \\escape"));
            }
        };
        Ok(u32::from(simple))
    }

    fn unicode(&mut self) -> Result<u32, String> {
        let high = self.hex4()?;
        if (0xD800..0xDC00).contains(&high) && self.bytes[self.pos..].starts_with(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                return Ok(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
            }
            self.pos = save;
        }
        Ok(high)
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex = self
            .bytes
            .get(self.pos..self.pos + 4)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| self.error("invalid \\uXXXX escape"))?;
        let value = u32::from_str_radix(std::str::from_utf8(hex).expect("ASCII"), 16)
            .expect("four hex digits");
        self.pos += 4;
        Ok(value)
    }
}

/// An object's members sorted by key, each key once with its last value: a Python `dict`
/// written with `sort_keys=True`.
fn sorted_last_wins(mut members: Vec<(PyStr, Py)>) -> Vec<(PyStr, Py)> {
    // Stable: among equal keys, the last read stays last.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(PyStr, Py)> = Vec::with_capacity(members.len());
    for member in members {
        match out.last_mut() {
            Some(last) if last.0 == member.0 => *last = member,
            _ => out.push(member),
        }
    }
    out
}

/// Writes `value`, its first character at nesting `depth`, as Python's
/// `json.dump(indent=2, ensure_ascii=False, sort_keys=True)` does (a lone surrogate as its
/// escape).
pub(crate) fn dump(buf: &mut Vec<u8>, value: &Py, depth: usize) {
    match value {
        Py::Null => buf.extend_from_slice(b"null"),
        Py::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
        Py::Num(token) => buf.extend_from_slice(python_number(token).as_bytes()),
        Py::Str(s) => dump_str(buf, s),
        Py::Arr(items) if items.is_empty() => buf.extend_from_slice(b"[]"),
        Py::Obj(members) if members.is_empty() => buf.extend_from_slice(b"{}"),
        Py::Arr(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                newline_indent(buf, depth + 1);
                dump(buf, item, depth + 1);
            }
            newline_indent(buf, depth);
            buf.push(b']');
        }
        Py::Obj(members) => {
            buf.push(b'{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                newline_indent(buf, depth + 1);
                dump_str(buf, key);
                buf.extend_from_slice(b": ");
                dump(buf, item, depth + 1);
            }
            newline_indent(buf, depth);
            buf.push(b'}');
        }
    }
}

fn dump_str(buf: &mut Vec<u8>, s: &PyStr) {
    let Some(points) = &s.lone else {
        return write_str(buf, &s.text);
    };
    // Runs of characters as the writer escapes them; each lone surrogate as `\udxxx`.
    buf.push(b'"');
    let mut run = String::new();
    let flush = |buf: &mut Vec<u8>, run: &mut String| {
        let mut quoted = Vec::new();
        write_str(&mut quoted, run);
        buf.extend_from_slice(&quoted[1..quoted.len() - 1]);
        run.clear();
    };
    for &point in points {
        match char::from_u32(point) {
            Some(c) => run.push(c),
            None => {
                flush(buf, &mut run);
                buf.extend_from_slice(format!("\\u{point:04x}").as_bytes());
            }
        }
    }
    flush(buf, &mut run);
    buf.push(b'"');
}

/// What a [`Py`] holds that a `serde_json::Value` cannot carry through serde.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Lossy {
    /// A `NaN` (held as a number spelled `NaN`, which serde_json cannot read back).
    pub nan: bool,
    /// A lone surrogate (held as U+FFFD: not the same string).
    pub surrogate: bool,
}

/// `value` as a `serde_json::Value`, as close as it can be: numbers keep their spelling
/// (`Infinity` is spelled `1e999`, which Python reads and writes as `Infinity` too), `NaN` is
/// a number spelled `NaN` (written back as `NaN`, but unreadable by serde: `nan_as_null` makes
/// it `null` for a value that must go through serde), a lone surrogate is U+FFFD. `lossy`
/// records what was not kept exactly.
pub(crate) fn to_value(value: &Py, nan_as_null: bool, lossy: &mut Lossy) -> Value {
    match value {
        Py::Null => Value::Null,
        Py::Bool(b) => Value::Bool(*b),
        Py::Num(token) => match token.as_str() {
            "NaN" => {
                lossy.nan = true;
                if nan_as_null {
                    Value::Null
                } else {
                    // serde_json keeps a number as its text; `NaN` is written as it is.
                    Value::Number(Number::from_string_unchecked(token.clone()))
                }
            }
            "Infinity" => Value::Number("1e999".parse().expect("a JSON number")),
            "-Infinity" => Value::Number("-1e999".parse().expect("a JSON number")),
            _ => Value::Number(token.parse().expect("a number read by the JSON grammar")),
        },
        Py::Str(s) => {
            lossy.surrogate |= s.lone.is_some();
            Value::String(s.text.clone())
        }
        Py::Arr(items) => Value::Array(
            items
                .iter()
                .map(|item| to_value(item, nan_as_null, lossy))
                .collect(),
        ),
        Py::Obj(members) => {
            let mut map = Map::new();
            for (key, item) in members {
                lossy.surrogate |= key.lone.is_some();
                map.insert(key.text.clone(), to_value(item, nan_as_null, lossy));
            }
            Value::Object(map)
        }
    }
}

/// The state in a file Python reads (`value`, its top level), built as the strict parse
/// builds it where it can. Where it cannot:
///
/// - an entry that is not an object, whose known key has a value of the wrong type, or that
///   holds a `NaN` or a lone surrogate, is kept as the text [`dump`] writes for it, with its
///   value read as well as it can be (a misfit kept under its key among the unknown keys),
///   and the problem recorded (see `Entries::problem`);
/// - a file whose `version`, `processed` or `failed` cannot be used at all (`"version": "2"`,
///   `"processed": []`), or that holds a lone surrogate outside an entry, is refused as
///   unusable: not corrupt (Python reads it), so it is neither moved aside nor replaced by a
///   backup, but mamfast cannot tell what it means either.
pub(crate) fn state_of(value: Py) -> Result<State, Refused> {
    let Py::Obj(members) = value else {
        return Err(Refused::Corrupt(
            "the top level is not a JSON object".into(),
        ));
    };
    let mut state = State {
        version: 1,
        ..State::default()
    };
    for (key, value) in members {
        if key.lone.is_some() {
            return Err(unusable("a top-level key holds a lone surrogate escape"));
        }
        match (key.text.as_str(), value) {
            ("version" | "processed" | "failed", Py::Null) => {}
            ("version", Py::Num(token)) => {
                state.version = match token.parse::<u64>() {
                    Ok(0) | Err(_) => {
                        return Err(unusable(&format!(
                            "\"version\" is {}, not a whole number from 1 up",
                            python_number(&token)
                        )))
                    }
                    Ok(version) => version,
                };
            }
            ("processed", Py::Obj(entries)) => state.processed = entries_of(entries)?,
            ("failed", Py::Obj(entries)) => state.failed = entries_of(entries)?,
            (key @ ("version" | "processed" | "failed"), value) => {
                let expected = if key == "version" {
                    "a whole number from 1 up"
                } else {
                    "an object of entries keyed by ID"
                };
                return Err(unusable(&format!(
                    "\"{key}\" is {}, not {expected}",
                    kind_name(&value)
                )));
            }
            (_, value) => {
                let mut lossy = Lossy::default();
                let value_of = to_value(&value, false, &mut lossy);
                if lossy.surrogate {
                    return Err(unusable(&format!(
                        "the top-level key {:?} holds a lone surrogate escape",
                        key.text
                    )));
                }
                state.extra.insert(key.text, value_of);
            }
        }
    }
    Ok(state)
}

/// A file Python reads that mamfast cannot use: `why`, and what to do.
fn unusable(why: &str) -> Refused {
    Refused::Unusable(format!(
        "{why}. Python's json.load reads this file, so it was left as it is (not moved \
         aside, no backup restored): fix that value in the file, or restore a backup with \
         `mamfast state restore`"
    ))
}

fn kind_name(value: &Py) -> &'static str {
    match value {
        Py::Null => "null",
        Py::Bool(_) => "a boolean",
        Py::Num(_) => "a number",
        Py::Str(_) => "a string",
        Py::Arr(_) => "a list",
        Py::Obj(_) => "an object",
    }
}

/// The `processed` or `failed` map.
fn entries_of<T: Record>(members: Vec<(PyStr, Py)>) -> Result<Entries<T>, Refused> {
    let mut entries = Entries::new();
    for (id, value) in members {
        if id.lone.is_some() {
            return Err(unusable(&format!(
                "the ID {:?} holds a lone surrogate escape",
                id.text
            )));
        }
        match entry_of::<T>(&value) {
            Ok(entry) => {
                entries.insert(id.text, entry);
            }
            Err((entry, problem)) => {
                let mut text = Vec::new();
                dump(&mut text, &value, 2);
                let text = String::from_utf8(text).expect("the dump is UTF-8");
                entries.insert_kept(id.text, entry, text, problem);
            }
        }
    }
    Ok(entries)
}

/// One entry: its value, or its value as well as it can be read and what is wrong with it
/// (one line, naming the key).
fn entry_of<T: Record>(value: &Py) -> Result<T, (T, String)> {
    let Py::Obj(members) = value else {
        return Err((
            T::default(),
            format!("the entry is {}, not an object", kind_name(value)),
        ));
    };
    let mut problem = None;
    // Per key, so that the problem names the key that holds a NaN or a lone surrogate.
    let mut map = Map::new();
    for (key, item) in members {
        let mut lossy = Lossy::default();
        map.insert(key.text.clone(), to_value(item, true, &mut lossy));
        if key.lone.is_some() || lossy.surrogate {
            problem.get_or_insert(format!(
                "{:?} holds a lone surrogate escape (\\udxxx)",
                key.text
            ));
        } else if lossy.nan {
            problem.get_or_insert(format!("{:?} holds NaN", key.text));
        }
    }
    // Known keys whose values do not fit go among the unknown keys, under their names.
    let mut misfits = Map::new();
    for (key, kind) in T::SCHEMA.keys.iter().zip(T::SCHEMA.kinds) {
        let Some(why) = map.get(*key).and_then(|v| misfit(kind, v)) else {
            continue;
        };
        problem.get_or_insert(format!("\"{key}\"{why}"));
        let (key, value) = map.remove_entry(*key).expect("just found");
        misfits.insert(key, value);
    }
    let mut entry: T = match serde_json::from_value(Value::Object(map)) {
        Ok(entry) => entry,
        Err(e) => return Err((T::default(), format!("cannot be read: {e}"))),
    };
    entry.extra_mut().extend(misfits);
    match problem {
        None => Ok(entry),
        Some(problem) => Err((entry, problem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redump(text: &str) -> String {
        let mut buf = Vec::new();
        dump(&mut buf, &parse(text).unwrap(), 0);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn reads_what_python_reads_and_writes_it_back_as_python_does() {
        // Each expected text is what Python 3.11's json.dumps(json.loads(text), indent=2,
        // ensure_ascii=False, sort_keys=True) gives.
        let cases = [
            ("[-0, 1E5, 1e-400, -0.0, 1e400, NaN, -Infinity, 2e308]",
             "[\n  0,\n  100000.0,\n  0.0,\n  -0.0,\n  Infinity,\n  NaN,\n  -Infinity,\n  Infinity\n]"),
            (" \t\n\r{\"b\": 1, \"a\": 2, \"b\": 3} \n", "{\n  \"a\": 2,\n  \"b\": 3\n}"),
            ("\"\\ud800x\\udc00\\ud83d\\ude00\\/\"", "\"\\ud800x\\udc00😀/\""),
            ("18446744073709551616", "18446744073709551616"),
            ("{}", "{}"),
            ("[[], {}]", "[\n  [],\n  {}\n]"),
        ];
        for (text, expected) in cases {
            assert_eq!(redump(text), expected, "{text}");
        }
    }

    #[test]
    fn refuses_what_python_refuses() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(parse(&deep(MAX_DEPTH - 1)).is_ok());
        for bad in [
            "\u{feff}{}".to_string(),
            "{} x".into(),
            "[1,]".into(),
            "{\"a\": 1,}".into(),
            "01".into(),
            "1.".into(),
            "+1".into(),
            "\"\t\"".into(),
            "\"\\x\"".into(),
            "\"\\u12\"".into(),
            "{a: 1}".into(),
            "nan".into(),
            "-infinity".into(),
            "".into(),
            "1".repeat(MAX_INT_DIGITS + 1),
            deep(MAX_DEPTH),
        ] {
            assert!(parse(&bad).is_err(), "{bad:.40}");
        }
        assert!(parse(&"1".repeat(MAX_INT_DIGITS)).is_ok());
    }

    #[test]
    fn keys_sort_by_code_point_even_with_a_lone_surrogate() {
        // U+D800 sorts before U+E000 and after U+D7FF.
        assert_eq!(
            redump("{\"\\ue000\": 1, \"\\ud800\": 2, \"\\ud7ff\": 3}"),
            "{\n  \"\u{d7ff}\": 3,\n  \"\\ud800\": 2,\n  \"\u{e000}\": 1\n}"
        );
    }
}
