//! Reading the command line. A line that runs a plugin (`mamfast [OPTIONS] state NAME …`,
//! `mamfast [OPTIONS] NAME …`) is read with a small tree, the global options and the two
//! levels a plugin hangs at, so running a plugin does not build the arguments of every
//! built-in command. Every other line, and every line the small tree refuses (help, version,
//! a usage error), is read by the full tree, which reads a plugin's line the same way: the
//! result and the errors are what they always were.

use std::ffi::OsString;

use clap::{value_parser, ArgMatches, Args, FromArgMatches, Parser};

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

/// The line read by the small tree, if it runs a plugin and the small tree accepts it.
fn plugin_line(args: &[OsString]) -> Option<Cli> {
    let matches = plugin_tree().try_get_matches_from(args).ok()?;
    let global = GlobalArgs::from_arg_matches(&matches).ok()?;
    let command = match matches.subcommand()? {
        ("state", state) => match state.subcommand()? {
            (name, _) if STATE_BUILTINS.contains(&name) => return None,
            (name, rest) => Command::State(StateArgs {
                command: StateCommand::External(external(name, rest)),
            }),
        },
        (name, _) if TOP_BUILTINS.contains(&name) => return None,
        (name, rest) => Command::External(external(name, rest)),
    };
    Some(Cli { global, command })
}

/// The global options, and at the top and under `state` any other name as a plugin's, read
/// as the full tree reads them.
fn plugin_tree() -> clap::Command {
    let plugin_level = |cmd: clap::Command| {
        cmd.disable_help_subcommand(true)
            .allow_external_subcommands(true)
            .external_subcommand_value_parser(value_parser!(OsString))
    };
    let root = plugin_level(GlobalArgs::augment_args(clap::Command::new("mamfast")));
    root.subcommand(plugin_level(clap::Command::new("state")))
}

/// A plugin's name and everything after it, untouched, as the full tree hands them over.
fn external(name: &str, rest: &ArgMatches) -> Vec<OsString> {
    let args = rest.get_many::<OsString>("").into_iter().flatten().cloned();
    std::iter::once(OsString::from(name)).chain(args).collect()
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
