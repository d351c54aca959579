//! Each key's value, read from the merged layers and checked as its kind says (a path, a whole
//! number within bounds, a duration, …). Done here, not by serde, so that a message names the
//! key, where the value came from, the value, and what is expected instead.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::value::{Dict, Num, Value};
use figment::Figment;

use super::duration::{at_most, parse_duration};
use super::key::{Key, Kind};
use super::layers::{origin_of, Origin};
use super::paths::{default_state_file, expand_tilde, home, resolve};
use super::{EnvLookup, Settings};
use crate::error::{Error, Result};

/// Reads the keys' values from `figment` into [`Settings`]. Every problem is collected, so
/// that one run reports them all.
pub(super) struct Resolver<'a> {
    figment: &'a Figment,
    env: EnvLookup<'a>,
    home: Option<PathBuf>,
    cwd: OnceCell<std::result::Result<PathBuf, String>>,
    errors: Vec<String>,
}

/// A key's value, converted as its [`Kind`] says.
enum Typed {
    Path(PathBuf),
    Paths(Vec<PathBuf>),
    Count(usize),
    Duration(Option<Duration>),
    Switch(bool),
}

impl<'a> Resolver<'a> {
    pub(super) fn new(figment: &'a Figment, env: EnvLookup<'a>) -> Self {
        Resolver {
            figment,
            env,
            home: home(env),
            cwd: OnceCell::new(),
            errors: Vec::new(),
        }
    }

    pub(super) fn settings(mut self, config_files: Vec<PathBuf>) -> Result<Settings> {
        let mut values = BTreeMap::new();
        let mut origins = BTreeMap::new();
        // Each top-level table is merged once (a `find_value` merges the layers again).
        let mut tables: BTreeMap<&str, Option<Value>> = BTreeMap::new();
        for key in Key::ALL {
            let (top, rest) = match key.name().split_once('.') {
                Some((table, rest)) => (table, Some(rest)),
                None => (key.name(), None),
            };
            let top = tables
                .entry(top)
                .or_insert_with(|| self.figment.find_value(top).ok());
            let found = match rest {
                Some(rest) => top.as_ref().and_then(|table| table.find_ref(rest)),
                None => top.as_ref(),
            };
            let typed = match found.cloned() {
                Some(value) => {
                    let origin = origin_of(self.figment, key, value.tag());
                    let typed = self.convert(key, &origin, &value);
                    origins.insert(key, origin);
                    typed
                }
                None if key == Key::StateFile => self.default_state_file().map(Typed::Path),
                None => None,
            };
            if let Some(typed) = typed {
                values.insert(key, typed);
            }
        }
        if !self.errors.is_empty() {
            return Err(Error::Config(self.errors.join("\n")));
        }
        Ok(Settings {
            state_file: take(&mut values, Key::StateFile, Typed::path)?,
            backup_depth: take(&mut values, Key::BackupDepth, Typed::count)?,
            backup_hourly: take(&mut values, Key::BackupHourly, Typed::count)?,
            backup_daily: take(&mut values, Key::BackupDaily, Typed::count)?,
            journal_kib: take(&mut values, Key::JournalKib, Typed::count)?,
            lock_timeout: take(&mut values, Key::LockTimeout, |v| v.duration()?)?,
            // The one key that may have no value: unset, failed entries are kept forever.
            failed_ttl: take(&mut values, Key::FailedTtl, Typed::duration)
                .ok()
                .flatten(),
            plugin_dirs: take(&mut values, Key::PluginDirs, Typed::paths)?,
            dry_run: take(&mut values, Key::DryRun, Typed::switch)?,
            config_files,
            origins,
        })
    }

    /// `v`, the value of `key` from `origin`, as the key's kind says; `None` when it does not
    /// fit (the problem is recorded).
    fn convert(&mut self, key: Key, origin: &Origin, v: &Value) -> Option<Typed> {
        match key.kind() {
            Kind::Path => self.path(key, origin, v).map(Typed::Path),
            Kind::Paths => self.paths(key, origin, v).map(Typed::Paths),
            Kind::Count { max } => self.whole_number(key, origin, v, max).map(Typed::Count),
            Kind::Duration { max, may_be_unset } => self
                .duration(key, origin, v, may_be_unset, max)
                .map(Typed::Duration),
            Kind::Switch => self.boolean(key, origin, v).map(Typed::Switch),
        }
    }

    fn bad<T>(&mut self, key: Key, origin: &Origin, detail: impl fmt::Display) -> Option<T> {
        self.errors.push(format!(
            "invalid value for {} {}: {detail}",
            key.name(),
            origin.place()
        ));
        None
    }

    fn whole_number(&mut self, key: Key, origin: &Origin, v: &Value, max: usize) -> Option<usize> {
        let expected = format!("expected a whole number from 0 to {max}");
        match int_of(v) {
            Some(n) if n >= 0 => match usize::try_from(n) {
                Ok(n) if n <= max => Some(n),
                _ => self.bad(key, origin, format!("{n} is too large; {expected}")),
            },
            _ => self.bad(key, origin, format!("found {}, {expected}", describe(v))),
        }
    }

    /// `Some(None)` is "unset" (only for `may_be_unset` keys: an empty string).
    fn duration(
        &mut self,
        key: Key,
        origin: &Origin,
        v: &Value,
        may_be_unset: bool,
        max: Duration,
    ) -> Option<Option<Duration>> {
        match v {
            // Empty is "unset" only in the environment, where a plugin is handed an unset
            // value that way; in a file, leaving the key out says it.
            Value::String(_, s) if may_be_unset && s.trim().is_empty() => match origin {
                Origin::Env(_) => Some(None),
                _ => self.bad(
                    key,
                    origin,
                    "found an empty string, expected a duration such as \"30d\"; to leave it \
                     unset, remove the line",
                ),
            },
            Value::String(_, s) => match parse_duration(s, false).and_then(|d| at_most(d, max)) {
                Ok(d) => Some(Some(d)),
                Err(detail) => self.bad(key, origin, detail),
            },
            Value::Num(..) if int_of(v).is_some() => self.bad(
                key,
                origin,
                format!(
                    "found {}: a duration needs a unit; write e.g. \"{n}s\", \"{n}m\" or \"{n}d\" (as a string)",
                    describe(v),
                    n = int_of(v).unwrap_or_default()
                ),
            ),
            _ => self.bad(
                key,
                origin,
                format!("found {}, expected a duration such as \"30s\", \"5m\"", describe(v)),
            ),
        }
    }

    fn boolean(&mut self, key: Key, origin: &Origin, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(_, b) => Some(*b),
            _ => self.bad(
                key,
                origin,
                format!(
                    "found {}, expected 1, true, yes, 0, false, no or empty",
                    describe(v)
                ),
            ),
        }
    }

    fn path(&mut self, key: Key, origin: &Origin, v: &Value) -> Option<PathBuf> {
        match v {
            Value::String(_, s) if s.is_empty() => {
                self.bad(key, origin, "found an empty string, expected a path")
            }
            Value::String(_, s) => match self.resolve_path(s, origin) {
                Ok(p) => Some(p),
                Err(detail) => self.bad(key, origin, format!("{s:?}: {detail}")),
            },
            _ => self.bad(
                key,
                origin,
                format!("found {}, expected a path (a string)", describe(v)),
            ),
        }
    }

    fn paths(&mut self, key: Key, origin: &Origin, v: &Value) -> Option<Vec<PathBuf>> {
        let Value::Array(_, items) = v else {
            return self.bad(
                key,
                origin,
                format!(
                    "found {}, expected a list of paths, e.g. [\"~/.local/libexec/mamfast\"]",
                    describe(v)
                ),
            );
        };
        // The default directory lives in HOME: without HOME there is simply no default directory.
        if *origin == Origin::Default && self.home.is_none() {
            return Some(Vec::new());
        }
        let mut out = Vec::new();
        for item in items {
            // A relative plugin directory from the environment would follow the current
            // directory (`MAMFAST_PLUGIN_DIRS=.`): kept relative, so the plugin search skips
            // it with a warning, as it skips relative `PATH` entries. A config file's relative
            // entries stay relative to that file.
            if let (false, Value::String(_, text)) = (matches!(origin, Origin::File(_)), item) {
                if !text.is_empty() && !text.starts_with('~') && Path::new(text).is_relative() {
                    out.push(PathBuf::from(text));
                    continue;
                }
            }
            out.push(self.path(key, origin, item)?);
        }
        Some(out)
    }

    /// `~` expanded; relative paths resolved against the config file's directory (file values)
    /// or the current directory (environment and flags); lexically cleaned, never canonicalized.
    fn resolve_path(&self, text: &str, origin: &Origin) -> std::result::Result<PathBuf, String> {
        let path = expand_tilde(text, self.home.as_deref())?;
        if path.is_absolute() {
            return Ok(resolve(&path));
        }
        let base = match origin {
            Origin::File(file) => file.parent().map(Path::to_path_buf).unwrap_or_default(),
            _ => self
                .cwd
                .get_or_init(|| {
                    std::env::current_dir().map_err(|e| {
                        format!("a relative path needs the current directory, which is unavailable ({e}); use an absolute path")
                    })
                })
                .clone()?,
        };
        Ok(resolve(&base.join(path)))
    }

    fn default_state_file(&mut self) -> Option<PathBuf> {
        let file = default_state_file(self.env);
        if file.is_none() {
            self.errors.push(
                "cannot work out the default state file: neither XDG_STATE_HOME nor HOME is set.\n\
                 Set HOME, or name the file with --state-file, MAMFAST_STATE_FILE or state.file in the config file."
                    .into(),
            );
        }
        file
    }
}

/// The value of `key`, taken out of its kind by `as_kind`.
fn take<T>(
    values: &mut BTreeMap<Key, Typed>,
    key: Key,
    as_kind: fn(Typed) -> Option<T>,
) -> Result<T> {
    values
        .remove(&key)
        .and_then(as_kind)
        .ok_or_else(|| Error::Config(format!("internal error: no value for {}", key.name())))
}

impl Typed {
    fn path(self) -> Option<PathBuf> {
        match self {
            Typed::Path(path) => Some(path),
            _ => None,
        }
    }

    fn paths(self) -> Option<Vec<PathBuf>> {
        match self {
            Typed::Paths(paths) => Some(paths),
            _ => None,
        }
    }

    fn count(self) -> Option<usize> {
        match self {
            Typed::Count(n) => Some(n),
            _ => None,
        }
    }

    /// `Some(None)`: a duration that is unset.
    fn duration(self) -> Option<Option<Duration>> {
        match self {
            Typed::Duration(d) => Some(d),
            _ => None,
        }
    }

    fn switch(self) -> Option<bool> {
        match self {
            Typed::Switch(on) => Some(on),
            _ => None,
        }
    }
}

fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::Num(_, n) => int_of_num(*n),
        _ => None,
    }
}

fn int_of_num(n: Num) -> Option<i128> {
    n.to_u128()
        .and_then(|u| i128::try_from(u).ok())
        .or_else(|| n.to_i128())
}

/// TOML date-times reach figment as a one-key dict.
pub(super) fn is_datetime(dict: &Dict) -> bool {
    dict.len() == 1 && dict.keys().all(|k| k.contains("datetime"))
}

/// A value as a TOML user would name it: `string "three"`, `integer -1`, `a list`, …
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("string {s:?}"),
        Value::Char(_, c) => format!("string {:?}", c.to_string()),
        Value::Bool(_, b) => format!("boolean {b}"),
        Value::Num(_, n) => match (int_of_num(*n), n.to_f64()) {
            (Some(i), _) => format!("integer {i}"),
            (None, Some(f)) => format!("float {f}"),
            _ => "a number".into(),
        },
        Value::Empty(..) => "nothing".into(),
        Value::Dict(_, d) if is_datetime(d) => match d.values().next() {
            Some(Value::String(_, s)) => format!("date-time {s}"),
            _ => "a date-time".into(),
        },
        Value::Dict(..) => "a table".into(),
        Value::Array(..) => "a list".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_speaks_toml() {
        assert_eq!(describe(&Value::from("x")), "string \"x\"");
        assert_eq!(describe(&Value::from(-1i64)), "integer -1");
        assert_eq!(describe(&Value::from(2.5f64)), "float 2.5");
        assert_eq!(describe(&Value::from(true)), "boolean true");
    }
}
