//! Text from outside (IDs, titles, errors, file names) made safe for a terminal: control
//! characters, line separators and bidi controls are shown as escapes instead of acting on
//! the terminal. Used by the library's own messages (store notices, a plugin's error) and by
//! the command line for every human line it prints.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls and DEL (escape
/// sequences, carriage return, bell), the line and paragraph separators, and the bidi controls
/// that make text read in another order than it is stored.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// How an unsafe character is shown: `\n`, `\r`, `\t`, else `\u{1b}` (as Rust writes it);
/// `None` for a character that is safe as it is.
pub fn escape_char(c: char) -> Option<String> {
    if !is_unsafe(c) {
        return None;
    }
    Some(match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        _ => c.escape_unicode().to_string(),
    })
}

/// `text` safe for a terminal: every control character (newlines included) written as an
/// escape, e.g. ESC as `\u{1b}`. Text with nothing to escape is returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match escape_char(c) {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    out.into()
}

/// [`escape`] line by line: the newlines of a message of several lines are kept.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return text.into();
    }
    let lines: Vec<Cow<str>> = text.split('\n').map(escape).collect();
    lines.join("\n").into()
}
