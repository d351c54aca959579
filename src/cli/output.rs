//! The console: every line a command prints goes through here. Data goes to stdout (tables,
//! `--json` documents, exports); messages go to stderr (success / info / warning / error).
//!
//! Text from outside (IDs, titles, errors, file names) may hold terminal escapes: every human
//! line is passed through [`escape`] (or [`escape_lines`], from `mamfast::escape`) here, once;
//! `--json` and `export` keep the exact value.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::Style;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use mamfast::error::{Error, Result};
use mamfast::escape::{escape, escape_char, escape_lines};
use mamfast::store::format::write_python_json;

/// The result of writing data to stdout, as a command's result: a reader that went away
/// (`| head`) is not an error and stays quiet; anything else (a full disk, a closed file) is,
/// because the output is incomplete.
pub fn stdout_written(result: io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Stdout(e)),
        Ok(()) => Ok(()),
    }
}

/// Prints clap's help, version or usage error. Help and version are data on stdout and are
/// checked as data; a usage error goes to stderr, where a failure cannot be reported anyway.
pub fn print_clap(err: &clap::Error) -> Result<()> {
    if err.use_stderr() {
        // A usage error quotes what was typed, which may hold terminal escapes. Then it is
        // printed as plain text (clap's rendering without styles, which also drops escape
        // sequences) with every other control character escaped; else as clap prints it.
        let typed_raw = std::env::args_os().any(|arg| {
            let arg = arg.to_string_lossy();
            escape_lines(&arg) != arg
        });
        if typed_raw {
            let plain = err.render().to_string();
            let _ = io::stderr().write_all(escape_lines(&plain).as_bytes());
        } else {
            let _ = err.print();
        }
        return Ok(());
    }
    let printed = err.print();
    stdout_written(printed.and_then(|()| io::stdout().flush()))
}

/// When to colour messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How much to say, and how.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    color: bool,
    quiet: bool,
    verbose: bool,
}

/// Width used when the terminal's cannot be found (cron, pipes) and `COLUMNS` is unset.
const FALLBACK_WIDTH: usize = 100;

impl Console {
    pub fn new(choice: ColorChoice, quiet: bool, verbose: bool) -> Console {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && io::stderr().is_terminal()
            }
        };
        Console {
            color,
            quiet,
            verbose,
        }
    }

    /// Something was done. Silent with `--quiet`.
    pub fn success(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            self.message("32", "", msg.as_ref());
        }
    }

    /// Something worth knowing that needs no action. Silent with `--quiet`.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            self.message("", "", msg.as_ref());
        }
    }

    /// Details shown only with `--verbose`.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose && !self.quiet {
            self.message("2", "", msg.as_ref());
        }
    }

    /// Something that needs attention; shown even with `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.message("33", "warning: ", msg.as_ref());
    }

    /// The command failed; shown even with `--quiet`.
    pub fn error(&self, msg: impl AsRef<str>) {
        self.message("31", "error: ", msg.as_ref());
    }

    fn message(&self, ansi: &str, label: &str, msg: &str) {
        let msg = escape_lines(msg);
        let mut err = io::stderr().lock();
        let _ = if self.color && !ansi.is_empty() {
            writeln!(err, "\x1b[{ansi}m{label}{msg}\x1b[0m")
        } else {
            writeln!(err, "{label}{msg}")
        };
    }

    /// Human text for stdout, its lines kept and every other control character escaped.
    pub fn data(&self, text: impl AsRef<str>) -> Result<()> {
        self.raw(escape_lines(text.as_ref()).as_bytes())
    }

    /// Bytes for stdout exactly as given (exports, JSON, completion scripts).
    pub fn raw(&self, bytes: &[u8]) -> Result<()> {
        let mut out = io::stdout().lock();
        stdout_written(out.write_all(bytes).and_then(|()| out.flush()))
    }

    /// One JSON document on stdout, in the state file's own format, and a newline: exact
    /// values, escaped only as JSON escapes them.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let mut out = io::stdout().lock();
        stdout_written(
            write_python_json(&mut out, value)
                .and_then(|_| out.write_all(b"\n"))
                .and_then(|()| out.flush()),
        )
    }

    /// `value` as one line of JSON on stdout (keys sorted, no spaces, non-ASCII as it is): one
    /// journal line per run, for logs.
    pub fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        // Through a Value, whose map keeps its keys sorted, as the pretty form has them.
        let value = serde_json::to_value(value).map_err(|e| Error::Stdout(e.into()))?;
        let mut out = io::stdout().lock();
        stdout_written(
            serde_json::to_writer(&mut out, &value)
                .map_err(io::Error::from)
                .and_then(|_| out.write_all(b"\n"))
                .and_then(|()| out.flush()),
        )
    }

    /// A table on stdout that fits the terminal: the widest columns are truncated first.
    pub fn table<R, C>(&self, header: &[&str], rows: R) -> Result<()>
    where
        R: IntoIterator<Item = Vec<C>>,
        C: Into<String>,
    {
        // The terminal is asked only here: most commands print no table.
        self.data(render_table(header, rows, terminal_width()))
    }

    /// A table on stdout whose cells are never cut, however wide: for paths an operator must
    /// be able to copy.
    pub fn table_uncut<R, C>(&self, header: &[&str], rows: R) -> Result<()>
    where
        R: IntoIterator<Item = Vec<C>>,
        C: Into<String>,
    {
        self.data(render(header, rows, None))
    }
}

/// Space before the first column and between two columns in tabled's blank style (one cell of
/// padding each side, one of separator), used to budget the width.
const LEFT: &str = " ";
const GAP: &str = "   ";
/// A column is never cut narrower than this.
const MIN_COLUMN: usize = 4;

/// Renders rows under a header as plain aligned columns no wider than `width` (in terminal
/// cells: a CJK character counts two). When the table is too wide, the widest column is cut
/// first; a cut cell ends in `…`, and a wide character is never split. Control characters in
/// a cell are shown escaped ([`escape`]), and a cut never splits an escape.
pub fn render_table<R, C>(header: &[&str], rows: R, width: usize) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<String>,
{
    render(header, rows, Some(width))
}

/// [`render_table`], cutting to `width` only when one is given.
fn render<R, C>(header: &[&str], rows: R, width: Option<usize>) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<String>,
{
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    table.extend(
        rows.into_iter()
            .map(|row| row.into_iter().map(Into::into).collect()),
    );
    let columns = header.len();
    let mut widths = vec![0; columns];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(escape(cell).width());
        }
    }
    let overhead = LEFT.len() + GAP.len() * columns.saturating_sub(1);
    while width.is_some_and(|width| overhead + widths.iter().sum::<usize>() > width) {
        // The widest column that may still shrink (the rightmost of equals).
        let Some((i, _)) = widths
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > MIN_COLUMN)
            .max_by_key(|(i, w)| (**w, *i))
        else {
            break;
        };
        widths[i] -= 1;
    }
    // Cells are cut here, by terminal cells, because tabled's own truncation splits wide
    // characters into U+FFFD (tabled 0.17 to 0.22); tabled then lays the cut cells out.
    let mut builder = Builder::default();
    for (r, row) in table.iter().enumerate() {
        builder.push_record(row.iter().zip(&widths).map(|(cell, w)| {
            let cell = fit(cell, *w).into_owned();
            // The header is padded to the column's budget, so every column is exactly as
            // wide as planned even when a cut wide character leaves a cell one cell short.
            match r {
                0 => format!("{cell:<w$}", w = w - cell.width() + cell.chars().count()),
                _ => cell,
            }
        }));
    }
    let mut layout = builder.build();
    layout.with(Style::blank());
    let mut text = String::new();
    for line in layout.to_string().lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `text`, escaped, cut to at most `width` cells, ending in `…` when cut. An escape is one
/// piece: it is kept whole or left out, never cut in half.
fn fit(text: &str, width: usize) -> Cow<'_, str> {
    let shown = escape(text);
    if shown.width() <= width {
        return shown;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = escape_char(c);
        let w = match &piece {
            Some(e) => e.len(),
            None => c.width().unwrap_or(0),
        };
        if used + w + 1 > width {
            break;
        }
        match piece {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
        used += w;
    }
    out.truncate(out.trim_end().len());
    out.push('…');
    out.into()
}

/// The terminal's width, else `COLUMNS`, else a fixed fallback: never panics without a tty.
fn terminal_width() -> usize {
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
    {
        if cols >= 20 {
            return cols;
        }
    }
    terminal_size::terminal_size()
        .map(|(w, _)| w.0 as usize)
        .filter(|w| *w >= 20)
        .unwrap_or(FALLBACK_WIDTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    use unicode_width::UnicodeWidthStr;

    #[test]
    fn tables_fit_the_width_and_trim_trailing_space() {
        let rows = vec![vec![
            "B1",
            "a very long title that will not fit in a narrow terminal",
        ]];
        let text = render_table(&["ID", "TITLE"], rows, 30);
        for line in text.lines() {
            assert!(line.chars().count() <= 30, "{line:?}");
            assert_eq!(line, line.trim_end());
        }
        assert!(text.starts_with(" ID"), "{text}");
    }

    #[test]
    fn a_cut_cell_ends_in_an_ellipsis_and_short_ones_are_left_alone() {
        let rows = vec![
            vec![
                "B1",
                "a very long title that will not fit in a narrow terminal",
            ],
            vec!["B2", "short"],
        ];
        let text = render_table(&["ID", "TITLE"], rows, 30);
        assert_eq!(
            text,
            " ID   TITLE\n B1   a very long title that…\n B2   short\n"
        );
    }

    #[test]
    fn wide_characters_count_double_and_are_never_split() {
        let rows = vec![vec!["B3", "転生したらスライムだった件 1"]];
        for width in 12..40 {
            let text = render_table(&["ID", "TITLE"], rows.clone(), width);
            for line in text.lines() {
                assert!(line.width() <= width.max(12), "{width}: {line:?}");
                assert!(!line.contains('\u{FFFD}'), "{line:?}");
            }
        }
        let text = render_table(&["ID", "TITLE"], rows, 15);
        assert_eq!(text.lines().nth(1), Some(" B3   転生した…"));
    }

    #[test]
    fn the_widest_column_is_cut_first_and_none_below_the_minimum() {
        let rows = vec![vec!["aaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"]];
        let text = render_table(&["A", "B"], rows.clone(), 25);
        assert_eq!(text.lines().nth(1), Some(" aaaaaaaaaa   bbbbbbbbbb…"));
        // Too narrow for anything: columns stop at the minimum and the line overflows.
        let text = render_table(&["A", "B"], rows, 5);
        assert_eq!(text.lines().nth(1), Some(" aaa…   bbb…"));
    }

    #[test]
    fn control_characters_are_escaped_and_a_cut_never_splits_an_escape() {
        assert_eq!(escape("a\u{1b}[2Jb\r\u{202e}"), "a\\u{1b}[2Jb\\r\\u{202e}");
        assert_eq!(escape_lines("one\ntwo\u{7}"), "one\ntwo\\u{7}");
        assert!(matches!(escape("plain é 転"), Cow::Borrowed(_)));
        for width in 4..12 {
            let cut = fit("ab\u{1b}]0;x", width);
            assert!(!cut.contains('\u{1b}'), "{cut}");
            let head = cut.trim_end_matches('…');
            assert!(
                head == "ab" || head.starts_with("ab\\u{1b}"),
                "{width}: {cut}"
            );
        }
    }

    #[test]
    fn a_table_with_no_rows_is_just_the_header() {
        let text = render_table::<Vec<Vec<String>>, String>(&["ID"], vec![], 80);
        assert_eq!(text.trim(), "ID");
    }
}
