//! The `mamfast` binary: parse, dispatch, turn an error into its exit code. Nothing else.

mod cli;

use cli::output::{print_clap, ColorChoice, Console};
use cli::{commands, parse, plugins};

fn main() {
    // A TAB press in a shell with mamfast's completions: answered here, then exit.
    commands::completions::answer_request();
    let mut cli = match parse::parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version with exit 0, usage errors with exit 2. Help lists
            // the plugins found (the only path besides `plugins` that scans directories).
            let err = plugins::help_with_plugins(err);
            let code = match print_clap(&err) {
                Ok(()) => err.exit_code(),
                Err(failed) => {
                    Console::new(ColorChoice::Auto, false, false).error(failed.to_string());
                    failed.exit_code()
                }
            };
            std::process::exit(code);
        }
    };
    cli.global.take_env_hints(|name| std::env::var(name).ok());
    let console = Console::new(cli.global.color, cli.global.quiet, cli.global.verbose);
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            console.error(err.to_string());
            err.exit_code()
        }
    };
    std::process::exit(code);
}
