//! The layers, each over the one before: built-in defaults, config files, `MAMFAST_*`
//! environment variables, command-line flags; merged with figment, and where each value came
//! from.
//!
//! figment does the merging; it does not name an environment variable or a flag as a value's
//! origin (its `Env` provider parses values as TOML and forgets the variable's name), so each
//! variable and each flag is its own small [`Provider`] named after it.

use std::fmt;
use std::path::PathBuf;

use figment::providers::Serialized;
use figment::value::{Dict, Map, Tag, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::files::ConfigFile;
use super::key::Key;
use super::{EnvLookup, Overrides};
use crate::error::{Error, Result};

/// Where a setting's value came from: its layer, in layer order (a later one wins).
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
    pub(super) fn place(&self) -> String {
        match self {
            Origin::Default => "in the built-in defaults".into(),
            Origin::File(path) => format!("in {}", path.display()),
            Origin::Env(var) => format!("from {var}"),
            Origin::Flag(flag) => format!("from {flag}"),
        }
    }
}

/// All layers merged: the defaults, then `config_files` in order, then the environment as
/// `env` sees it, then the flags in `overrides`.
pub(super) fn merge(
    overrides: &Overrides,
    env: EnvLookup,
    config_files: &[PathBuf],
) -> Result<Figment> {
    let mut figment = Figment::new();
    for key in Key::ALL {
        if let Some(value) = key.default_value() {
            figment = figment.merge(Serialized::default(key.name(), value));
        }
    }
    for path in config_files {
        figment = figment.merge(ConfigFile::read(path)?);
    }
    for key in Key::ALL {
        if let Some(raw) = env(key.env_var()) {
            figment = figment.merge(Single::env(key, &raw));
        }
    }
    if let Some(path) = &overrides.state_file {
        let Some(text) = path.to_str() else {
            return Err(Error::Config(format!(
                "invalid value for state.file from --state-file: {} is not a UTF-8 path; mamfast needs UTF-8 paths",
                path.display()
            )));
        };
        figment = figment.merge(Single::flag(Key::StateFile, Value::from(text)));
    }
    if overrides.dry_run {
        figment = figment.merge(Single::flag(Key::DryRun, Value::from(true)));
    }
    Ok(figment)
}

/// The layer a value (by its tag) came from.
pub(super) fn origin_of(figment: &Figment, tag: Tag) -> Origin {
    let Some(md) = figment.get_metadata(tag) else {
        return Origin::Default;
    };
    let named = |name: fn(Key) -> Option<&'static str>| {
        Key::ALL
            .into_iter()
            .filter_map(name)
            .find(|n| *n == md.name)
    };
    match &md.source {
        Some(Source::File(path)) => Origin::File(path.clone()),
        Some(Source::Custom(s)) if s == SOURCE_ENV => {
            named(|k| Some(k.env_var())).map_or(Origin::Default, Origin::Env)
        }
        Some(Source::Custom(s)) if s == SOURCE_FLAG => {
            named(Key::flag).map_or(Origin::Default, Origin::Flag)
        }
        _ => Origin::Default,
    }
}

const SOURCE_ENV: &str = "environment";
const SOURCE_FLAG: &str = "command line";

/// One environment variable or one flag: a provider that sets one key, and whose metadata is
/// named after the variable or flag, so `find_metadata` says which one it was.
struct Single {
    name: &'static str,
    source: &'static str,
    key: Key,
    value: Value,
}

impl Single {
    /// The key's environment variable, set to `raw`.
    fn env(key: Key, raw: &str) -> Single {
        Single {
            name: key.env_var(),
            source: SOURCE_ENV,
            key,
            value: key.env_value(raw),
        }
    }

    /// The key's flag, given with `value`.
    fn flag(key: Key, value: Value) -> Single {
        Single {
            name: key
                .flag()
                .expect("a key set on the command line has a flag"),
            source: SOURCE_FLAG,
            key,
            value,
        }
    }
}

impl Provider for Single {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name).source(Source::Custom(self.source.into()))
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        let dict = match figment::util::nest(self.key.name(), self.value.clone()) {
            Value::Dict(_, dict) => dict,
            _ => unreachable!("a non-empty key nests into a dict"),
        };
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let figment = Figment::new().merge(Single::env(Key::BackupDepth, "7"));
        let md = figment.find_metadata("state.backup_depth").unwrap();
        assert_eq!(md.name, "MAMFAST_BACKUP_DEPTH");
        assert_eq!(
            figment.find_value("state.backup_depth").unwrap().to_u128(),
            Some(7)
        );
    }
}
