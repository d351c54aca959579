//! `mamfast state export`: the whole state in the file's byte format, to stdout or a file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::output::stdout_written;
use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::store::format::write_state;
use mamfast::store::{OwnFile, Store, Tee, TokenWriter};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of stdout (created or replaced)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the state's version token to FILE (one line), for `state import --if-token`
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<i32> {
    let store = ctx.store();
    if let Some(path) = &args.output {
        refuse_state_files(path, &store, "--output")?;
    }
    if let Some(path) = &args.token_file {
        refuse_state_files(path, &store, "--token-file")?;
    }
    // Entries are copied as the text they were read as: none needs parsing.
    let state = store.read_lazy()?;
    let mut token = TokenWriter::default();
    match args.output {
        None => {
            let mut out = Tee {
                out: io::stdout().lock(),
                token: &mut token,
            };
            stdout_written(write_state(&mut out, &state).and_then(|()| out.flush()))?
        }
        Some(path) if ctx.dry_run() => {
            let mut bytes = Vec::new();
            let tee = Tee {
                out: &mut bytes,
                token: &mut token,
            };
            write_state(tee, &state).expect("writing to memory cannot fail");
            ctx.console.info(format!(
                "would write {} bytes to {}",
                bytes.len(),
                path.display()
            ))
        }
        Some(path) => {
            let cannot = |source| Error::CannotCreate {
                path: path.clone(),
                source,
            };
            let file = std::fs::File::create(&path).map_err(cannot)?;
            let tee = Tee {
                out: &file,
                token: &mut token,
            };
            write_state(tee, &state)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io("writing", &path, e))?;
            ctx.console.success(format!(
                "exported {} processed and {} failed entries to {}",
                state.processed.len(),
                state.failed.len(),
                path.display()
            ));
        }
    }
    if let Some(path) = &args.token_file {
        write_token(ctx, path, &token.token())?;
    }
    Ok(0)
}

/// The token of what was exported, on one line, for a program to hand back to `state
/// import --if-token`. A dry run says so and writes nothing.
fn write_token(ctx: &Ctx, path: &Path, token: &str) -> Result<()> {
    if ctx.dry_run() {
        ctx.console
            .info(format!("would write the token to {}", path.display()));
        return Ok(());
    }
    std::fs::write(path, format!("{token}\n")).map_err(|source| Error::CannotCreate {
        path: path.to_path_buf(),
        source,
    })
}

/// An export is a plain, unlocked write: it must never land on the state file or another of
/// the store's own files (the same file under any name, through links included).
fn refuse_state_files(output: &Path, store: &Store, option: &str) -> Result<()> {
    if store.is_temp_name(output) {
        return Err(Error::Usage(format!(
            "{option} {} has the name of a temp file of the state's, which the next write of \
             the state may remove: export to another name",
            output.display(),
        )));
    }
    let what = match store.own_file(output) {
        None => return Ok(()),
        Some(OwnFile::State(file)) => format!("the state file {}", file.display()),
        Some(OwnFile::Other(file)) => format!(
            "{}, a file of the state's (a backup, the lock or a kept corrupt file)",
            file.display()
        ),
    };
    Err(Error::Usage(format!(
        "{option} {} is {what}: export to another file (the state file is only written \
         through mamfast's locked, durable writes)",
        output.display(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_and_its_backups_are_refused_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("processed.json");
        let store = Store::new(&state, mamfast::store::StoreOptions::default());
        std::fs::write(&state, "{}").unwrap();
        std::fs::write(dir.path().join("processed.json.bak.1"), "{}").unwrap();
        std::fs::write(
            dir.path().join("processed.json.corrupt-20261126T101530Z"),
            "{",
        )
        .unwrap();
        std::fs::write(dir.path().join("other.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&state, dir.path().join("link.json")).unwrap();

        for refused in [
            "processed.json",
            "link.json",
            "processed.json.bak.1",
            "processed.json.corrupt-20261126T101530Z",
        ] {
            let err =
                refuse_state_files(&dir.path().join(refused), &store, "--output").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{refused}");
        }
        for allowed in ["other.json", "new.json"] {
            refuse_state_files(&dir.path().join(allowed), &store, "--output").unwrap();
        }
    }
}
