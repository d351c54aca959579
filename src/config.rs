//! Configuration: built-in defaults → config file(s) → `MAMFAST_*` environment → command-line
//! flags, merged with figment into [`Settings`], remembering where every value came from.
//!
//! figment does the layering; this module does the rest by hand, because figment alone gets it
//! wrong for us: `Toml::file` searches parent directories, its `Env` provider parses values as
//! TOML and forgets the variable's name, and serde's messages do not say what to write instead.
//! So each environment variable and each flag is its own small [`Provider`] whose metadata is
//! the variable's (or flag's) real name, config files are checked for unknown keys before they
//! are merged, and every value is converted here from figment's [`Value`], with a message that
//! names the key, where the value came from, the value, and what is expected.

use std::cell::OnceCell;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Num, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::Serialize;

use crate::error::{Error, Result};

/// The system-wide config file, read first when neither `--config` nor `MAMFAST_CONFIG` is given.
pub const SYSTEM_CONFIG: &str = "/etc/mamfast/mamfast.toml";

/// Every key, in the order `config show` lists them.
pub const KEYS: [&str; 6] = [
    "state.file",
    "state.backup_depth",
    "state.lock_timeout",
    "state.failed_ttl",
    "plugins.dirs",
    "dry_run",
];

/// The keys a config file may set (`dry_run` is per invocation: environment or flag only).
const FILE_KEYS: [&str; 5] = [
    "state.file",
    "state.backup_depth",
    "state.lock_timeout",
    "state.failed_ttl",
    "plugins.dirs",
];

/// The environment variables read as configuration, and the key each one sets.
/// `MAMFAST_CONFIG` is deliberately not here: it names a file, it is not a key.
const ENV_VARS: [(&str, &str); 6] = [
    ("MAMFAST_STATE_FILE", "state.file"),
    ("MAMFAST_BACKUP_DEPTH", "state.backup_depth"),
    ("MAMFAST_LOCK_TIMEOUT", "state.lock_timeout"),
    ("MAMFAST_FAILED_TTL", "state.failed_ttl"),
    ("MAMFAST_PLUGIN_DIRS", "plugins.dirs"),
    ("MAMFAST_DRY_RUN", "dry_run"),
];

/// The flags that set configuration keys, and the key each one sets.
const FLAGS: [(&str, &str); 2] = [("--state-file", "state.file"), ("--dry-run", "dry_run")];

const DEFAULT_BACKUP_DEPTH: usize = 3;

/// The most backup generations `state.backup_depth` may keep. Each generation is a full copy of
/// the state, every write renames each kept one while it holds the lock, and `state backups`
/// and `verify` read them all: a hundred copies is already far more history than a restore
/// needs, and a larger number is much more likely a typo than a wish.
pub const MAX_BACKUP_DEPTH: usize = 100;

/// The longest `state.lock_timeout`: a write holds the lock for seconds, so a holder still
/// there after a day is stuck, and waiting longer only hides it.
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The longest `state.failed_ttl` (and `--failed-older-than`): a hundred years (36500d), past
/// which a TTL means "never"; leave it unset for that.
pub const MAX_FAILED_TTL: Duration = Duration::from_secs(36_500 * 86_400);

/// A config file larger than this is not read: the example with every key is 2 KB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
const DEFAULT_LOCK_TIMEOUT: &str = "30s";
const DEFAULT_PLUGIN_DIR: &str = "~/.local/libexec/mamfast";

/// What the command line says about configuration (flags win over everything).
/// `None` / `false` means "not given": it never overrides a lower layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub dry_run: bool,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A config file (absolute path).
    File(PathBuf),
    /// An environment variable, by its real name, e.g. `MAMFAST_BACKUP_DEPTH`.
    Env(&'static str),
    /// A command-line flag, e.g. `--state-file`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

impl Origin {
    /// "in /etc/mamfast/mamfast.toml", "from MAMFAST_X", "from --state-file": for messages.
    fn place(&self) -> String {
        match self {
            Origin::Default => "in the built-in defaults".into(),
            Origin::File(path) => format!("in {}", path.display()),
            Origin::Env(var) => format!("from {var}"),
            Origin::Flag(flag) => format!("from {flag}"),
        }
    }
}

/// One line of `config show`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRow {
    pub key: &'static str,
    /// Durations as `"30s"` strings, an unset `failed_ttl` as `null`, paths as strings.
    pub value: serde_json::Value,
    pub origin: Origin,
}

/// A place a config file is looked for, for `config path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigCandidate {
    pub path: PathBuf,
    pub exists: bool,
    /// `"--config"`, `"MAMFAST_CONFIG"`, `"system"` or `"user"`.
    pub why: &'static str,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Absolute, `~` expanded.
    pub state_file: PathBuf,
    pub backup_depth: usize,
    /// May be zero: fail at once if the lock is taken.
    pub lock_timeout: Duration,
    /// `None`: failed entries are kept forever.
    pub failed_ttl: Option<Duration>,
    /// Absolute, searched in order before `PATH`.
    pub plugin_dirs: Vec<PathBuf>,
    pub dry_run: bool,
    /// The config files in effect, in layer order (later ones win).
    pub config_files: Vec<PathBuf>,
    /// The origin of each key, in the order of [`KEYS`].
    origins: [Origin; 6],
}

type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Loads the configuration, reading the real process environment.
    /// A variable that is set but not UTF-8 is an error (not taken for unset).
    pub fn load(overrides: &Overrides) -> Result<Settings> {
        // The first variable consulted that is not UTF-8; checked after the load, so that
        // only the variables the load actually reads count.
        let not_utf8 = std::cell::RefCell::new(None);
        let env = |name: &str| match std::env::var(name) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(value)) => {
                not_utf8
                    .borrow_mut()
                    .get_or_insert((name.to_string(), value));
                None
            }
        };
        let loaded = Self::load_with_env(overrides, &env);
        if let Some((var, value)) = not_utf8.into_inner() {
            return Err(Error::Config(format!(
                "{var} is not valid UTF-8 ({}): mamfast needs UTF-8 paths and values. Set {var} \
                 to a UTF-8 value, or unset it.",
                value.to_string_lossy()
            )));
        }
        loaded
    }

    /// Loads the configuration with the environment looked up through `env` (`HOME`, `XDG_*` and
    /// `MAMFAST_*` all go through it). Relative paths from the environment or flags still
    /// resolve against the process's current directory.
    pub fn load_with_env(overrides: &Overrides, env: EnvLookup) -> Result<Settings> {
        load_inner(overrides, env, Path::new(SYSTEM_CONFIG))
    }

    /// For Rust plugins: the settings mamfast handed down in the environment (README, *Plugins*).
    /// Run by hand, outside mamfast, a plugin gets what mamfast would have given it: the same
    /// layers (config files, `MAMFAST_*`) are read.
    pub fn from_plugin_env() -> Result<Settings> {
        Settings::load(&Overrides::default())
    }

    /// How the built-in commands configure their [`Store`](crate::store::Store): backup depth,
    /// lock timeout and dry run from these settings.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            backup_depth: self.backup_depth,
            lock_timeout: self.lock_timeout,
            dry_run: self.dry_run,
        }
    }

    /// The state file's [`Store`](crate::store::Store), configured exactly as the built-in
    /// commands configure theirs; its notices (recovery, waiting for the lock, …) are printed
    /// to standard error as `warning: …`.
    pub fn store(&self) -> crate::store::Store {
        crate::store::Store::new(self.state_file.clone(), self.store_options())
    }

    /// Where `key` (one of [`KEYS`]) came from. An unknown key answers [`Origin::Default`].
    pub fn origin(&self, key: &str) -> Origin {
        match KEYS.iter().position(|k| *k == key) {
            Some(i) => self.origins[i].clone(),
            None => {
                debug_assert!(false, "unknown configuration key {key}");
                Origin::Default
            }
        }
    }

    /// Every key in the order of [`KEYS`], its value in JSON form, and its origin.
    pub fn rows(&self) -> Vec<ConfigRow> {
        use serde_json::Value as J;
        let path = |p: &Path| J::String(p.display().to_string());
        let values = [
            path(&self.state_file),
            J::from(self.backup_depth),
            J::String(format_duration(self.lock_timeout)),
            self.failed_ttl
                .map_or(J::Null, |d| J::String(format_duration(d))),
            J::Array(self.plugin_dirs.iter().map(|p| path(p)).collect()),
            J::Bool(self.dry_run),
        ];
        KEYS.iter()
            .zip(values)
            .zip(self.origins.iter())
            .map(|((key, value), origin)| ConfigRow {
                key,
                value,
                origin: origin.clone(),
            })
            .collect()
    }

    /// The environment a plugin gets (README, *Plugins*), minus `MAMFAST_BIN` and `MAMFAST_PLUGIN_API`,
    /// which the dispatcher adds. Loading settings from exactly these variables gives the same
    /// values back. `MAMFAST_CONFIG` is the config file that won (the last one), or `""`.
    /// A plugin directory containing `:` cannot survive `MAMFAST_PLUGIN_DIRS`, as with `PATH`.
    pub fn plugin_env(&self) -> Vec<(&'static str, String)> {
        let dirs: Vec<String> = self
            .plugin_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        vec![
            ("MAMFAST_STATE_FILE", self.state_file.display().to_string()),
            (
                "MAMFAST_CONFIG",
                self.config_files
                    .last()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("MAMFAST_BACKUP_DEPTH", self.backup_depth.to_string()),
            ("MAMFAST_LOCK_TIMEOUT", format_duration(self.lock_timeout)),
            (
                "MAMFAST_FAILED_TTL",
                self.failed_ttl.map(format_duration).unwrap_or_default(),
            ),
            (
                "MAMFAST_DRY_RUN",
                if self.dry_run { "1" } else { "0" }.into(),
            ),
            ("MAMFAST_PLUGIN_DIRS", dirs.join(":")),
        ]
    }
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

/// Parses a duration as users write it: `"30s"`, `"5m"`, `"12h"`, `"30d"`, `"2w"` (humantime).
/// A bare number is a number of days when `bare_days` (for `--failed-older-than`), otherwise it
/// is refused with a message asking for a unit. The error is the detail of a message, without
/// the key or flag it belongs to.
pub fn parse_duration(text: &str, bare_days: bool) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        if !bare_days {
            return Err(format!(
                "{t:?} has no unit; add one, e.g. \"{t}s\", \"{t}m\" or \"{t}d\""
            ));
        }
        return t
            .parse::<u64>()
            .ok()
            .and_then(|days| days.checked_mul(86_400))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{t:?} days is too long"));
    }
    humantime::parse_duration(t).map_err(|_| {
        if bare_days {
            format!(
                "{text:?} is not a duration; expected e.g. \"30d\", \"12h\", or a number of days"
            )
        } else {
            format!("{text:?} is not a duration; expected e.g. \"30s\", \"5m\"")
        }
    })
}

/// `d` if it is no longer than `max`, else why not (the detail of a message, as
/// [`parse_duration`] gives).
pub fn at_most(d: Duration, max: Duration) -> Result<Duration, String> {
    if d <= max {
        return Ok(d);
    }
    Err(format!(
        "{} is too long; the longest allowed is {}",
        format_duration(d),
        format_duration(max)
    ))
}

/// Formats a duration compactly in its largest exact unit (`"30s"`, `"90m"`, `"30d"`,
/// `"1500ms"`), so that [`parse_duration`] gives the same duration back.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        let secs = d.as_secs();
        if secs == 0 {
            return "0s".into();
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs.is_multiple_of(size) {
                return format!("{}{unit}", secs / size);
            }
        }
        return format!("{secs}s");
    }
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// The built-in defaults that do not depend on the environment. `state.file` (computed from
/// `XDG_STATE_HOME`/`HOME`) and `state.failed_ttl` (unset) are absent on purpose.
#[derive(Serialize)]
struct Defaults {
    state: StateDefaults,
    plugins: PluginDefaults,
    dry_run: bool,
}

#[derive(Serialize)]
struct StateDefaults {
    backup_depth: usize,
    lock_timeout: &'static str,
}

#[derive(Serialize)]
struct PluginDefaults {
    dirs: Vec<&'static str>,
}

impl Defaults {
    fn new() -> Self {
        Defaults {
            state: StateDefaults {
                backup_depth: DEFAULT_BACKUP_DEPTH,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
            },
            plugins: PluginDefaults {
                dirs: vec![DEFAULT_PLUGIN_DIR],
            },
            dry_run: false,
        }
    }
}

/// One environment variable or one flag: a provider that sets one key, and whose metadata is
/// named after the variable or flag, so `find_metadata` says which one it was.
struct Single {
    name: &'static str,
    source: &'static str,
    key: &'static str,
    value: Value,
}

const SOURCE_ENV: &str = "environment";
const SOURCE_FLAG: &str = "command line";

impl Provider for Single {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name).source(Source::Custom(self.source.into()))
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        let dict = match figment::util::nest(self.key, self.value.clone()) {
            Value::Dict(_, dict) => dict,
            _ => unreachable!("a non-empty key nests into a dict"),
        };
        Ok(Profile::Default.collect(dict))
    }
}

/// A config file, read and parsed once (with figment's `Toml` format) and checked for unknown
/// keys before it is merged. Its metadata is what `Toml::file_exact` would give: the file path.
/// Not `Toml::file_exact` itself: it reports an unreadable or missing file only as a string
/// (the `io::Error` is gone), and checking keys first would mean parsing the file twice.
struct ConfigFile {
    path: PathBuf,
    data: Map<Profile, Dict>,
}

impl ConfigFile {
    fn read(path: &Path) -> Result<ConfigFile> {
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
                let children: Vec<&str> = FILE_KEYS
                    .iter()
                    .filter_map(|k| k.strip_prefix(top.as_str())?.strip_prefix('.'))
                    .collect();
                if children.is_empty() {
                    unknown.push(top.clone());
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
            if key == "dry_run" {
                msg.push_str(" (dry-run is per invocation: use --dry-run or MAMFAST_DRY_RUN=1)");
            } else if let Some(best) = did_you_mean(key) {
                msg.push_str(&format!(" (did you mean {best}?)"));
            }
        }
        msg.push_str(&format!(
            "\nknown keys: {}\nFix or remove {}: mamfast does not guess what a key was meant to be.",
            FILE_KEYS.join(", "),
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

/// The known key nearest to an unknown one: within its table (`state.backup_dept`), or for a
/// top-level key by table or leaf name (`plugin`, `backup_depth` written outside `[state]`).
fn did_you_mean(unknown: &str) -> Option<&'static str> {
    let score = |key: &str| -> f64 {
        let (table, leaf) = key.split_once('.').unwrap_or(("", key));
        match unknown.split_once('.') {
            Some((u_table, u_leaf)) if u_table == table => strsim::jaro_winkler(u_leaf, leaf),
            Some(_) => strsim::jaro_winkler(unknown, key),
            None => [key, table, leaf]
                .iter()
                .map(|k| strsim::jaro_winkler(unknown, k))
                .fold(0.0, f64::max),
        }
    };
    FILE_KEYS
        .iter()
        .map(|k| (score(k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// The file candidates in order, with why each is a candidate. Paths are made absolute
/// when possible (a relative `--config` resolves against the current directory).
fn candidates(
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
    if let Some(value) = env("MAMFAST_CONFIG") {
        if value.is_empty() {
            return vec![];
        }
        return vec![(named(Path::new(&value)), "MAMFAST_CONFIG")];
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
fn config_files(overrides: &Overrides, env: EnvLookup, system: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (path, why) in candidates(overrides, env, system) {
        let named = why == "--config" || why == "MAMFAST_CONFIG";
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

pub(crate) fn load_inner(overrides: &Overrides, env: EnvLookup, system: &Path) -> Result<Settings> {
    let config_files = config_files(overrides, env, system)?;

    let mut figment = Figment::from(Serialized::defaults(Defaults::new()));
    for path in &config_files {
        figment = figment.merge(ConfigFile::read(path)?);
    }
    for (var, key) in ENV_VARS {
        if let Some(raw) = env(var) {
            figment = figment.merge(Single {
                name: var,
                source: SOURCE_ENV,
                key,
                value: env_value(key, &raw),
            });
        }
    }
    if let Some(path) = &overrides.state_file {
        let Some(text) = path.to_str() else {
            return Err(Error::Config(format!(
                "invalid value for state.file from --state-file: {} is not a UTF-8 path; mamfast needs UTF-8 paths",
                path.display()
            )));
        };
        figment = figment.merge(Single {
            name: "--state-file",
            source: SOURCE_FLAG,
            key: "state.file",
            value: Value::from(text),
        });
    }
    if overrides.dry_run {
        figment = figment.merge(Single {
            name: "--dry-run",
            source: SOURCE_FLAG,
            key: "dry_run",
            value: Value::from(true),
        });
    }

    Resolver {
        figment: &figment,
        env,
        home: home(env),
        cwd: OnceCell::new(),
        errors: Vec::new(),
    }
    .resolve(config_files)
}

/// The value an environment variable gives its key: typed where the key's type is known, so
/// `123`, `/path` and `30s` all work; a value that does not fit stays a string and the
/// conversion below reports it with the variable's name.
fn env_value(key: &str, raw: &str) -> Value {
    match key {
        "state.backup_depth" => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(raw)),
        "plugins.dirs" => Value::Array(
            Tag::Default,
            raw.split(':')
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .collect(),
        ),
        "dry_run" => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Value::from(true),
            "0" | "false" | "no" | "" => Value::from(false),
            _ => Value::from(raw),
        },
        _ => Value::from(raw),
    }
}

struct Resolver<'a> {
    figment: &'a Figment,
    env: EnvLookup<'a>,
    home: Option<PathBuf>,
    cwd: OnceCell<std::result::Result<PathBuf, String>>,
    errors: Vec<String>,
}

impl Resolver<'_> {
    fn resolve(mut self, config_files: Vec<PathBuf>) -> Result<Settings> {
        let mut origins: [Origin; 6] = std::array::from_fn(|_| Origin::Default);
        let mut found: [Option<Value>; 6] = Default::default();
        for (i, key) in KEYS.iter().enumerate() {
            if let Ok(value) = self.figment.find_value(key) {
                origins[i] = self.origin_of(value.tag());
                found[i] = Some(value);
            }
        }
        let [file, depth, timeout, ttl, dirs, dry_run] = found;

        let state_file = match file {
            Some(v) => self.path(KEYS[0], &origins[0], &v),
            None => self.default_state_file(),
        };
        let backup_depth =
            depth.and_then(|v| self.whole_number(KEYS[1], &origins[1], &v, MAX_BACKUP_DEPTH));
        let lock_timeout =
            timeout.and_then(|v| self.duration(KEYS[2], &origins[2], &v, false, MAX_LOCK_TIMEOUT));
        let failed_ttl =
            ttl.and_then(|v| self.duration(KEYS[3], &origins[3], &v, true, MAX_FAILED_TTL));
        let plugin_dirs = dirs.and_then(|v| self.paths(KEYS[4], &origins[4], &v));
        let dry_run = dry_run.and_then(|v| self.boolean(KEYS[5], &origins[5], &v));

        if !self.errors.is_empty() {
            return Err(Error::Config(self.errors.join("\n")));
        }
        let missing = |key: &str| Error::Config(format!("internal error: no value for {key}"));
        Ok(Settings {
            state_file: state_file.ok_or_else(|| missing(KEYS[0]))?,
            backup_depth: backup_depth.ok_or_else(|| missing(KEYS[1]))?,
            lock_timeout: lock_timeout.flatten().ok_or_else(|| missing(KEYS[2]))?,
            failed_ttl: failed_ttl.flatten(),
            plugin_dirs: plugin_dirs.ok_or_else(|| missing(KEYS[4]))?,
            dry_run: dry_run.ok_or_else(|| missing(KEYS[5]))?,
            config_files,
            origins,
        })
    }

    fn origin_of(&self, tag: Tag) -> Origin {
        let Some(md) = self.figment.get_metadata(tag) else {
            return Origin::Default;
        };
        match &md.source {
            Some(Source::File(path)) => Origin::File(path.clone()),
            Some(Source::Custom(s)) if s == SOURCE_ENV => ENV_VARS
                .iter()
                .find(|(var, _)| *var == md.name)
                .map_or(Origin::Default, |(var, _)| Origin::Env(var)),
            Some(Source::Custom(s)) if s == SOURCE_FLAG => FLAGS
                .iter()
                .find(|(flag, _)| *flag == md.name)
                .map_or(Origin::Default, |(flag, _)| Origin::Flag(flag)),
            _ => Origin::Default,
        }
    }

    fn bad<T>(&mut self, key: &str, origin: &Origin, detail: impl fmt::Display) -> Option<T> {
        self.errors.push(format!(
            "invalid value for {key} {}: {detail}",
            origin.place()
        ));
        None
    }

    fn whole_number(&mut self, key: &str, origin: &Origin, v: &Value, max: usize) -> Option<usize> {
        let expected = format!("expected a whole number from 0 to {max}");
        match int_of(v) {
            Some(n) if n >= 0 => match usize::try_from(n) {
                Ok(n) if n <= max => Some(n),
                _ => self.bad(key, origin, format!("{n} is too large; {expected}")),
            },
            _ => self.bad(key, origin, format!("found {}, {expected}", describe(v))),
        }
    }

    /// `Some(None)` is "unset" (only for `nullable` keys: an empty string).
    fn duration(
        &mut self,
        key: &str,
        origin: &Origin,
        v: &Value,
        nullable: bool,
        max: Duration,
    ) -> Option<Option<Duration>> {
        match v {
            Value::String(_, s) if nullable && s.trim().is_empty() => Some(None),
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

    fn boolean(&mut self, key: &str, origin: &Origin, v: &Value) -> Option<bool> {
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

    fn path(&mut self, key: &str, origin: &Origin, v: &Value) -> Option<PathBuf> {
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

    fn paths(&mut self, key: &str, origin: &Origin, v: &Value) -> Option<Vec<PathBuf>> {
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
        let dir = absolute_var(self.env, "XDG_STATE_HOME")
            .or_else(|| self.home.as_ref().map(|h| h.join(".local").join("state")));
        match dir {
            Some(dir) => Some(resolve(&dir.join("mamfast").join("processed.json"))),
            None => {
                self.errors.push(
                    "cannot work out the default state file: neither XDG_STATE_HOME nor HOME is set.\n\
                     Set HOME, or name the file with --state-file, MAMFAST_STATE_FILE or state.file in the config file."
                        .into(),
                );
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// `HOME`, when set to an absolute path.
fn home(env: EnvLookup) -> Option<PathBuf> {
    absolute_var(env, "HOME")
}

/// An environment variable holding an absolute path; empty or relative values are ignored, as
/// the XDG base directory specification asks.
fn absolute_var(env: EnvLookup, var: &str) -> Option<PathBuf> {
    env(var).map(PathBuf::from).filter(|p| p.is_absolute())
}

/// `~` and `~/…` expand to `home`; `~user` is refused.
fn expand_tilde(text: &str, home: Option<&Path>) -> std::result::Result<PathBuf, String> {
    let Some(rest) = text.strip_prefix('~') else {
        return Ok(PathBuf::from(text));
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err("~user paths are not supported; write the full path".into());
    }
    let home =
        home.ok_or("HOME is not set, so ~ cannot be expanded; set HOME or write the full path")?;
    Ok(home.join(rest.trim_start_matches('/')))
}

/// `path` as the kernel will take it, but for its last component: every directory on the way
/// is resolved, symlinks followed, so that `link/..` is the parent of the link's target (as
/// the kernel has it), not the directory holding the link. The last component is kept as
/// written: it may not exist yet, and if it is a symlink, it is one the store writes through.
fn resolve(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => real_dir(parent).join(name),
        // `/`, or a path ending in `..`: a directory, resolved whole.
        _ => real_dir(path),
    }
}

/// A directory path with its symlinks resolved and no `.` or `..` left, as far as it exists;
/// the rest (directories to be created) is cleaned as text, which is then what the kernel does
/// too, there being no symlink in it.
fn real_dir(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    // Whether `out` exists and is free of symlinks, so far.
    let mut real = true;
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let popped =
                    matches!(out.components().next_back(), Some(Component::Normal(_))) && out.pop();
                if !popped && !out.has_root() {
                    out.push("..");
                }
            }
            Component::Normal(name) => {
                out.push(name);
                if real {
                    match std::fs::canonicalize(&out) {
                        Ok(resolved) => out = resolved,
                        Err(_) => real = false,
                    }
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
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
fn is_datetime(dict: &Dict) -> bool {
    dict.len() == 1 && dict.keys().all(|k| k.contains("datetime"))
}

/// A value as a TOML user would name it: `string "three"`, `integer -1`, `a list`, …
fn describe(v: &Value) -> String {
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
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn durations_parse_as_users_write_them() {
        assert_eq!(parse_duration("30s", false), Ok(secs(30)));
        assert_eq!(parse_duration("90m", false), Ok(secs(5400)));
        assert_eq!(parse_duration("12h", false), Ok(secs(43200)));
        assert_eq!(parse_duration("30d", false), Ok(secs(30 * 86400)));
        assert_eq!(parse_duration("2w", false), Ok(secs(14 * 86400)));
        assert_eq!(parse_duration(" 0s ", false), Ok(secs(0)));
        assert_eq!(parse_duration("1h 30m", false), Ok(secs(5400)));
        assert_eq!(parse_duration("7", true), Ok(secs(7 * 86400)));
    }

    #[test]
    fn a_bare_number_needs_a_unit_unless_it_means_days() {
        let err = parse_duration("30", false).unwrap_err();
        assert_eq!(
            err,
            r#""30" has no unit; add one, e.g. "30s", "30m" or "30d""#
        );
        assert_eq!(
            parse_duration("soon", false).unwrap_err(),
            r#""soon" is not a duration; expected e.g. "30s", "5m""#
        );
        assert!(parse_duration("soon", true)
            .unwrap_err()
            .contains("or a number of days"));
        assert!(parse_duration("", false).is_err());
        assert!(parse_duration("-1d", false).is_err());
        assert!(parse_duration("99999999999999999999", true).is_err());
    }

    #[test]
    fn durations_format_compactly_and_round_trip() {
        let cases = [
            (secs(0), "0s"),
            (secs(30), "30s"),
            (secs(90), "90s"),
            (secs(5400), "90m"),
            (secs(43200), "12h"),
            (secs(30 * 86400), "30d"),
            (secs(14 * 86400), "14d"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(3), "3us"),
            (Duration::from_nanos(1_000_000_007), "1000000007ns"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text, false), Ok(d), "{text}");
        }
    }

    #[test]
    fn paths_that_do_not_exist_are_cleaned_as_text() {
        assert_eq!(
            resolve(Path::new("/nonexistent/./b//c/../d")),
            Path::new("/nonexistent/b/d")
        );
        assert_eq!(
            resolve(Path::new("/../nonexistent")),
            Path::new("/nonexistent")
        );
        assert_eq!(resolve(Path::new("/nonexistent/..")), Path::new("/"));
    }

    #[test]
    fn dot_dot_after_a_symlink_is_the_parent_of_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("real/deep")).unwrap();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink(root.join("real/deep"), root.join("a/link")).unwrap();
        assert_eq!(
            resolve(&root.join("a/link/../p.json")),
            root.join("real/p.json")
        );
        // Missing directories below a link are kept, to be created there.
        assert_eq!(
            resolve(&root.join("a/link/new/../sub/p.json")),
            root.join("real/deep/sub/p.json")
        );
        // The last component stays as written, a symlink included.
        std::os::unix::fs::symlink("elsewhere.json", root.join("a/p.json")).unwrap();
        assert_eq!(resolve(&root.join("a/./p.json")), root.join("a/p.json"));
    }

    #[test]
    fn tilde_expands_to_home_only() {
        let home = Some(Path::new("/home/u"));
        assert_eq!(expand_tilde("~", home).unwrap(), Path::new("/home/u"));
        assert_eq!(
            expand_tilde("~/a/b", home).unwrap(),
            Path::new("/home/u/a/b")
        );
        assert_eq!(expand_tilde("a/~", home).unwrap(), Path::new("a/~"));
        assert!(expand_tilde("~bob/x", home).unwrap_err().contains("~user"));
        assert!(expand_tilde("~/x", None)
            .unwrap_err()
            .contains("HOME is not set"));
    }

    #[test]
    fn origins_display_as_config_show_prints_them() {
        assert_eq!(Origin::Default.to_string(), "default");
        assert_eq!(
            Origin::File("/etc/mamfast/mamfast.toml".into()).to_string(),
            "/etc/mamfast/mamfast.toml"
        );
        assert_eq!(
            Origin::Env("MAMFAST_BACKUP_DEPTH").to_string(),
            "env MAMFAST_BACKUP_DEPTH"
        );
        assert_eq!(
            Origin::Flag("--state-file").to_string(),
            "flag --state-file"
        );
    }

    #[test]
    fn the_env_provider_names_the_real_variable() {
        let figment = Figment::new().merge(Single {
            name: "MAMFAST_BACKUP_DEPTH",
            source: SOURCE_ENV,
            key: "state.backup_depth",
            value: env_value("state.backup_depth", "7"),
        });
        let md = figment.find_metadata("state.backup_depth").unwrap();
        assert_eq!(md.name, "MAMFAST_BACKUP_DEPTH");
        assert_eq!(
            figment.find_value("state.backup_depth").unwrap().to_u128(),
            Some(7)
        );
    }

    #[test]
    fn env_values_take_the_type_of_their_key() {
        assert_eq!(env_value("state.backup_depth", "12").to_u128(), Some(12));
        assert_eq!(
            env_value("state.backup_depth", "three").as_str(),
            Some("three")
        );
        assert_eq!(env_value("state.file", "123").as_str(), Some("123"));
        assert_eq!(env_value("state.lock_timeout", "30").as_str(), Some("30"));
        let dirs = env_value("plugins.dirs", ":/a::b:");
        let items: Vec<_> = dirs
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(items, ["/a", "b"]);
        for (raw, want) in [
            ("1", true),
            ("true", true),
            ("YES", true),
            ("0", false),
            ("false", false),
            ("no", false),
            ("", false),
        ] {
            assert_eq!(env_value("dry_run", raw).to_bool(), Some(want), "{raw}");
        }
        assert_eq!(env_value("dry_run", "maybe").as_str(), Some("maybe"));
    }

    /// A sandbox: a temporary HOME and a system config path inside it, so that a real
    /// /etc/mamfast/mamfast.toml on the machine cannot leak into the test.
    struct Sandbox {
        dir: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Self {
            Sandbox {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn home(&self) -> String {
            self.dir.path().join("home").display().to_string()
        }
        fn system(&self) -> PathBuf {
            self.dir.path().join("etc/mamfast/mamfast.toml")
        }
        fn user(&self) -> PathBuf {
            self.dir.path().join("home/.config/mamfast/mamfast.toml")
        }
        fn write(&self, path: &Path, text: &str) {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        fn load(&self, overrides: &Overrides, extra: &[(&str, &str)]) -> Result<Settings> {
            let home = self.home();
            let mut pairs = vec![("HOME", home.as_str())];
            pairs.extend_from_slice(extra);
            load_inner(overrides, &lookup(&pairs), &self.system())
        }
    }

    #[test]
    fn without_files_the_defaults_apply() {
        let sb = Sandbox::new();
        let s = sb.load(&Overrides::default(), &[]).unwrap();
        let home = PathBuf::from(sb.home());
        assert_eq!(
            s.state_file,
            home.join(".local/state/mamfast/processed.json")
        );
        assert_eq!(s.backup_depth, 3);
        assert_eq!(s.lock_timeout, secs(30));
        assert_eq!(s.failed_ttl, None);
        assert_eq!(s.plugin_dirs, [home.join(".local/libexec/mamfast")]);
        assert!(!s.dry_run);
        assert!(s.config_files.is_empty());
        for key in KEYS {
            assert_eq!(s.origin(key), Origin::Default, "{key}");
        }
    }

    #[test]
    fn xdg_state_home_moves_the_default_state_file() {
        let sb = Sandbox::new();
        let s = sb
            .load(&Overrides::default(), &[("XDG_STATE_HOME", "/var/lib/x")])
            .unwrap();
        assert_eq!(s.state_file, Path::new("/var/lib/x/mamfast/processed.json"));
        // A relative XDG value is invalid by the spec and ignored.
        let s = sb
            .load(&Overrides::default(), &[("XDG_STATE_HOME", "rel")])
            .unwrap();
        assert!(s.state_file.starts_with(sb.home()));
    }

    #[test]
    fn the_user_file_layers_over_the_system_file() {
        let sb = Sandbox::new();
        sb.write(
            &sb.system(),
            "[state]\nbackup_depth = 5\nlock_timeout = \"1m\"\n",
        );
        sb.write(&sb.user(), "[state]\nbackup_depth = 7\n");
        let s = sb.load(&Overrides::default(), &[]).unwrap();
        assert_eq!(s.config_files, [sb.system(), sb.user()]);
        assert_eq!(s.backup_depth, 7);
        assert_eq!(s.origin("state.backup_depth"), Origin::File(sb.user()));
        assert_eq!(s.lock_timeout, secs(60));
        assert_eq!(s.origin("state.lock_timeout"), Origin::File(sb.system()));
        assert_eq!(s.origin("state.file"), Origin::Default);
        // The winning file is the one a plugin is told about.
        let env: HashMap<_, _> = s.plugin_env().into_iter().collect();
        assert_eq!(env["MAMFAST_CONFIG"], sb.user().display().to_string());
    }

    #[test]
    fn xdg_config_home_moves_the_user_file_and_only_existing_files_count() {
        let sb = Sandbox::new();
        let xdg = sb.dir.path().join("xdg");
        let user = xdg.join("mamfast/mamfast.toml");
        sb.write(&user, "[state]\nbackup_depth = 1\n");
        let xdg_text = xdg.display().to_string();
        let s = sb
            .load(&Overrides::default(), &[("XDG_CONFIG_HOME", &xdg_text)])
            .unwrap();
        assert_eq!(s.config_files, std::slice::from_ref(&user));
        assert_eq!(s.backup_depth, 1);
        let found = candidates(
            &Overrides::default(),
            &lookup(&[("XDG_CONFIG_HOME", &xdg_text)]),
            &sb.system(),
        );
        assert_eq!(found, [(sb.system(), "system"), (user, "user")]);
    }

    #[test]
    fn a_named_file_with_a_tilde_that_cannot_expand_says_why() {
        let sb = Sandbox::new();
        let overrides = Overrides::default();
        for (raw, why) in [
            ("~/m.toml", "HOME is not set"),
            ("~bob/m.toml", "~user paths"),
        ] {
            let state_file = sb.dir.path().join("s.json").display().to_string();
            let env = [
                ("MAMFAST_CONFIG", raw),
                ("MAMFAST_STATE_FILE", state_file.as_str()),
            ];
            let err = load_inner(&overrides, &lookup(&env), &sb.system()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("config file {raw} (named by MAMFAST_CONFIG)")));
            assert!(text.contains(why), "{text}");
            assert_eq!(err.exit_code(), 78);
        }
    }

    #[test]
    fn a_named_file_replaces_the_search() {
        let sb = Sandbox::new();
        sb.write(&sb.system(), "[state]\nbackup_depth = 5\n");
        sb.write(&sb.user(), "[state]\nbackup_depth = 6\n");
        let named = sb.dir.path().join("named.toml");
        sb.write(&named, "[state]\nlock_timeout = \"2m\"\n");
        let named_text = named.display().to_string();
        let s = sb
            .load(&Overrides::default(), &[("MAMFAST_CONFIG", &named_text)])
            .unwrap();
        assert_eq!(s.config_files, std::slice::from_ref(&named));
        assert_eq!(s.backup_depth, 3);
        assert_eq!(s.lock_timeout, secs(120));
        // MAMFAST_CONFIG set but empty: no file at all, not even the system one.
        let s = sb
            .load(&Overrides::default(), &[("MAMFAST_CONFIG", "")])
            .unwrap();
        assert!(s.config_files.is_empty());
        assert_eq!(s.backup_depth, 3);
    }

    #[test]
    fn system_file_errors_name_the_system_file() {
        let sb = Sandbox::new();
        sb.write(&sb.system(), "[state]\nbackup_dept = 5\n");
        let err = sb.load(&Overrides::default(), &[]).unwrap_err();
        assert_eq!(err.exit_code(), 78);
        assert!(
            err.to_string().contains(&sb.system().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn without_home_the_default_state_file_is_a_clear_error() {
        let sb = Sandbox::new();
        let err = load_inner(&Overrides::default(), &lookup(&[]), &sb.system()).unwrap_err();
        assert_eq!(err.exit_code(), 78);
        let text = err.to_string();
        assert!(
            text.contains("neither XDG_STATE_HOME nor HOME is set"),
            "{text}"
        );
        assert!(text.contains("MAMFAST_STATE_FILE"), "{text}");
        // Not needed: no error, and the default plugin directory (in HOME) is simply absent.
        let s = load_inner(
            &Overrides::default(),
            &lookup(&[("MAMFAST_STATE_FILE", "/s/p.json")]),
            &sb.system(),
        )
        .unwrap();
        assert_eq!(s.state_file, Path::new("/s/p.json"));
        assert!(s.plugin_dirs.is_empty());
        // But a ~ the user wrote still needs HOME.
        let err = load_inner(
            &Overrides::default(),
            &lookup(&[("MAMFAST_STATE_FILE", "~/p.json")]),
            &sb.system(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("HOME is not set"), "{err}");
    }

    #[test]
    fn did_you_mean_suggests_the_nearest_key() {
        assert_eq!(
            did_you_mean("state.backup_dept"),
            Some("state.backup_depth")
        );
        assert_eq!(did_you_mean("backup_depth"), Some("state.backup_depth"));
        assert_eq!(did_you_mean("plugin.dirs"), Some("plugins.dirs"));
        assert_eq!(did_you_mean("plugin"), Some("plugins.dirs"));
        assert_eq!(did_you_mean("state.lock"), Some("state.lock_timeout"));
        assert_eq!(did_you_mean("state.foo"), None);
        assert_eq!(did_you_mean("plugins.file"), None);
        assert_eq!(did_you_mean("zzz"), None);
    }

    #[test]
    fn describe_speaks_toml() {
        assert_eq!(describe(&Value::from("x")), "string \"x\"");
        assert_eq!(describe(&Value::from(-1i64)), "integer -1");
        assert_eq!(describe(&Value::from(2.5f64)), "float 2.5");
        assert_eq!(describe(&Value::from(true)), "boolean true");
    }
}
