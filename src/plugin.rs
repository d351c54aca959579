//! For plugins written in Rust: the settings mamfast hands down in the environment, and the
//! same [`Store`] the built-in commands use, so locking, backups and fsync are the same for
//! everyone. See the crate documentation for a complete plugin.
//!
//! A plugin run by hand (not through mamfast) gets what mamfast would have handed it: the
//! same configuration layers are read.

use std::path::PathBuf;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store::Store;

/// The plugin interface version mamfast sets in `MAMFAST_PLUGIN_API`.
pub const API_VERSION: &str = "1";

/// The settings in effect: [`Settings::from_plugin_env`].
pub fn settings() -> Result<Settings> {
    Settings::from_plugin_env()
}

/// The state file's store, configured exactly as the built-in commands configure theirs
/// (backup retention, lock timeout, dry run): [`Settings::store`].
pub fn store() -> Result<Store> {
    Ok(settings()?.store())
}

/// Whether this process was started by mamfast (`MAMFAST_PLUGIN_API` is set).
pub fn run_by_mamfast() -> bool {
    std::env::var_os("MAMFAST_PLUGIN_API").is_some()
}

/// The `mamfast` that ran this plugin (`MAMFAST_BIN`), else `mamfast` as found in `PATH`.
/// Use it to change the state through the command line: `Command::new(plugin::mamfast_bin())`.
pub fn mamfast_bin() -> PathBuf {
    std::env::var_os("MAMFAST_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("mamfast"), PathBuf::from)
}

/// Whether the user asked for `--quiet` (`MAMFAST_QUIET=1`): print nothing on success.
pub fn quiet() -> bool {
    std::env::var("MAMFAST_QUIET").is_ok_and(|v| v == "1")
}

/// Runs a plugin's `main`: an error is printed as mamfast prints its own (`error: …` on
/// standard error) and the process exits with the error's exit code (docs/FORMAT.md, *Exit codes*); an
/// `Ok(code)` exits with `code`.
pub fn run(main: impl FnOnce() -> Result<i32>) -> ! {
    let code = match main() {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            err.exit_code()
        }
    };
    std::process::exit(code)
}

fn report(err: &Error) {
    // The error may quote the state file's text: escaped as mamfast's own messages are.
    eprintln!("error: {}", crate::escape::escape_lines(&err.to_string()));
}
