//! Plugins: `mamfast <name>` runs `mamfast-<name>`, `mamfast state <name>` runs
//! `mamfast-state-<name>`, found by exact name in `plugins.dirs`, then `PATH`, and `exec`ed.
//!
//! The dispatch path stats one candidate per directory and nothing else: no directory is read,
//! no state is loaded. Directories are scanned ([`scan`]) only to list plugins, for help and
//! completions, and to suggest a name after a miss.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use clap::builder::StyledStr;
use clap::CommandFactory;
use nix::unistd::{access, AccessFlags};

use super::{Cli, Ctx};
use mamfast::error::{Error, Result};
use mamfast::escape::escape;
use mamfast::suggest::did_you_mean;

/// Where a plugin hangs in the command tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `mamfast <name>`, file `mamfast-<name>`.
    Top,
    /// `mamfast state <name>`, file `mamfast-state-<name>`.
    State,
}

impl Level {
    /// The file name prefix: `mamfast-` or `mamfast-state-`.
    pub fn prefix(self) -> &'static str {
        match self {
            Level::Top => "mamfast-",
            Level::State => "mamfast-state-",
        }
    }

    /// How a user types the command: `mamfast stats`, `mamfast state stats`.
    pub fn command(self, name: &str) -> String {
        match self {
            Level::Top => format!("mamfast {name}"),
            Level::State => format!("mamfast state {name}"),
        }
    }

    /// The command that lists this level's commands: `mamfast state --help`.
    pub fn help_command(self) -> &'static str {
        match self {
            Level::Top => "mamfast --help",
            Level::State => "mamfast state --help",
        }
    }

    /// The file a name runs: `mamfast-state-stats`.
    pub fn file_name(self, name: &OsStr) -> OsString {
        let mut file = OsString::from(self.prefix());
        file.push(name);
        file
    }

    /// The built-in commands at this level (what always wins), from the clap tree.
    pub fn builtins(self) -> Vec<String> {
        let root = Cli::command();
        let cmd = match self {
            Level::Top => &root,
            Level::State => match root.find_subcommand("state") {
                Some(state) => state,
                None => return Vec::new(),
            },
        };
        let mut names = Vec::new();
        for sub in cmd.get_subcommands() {
            names.push(sub.get_name().to_string());
            names.extend(sub.get_all_aliases().map(str::to_string));
        }
        names
    }

    /// The level and name of a file name, if it is a plugin's: `mamfast-state-x` is the state
    /// plugin `x` (never the top-level plugin `state-x`), `mamfast-x` the top-level plugin `x`.
    pub fn of_file(file_name: &str) -> Option<(Level, &str)> {
        let (level, name) = if let Some(name) = file_name.strip_prefix(Level::State.prefix()) {
            (Level::State, name)
        } else {
            (Level::Top, file_name.strip_prefix(Level::Top.prefix())?)
        };
        check_shape(level, OsStr::new(name)).ok()?;
        Some((level, name))
    }
}

/// The characters a plugin name may hold, as the messages spell them.
pub const SAFE_NAME_CHARS: &str = "A-Z a-z 0-9 . _ + -";

/// Whether a plugin name is made only of [`SAFE_NAME_CHARS`]: such a name can be put in a
/// completion script (shell code), a help page and a terminal as it is. Anything else (a
/// space, `$(…)`, a quote, an escape sequence) is never offered and never run.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

/// The directories searched, in order: `plugins.dirs`, then the absolute entries of `PATH`.
/// Empty and relative entries would search the current directory: they are skipped (those of
/// `plugins.dirs` with a warning, [`relative_dir_warnings`]).
pub fn search_dirs(plugin_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = plugin_dirs
        .iter()
        .filter(|d| d.is_absolute())
        .cloned()
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|p| p.is_absolute()));
    }
    dirs
}

/// The warnings for the relative entries of `plugins.dirs` (from `MAMFAST_PLUGIN_DIRS`, which
/// are kept relative): they are skipped, and the warning says what to write instead.
pub fn relative_dir_warnings(ctx: &Ctx) -> Vec<String> {
    let origin = ctx.settings.origin("plugins.dirs");
    ctx.settings
        .plugin_dirs
        .iter()
        .filter(|d| d.is_relative())
        .map(|d| {
            let absolute = std::env::current_dir()
                .map(|cwd| format!(" {}", cwd.join(d).display()))
                .unwrap_or_default();
            format!(
                "plugins.dirs entry {:?} (from {origin}) is relative: it would run plugins from \
                 whatever directory mamfast is started in, so it is skipped. Use an absolute \
                 path instead, e.g.{absolute}.",
                d.display().to_string(),
            )
        })
        .collect()
}

/// Why someone other than root and this user could replace the file or directory at `path`
/// (and so choose the code a plugin runs), if they could: it is writable by every user (a
/// directory with the sticky bit, as /tmp, is fine), or owned by another user.
pub fn insecurity(path: &Path) -> Option<String> {
    let meta = path.metadata().ok()?;
    let what = if meta.is_dir() { "directory" } else { "file" };
    let shown = path.display();
    let sticky_dir = meta.is_dir() && meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o002 != 0 && !sticky_dir {
        return Some(format!(
            "the {what} {shown} is writable by every user (mode {:o}), so anyone could replace \
             the plugin. Fix: chmod o-w {shown}",
            meta.mode() & 0o7777
        ));
    }
    let uid = meta.uid();
    if uid != 0 && uid != nix::unistd::geteuid().as_raw() {
        return Some(format!(
            "the {what} {shown} is owned by user {uid}, neither you nor root, so that user could \
             replace the plugin. Fix: chown it to yourself or root, or take it out of \
             plugins.dirs and PATH"
        ));
    }
    None
}

/// The warnings for a plugin file that others could replace: its directory, then the file.
pub fn location_warnings(plugin: &Path) -> Vec<String> {
    let dir = plugin.parent().filter(|d| !d.as_os_str().is_empty());
    dir.into_iter()
        .chain(std::iter::once(plugin))
        .filter_map(insecurity)
        .map(|why| format!("{} runs anyway, but {why}", plugin.display()))
        .collect()
}

/// Refuses names that are not plain command names ([`check_shape`]) or that hold a character
/// outside [`SAFE_NAME_CHARS`].
pub fn check_name(level: Level, name: &OsStr) -> Result<()> {
    check_shape(level, name)?;
    let shown = name.to_string_lossy();
    if !is_safe_name(&shown) {
        return Err(Error::Usage(format!(
            "invalid command name {shown:?}: a plugin name may hold only the characters \
             {SAFE_NAME_CHARS} (anything else is unsafe in shell completion and on a terminal).\n\
             Rename the plugin file to such a name; `mamfast plugins` lists the files skipped."
        )));
    }
    Ok(())
}

/// Refuses names that are not command names at all: empty, with `/` (could leave the
/// directory), or starting with `-` (an option, not a command). A top-level name `state-x`
/// is refused too: `mamfast-state-x` is the state plugin `mamfast state x`.
fn check_shape(level: Level, name: &OsStr) -> Result<()> {
    let shown = name.to_string_lossy();
    let help = level.help_command();
    if name.is_empty() {
        return Err(Error::Usage(format!(
            "no command name: `{}` names no command.\n\
             Run `{help}` for the commands, `mamfast plugins` for the plugins found.",
            level.command("''")
        )));
    }
    if name.as_bytes().contains(&b'/') {
        return Err(Error::Usage(format!(
            "invalid command name {shown:?}: a plugin name cannot contain '/'.\n\
             Plugins are found by name in plugins.dirs and PATH, never by path; \
             to run a program by its path, run it directly."
        )));
    }
    if name.as_bytes().starts_with(b"-") {
        return Err(Error::Usage(format!(
            "invalid command name {shown:?}: a command name cannot start with '-'.\n\
             Run `{help}` for the commands and options."
        )));
    }
    if level == Level::Top {
        if let Some(rest) = shown.strip_prefix("state-") {
            let what = if rest.is_empty() {
                format!(
                    "Run `{}` for the state commands.",
                    Level::State.help_command()
                )
            } else {
                format!("Run it as `mamfast state {rest}`.")
            };
            return Err(Error::Usage(format!(
                "invalid command name {shown:?}: mamfast-state-* programs are state plugins.\n{what}"
            )));
        }
    }
    Ok(())
}

/// What an exact-name lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The first executable file of that name.
    Found(PathBuf),
    /// Files of that name exist, none executable: the first one.
    NotExecutable(PathBuf),
    NotFound,
}

/// Finds `file` in `dirs`: the first executable regular file (symlinks followed) wins; a
/// non-executable one is skipped, as a shell skips it, but remembered for the error.
pub fn lookup(dirs: &[PathBuf], file: &OsStr) -> Lookup {
    let mut not_executable = None;
    for dir in dirs {
        let path = dir.join(file);
        match path.metadata() {
            Ok(meta) if meta.is_file() => {
                if is_executable(&path) {
                    return Lookup::Found(path);
                }
                not_executable.get_or_insert(path);
            }
            _ => {}
        }
    }
    not_executable.map_or(Lookup::NotFound, Lookup::NotExecutable)
}

/// Whether this process may execute `path` (`access(2)`, so the owner, group and other bits
/// are read as the kernel will read them).
fn is_executable(path: &Path) -> bool {
    access(path, AccessFlags::X_OK).is_ok()
}

/// Runs `mamfast-<name>` / `mamfast-state-<name>`: `args[0]` is the name, the rest go to the
/// plugin untouched. On success this never returns: the plugin replaces mamfast.
pub fn dispatch(ctx: &Ctx, level: Level, args: &[OsString]) -> Result<i32> {
    let Some((name, rest)) = args.split_first() else {
        return Err(Error::Usage("no command name given".into()));
    };
    check_name(level, name)?;
    let file = level.file_name(name);
    for warning in relative_dir_warnings(ctx) {
        ctx.console.warn(warning);
    }
    let dirs = search_dirs(&ctx.settings.plugin_dirs);
    match lookup(&dirs, &file) {
        Lookup::Found(path) => {
            // Warned, not refused: the operator put the directory there; a cron job's mail
            // shows the warning on every run until it is fixed.
            for warning in location_warnings(&path) {
                ctx.console.warn(warning);
            }
            Err(exec(ctx, &path, rest))
        }
        Lookup::NotExecutable(path) => Err(Error::PluginExec(format!(
            "{path} is not executable, so `{command}` cannot run it.\n\
             Make it executable with: chmod +x {path}",
            path = path.display(),
            command = level.command(&name.to_string_lossy()),
        ))),
        Lookup::NotFound => Err(not_found(level, name, &dirs)),
    }
}

/// The environment a plugin gets on top of mamfast's own (README, *Plugins*): the resolved
/// settings, `MAMFAST_BIN`, `MAMFAST_PLUGIN_API`, and the console options as hints.
pub fn plugin_env(ctx: &Ctx) -> Result<Vec<(&'static str, OsString)>> {
    let mut env: Vec<(&'static str, OsString)> = ctx
        .settings
        .plugin_env()
        .into_iter()
        .map(|(k, v)| (k, OsString::from(v)))
        .collect();
    let bin = std::env::current_exe().map_err(|e| {
        Error::PluginExec(format!(
            "cannot find the path of the running mamfast for MAMFAST_BIN: {e}\n\
             Run mamfast by an absolute path, or check that /proc is mounted."
        ))
    })?;
    env.push(("MAMFAST_BIN", bin.into_os_string()));
    env.push(("MAMFAST_PLUGIN_API", mamfast::plugin::API_VERSION.into()));
    let flag = |on: bool| OsString::from(if on { "1" } else { "0" });
    env.push(("MAMFAST_QUIET", flag(ctx.global.quiet)));
    env.push(("MAMFAST_VERBOSE", flag(ctx.global.verbose)));
    // The value as written on the command line (`--color auto`, …).
    let color =
        clap::ValueEnum::to_possible_value(&ctx.global.color).expect("no colour choice is hidden");
    env.push(("MAMFAST_COLOR", color.get_name().into()));
    Ok(env)
}

/// Replaces this process with the plugin; returns only the error of a plugin that could not
/// start. Its exit status and any signal that ends it are then the caller's, unchanged.
fn exec(ctx: &Ctx, path: &Path, args: &[OsString]) -> Error {
    let env = match plugin_env(ctx) {
        Ok(env) => env,
        Err(err) => return err,
    };
    let mut command = std::process::Command::new(path);
    command.args(args).envs(env);
    let err = command.exec();
    start_error(path, &err)
}

/// Why a file that is there and executable could not be started, and what to do.
pub fn start_error(path: &Path, err: &std::io::Error) -> Error {
    let shown = path.display();
    let interpreter = shebang(path);
    let msg = match (&interpreter, err.raw_os_error()) {
        (Some(interp), Some(nix::libc::ENOENT)) if interp.ends_with('\r') => format!(
            "could not start {shown}: its #! line ends in a carriage return (Windows line \
             endings), so the interpreter it names, {} followed by a carriage return, does \
             not exist.\n\
             Save the file with Unix line endings, e.g. with: dos2unix {shown}",
            interp.trim_end_matches('\r')
        ),
        (Some(interp), Some(nix::libc::ENOENT)) => format!(
            "could not start {shown}: its #! line names the interpreter {interp}, which does \
             not exist.\n\
             Fix the first line of {shown} (e.g. #!/bin/sh or #!/usr/bin/env python3), or \
             install {interp}."
        ),
        (Some(interp), Some(nix::libc::EACCES)) => format!(
            "could not start {shown}: permission denied running it or its interpreter {interp}.\n\
             Check that {interp} is an executable file and that the file system is not \
             mounted noexec."
        ),
        (Some(interp), _) => format!(
            "could not start {shown} with the interpreter {interp} of its #! line: {err}\n\
             Check the first line of {shown}."
        ),
        (None, Some(nix::libc::EACCES)) => format!(
            "could not start {shown}: permission denied ({err}).\n\
             Check that the file system is not mounted noexec and that you may execute it."
        ),
        (None, _) => format!(
            "could not start {shown}: {err}\n\
             Check that it is a program for this machine, or a script with a #! line."
        ),
    };
    Error::PluginExec(msg)
}

/// The interpreter named by a file's `#!` line (its first word), if it has one.
fn shebang(path: &Path) -> Option<String> {
    let mut head = [0u8; 256];
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let line = head[..len].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let interp = text.trim_start_matches([' ', '\t']);
    let word = interp.split([' ', '\t']).next().unwrap_or_default();
    (!word.is_empty()).then(|| word.to_string())
}

/// The "unknown command" error, with the nearest built-in or plugin as a suggestion.
fn not_found(level: Level, name: &OsStr, dirs: &[PathBuf]) -> Error {
    let shown = name.to_string_lossy();
    let mut candidates = level.builtins();
    candidates.extend(
        scan(dirs)
            .into_iter()
            .filter(|p| p.level == level && p.runs())
            .map(|p| p.name),
    );
    let mut msg = format!(
        "unknown command `{}`: it is not built in, and no {} was found in plugins.dirs or PATH.",
        level.command(&shown),
        level.file_name(name).to_string_lossy()
    );
    if let Some(best) = did_you_mean(&shown, &candidates) {
        let _ = write!(
            msg,
            "\n\n  tip: a similar command exists: `{}`\n",
            level.command(best)
        );
    }
    let help = level.help_command();
    let _ = write!(
        msg,
        "\nRun `{help}` for the commands, `mamfast plugins` for the plugins found."
    );
    Error::Usage(msg)
}

/// Why a plugin file is not the one its command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shadow {
    /// A built-in command of that name always wins.
    BuiltIn,
    /// This file runs instead (it comes first in the search order and is executable).
    By(PathBuf),
}

/// A plugin file found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub level: Level,
    pub name: String,
    pub path: PathBuf,
    pub executable: bool,
    /// Whether the name is made of [`SAFE_NAME_CHARS`]: a file with another name never runs
    /// and is neither offered in completions nor listed in help.
    pub safe_name: bool,
    /// What runs instead of this file, if not this file.
    pub shadowed_by: Option<Shadow>,
}

impl PluginInfo {
    /// `mamfast state stats`.
    pub fn command(&self) -> String {
        self.level.command(&self.name)
    }

    /// Whether `command()` runs this file.
    pub fn runs(&self) -> bool {
        self.safe_name && self.executable && self.shadowed_by.is_none()
    }
}

/// Every plugin file in `dirs` (both levels), grouped by command in name order, each group in
/// search order. A directory named twice (or through a symlink) is read once.
pub fn scan(dirs: &[PathBuf]) -> Vec<PluginInfo> {
    let mut seen = HashSet::new();
    let mut files: BTreeMap<(Level, String), Vec<(PathBuf, bool)>> = BTreeMap::new();
    for dir in dirs {
        let Ok(meta) = dir.metadata() else { continue };
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<(Level, String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                // Lossy: a name that is not UTF-8 is listed (as unsafe), not hidden.
                let file_name = e.file_name().to_string_lossy().into_owned();
                let (level, name) = Level::of_file(&file_name)?;
                Some((level, name.to_string(), e.path()))
            })
            .filter(|(_, _, path)| path.metadata().is_ok_and(|m| m.is_file()))
            .collect();
        found.sort();
        for (level, name, path) in found {
            let executable = is_executable(&path);
            files
                .entry((level, name))
                .or_default()
                .push((path, executable));
        }
    }
    let builtins = [
        (Level::Top, Level::Top.builtins()),
        (Level::State, Level::State.builtins()),
    ];
    let mut out = Vec::new();
    for ((level, name), paths) in files {
        let built_in = builtins
            .iter()
            .any(|(l, names)| *l == level && names.contains(&name));
        let safe_name = is_safe_name(&name);
        let winner = paths.iter().find(|(_, x)| *x).map(|(p, _)| p.clone());
        for (path, executable) in paths {
            let shadowed_by = if built_in {
                Some(Shadow::BuiltIn)
            } else {
                winner
                    .as_ref()
                    .filter(|w| **w != path)
                    .map(|w| Shadow::By(w.clone()))
            };
            out.push(PluginInfo {
                level,
                name: name.clone(),
                path,
                executable,
                safe_name,
                shadowed_by,
            });
        }
    }
    out
}

/// The plugins found with the settings in effect, or with `PATH` alone when the configuration
/// cannot be loaded (help and completions still work with a broken config file).
pub fn scan_lenient(config: Option<PathBuf>) -> Vec<PluginInfo> {
    let overrides = mamfast::config::Overrides {
        config,
        ..Default::default()
    };
    let plugin_dirs = mamfast::config::Settings::load(&overrides)
        .map(|s| s.plugin_dirs)
        .unwrap_or_default();
    scan(&search_dirs(&plugin_dirs))
}

/// The command tree with a "Plugins:" section at the end of the help of `mamfast` and of
/// `mamfast state`, listing the plugins that run at each level.
pub fn with_plugin_help(mut cmd: clap::Command, plugins: &[PluginInfo]) -> clap::Command {
    if let Some(section) = help_section(&cmd, plugins, Level::Top) {
        cmd = cmd.after_help(section);
    }
    let state = cmd
        .find_subcommand("state")
        .and_then(|state| help_section(state, plugins, Level::State));
    if let Some(section) = state {
        cmd = cmd.mut_subcommand("state", |s| s.after_help(section));
    }
    cmd
}

fn help_section(cmd: &clap::Command, plugins: &[PluginInfo], level: Level) -> Option<StyledStr> {
    let running: Vec<&PluginInfo> = plugins
        .iter()
        .filter(|p| p.level == level && p.runs())
        .collect();
    if running.is_empty() {
        return None;
    }
    // Styled as clap styles its own headings and command names (plain without colour).
    let styles = cmd.get_styles();
    let (header, literal) = (styles.get_header(), styles.get_literal());
    let width = running.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut lines = vec![format!(
        "{header}Plugins{header:#} (in plugins.dirs, then PATH):"
    )];
    for p in &running {
        let pad = " ".repeat(width - p.name.len());
        lines.push(format!(
            "  {literal}{}{literal:#}{pad}  {}",
            p.name,
            escape(&p.path.display().to_string())
        ));
    }
    if plugins.iter().any(|p| p.level == level && !p.runs()) {
        lines.push("Some plugin files are skipped: `mamfast plugins` says which and why.".into());
    }
    // The section goes before the command's own closing text (the exit codes of `mamfast`).
    if let Some(existing) = cmd.get_after_help() {
        lines.push(format!("\n{}", existing.ansi()));
    }
    let mut text = StyledStr::new();
    let _ = write!(text, "{}", lines.join("\n"));
    Some(text)
}

/// The command tree with every plugin that runs added as a subcommand, for completions.
pub fn with_plugin_subcommands(mut cmd: clap::Command, plugins: &[PluginInfo]) -> clap::Command {
    for p in plugins.iter().filter(|p| p.runs()) {
        // The path goes into the script only when it is plain: a description is shell code
        // (or quoted in it) in some shells' scripts.
        let path = p.path.display().to_string();
        let plain = path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c));
        let about = if plain {
            format!("plugin: {path}")
        } else {
            "plugin".into()
        };
        let sub = clap::Command::new(p.name.clone()).about(about).arg(
            clap::Arg::new("args")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_hint(clap::ValueHint::Other),
        );
        cmd = match p.level {
            Level::Top => cmd.subcommand(sub),
            Level::State => cmd.mut_subcommand("state", |s| s.subcommand(sub)),
        };
    }
    cmd
}

/// If `err` is a help request, the same help with the plugins found listed; else `err`.
/// Only the help path scans directories.
pub fn help_with_plugins(err: clap::Error) -> clap::Error {
    use clap::error::ErrorKind;
    if !matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return err;
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let plugins = scan_lenient(config_arg(&args));
    if plugins.is_empty() {
        return err;
    }
    match with_plugin_help(Cli::command(), &plugins).try_get_matches_from(&args) {
        Err(again) if again.kind() == err.kind() => again,
        _ => err,
    }
}

/// The `--config FILE` of a command line clap could not fully parse (for the help path).
pub fn config_arg(args: &[OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            break;
        }
        if bytes == b"--config" {
            found = iter.next().map(PathBuf::from);
        } else if let Some(value) = bytes.strip_prefix(b"--config=") {
            found = Some(PathBuf::from(OsStr::from_bytes(value)));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_map_to_levels() {
        assert_eq!(
            Level::of_file("mamfast-state-stats"),
            Some((Level::State, "stats"))
        );
        assert_eq!(Level::of_file("mamfast-hello"), Some((Level::Top, "hello")));
        assert_eq!(Level::of_file("mamfast-state-"), None);
        assert_eq!(Level::of_file("mamfast-"), None);
        assert_eq!(Level::of_file("mamfast--x"), None);
        assert_eq!(Level::of_file("mamfast"), None);
        assert_eq!(Level::of_file("other-state-x"), None);
        // `mamfast-state` alone is the top-level name `state`: shadowed by the built-in.
        assert_eq!(Level::of_file("mamfast-state"), Some((Level::Top, "state")));
    }

    #[test]
    fn bad_names_are_refused_with_exit_2() {
        for (level, name) in [
            (Level::State, ""),
            (Level::State, "../x"),
            (Level::State, "a/b"),
            (Level::State, "-x"),
            (Level::Top, "--help-me"),
            (Level::Top, "state-stats"),
            (Level::Top, "state-"),
        ] {
            let err = check_name(level, OsStr::new(name)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{name}");
        }
        check_name(Level::State, OsStr::new("stats")).unwrap();
        check_name(Level::Top, OsStr::new("stats.v2")).unwrap();
        let err = check_name(Level::Top, OsStr::new("state-stats")).unwrap_err();
        assert!(err.to_string().contains("`mamfast state stats`"), "{err}");
    }

    #[test]
    fn builtins_come_from_the_clap_tree() {
        let top = Level::Top.builtins();
        for name in ["state", "config", "plugins", "completions", "help"] {
            assert!(top.contains(&name.to_string()), "{name}: {top:?}");
        }
        let state = Level::State.builtins();
        for name in ["list", "retry", "mark-failed", "verify", "help"] {
            assert!(state.contains(&name.to_string()), "{name}: {state:?}");
        }
    }

    #[test]
    fn config_arg_is_found_before_a_double_dash() {
        let args = |list: &[&str]| -> Vec<OsString> { list.iter().map(OsString::from).collect() };
        assert_eq!(
            config_arg(&args(&["mamfast", "--config", "/c.toml", "--help"])),
            Some(PathBuf::from("/c.toml"))
        );
        assert_eq!(
            config_arg(&args(&["mamfast", "state", "--config=/d.toml", "-h"])),
            Some(PathBuf::from("/d.toml"))
        );
        assert_eq!(config_arg(&args(&["mamfast", "--", "--config", "x"])), None);
    }

    #[test]
    fn shebang_names_the_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#! /no/such/sh -e\necho\n").unwrap();
        assert_eq!(shebang(&script).as_deref(), Some("/no/such/sh"));
        std::fs::write(&script, "#!/bin/sh\r\n").unwrap();
        assert_eq!(shebang(&script).as_deref(), Some("/bin/sh\r"));
        std::fs::write(&script, "echo\n").unwrap();
        assert_eq!(shebang(&script), None);
    }
}
