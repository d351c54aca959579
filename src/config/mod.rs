//! Configuration: built-in defaults → config file(s) → `MAMFAST_*` environment → command-line
//! flags, merged with figment into [`Settings`], remembering where every value came from.
//!
//! The keys are [`Key`] (`key.rs`); the layers and origins are in `layers.rs`, the config
//! files in `files.rs`; `values.rs` turns the merged layers into typed, checked values, with
//! `paths.rs` and `duration.rs` for the two kinds of value that need care.

mod duration;
mod env_names;
mod files;
mod key;
mod layers;
mod paths;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use files::CONFIG_VAR;

pub use duration::{at_most, format_duration, parse_duration};
pub use files::{config_candidates, ConfigCandidate, SYSTEM_CONFIG};
pub use key::{
    Key, KEYS, MAX_BACKUP_DAILY, MAX_BACKUP_DEPTH, MAX_BACKUP_HOURLY, MAX_FAILED_TTL,
    MAX_LOCK_TIMEOUT,
};
pub use layers::Origin;

/// What the command line says about configuration (flags win over everything).
/// `None` / `false` means "not given": it never overrides a lower layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub dry_run: bool,
}

/// One line of `config show`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRow {
    pub key: &'static str,
    /// Durations as `"30s"` strings, an unset `failed_ttl` as `null`, paths as strings.
    pub value: serde_json::Value,
    pub origin: Origin,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Absolute, `~` expanded.
    pub state_file: PathBuf,
    /// The newest backup generations kept (keep-last).
    pub backup_depth: usize,
    /// Besides those, the newest generation of each of this many newest hours…
    pub backup_hourly: usize,
    /// …and days (see [`Retention`](crate::store::Retention)).
    pub backup_daily: usize,
    /// The journal's bound in KiB before it is rotated (`state.journal_kib`); 0 keeps none.
    pub journal_kib: usize,
    /// May be zero: fail at once if the lock is taken.
    pub lock_timeout: Duration,
    /// `None`: failed entries are kept forever.
    pub failed_ttl: Option<Duration>,
    /// Absolute, searched in order before `PATH`.
    pub plugin_dirs: Vec<PathBuf>,
    pub dry_run: bool,
    /// The config files in effect, in layer order (later ones win).
    pub config_files: Vec<PathBuf>,
    /// Where each key's value came from; a key with no value (an unset `failed_ttl`) has none.
    origins: BTreeMap<Key, Origin>,
}

type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Loads the configuration, reading the real process environment.
    /// A variable that is set but not UTF-8 is an error (not taken for unset).
    /// A `MAMFAST_*` variable mamfast does not know is an error, as an unknown key in a config
    /// file is.
    pub fn load(overrides: &Overrides) -> Result<Settings> {
        let names: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        env_names::check(names.iter().map(String::as_str))?;
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
    /// to standard error as `warning: …`. A write creates the state's directory only for the
    /// built-in default path: a path that was typed must name an existing directory.
    pub fn store(&self) -> crate::store::Store {
        crate::store::Store::new(self.state_file.clone(), self.store_options())
            .with_periodic_backups(self.backup_hourly, self.backup_daily)
            .creating_dir(self.origin(Key::StateFile.name()) == Origin::Default)
            .with_journal_max_bytes(self.journal_kib as u64 * 1024)
    }

    /// Where `key` (one of [`KEYS`]) came from. An unknown key answers [`Origin::Default`].
    pub fn origin(&self, key: &str) -> Origin {
        let Some(key) = Key::named(key) else {
            debug_assert!(false, "unknown configuration key {key}");
            return Origin::Default;
        };
        self.origins.get(&key).cloned().unwrap_or(Origin::Default)
    }

    /// Every key in the order of [`KEYS`], its value in JSON form, and its origin.
    pub fn rows(&self) -> Vec<ConfigRow> {
        Key::ALL
            .into_iter()
            .map(|key| ConfigRow {
                key: key.name(),
                value: key.shown(self),
                origin: self.origin(key.name()),
            })
            .collect()
    }

    /// The environment a plugin gets (README, *Plugins*), minus `MAMFAST_BIN` and `MAMFAST_PLUGIN_API`,
    /// which the dispatcher adds: every key's variable, and `MAMFAST_CONFIG`, the config file
    /// that won (the last one) or `""`. Loading settings from exactly these variables gives the
    /// same values back.
    pub fn plugin_env(&self) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = Key::HANDED_DOWN
            .into_iter()
            .map(|key| (key.env_var(), key.handed_down(self)))
            .collect();
        let config_file = self.config_files.last();
        // Right after the state file, where the contract lists it.
        env.insert(
            1,
            (
                CONFIG_VAR,
                config_file
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        );
        env
    }
}

/// Loads the settings with `system` as the system-wide config file (tests put it in a sandbox).
fn load_inner(overrides: &Overrides, env: EnvLookup, system: &Path) -> Result<Settings> {
    let config_files = files::config_files(overrides, env, system)?;
    let figment = layers::merge(overrides, env, &config_files)?;
    values::Resolver::new(&figment, env).settings(config_files)
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
        let found = files::candidates(
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
}
