//! The byte-exact writer: what Python's
//! `json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)` writes, and the parser
//! that goes with it.
//!
//! Key order comes from the model (sorted maps, sorted known keys); this module supplies the
//! layout (two-space indent, `": "` and `","`), the string escapes (serde_json escapes exactly
//! the characters Python does, with lowercase hex) and Python's number spelling.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

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

/// `PrettyFormatter` with a two-space indent, except for numbers, which are spelled as Python
/// spells them after reading them back (`1.50` → `1.5`, `1E400` → `Infinity`, `-0` → `0`).
#[derive(Default)]
struct PythonFormatter {
    indent: usize,
    has_value: bool,
}

impl PythonFormatter {
    fn newline_indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.indent {
            w.write_all(b"  ")?;
        }
        Ok(())
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
        if !first {
            w.write_all(b",")?;
        }
        self.newline_indent(w)
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
        if !first {
            w.write_all(b",")?;
        }
        self.newline_indent(w)
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
