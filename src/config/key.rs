//! The configuration keys, each in one place: its name (which is also its key in a config
//! file), its environment variable, its flag, its default, what kind of value it holds and
//! the bounds of that value, and how it is shown and handed to a plugin.

use std::path::Path;
use std::time::Duration;

use figment::value::{Tag, Value};

use super::duration::format_duration;
use super::Settings;

/// A configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    StateFile,
    BackupDepth,
    BackupHourly,
    BackupDaily,
    LockTimeout,
    FailedTtl,
    JournalKib,
    PluginDirs,
    DryRun,
}

/// Every key's name, in the order `config show` lists them.
pub const KEYS: [&str; Key::ALL.len()] = {
    let mut names = [""; Key::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Key::ALL[i].name();
        i += 1;
    }
    names
};

/// The most backup generations `state.backup_depth` may keep. Each generation is a full copy of
/// the state, every write renames each kept one while it holds the lock, and `state backups`
/// and `verify` read them all: a hundred copies is already far more history than a restore
/// needs, and a larger number is much more likely a typo than a wish.
pub const MAX_BACKUP_DEPTH: usize = 100;

/// The most hourly backups `state.backup_hourly` may keep: a week of hours.
pub const MAX_BACKUP_HOURLY: usize = 168;

/// The most daily backups `state.backup_daily` may keep: a year of days. Each is a whole copy
/// of the state; at most `backup_depth + backup_hourly + backup_daily` exist at once.
pub const MAX_BACKUP_DAILY: usize = 366;

/// The longest `state.lock_timeout`: a write holds the lock for seconds, so a holder still
/// there after a day is stuck, and waiting longer only hides it.
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The longest `state.failed_ttl` (and `--failed-older-than`): a hundred years (36500d), past
/// which a TTL means "never"; leave it unset for that.
pub const MAX_FAILED_TTL: Duration = Duration::from_secs(36_500 * 86_400);

/// The largest `state.journal_kib`: 1 GiB. The journal is history for an operator to read,
/// kept as two files of at most this; more is a typo rather than a wish.
pub const MAX_JOURNAL_KIB: usize = 1024 * 1024;

/// What a key holds, which decides how its text is read and what is accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// A path; `~` expands, a relative path is relative to its config file (or, from the
    /// environment or a flag, to the current directory).
    Path,
    /// Paths searched in order, `:`-separated in the environment as in `PATH`.
    Paths,
    /// A whole number from 0 to `max`.
    Count { max: usize },
    /// A duration of at most `max`; when `may_be_unset`, an empty value means "none".
    Duration { max: Duration, may_be_unset: bool },
    /// On or off; in the environment `1`, `true`, `yes` or `0`, `false`, `no`, empty.
    Switch,
}

impl Key {
    /// Every key, in the order `config show` lists them.
    pub const ALL: [Key; 9] = [
        Key::StateFile,
        Key::BackupDepth,
        Key::BackupHourly,
        Key::BackupDaily,
        Key::LockTimeout,
        Key::FailedTtl,
        Key::JournalKib,
        Key::PluginDirs,
        Key::DryRun,
    ];

    /// The order a plugin is handed the keys' variables in (README, *Plugins*).
    pub(crate) const HANDED_DOWN: [Key; 9] = [
        Key::StateFile,
        Key::BackupDepth,
        Key::BackupHourly,
        Key::BackupDaily,
        Key::LockTimeout,
        Key::FailedTtl,
        Key::JournalKib,
        Key::DryRun,
        Key::PluginDirs,
    ];

    /// The key's name, as `config show` prints it and a config file writes it (`[state]`
    /// then `file = …` for `state.file`).
    pub const fn name(self) -> &'static str {
        match self {
            Key::StateFile => "state.file",
            Key::BackupDepth => "state.backup_depth",
            Key::BackupHourly => "state.backup_hourly",
            Key::BackupDaily => "state.backup_daily",
            Key::LockTimeout => "state.lock_timeout",
            Key::FailedTtl => "state.failed_ttl",
            Key::JournalKib => "state.journal_kib",
            Key::PluginDirs => "plugins.dirs",
            Key::DryRun => "dry_run",
        }
    }

    /// Whether a config file may set the key: a dry run is per invocation (environment or
    /// flag only), so that a forgotten line cannot silently turn every run into one.
    pub const fn in_file(self) -> bool {
        !matches!(self, Key::DryRun)
    }

    /// The environment variable that sets the key, and hands it to a plugin.
    pub const fn env_var(self) -> &'static str {
        match self {
            Key::StateFile => "MAMFAST_STATE_FILE",
            Key::BackupDepth => "MAMFAST_BACKUP_DEPTH",
            Key::BackupHourly => "MAMFAST_BACKUP_HOURLY",
            Key::BackupDaily => "MAMFAST_BACKUP_DAILY",
            Key::LockTimeout => "MAMFAST_LOCK_TIMEOUT",
            Key::FailedTtl => "MAMFAST_FAILED_TTL",
            Key::JournalKib => "MAMFAST_JOURNAL_KIB",
            Key::PluginDirs => "MAMFAST_PLUGIN_DIRS",
            Key::DryRun => "MAMFAST_DRY_RUN",
        }
    }

    /// The command-line flag that sets the key, if one does.
    pub const fn flag(self) -> Option<&'static str> {
        match self {
            Key::StateFile => Some("--state-file"),
            Key::DryRun => Some("--dry-run"),
            _ => None,
        }
    }

    pub(crate) const fn kind(self) -> Kind {
        match self {
            Key::StateFile => Kind::Path,
            Key::BackupDepth => Kind::Count {
                max: MAX_BACKUP_DEPTH,
            },
            Key::BackupHourly => Kind::Count {
                max: MAX_BACKUP_HOURLY,
            },
            Key::BackupDaily => Kind::Count {
                max: MAX_BACKUP_DAILY,
            },
            Key::LockTimeout => Kind::Duration {
                max: MAX_LOCK_TIMEOUT,
                may_be_unset: false,
            },
            Key::FailedTtl => Kind::Duration {
                max: MAX_FAILED_TTL,
                may_be_unset: true,
            },
            Key::JournalKib => Kind::Count {
                max: MAX_JOURNAL_KIB,
            },
            Key::PluginDirs => Kind::Paths,
            Key::DryRun => Kind::Switch,
        }
    }

    /// The key called `name`.
    pub fn named(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }

    /// The built-in default, as a config file would write it. `state.file` has none here (it
    /// is computed from `XDG_STATE_HOME` or `HOME`), and `state.failed_ttl` is unset.
    pub(crate) fn default_value(self) -> Option<Value> {
        match self {
            Key::StateFile | Key::FailedTtl => None,
            Key::BackupDepth => Some(Value::from(3u64)),
            // With the 3 newest, one a day for a week: at most 10 copies of the state.
            Key::BackupHourly => Some(Value::from(0u64)),
            Key::BackupDaily => Some(Value::from(7u64)),
            Key::JournalKib => Some(Value::from(1024u64)),
            Key::LockTimeout => Some(Value::from("30s")),
            Key::PluginDirs => Some(Value::from(vec![Value::from("~/.local/libexec/mamfast")])),
            Key::DryRun => Some(Value::from(false)),
        }
    }

    /// The value the key's environment variable gives it: typed where the kind says how, so
    /// `123`, `/path` and `30s` all work; a value that does not fit stays a string, for the
    /// conversion to report with the variable's name.
    pub(crate) fn env_value(self, raw: &str) -> Value {
        match self.kind() {
            Kind::Count { .. } => raw
                .trim()
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(raw)),
            Kind::Paths => Value::Array(
                Tag::Default,
                raw.split(':')
                    .filter(|s| !s.is_empty())
                    .map(Value::from)
                    .collect(),
            ),
            Kind::Switch => match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Value::from(true),
                "0" | "false" | "no" | "" => Value::from(false),
                _ => Value::from(raw),
            },
            Kind::Path | Kind::Duration { .. } => Value::from(raw),
        }
    }

    /// The key's value in `config show`: durations as `"30s"` strings, an unset one as `null`,
    /// paths as strings.
    pub(crate) fn shown(self, settings: &Settings) -> serde_json::Value {
        use serde_json::Value as J;
        let path = |p: &Path| J::String(p.display().to_string());
        match self {
            Key::StateFile => path(&settings.state_file),
            Key::BackupDepth => J::from(settings.backup_depth),
            Key::BackupHourly => J::from(settings.backup_hourly),
            Key::BackupDaily => J::from(settings.backup_daily),
            Key::JournalKib => J::from(settings.journal_kib),
            Key::LockTimeout => J::String(format_duration(settings.lock_timeout)),
            Key::FailedTtl => settings
                .failed_ttl
                .map_or(J::Null, |d| J::String(format_duration(d))),
            Key::PluginDirs => J::Array(settings.plugin_dirs.iter().map(|p| path(p)).collect()),
            Key::DryRun => J::Bool(settings.dry_run),
        }
    }

    /// The key's value as its variable hands it to a plugin, which reads it back as the same
    /// value: an unset duration is empty, a dry run `1`/`0`, plugin directories `:`-joined (a
    /// directory containing `:` cannot survive that, as with `PATH`).
    pub(crate) fn handed_down(self, settings: &Settings) -> String {
        match self {
            Key::StateFile => settings.state_file.display().to_string(),
            Key::BackupDepth => settings.backup_depth.to_string(),
            Key::BackupHourly => settings.backup_hourly.to_string(),
            Key::BackupDaily => settings.backup_daily.to_string(),
            Key::JournalKib => settings.journal_kib.to_string(),
            Key::LockTimeout => format_duration(settings.lock_timeout),
            Key::FailedTtl => settings.failed_ttl.map(format_duration).unwrap_or_default(),
            Key::PluginDirs => {
                let dirs: Vec<String> = settings
                    .plugin_dirs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                dirs.join(":")
            }
            Key::DryRun => if settings.dry_run { "1" } else { "0" }.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_take_the_type_of_their_key() {
        assert_eq!(Key::BackupDepth.env_value("12").to_u128(), Some(12));
        assert_eq!(Key::BackupDepth.env_value("three").as_str(), Some("three"));
        assert_eq!(Key::StateFile.env_value("123").as_str(), Some("123"));
        assert_eq!(Key::LockTimeout.env_value("30").as_str(), Some("30"));
        let dirs = Key::PluginDirs.env_value(":/a::b:");
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
            assert_eq!(Key::DryRun.env_value(raw).to_bool(), Some(want), "{raw}");
        }
        assert_eq!(Key::DryRun.env_value("maybe").as_str(), Some("maybe"));
    }
}
