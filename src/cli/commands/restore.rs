//! `mamfast state restore <GENERATION>`: make a backup (or a rejected state) the main file;
//! the current main is kept aside as rejected (or, if corrupt, moved aside as corrupt).

use clap::Args;

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use super::backups::label;
use super::diff::{show, Side};
use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::state::diff::diff;
use mamfast::state::State;
use mamfast::store::{PreviousMain, Store};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore: .bak (or bak, 0), .bak.1 (or bak.1, 1), …, or a rejected state's
    /// file (processed.json.rejected-<time>), as `state backups` lists them
    pub generation: String,
}

/// Reads `.bak` / `bak` / `0` → 0, `.bak.2` / `bak.2` / `2` → 2, and full file names.
pub fn parse_generation(text: &str) -> Option<usize> {
    let text = text.trim();
    if let Ok(n) = text.parse() {
        return Some(n);
    }
    let at = text.rfind("bak")?;
    if at > 0 && !text[..at].ends_with('.') {
        return None;
    }
    match &text[at + 3..] {
        "" => Some(0),
        rest => rest.strip_prefix('.')?.parse().ok().filter(|n| *n > 0),
    }
}

pub fn run(ctx: &Ctx, args: RestoreArgs) -> Result<i32> {
    let store = ctx.store();
    // A rejected state is named by its file name (or a path ending in it), as `state backups`
    // lists it.
    let (restored, backup_name) = match rejected_name(&args.generation) {
        Some(name) => (
            {
                beside_the_state(&store, &args.generation)?;
                store.restore_rejected(name)?
            },
            name.to_string_lossy().into_owned(),
        ),
        None => {
            let generation = parse_generation(&args.generation).ok_or_else(|| {
                Error::Usage(format!(
                    "invalid generation {:?}: expected .bak, .bak.1, … or a \
                     .rejected-<time> file (see `mamfast state backups`)",
                    args.generation
                ))
            })?;
            (store.restore(generation)?, label(Some(generation)))
        }
    };
    if ctx.dry_run() {
        // What the restore would change, before anything does.
        let main = Side {
            name: "main".into(),
            path: store.path().to_path_buf(),
        };
        let before = match Store::load_file(&main.path) {
            Ok(state) => Some(state),
            // No main file: the restore starts from nothing.
            Err(Error::Usage(_)) => Some(State::default()),
            // A main file that is not a valid state has no entries to compare.
            Err(_) => None,
        };
        let backup = Side {
            name: backup_name,
            path: restored.backup.clone(),
        };
        match before {
            Some(before) => {
                let changes = diff(&before, &Store::load_file(&backup.path)?);
                ctx.console.data(show(&main, &backup, &changes))?;
            }
            None => ctx.console.info(format!(
                "{} is not a valid state: what the restore changes cannot be shown",
                main.path.display()
            )),
        }
    }
    let summary = restored.summary;
    let holds = format!(
        " ({} processed, {} failed)",
        summary.processed, summary.failed
    );
    let previous = match &restored.previous_main {
        PreviousMain::Missing | PreviousMain::MovedAside(_) => String::new(),
        PreviousMain::Rejected(path) => format!(
            "; the previous main file is kept as {} (rejected: automatic recovery never uses it; \
             `mamfast state restore` it to bring it back)",
            path.display()
        ),
    };
    let text = format!(
        "{} {}{holds} as {}{previous}",
        ctx.did("restore", "restored"),
        restored.backup.display(),
        ctx.settings.state_file.display(),
    );
    if ctx.dry_run() {
        ctx.console.info(text);
    } else {
        ctx.console.success(text);
    }
    Ok(0)
}

/// The file name of a rejected state named by `text` (`processed.json.rejected-…`, or a path
/// ending in one); `None` for a generation.
fn rejected_name(text: &str) -> Option<&OsStr> {
    let name = Path::new(text).file_name()?;
    name.to_str()?.contains(".rejected-").then_some(name)
}

/// A rejected state named by a path must be the one beside the state file: its file name
/// alone would otherwise pick the file of that name there, a state other than the one named.
/// A state file kept elsewhere is brought in by `state import`, which says what it replaces.
fn beside_the_state(store: &Store, text: &str) -> Result<()> {
    let dir_of = |path: &Path| match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => None,
        dir => dir.map(Path::to_path_buf),
    };
    let Some(given_dir) = dir_of(Path::new(text)) else {
        return Ok(());
    };
    // Where the store keeps its rejected states: beside the symlink-resolved state file.
    let state_dir = dir_of(&store.backup_path(0)).unwrap_or_else(|| ".".into());
    let state_dir = fs::canonicalize(&state_dir).unwrap_or(state_dir);
    if fs::canonicalize(&given_dir).is_ok_and(|given| given == state_dir) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{text} is not beside the state file {}: only a rejected state in {} can be restored \
         (`mamfast state backups` lists them). To use a state file from elsewhere, run \
         `mamfast state import FILE --if-token TOKEN` (see `mamfast state export --token-file`).",
        store.path().display(),
        state_dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::parse_generation;

    #[test]
    fn generations_are_read_in_every_spelling() {
        for (text, expected) in [
            (".bak", Some(0)),
            ("bak", Some(0)),
            ("0", Some(0)),
            (".bak.1", Some(1)),
            ("bak.2", Some(2)),
            ("3", Some(3)),
            ("/x/processed.json.bak.4", Some(4)),
            ("processed.json.bak", Some(0)),
            (".bak.0", None),
            ("latest", None),
            (".bak.x", None),
        ] {
            assert_eq!(parse_generation(text), expected, "{text}");
        }
    }
}
