//! The layers, each over the one before: built-in defaults, config files, `MAMFAST_*`
//! environment variables, command-line flags; merged with figment, and where each value came
//! from.
//!
//! figment does the merging; it does not name an environment variable or a flag as a value's
//! origin (its `Env` provider parses values as TOML and forgets the variable's name), so each
//! variable and each flag is its own small [`Provider`] named after it.

use std::fmt;
use std::path::PathBuf;

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
/// `env` sees it, then the flags in `overrides`. Each layer is one figment provider (a merge
/// copies what is merged so far: one per layer, not one per key, keeps a plugin's dispatch
/// cheap).
pub(super) fn merge(
    overrides: &Overrides,
    env: EnvLookup,
    config_files: &[PathBuf],
) -> Result<Figment> {
    let defaults = Key::ALL
        .into_iter()
        .filter_map(|key| Some((key, key.default_value()?)));
    let mut figment = Layer::new(Layer::DEFAULTS, defaults).merged_into(Figment::new());
    for path in config_files {
        figment = figment.merge(ConfigFile::read(path)?);
    }
    let from_env = Key::ALL
        .into_iter()
        .filter_map(|key| Some((key, key.env_value(&env(key.env_var())?))));
    figment = Layer::new(Layer::ENV, from_env).merged_into(figment);
    let mut flags = Vec::new();
    if let Some(path) = &overrides.state_file {
        let Some(text) = path.to_str() else {
            return Err(Error::Config(format!(
                "invalid value for state.file from --state-file: {} is not a UTF-8 path; mamfast needs UTF-8 paths",
                path.display()
            )));
        };
        flags.push((Key::StateFile, Value::from(text)));
    }
    if overrides.dry_run {
        flags.push((Key::DryRun, Value::from(true)));
    }
    Ok(Layer::new(Layer::FLAGS, flags).merged_into(figment))
}

/// The layer `key`'s value (by its tag) came from. A variable or a flag is named after the
/// key: each key has one of each.
pub(super) fn origin_of(figment: &Figment, key: Key, tag: Tag) -> Origin {
    let Some(md) = figment.get_metadata(tag) else {
        return Origin::Default;
    };
    match &md.source {
        Some(Source::File(path)) => Origin::File(path.clone()),
        Some(Source::Custom(s)) if s == SOURCE_ENV => Origin::Env(key.env_var()),
        Some(Source::Custom(s)) if s == SOURCE_FLAG => {
            key.flag().map_or(Origin::Default, Origin::Flag)
        }
        _ => Origin::Default,
    }
}

const SOURCE_ENV: &str = "environment";
const SOURCE_FLAG: &str = "command line";

/// The built-in defaults, the environment or the flags: one provider setting the keys it
/// holds, its metadata saying which of the three it is.
struct Layer {
    name: &'static str,
    source: Option<&'static str>,
    values: Dict,
}

impl Layer {
    const DEFAULTS: (&'static str, Option<&'static str>) = ("built-in defaults", None);
    const ENV: (&'static str, Option<&'static str>) = ("environment", Some(SOURCE_ENV));
    const FLAGS: (&'static str, Option<&'static str>) = ("command line", Some(SOURCE_FLAG));

    fn new(
        (name, source): (&'static str, Option<&'static str>),
        values: impl IntoIterator<Item = (Key, Value)>,
    ) -> Layer {
        let mut dict = Dict::new();
        for (key, value) in values {
            insert(&mut dict, key.name(), value);
        }
        Layer {
            name,
            source,
            values: dict,
        }
    }

    /// `figment` with this layer over it; an empty layer (no variable set, no flag) is left
    /// out.
    fn merged_into(self, figment: Figment) -> Figment {
        if self.values.is_empty() {
            figment
        } else {
            figment.merge(self)
        }
    }
}

/// `value` at the dotted `path` in `dict`: `state.file` is `file` in the table `state`.
fn insert(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        Some((table, rest)) => {
            let entry = dict
                .entry(table.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
        None => {
            dict.insert(path.to_string(), value);
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(self.name);
        match self.source {
            Some(source) => metadata.source(Source::Custom(source.into())),
            None => metadata,
        }
    }

    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
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
    fn each_value_is_found_in_its_table_with_its_origin() {
        let env = |name: &str| (name == "MAMFAST_BACKUP_DEPTH").then(|| "7".to_string());
        let overrides = Overrides {
            dry_run: true,
            ..Default::default()
        };
        let figment = merge(&overrides, &env, &[]).unwrap();
        let origin = |key: Key| {
            let value = figment.find_value(key.name()).unwrap();
            (value.clone(), origin_of(&figment, key, value.tag()))
        };
        let (depth, from) = origin(Key::BackupDepth);
        assert_eq!(depth.to_u128(), Some(7));
        assert_eq!(from, Origin::Env("MAMFAST_BACKUP_DEPTH"));
        let (daily, from) = origin(Key::BackupDaily);
        assert_eq!(daily.to_u128(), Some(7));
        assert_eq!(from, Origin::Default);
        let (dry_run, from) = origin(Key::DryRun);
        assert_eq!(dry_run.to_bool(), Some(true));
        assert_eq!(from, Origin::Flag("--dry-run"));
        assert!(figment.find_value(Key::StateFile.name()).is_err());
    }
}
