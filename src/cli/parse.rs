//! Reading the command line. A line that runs a plugin (`mamfast [OPTIONS] state NAME …`,
//! `mamfast [OPTIONS] NAME …`) in its plain form is read here, word by word, without building
//! a clap tree: building one costs more than the rest of a plugin's dispatch. The
//! plain form is the global options each written once, in full or as one short flag, then the
//! name. Every other line (help, version, `-qn`, a repeated or unknown option, a usage error)
//! is read by the full tree, which reads a plain plugin line the same way: a test compares the
//! two on every line of a generated set.

use std::ffi::{OsStr, OsString};

use clap::{Parser, ValueEnum};

use super::output::ColorChoice;
use super::{Cli, Command, GlobalArgs, StateArgs, StateCommand};

/// The built-in commands of `mamfast` and of `mamfast state`: a line naming one of them is
/// not a plugin's. A test checks them against the full tree.
const TOP_BUILTINS: &[&str] = &["state", "config", "plugins", "completions", "man", "help"];
const STATE_BUILTINS: &[&str] = &[
    "list",
    "show",
    "prune",
    "retry",
    "clear",
    "export",
    "mark-processed",
    "mark-failed",
    "checkpoint",
    "should-skip",
    "backups",
    "restore",
    "verify",
    "apply",
    "import",
    "log",
    "diff",
    "help",
];

/// The command line of this process, as the full tree reads it.
pub fn parse() -> Result<Cli, clap::Error> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match plugin_line(&args) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(args),
    }
}

/// The line as the full tree reads it, if it runs a plugin in the plain form (module docs).
fn plugin_line(args: &[OsString]) -> Option<Cli> {
    let mut global = GlobalArgs {
        config: None,
        state_file: None,
        dry_run: false,
        color: ColorChoice::Auto,
        quiet: false,
        verbose: false,
    };
    let mut color_given = false;
    let mut in_state = false;
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let text = word.to_str()?;
        if !text.starts_with('-') {
            if !in_state && text == "state" {
                in_state = true;
                continue;
            }
            let builtins = if in_state {
                STATE_BUILTINS
            } else {
                TOP_BUILTINS
            };
            if text.is_empty() || builtins.contains(&text) {
                return None;
            }
            let external = std::iter::once(word).chain(words).cloned().collect();
            let command = if in_state {
                Command::State(StateArgs {
                    command: StateCommand::External(external),
                })
            } else {
                Command::External(external)
            };
            return Some(Cli { global, command });
        }
        let (option, inline) = match text.split_once('=') {
            Some((option, value)) if option.starts_with("--") => (option, Some(value)),
            _ => (text, None),
        };
        match option {
            "-n" | "--dry-run" if inline.is_none() => set_once(&mut global.dry_run)?,
            "-q" | "--quiet" if inline.is_none() && !global.verbose => set_once(&mut global.quiet)?,
            "-v" | "--verbose" if inline.is_none() && !global.quiet => {
                set_once(&mut global.verbose)?
            }
            "--config" if global.config.is_none() => {
                global.config = Some(value(inline, &mut words)?.into());
            }
            "--state-file" if global.state_file.is_none() => {
                global.state_file = Some(value(inline, &mut words)?.into());
            }
            "--color" if !color_given => {
                color_given = true;
                global.color = ColorChoice::from_str(value(inline, &mut words)?, false).ok()?;
            }
            _ => return None,
        }
    }
    None
}

/// A flag given once; the second time (clap's error) is left to the full tree.
fn set_once(flag: &mut bool) -> Option<()> {
    (!*flag).then(|| *flag = true)
}

/// An option's value, `--option=value` or `--option value`: plain UTF-8 text that does not
/// look like an option. Anything else is left to the full tree.
fn value<'a>(
    inline: Option<&'a str>,
    words: &mut impl Iterator<Item = &'a OsString>,
) -> Option<&'a str> {
    let value = match inline {
        Some(value) => value,
        None => words
            .next()
            .map(OsString::as_os_str)
            .and_then(OsStr::to_str)?,
    };
    (!value.is_empty() && !value.starts_with('-')).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::plugins::Level;

    fn line(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_builtin_lists_are_the_full_trees() {
        let sorted = |names: &[&str]| {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            names.sort();
            names
        };
        let mut top = Level::Top.builtins();
        top.sort();
        assert_eq!(sorted(TOP_BUILTINS), top);
        let mut state = Level::State.builtins();
        state.sort();
        assert_eq!(sorted(STATE_BUILTINS), state);
    }

    #[test]
    fn a_plugin_line_reads_as_the_full_tree_reads_it() {
        for words in [
            &["mamfast", "state", "noop"][..],
            &["mamfast", "noop", "--json", "-q"],
            &[
                "mamfast", "-n", "--config", "/c.toml", "state", "stats", "--help",
            ],
            &[
                "mamfast",
                "state",
                "-q",
                "--color=never",
                "stats",
                "a",
                "--",
                "-v",
            ],
            &[
                "mamfast",
                "--state-file=/s.json",
                "-v",
                "hello",
                "state",
                "list",
            ],
            &["mamfast", "state", "lst"],
            &["mamfast", "state", "noop", "-V"],
        ] {
            let args = line(words);
            let fast = plugin_line(&args).unwrap_or_else(|| panic!("{words:?}"));
            let full = Cli::try_parse_from(&args).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{words:?}");
        }
    }

    #[test]
    fn every_line_read_here_is_read_the_same_by_the_full_tree() {
        const WORDS: &[&str] = &[
            "state",
            "noop",
            "list",
            "help",
            "-n",
            "--dry-run",
            "-q",
            "--quiet",
            "-v",
            "--verbose",
            "--config",
            "/c.toml",
            "--config=/c.toml",
            "--config=",
            "--state-file",
            "--state-file=/s.json",
            "--color",
            "never",
            "--color=always",
            "--color=pink",
            "-V",
            "--help",
            "--",
            "-qn",
            "",
            "a=b",
            "--=x",
            // Prefixes of built-ins: a plugin's names unless clap were told to infer commands.
            "li",
            "sta",
        ];
        let mut lines: Vec<Vec<&str>> = vec![vec![]];
        let mut read_here = 0;
        for _ in 0..3 {
            lines = lines
                .iter()
                .flat_map(|line| {
                    WORDS.iter().map(move |word| {
                        let mut longer = line.clone();
                        longer.push(word);
                        longer
                    })
                })
                .collect();
            for words in &lines {
                let args = line(&[&["mamfast"][..], words].concat());
                if let Some(fast) = plugin_line(&args) {
                    read_here += 1;
                    let full = Cli::try_parse_from(&args)
                        .unwrap_or_else(|e| panic!("{words:?}: read here, refused by clap: {e}"));
                    assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{words:?}");
                }
            }
        }
        // The set holds plugin lines of every shape, not only lines left to the full tree.
        assert!(read_here > 1000, "{read_here}");
    }

    /// What the plain form spells by hand: the global options as the full tree has them. A new
    /// global option, alias or value must be taught to `plugin_line` (or it refuses the line).
    #[test]
    fn the_global_options_read_here_are_the_full_trees() {
        use clap::CommandFactory;
        let tree = Cli::command();
        let mut found: Vec<String> = tree
            .get_arguments()
            .filter(|arg| !["help", "version"].contains(&arg.get_id().as_str()))
            .map(|arg| {
                let takes_value = arg.get_action().takes_values();
                let values: Vec<String> = arg
                    .get_possible_values()
                    .iter()
                    .flat_map(|v| v.get_name_and_aliases().map(str::to_string))
                    .collect();
                format!(
                    "--{} -{} aliases {:?} {:?} env {:?} value {takes_value} {}",
                    arg.get_long().unwrap_or_default(),
                    arg.get_short().unwrap_or(' '),
                    arg.get_all_aliases(),
                    arg.get_all_short_aliases(),
                    arg.get_env(),
                    if takes_value {
                        values.join("|")
                    } else {
                        String::new()
                    },
                )
            })
            .collect();
        found.sort();
        let mut expected = vec![
            "--color -  aliases None None env None value true auto|always|never",
            "--config -  aliases None None env None value true ",
            "--dry-run -n aliases None None env None value false ",
            "--quiet -q aliases None None env None value false ",
            "--state-file -  aliases None None env None value true ",
            "--verbose -v aliases None None env None value false ",
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn every_other_line_goes_to_the_full_tree() {
        for words in [
            &["mamfast"][..],
            &["mamfast", "state"],
            &["mamfast", "state", "list"],
            &["mamfast", "state", "help", "stats"],
            &["mamfast", "config", "show"],
            &["mamfast", "help", "state", "stats"],
            &["mamfast", "--help", "state", "noop"],
            &["mamfast", "state", "-V", "noop"],
            &["mamfast", "-q", "-v", "state", "noop"],
            &["mamfast", "--color", "pink", "noop"],
            &["mamfast", "--config", "a", "--config", "b", "noop"],
        ] {
            assert!(plugin_line(&line(words)).is_none(), "{words:?}");
        }
    }
}
