//! `mamfast state import FILE|-`: replace the whole state, under the lock, with a state a
//! program read (`state export --token-file`), changed, and hands back. The optimistic
//! transaction of a caller that cannot hold mamfast's lock across its change: `--if-token`
//! makes the import happen only if the state is still the one that token was read from (exit 4
//! otherwise: read again and retry), as HTTP's `If-Match` does. It is a write like any other:
//! the input is checked as a load checks the file, the old state becomes a backup generation,
//! the new one is written durably.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::report;
use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::escape::escape;
use mamfast::state::migrate::migrate;
use mamfast::state::State;
use mamfast::store::format::parse_state;
use mamfast::store::{state_token, Outcome, MAX_STATE_BYTES};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The state to import, in the file's format; `-` for standard input
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Import only if the state's token is still TOKEN (from `state export --token-file`)
    #[arg(long, value_name = "TOKEN", conflicts_with = "force")]
    pub if_token: Option<String>,
    /// Import whatever the state is now (no token to check)
    #[arg(long)]
    pub force: bool,
    /// Report as JSON on stdout (a conflict too)
    #[arg(long)]
    pub json: bool,
}

/// What an import did.
#[derive(Debug, Serialize)]
struct Report {
    command: &'static str,
    dry_run: bool,
    /// Whether the state changed (importing the state as it is writes nothing).
    changed: bool,
    /// The state's token after the import: the next `--if-token`.
    token: String,
    processed: usize,
    failed: usize,
}

pub fn run(ctx: &Ctx, args: ImportArgs) -> Result<i32> {
    report::json_on_error(ctx, args.json, || import(ctx, &args))
}

fn import(ctx: &Ctx, args: &ImportArgs) -> Result<i32> {
    if args.if_token.is_none() && !args.force {
        return Err(Error::Usage(
            "state import replaces the whole state: give --if-token TOKEN (the token \
             `mamfast state export --token-file FILE` wrote with the state you changed), or \
             --force to replace whatever the state is now"
                .into(),
        ));
    }
    let (bytes, shown) = read_input(&args.file)?;
    let new = checked_state(&bytes, &shown)?;
    let new_token = state_token(&new);
    let (processed, failed) = (new.processed.len(), new.failed.len());
    let store = ctx.store();
    let state_file = store.path().to_path_buf();
    let changed = store.update(|state| {
        let current = state_token(state);
        if let Some(expected) = &args.if_token {
            if expected.trim() != current {
                return Err(Error::Conflict {
                    file: state_file.clone(),
                    expected: expected.trim().to_string(),
                    found: current,
                });
            }
        }
        if current == new_token {
            return Ok(Outcome::Unchanged(false));
        }
        *state = new;
        Ok(Outcome::Changed(true))
    })?;
    if args.json {
        report::print(
            ctx,
            &Report {
                command: "import",
                dry_run: ctx.dry_run(),
                changed,
                token: new_token,
                processed,
                failed,
            },
        )?;
        return Ok(0);
    }
    if changed {
        ctx.console.success(format!(
            "{}: {} {processed} processed and {failed} failed entries from {shown} (token {new_token})",
            escape(&state_file.display().to_string()),
            ctx.did("import", "imported"),
        ));
    } else {
        ctx.console.info(format!(
            "{}: {shown} holds the state as it is; nothing to import (token {new_token})",
            escape(&state_file.display().to_string()),
        ));
    }
    Ok(0)
}

/// The input, read whole and bounded as a state file is read. Errors name it and say that
/// nothing was written.
/// Opens a file to import without blocking: a FIFO no one writes to would hang the open, so it
/// is opened non-blocking (then read as any pipe: to its end, at once if no writer is there).
/// A pipe is accepted (`<(…)` in a shell is one); a device or socket is refused before a byte
/// is read (`/dev/zero` would be read up to the size limit).
fn open_input(file: &Path) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(file)?;
    let kind = opened.metadata()?.file_type();
    let refused = if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(what) = refused {
        return Err(std::io::Error::other(format!(
            "{what}, not a state file or a pipe"
        )));
    }
    fcntl(opened.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty()))?;
    Ok(opened)
}

fn read_input(file: &Path) -> Result<(Vec<u8>, String)> {
    let stdin = file == Path::new("-");
    let shown = if stdin {
        "standard input".to_string()
    } else {
        escape(&file.display().to_string()).into_owned()
    };
    let cannot = |e: std::io::Error| {
        Error::Usage(format!(
            "cannot read the state to import, {shown}: {e}\nName a state file, or `-` for \
             standard input. Nothing was written."
        ))
    };
    let mut bytes = Vec::new();
    let limit = MAX_STATE_BYTES + 1;
    if stdin {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
    } else {
        open_input(file)
            .map_err(cannot)?
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
    }
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::Data(format!(
            "{shown} is larger than {} MiB, the most a state file may hold; nothing was \
             imported",
            MAX_STATE_BYTES >> 20
        )));
    }
    Ok((bytes, shown))
}

/// The state in `bytes`, checked as a load checks the state file (Python's reading of JSON,
/// usable `version`, `processed` and `failed`) and migrated to the current version.
fn checked_state(bytes: &[u8], shown: &str) -> Result<State> {
    let refused = |why: String| {
        Error::Data(format!(
            "{shown} is not a state mamfast can import: {why}\nNothing was imported; the \
             state file is as it was."
        ))
    };
    let mut state = parse_state(bytes).map_err(refused)?;
    migrate(&mut state).map_err(|too_new| {
        refused(format!(
            "schema version {} is newer than this mamfast understands (up to {})",
            too_new.found, too_new.supported
        ))
    })?;
    Ok(state)
}
