//! Config files: which are looked for (`--config`, `MAMFAST_CONFIG`, the system file, the user
//! file), and reading one: a regular file of bounded size, UTF-8, TOML, with no unknown key.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::key::Key;
use super::paths::{absolute_var, expand_tilde, home, resolve};
use super::values::{describe, is_datetime};
use super::{EnvLookup, Overrides};
use crate::error::{Error, Result};
use crate::suggest;

/// The system-wide config file, read first when neither `--config` nor `MAMFAST_CONFIG` is given.
pub const SYSTEM_CONFIG: &str = "/etc/mamfast/mamfast.toml";

/// The variable naming the config file to read instead of the system and user files (none when
/// set but empty). It names a file, it is not a key; a plugin gets the file that won in it.
pub const CONFIG_VAR: &str = "MAMFAST_CONFIG";

/// A config file larger than this is not read: the example with every key is 2 KB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A place a config file is looked for, for `config path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigCandidate {
    pub path: PathBuf,
    pub exists: bool,
    /// `"--config"`, `"MAMFAST_CONFIG"`, `"system"` or `"user"`.
    pub why: &'static str,
}

/// Where config files are looked for, in order: the `--config` file, else the `MAMFAST_CONFIG`
/// file (none at all if it is set but empty), else the system file then the user file.
pub fn config_candidates(overrides: &Overrides, env: EnvLookup) -> Vec<ConfigCandidate> {
    candidates(overrides, env, Path::new(SYSTEM_CONFIG))
        .into_iter()
        .map(|(path, why)| {
            let exists = path.exists();
            ConfigCandidate { path, exists, why }
        })
        .collect()
}

/// The file candidates in order, with why each is a candidate. Paths are made absolute
/// when possible (a relative `--config` resolves against the current directory).
pub(super) fn candidates(
    overrides: &Overrides,
    env: EnvLookup,
    system: &Path,
) -> Vec<(PathBuf, &'static str)> {
    let home = home(env);
    let named = |raw: &Path| -> PathBuf {
        let expanded = match raw.to_str().map(|s| expand_tilde(s, home.as_deref())) {
            Some(Ok(expanded)) => expanded,
            // Kept as written, for `config_files` to say why it cannot be used.
            Some(Err(_)) => return raw.to_path_buf(),
            None => raw.to_path_buf(),
        };
        match std::env::current_dir() {
            Ok(cwd) if expanded.is_relative() => resolve(&cwd.join(expanded)),
            _ => resolve(&expanded),
        }
    };
    if let Some(path) = &overrides.config {
        return vec![(named(path), "--config")];
    }
    if let Some(value) = env(CONFIG_VAR) {
        if value.is_empty() {
            return vec![];
        }
        return vec![(named(Path::new(&value)), CONFIG_VAR)];
    }
    let mut out = vec![(system.to_path_buf(), "system")];
    let config_home =
        absolute_var(env, "XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
    if let Some(dir) = config_home {
        out.push((dir.join("mamfast").join("mamfast.toml"), "user"));
    }
    out
}

/// The config files to read, in layer order. A file named by `--config` or `MAMFAST_CONFIG`
/// must exist; the system and user files are optional.
pub(super) fn config_files(
    overrides: &Overrides,
    env: EnvLookup,
    system: &Path,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (path, why) in candidates(overrides, env, system) {
        let named = why == "--config" || why == CONFIG_VAR;
        if named {
            let Some(text) = path.to_str() else {
                return Err(Error::Config(format!(
                    "config file {} (named by {why}) is not a UTF-8 path; mamfast needs UTF-8 paths",
                    path.display()
                )));
            };
            if let Err(detail) = expand_tilde(text, home(env).as_deref()) {
                return Err(Error::Config(format!(
                    "config file {text} (named by {why}) cannot be used: {detail}"
                )));
            }
            if path.is_relative() {
                return Err(Error::Config(format!(
                    "config file {} (named by {why}) cannot be found: the current directory is unavailable.\nName it by an absolute path.",
                    path.display()
                )));
            }
            // An error (a directory that cannot be searched, say) is the read's to report.
            if matches!(path.try_exists(), Ok(false)) {
                let what_to_do = if why == "--config" {
                    "Create it (mamfast.toml.example lists every key), or leave out --config to use the default locations."
                } else {
                    "Create it (mamfast.toml.example lists every key), or unset MAMFAST_CONFIG to use the default locations (set it empty to use no config file at all)."
                };
                return Err(Error::Config(format!(
                    "config file {} (named by {why}) does not exist.\n{what_to_do}",
                    path.display()
                )));
            }
        } else if matches!(path.try_exists(), Ok(false)) {
            continue;
        }
        files.push(path);
    }
    Ok(files)
}

/// A config file, read and parsed once (with figment's `Toml` format) and checked for unknown
/// keys before it is merged. Its metadata is what `Toml::file_exact` would give: the file path.
/// Not `Toml::file_exact` itself: it reports an unreadable or missing file only as a string
/// (the `io::Error` is gone), and checking keys first would mean parsing the file twice.
pub(super) struct ConfigFile {
    path: PathBuf,
    data: Map<Profile, Dict>,
}

impl ConfigFile {
    pub(super) fn read(path: &Path) -> Result<ConfigFile> {
        let bytes = crate::store::read_regular(path, MAX_CONFIG_BYTES).map_err(|e| {
            let not_a_file = crate::store::unreadable(&e).is_some()
                || e.raw_os_error() == Some(nix::libc::EISDIR);
            let what_to_do = match not_a_file {
                true => "Name the config file itself (a TOML file)",
                false => "Check its permissions",
            };
            Error::Config(format!(
                "cannot read config file {}: {e}\n{what_to_do}, or point --config / MAMFAST_CONFIG elsewhere.",
                path.display()
            ))
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count();
            Error::Config(format!(
                "config file {} is not UTF-8 text (byte {at}, line {line}): TOML files must be \
                 UTF-8.\nConvert it (e.g. `iconv -f latin1 -t utf-8`) or fix that line.",
                path.display()
            ))
        })?;
        let data = Toml::string(&text).data().map_err(|e| {
            Error::Config(format!(
                "cannot parse config file {}:\n{}",
                path.display(),
                e.kind.to_string().trim_end()
            ))
        })?;
        let file = ConfigFile {
            path: path.to_path_buf(),
            data,
        };
        file.check_keys()?;
        Ok(file)
    }

    /// Unknown keys are an error: a typo must not fall back to a default silently.
    fn check_keys(&self) -> Result<()> {
        let mut unknown = Vec::new();
        let mut not_tables = Vec::new();
        for dict in self.data.values() {
            for (top, value) in dict {
                let children: Vec<&str> = file_keys()
                    .filter_map(|k| k.strip_prefix(top.as_str())?.strip_prefix('.'))
                    .collect();
                if children.is_empty() {
                    // A mistyped table (`[sate]`) is named as a table.
                    unknown.push(match value {
                        Value::Dict(..) => format!("[{top}]"),
                        _ => top.clone(),
                    });
                    continue;
                }
                match value {
                    Value::Dict(_, inner) if !is_datetime(inner) => {
                        for key in inner.keys() {
                            if !children.contains(&key.as_str()) {
                                unknown.push(format!("{top}.{key}"));
                            }
                        }
                    }
                    other => not_tables.push(format!(
                        "invalid value for {top} in {}: found {}, expected a table ([{top}] with {})",
                        self.path.display(),
                        describe(other),
                        children.join(", ")
                    )),
                }
            }
        }
        if let Some(first) = not_tables.into_iter().next() {
            return Err(Error::Config(first));
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "unknown key{} in {}:",
            if unknown.len() == 1 { "" } else { "s" },
            self.path.display()
        );
        for key in &unknown {
            msg.push_str(&format!("\n  {key}"));
            if key == Key::DryRun.name() {
                msg.push_str(" (dry-run is per invocation: use --dry-run or MAMFAST_DRY_RUN=1)");
            } else if let Some(best) = key.strip_prefix('[').and_then(nearest_table) {
                msg.push_str(&format!(" (did you mean [{best}]?)"));
            } else if let Some(best) = nearest_file_key(key) {
                msg.push_str(&format!(" (did you mean {best}?)"));
            }
        }
        msg.push_str(&format!(
            "\nknown keys: {}\nFix or remove {}: mamfast does not guess what a key was meant to be.",
            file_keys().collect::<Vec<_>>().join(", "),
            if unknown.len() == 1 { "it" } else { "them" }
        ));
        Err(Error::Config(msg))
    }
}

impl Provider for ConfigFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(format!("{} file", Toml::NAME), self.path.as_path())
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Ok(self.data.clone())
    }
}

/// The names of the keys a config file may set.
fn file_keys() -> impl Iterator<Item = &'static str> {
    Key::ALL
        .into_iter()
        .filter(|key| key.in_file())
        .map(Key::name)
}

/// The known key nearest to an unknown one: within its table (`state.backup_dept`), or for a
/// top-level key by table or leaf name (`plugin`, `backup_depth` written outside `[state]`).
fn nearest_file_key(unknown: &str) -> Option<&'static str> {
    let score = |key: &str| -> f64 {
        let (table, leaf) = key.split_once('.').unwrap_or(("", key));
        match unknown.split_once('.') {
            Some((u_table, u_leaf)) if u_table == table => suggest::similarity(u_leaf, leaf),
            Some(_) => suggest::similarity(unknown, key),
            None => [key, table, leaf]
                .iter()
                .map(|k| suggest::similarity(unknown, k))
                .fold(0.0, f64::max),
        }
    };
    suggest::nearest(file_keys(), score)
}

/// The known table nearest to a mistyped one (`[sate]` → `state`).
fn nearest_table(unknown: &str) -> Option<&'static str> {
    let unknown = unknown.trim_end_matches(']');
    let tables = file_keys().filter_map(|key| key.split_once('.').map(|(table, _)| table));
    suggest::nearest(tables, |table| suggest::similarity(unknown, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_table_suggests_the_table() {
        assert_eq!(nearest_table("sate]"), Some("state"));
        assert_eq!(nearest_table("plugin]"), Some("plugins"));
        assert_eq!(nearest_table("zzz]"), None);
    }

    #[test]
    fn did_you_mean_suggests_the_nearest_key() {
        assert_eq!(
            nearest_file_key("state.backup_dept"),
            Some("state.backup_depth")
        );
        assert_eq!(nearest_file_key("backup_depth"), Some("state.backup_depth"));
        assert_eq!(nearest_file_key("plugin.dirs"), Some("plugins.dirs"));
        assert_eq!(nearest_file_key("plugin"), Some("plugins.dirs"));
        assert_eq!(nearest_file_key("state.lock"), Some("state.lock_timeout"));
        assert_eq!(nearest_file_key("state.foo"), None);
        assert_eq!(nearest_file_key("plugins.file"), None);
        assert_eq!(nearest_file_key("zzz"), None);
    }
}
