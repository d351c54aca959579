//! The console: every line a command prints goes through here. Data goes to stdout (tables,
//! `--json` documents, exports); messages go to stderr (success / info / warning / error).
//!
//! Text from outside (IDs, titles, errors, file names) may hold terminal escapes: every human
//! line is passed through [`escape`] (or [`escape_lines`], from `mamfast::escape`) here, once;
//! `--json` and `export` keep the exact value.

use std::borrow::Cow;
use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;
use tabled::builder::Builder;
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
    /// Colour on stderr (messages).
    color: bool,
    /// Colour on stdout (the status column of tables).
    color_out: bool,
    quiet: bool,
    verbose: bool,
}

impl Console {
    pub fn new(choice: ColorChoice, quiet: bool, verbose: bool) -> Console {
        // `auto` asks anstream, as clap does for its own help: the stream is a terminal,
        // `NO_COLOR` unset or empty, `CLICOLOR_FORCE` set forces it, `TERM=dumb` turns it off.
        let wants = |auto: anstream::ColorChoice| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => auto != anstream::ColorChoice::Never,
        };
        Console {
            color: wants(anstream::AutoStream::choice(&io::stderr())),
            color_out: wants(anstream::AutoStream::choice(&io::stdout())),
            quiet,
            verbose,
        }
    }

    /// Something was done. Silent with `--quiet`.
    pub fn success(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            self.message(AnsiColor::Green.on_default(), "", msg.as_ref());
        }
    }

    /// Something worth knowing that needs no action. Silent with `--quiet`.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            self.message(Style::new(), "", msg.as_ref());
        }
    }

    /// Details shown only with `--verbose`.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose && !self.quiet {
            self.message(Style::new().dimmed(), "", msg.as_ref());
        }
    }

    /// Something that needs attention; shown even with `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.message(AnsiColor::Yellow.on_default(), "warning: ", msg.as_ref());
    }

    /// The command failed; shown even with `--quiet`.
    pub fn error(&self, msg: impl AsRef<str>) {
        self.message(AnsiColor::Red.on_default(), "error: ", msg.as_ref());
    }

    fn message(&self, style: Style, label: &str, msg: &str) {
        let msg = escape_lines(msg);
        let style = if self.color { style } else { Style::new() };
        // A plain style renders as nothing, so an uncoloured line has no escape at all.
        let _ = writeln!(io::stderr().lock(), "{style}{label}{msg}{style:#}");
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

    /// A table on stdout that fits the terminal: the widest columns are truncated first,
    /// the first (the ID an operator copies next) never.
    pub fn table<R, C>(&self, header: &[&str], rows: R) -> Result<()>
    where
        R: IntoIterator<Item = Vec<C>>,
        C: Into<String>,
    {
        self.table_painted(header, rows, None)
    }

    /// [`Console::table`], the cells of one column coloured by `paint` when stdout takes
    /// colour.
    pub fn table_painted<R, C>(&self, header: &[&str], rows: R, paint: Option<Paint>) -> Result<()>
    where
        R: IntoIterator<Item = Vec<C>>,
        C: Into<String>,
    {
        let paint = paint.filter(|_| self.color_out);
        // The terminal is asked only here: most commands print no table. Escapes were
        // added after every cell was escaped, so the text is written as it is.
        let text = render(header, rows, table_width(), paint);
        self.raw(text.as_bytes())
    }

    /// A table on stdout whose cells are never cut, however wide: for paths an operator must
    /// be able to copy.
    pub fn table_uncut<R, C>(&self, header: &[&str], rows: R) -> Result<()>
    where
        R: IntoIterator<Item = Vec<C>>,
        C: Into<String>,
    {
        self.data(render(header, rows, None, None))
    }
}

/// How to colour the cells of one column of a table: `style` gets the cell's text.
#[derive(Clone, Copy)]
pub struct Paint {
    pub column: usize,
    pub style: fn(&str) -> Style,
}

/// Space before the first column and between two columns in tabled's blank style (one cell of
/// padding each side, one of separator), used to budget the width.
const LEFT: &str = " ";
const GAP: &str = "   ";
/// A column is never cut narrower than this.
const MIN_COLUMN: usize = 4;

/// Renders rows under a header as plain aligned columns no wider than `width` (in terminal
/// cells: a CJK character counts two). When the table is too wide, the widest column is cut
/// first, the first column never; a cut cell ends in `…`, and a wide character is never
/// split. Control characters in a cell are shown escaped ([`escape`]), and a cut never splits
/// an escape.
#[cfg(test)]
pub fn render_table<R, C>(header: &[&str], rows: R, width: usize) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<String>,
{
    render(header, rows, Some(width), None)
}

/// [`render_table`], cutting to `width` only when one is given, one column coloured when
/// `paint` is given.
fn render<R, C>(header: &[&str], rows: R, width: Option<usize>, paint: Option<Paint>) -> String
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
            .filter(|(i, w)| *i > 0 && **w > MIN_COLUMN)
            .max_by_key(|(i, w)| (**w, *i))
        else {
            break;
        };
        widths[i] -= 1;
    }
    // Cells are cut here, by terminal cells, because tabled's own truncation splits wide
    // characters into U+FFFD (tabled 0.17 to 0.22); tabled then lays the cut cells out.
    let mut builder = Builder::default();
    let mut painted: Vec<String> = Vec::new();
    for (r, row) in table.iter().enumerate() {
        builder.push_record(row.iter().zip(&widths).enumerate().map(|(c, (cell, w))| {
            let cell = fit(cell, *w).into_owned();
            if r > 0 && paint.is_some_and(|p| p.column == c) {
                painted.push(cell.clone());
            }
            // The header is padded to the column's budget, so every column is exactly as
            // wide as planned even when a cut wide character leaves a cell one cell short.
            match r {
                0 => format!("{cell:<w$}", w = w - cell.width() + cell.chars().count()),
                _ => cell,
            }
        }));
    }
    let mut layout = builder.build();
    layout.with(tabled::settings::Style::blank());
    let mut text = String::new();
    for (r, line) in layout.to_string().lines().enumerate() {
        let line = line.trim_end();
        match paint {
            // Coloured after the layout, so tabled measures plain text: the column starts
            // where the widths planned above put it.
            Some(p) if r > 0 => {
                let start =
                    LEFT.len() + widths[..p.column].iter().sum::<usize>() + GAP.len() * p.column;
                // The style is chosen by the whole value, even when the cell shows it cut.
                let style = (p.style)(&table[r][p.column]);
                text.push_str(&paint_at(line, start, &painted[r - 1], style));
            }
            _ => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// `line` with `cell`, found at display column `start`, wrapped in `style`; the line as it
/// is when the cell is not there.
fn paint_at(line: &str, start: usize, cell: &str, style: Style) -> String {
    let mut used = 0;
    let at = line
        .char_indices()
        .find(|(_, c)| {
            let here = used >= start;
            used += c.width().unwrap_or(0);
            here
        })
        .map(|(i, _)| i);
    match at {
        Some(i) if !cell.is_empty() && line[i..].starts_with(cell) => {
            let end = i + cell.len();
            format!("{}{style}{cell}{style:#}{}", &line[..i], &line[end..])
        }
        _ => line.to_string(),
    }
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

/// The width a table is cut to: `COLUMNS` when set (20 or more), else the width of the
/// terminal stdout is, else none: output to a pipe or a file is never cut, so that
/// `state list | grep WORD` finds a word at the end of a long title.
fn table_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok();
    width_from(
        columns.as_deref(),
        terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| w.0 as usize),
    )
}

/// [`table_width`] from what it looks at.
fn width_from(columns: Option<&str>, terminal: Option<usize>) -> Option<usize> {
    if let Some(cols) = columns.and_then(|c| c.trim().parse::<usize>().ok()) {
        if cols >= 20 {
            return Some(cols);
        }
    }
    terminal.filter(|w| *w >= 20)
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
        // Too narrow for anything: columns stop at the minimum, the first is never cut, and
        // the line overflows.
        let text = render_table(&["A", "B"], rows, 5);
        assert_eq!(text.lines().nth(1), Some(" aaaaaaaaaa   bbb…"));
    }

    #[test]
    fn the_first_column_is_never_cut_at_any_width() {
        let id = "/srv/audiobooks/Some Author - A Long Book Without ASIN";
        let rows = vec![vec![
            id,
            "COMPLETE",
            "a title that is long enough to be cut",
        ]];
        for width in [20, 40, 80, 200] {
            let text = render_table(&["ID", "STATUS", "TITLE"], rows.clone(), width);
            let line = text.lines().nth(1).unwrap();
            assert!(line.starts_with(&format!(" {id}   ")), "{width}: {line}");
        }
    }

    #[test]
    fn a_pipe_is_not_cut_unless_columns_says_so() {
        assert_eq!(width_from(None, None), None);
        assert_eq!(width_from(None, Some(80)), Some(80));
        assert_eq!(width_from(Some("200"), Some(80)), Some(200));
        assert_eq!(width_from(Some("40"), None), Some(40));
        // Nonsense or tiny values are ignored.
        assert_eq!(width_from(Some("x"), None), None);
        assert_eq!(width_from(Some("5"), Some(90)), Some(90));
        let long = "x".repeat(300);
        let text = render(
            &["ID", "TITLE"],
            vec![vec!["B1", long.as_str()]],
            None,
            None,
        );
        assert!(text.contains(&long));
    }

    #[test]
    fn a_painted_column_is_coloured_where_the_layout_put_it() {
        fn style(status: &str) -> Style {
            match status {
                "COMPLETE" => AnsiColor::Green.on_default(),
                _ => Style::new(),
            }
        }
        let paint = Some(Paint { column: 1, style });
        let rows = vec![
            vec!["転生", "COMPLETE", "x"],
            vec!["B2", "STAGED", "COMPLETE"],
        ];
        let text = render(&["ID", "STATUS", "TITLE"], rows, Some(80), paint);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], " ID     STATUS     TITLE");
        assert_eq!(lines[1], " 転生   \x1b[32mCOMPLETE\x1b[0m   x");
        // Only the STATUS column: a title that reads COMPLETE stays plain.
        assert_eq!(lines[2], " B2     STAGED     COMPLETE");
        // Cut, the cell keeps the colour of its whole value.
        let rows = vec![vec!["B1", "COMPLETE", "a long title that needs cutting"]];
        let text = render(&["ID", "STATUS", "TITLE"], rows, Some(20), paint);
        assert!(text.contains("\x1b[32mCOMPL…\x1b[0m"), "{text}");
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
