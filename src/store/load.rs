//! Loading a state file: one candidate (the main file or a backup) is read, parsed and
//! migrated ([`probe`]); the load chain takes the main file, else the first valid backup, and
//! says what became of the main file. Nothing here changes a file.

use std::io;
use std::path::Path;

use super::backups;
use super::bounded_io::{open_regular, read_file, unreadable, Unreadable};
use super::durable::OldMain;
use super::format;
use super::names::corrupt_path;
use super::paths::Paths;
use super::retention::Retention;
use super::types::{Loaded, Source, Summary};
use crate::error::{Error, NotLoaded, Result};
use crate::state::migrate::migrate;
use crate::state::State;

/// What one candidate file (main or a backup) holds.
pub(crate) enum Probe {
    Missing,
    Invalid(String),
    Valid {
        state: State,
        migrated_from: Option<u64>,
        /// The file's bytes, kept for a backup (it may be restored as it is); `None` for the
        /// main file, whose bytes are freed once parsed.
        bytes: Option<Vec<u8>>,
        mode: u32,
    },
}

/// How a main file is parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Parse {
    /// Every entry, at once (for reading: every entry will be looked at).
    Full,
    /// Entries kept as text until looked at (for an update: most entries will not be).
    Lazy,
}

/// Parses and migrates one file. A newer version is an error at once: it must not be passed
/// over for an older backup, nor ever rewritten. `parse` applies to the main file; a backup
/// is parsed in full (its bytes are kept, to be restored).
pub(crate) fn probe(path: &Path, is_main: bool, parse: Parse) -> Result<Probe> {
    let (bytes, mode) = match read_file(path) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Missing),
        // Too large to read. Corrupt (replaced by a backup, moved aside whole) only when its
        // first bytes show that Python could not read it either; otherwise a main file is
        // refused as it is, never rolled back.
        Err(e) if matches!(unreadable(&e), Some(Unreadable::TooLarge { .. })) => {
            if is_main && may_be_json_object(path) {
                return Err(Error::Data(format!(
                    "{}: {e}; mamfast does not read it. It may still be a state the Python tool \
                     reads, so it is neither moved aside nor replaced: nothing was changed.\n\
                     Shrink it, or run `mamfast state restore 0` to go back to the newest \
                     backup (this file is then kept aside as `.rejected-<time>`).",
                    path.display()
                )));
            }
            return Ok(Probe::Invalid(e.to_string()));
        }
        // An unreadable main file is not a corrupt one: it must not be moved aside.
        Err(e) if is_main => return Err(Error::io("reading", path, e)),
        Err(e) => return Ok(Probe::Invalid(format!("cannot read: {e}"))),
    };
    if bytes.is_empty() {
        return Ok(Probe::Invalid("empty file".into()));
    }
    // Only a backup's bytes are needed afterwards (to restore it); the main file's are freed
    // as soon as they are parsed.
    let (parsed, bytes) = if is_main {
        let parsed = match parse {
            Parse::Full => format::load_owned(bytes),
            Parse::Lazy => format::load_lazy(bytes),
        };
        (parsed, None)
    } else {
        (format::load(&bytes), Some(bytes))
    };
    let mut state = match parsed {
        Ok(state) => state,
        // Python reads it: not corrupt, so the main file must be neither moved aside nor
        // passed over for a backup. A backup like it is just not a candidate.
        Err(format::Refused::Unusable(why)) if is_main => {
            return Err(Error::Data(format!("{}: {why}", path.display())))
        }
        Err(e) => return Ok(Probe::Invalid(e.into_message())),
    };
    let version = state.version;
    match migrate(&mut state) {
        Ok(migrated) => Ok(Probe::Valid {
            state,
            migrated_from: migrated.then_some(version),
            bytes,
            mode,
        }),
        Err(too_new) => Err(Error::NewerVersion {
            file: path.to_path_buf(),
            found: too_new.found,
            supported: too_new.supported,
        }),
    }
}

/// Whether the first 64 KiB of `path` could begin a JSON object, as Python's `json.load`
/// reads one: only white space (space, tab, line feed, carriage return) before a `{`, or
/// nothing but white space so far. Used only for a file too large to read whole.
fn may_be_json_object(path: &Path) -> bool {
    use std::io::Read;
    let Ok((file, _)) = open_regular(path, u64::MAX) else {
        return false;
    };
    let mut head = Vec::new();
    if file.take(64 << 10).read_to_end(&mut head).is_err() {
        return false;
    }
    match head
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Some(first) => *first == b'{',
        None => true,
    }
}

/// The main file as it was found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MainState {
    Clean,
    Missing,
    Corrupt(String),
}

impl MainState {
    /// Why the main file did not win: what is wrong with it, or that it is missing.
    pub(crate) fn reason(&self) -> NotLoaded {
        match self {
            MainState::Corrupt(reason) => NotLoaded::Invalid(reason.clone()),
            _ => NotLoaded::Missing,
        }
    }

    /// What becomes of this main file when another replaces it: a clean one becomes `.bak`
    /// (when the policy keeps any generation), a corrupt one is moved aside (never deleted).
    pub(crate) fn fate(&self, paths: &Paths, retention: &Retention) -> OldMain {
        match self {
            MainState::Clean if retention.keeps_any() => OldMain::Rotate(*retention),
            MainState::Corrupt(_) => OldMain::Quarantine(corrupt_path(paths, chrono::Utc::now())),
            _ => OldMain::Discard,
        }
    }
}

/// The result of the recovery chain, before anything on disk is repaired.
pub(crate) struct Found {
    pub(crate) loaded: Loaded,
    pub(crate) main: MainState,
    /// The winning backup's bytes and permission bits, when a backup won.
    pub(crate) backup: Option<(Vec<u8>, u32)>,
}

/// Main, then `.bak`, `.bak.1` …: the first that parses and migrates wins. Changes nothing.
/// `given` is the state file as named, for the error when none is valid.
pub(crate) fn load_chain(paths: &Paths, given: &Path, parse: Parse) -> Result<Found> {
    let main = match probe(&paths.target, true, parse)? {
        Probe::Valid {
            state,
            migrated_from,
            ..
        } => {
            return Ok(Found {
                loaded: Loaded {
                    state,
                    source: Source::Main,
                    migrated_from,
                },
                main: MainState::Clean,
                backup: None,
            })
        }
        Probe::Missing => MainState::Missing,
        Probe::Invalid(reason) => MainState::Corrupt(reason),
    };
    let mut tried = vec![(paths.target.clone(), main.reason())];
    for (generation, path) in backups::existing(paths) {
        match probe(&path, false, Parse::Full)? {
            Probe::Valid {
                state,
                migrated_from,
                bytes,
                mode,
            } => {
                return Ok(Found {
                    loaded: Loaded {
                        state,
                        source: Source::Backup { generation, path },
                        migrated_from,
                    },
                    main,
                    backup: bytes.map(|bytes| (bytes, mode)),
                })
            }
            // Vanished between listing and reading: nothing to report.
            Probe::Missing => {}
            Probe::Invalid(reason) => tried.push((path, NotLoaded::Invalid(reason))),
        }
    }
    if main == MainState::Missing && tried.len() == 1 {
        return Ok(Found {
            loaded: Loaded {
                state: State::default(),
                source: Source::Missing,
                migrated_from: None,
            },
            main,
            backup: None,
        });
    }
    Err(Error::Corrupt {
        file: given.to_path_buf(),
        tried,
    })
}

/// What a state file holds, for [`Store::generations`](super::Store::generations): loaded as the main file is (only the
/// counts are needed, so its entries stay unparsed), or why it cannot be.
pub(crate) fn summarize(path: &Path) -> std::result::Result<Summary, NotLoaded> {
    match probe(path, true, Parse::Lazy) {
        Ok(Probe::Valid {
            state,
            migrated_from,
            ..
        }) => Ok(Summary::of(&state, migrated_from)),
        Ok(Probe::Missing) => Err(NotLoaded::Missing),
        Ok(Probe::Invalid(reason)) => Err(NotLoaded::Invalid(reason)),
        Err(Error::NewerVersion {
            found, supported, ..
        }) => Err(NotLoaded::Invalid(format!(
            "schema version {found} is newer than this mamfast understands (up to {supported})"
        ))),
        Err(Error::Io { source, .. }) => Err(NotLoaded::Invalid(source.to_string())),
        Err(e) => Err(NotLoaded::Invalid(e.to_string())),
    }
}
