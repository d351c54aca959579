//! The console: every line a command prints goes through here. Data goes to stdout (tables,
//! `--json` documents, exports); messages go to stderr (success / info / warning / error).

use std::io::{self, IsTerminal, Write};

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::peaker::PriorityMax;
use tabled::settings::{Style, Width};

use crate::store::format::write_python_json;

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
    width: usize,
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
            width: terminal_width(),
        }
    }

    /// A console that prints everything plainly (for library callers and tests).
    pub fn plain() -> Console {
        Console {
            color: false,
            quiet: false,
            verbose: false,
            width: FALLBACK_WIDTH,
        }
    }

    pub fn quiet(&self) -> bool {
        self.quiet
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
        let mut err = io::stderr().lock();
        let _ = if self.color && !ansi.is_empty() {
            writeln!(err, "\x1b[{ansi}m{label}{msg}\x1b[0m")
        } else {
            writeln!(err, "{label}{msg}")
        };
    }

    /// Data for stdout, printed as given.
    pub fn data(&self, text: impl AsRef<str>) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_ref().as_bytes());
        let _ = out.flush();
    }

    /// One JSON document on stdout, in the state file's own format, and a newline.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) {
        let mut out = io::stdout().lock();
        let _ = write_python_json(&mut out, value).and_then(|_| out.write_all(b"\n"));
        let _ = out.flush();
    }

    /// A table on stdout that fits the terminal: the widest columns are truncated first.
    pub fn table<R, C>(&self, header: &[&str], rows: R)
    where
        R: IntoIterator<Item = Vec<C>>,
        C: Into<String>,
    {
        self.data(render_table(header, rows, self.width));
    }

    /// A table on stdout whose cells are never cut, however wide: for paths an operator must
    /// be able to copy.
    pub fn table_uncut<R, C>(&self, header: &[&str], rows: R)
    where
        R: IntoIterator<Item = Vec<C>>,
        C: Into<String>,
    {
        self.data(render(header, rows, None));
    }
}

/// Renders rows under a header as plain aligned columns no wider than `width`.
pub fn render_table<R, C>(header: &[&str], rows: R, width: usize) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<String>,
{
    render(header, rows, Some(width))
}

/// [`render_table`], truncating to `width` only when one is given.
fn render<R, C>(header: &[&str], rows: R, width: Option<usize>) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<String>,
{
    let mut builder = Builder::default();
    builder.push_record(header.iter().map(|h| h.to_string()));
    for row in rows {
        builder.push_record(row.into_iter().map(|c| c.into().replace(['\n', '\t'], " ")));
    }
    let mut table = builder.build();
    table.with(Style::blank());
    if let Some(width) = width {
        table.with(Width::truncate(width).priority(PriorityMax::right()));
    }
    let mut text = String::new();
    for line in table.to_string().lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
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
    fn a_table_with_no_rows_is_just_the_header() {
        let text = render_table::<Vec<Vec<String>>, String>(&["ID"], vec![], 80);
        assert_eq!(text.trim(), "ID");
    }
}
