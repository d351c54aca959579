//! `mamfast state export`: the whole state in the file's byte format, to stdout or a file.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::store::format::write_state;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of stdout (created or replaced)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<i32> {
    let store = ctx.store();
    if let Some(path) = &args.output {
        refuse_state_files(path, store.path(), &store.backup_path(0))?;
    }
    // Entries are copied as the text they were read as: none needs parsing.
    let state = store.read_lazy()?;
    match args.output {
        None => match write_state(io::stdout().lock(), &state) {
            // The reader has had enough (`| head`): not an error of ours.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            written => written.map_err(|e| Error::io("writing the export to", "stdout", e))?,
        },
        Some(path) if ctx.dry_run() => {
            let mut bytes = Vec::new();
            write_state(&mut bytes, &state).expect("writing to memory cannot fail");
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
            write_state(&file, &state)
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
    Ok(0)
}

/// An export is a plain, unlocked write: it must never land on the state file or one of its
/// backups (the same file under any name, through links included).
/// `bak` is the first backup (`.bak`, beside the symlink-resolved state file); every file
/// beside it whose name starts with its name is a backup too.
fn refuse_state_files(output: &Path, state_file: &Path, bak: &Path) -> Result<()> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(()); // a new file cannot be one of them
    };
    let same = |candidate: &Path| {
        std::fs::metadata(candidate).is_ok_and(|m| m.dev() == out.dev() && m.ino() == out.ino())
    };
    let mut names = vec![state_file.to_path_buf()];
    if let (Some(prefix), Some(dir)) = (bak.file_name(), bak.parent()) {
        let prefix = prefix.as_encoded_bytes();
        if let Ok(entries) = std::fs::read_dir(dir) {
            names.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().as_encoded_bytes().starts_with(prefix))
                    .map(|e| e.path()),
            );
        }
    }
    match names.into_iter().find(|p| same(p)) {
        Some(p) => Err(Error::Usage(format!(
            "--output {} is {}: export to another file (the state file is only written \
             through mamfast's locked, durable writes)",
            output.display(),
            if p == state_file {
                format!("the state file {}", state_file.display())
            } else {
                format!("the backup {}", p.display())
            }
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_and_its_backups_are_refused_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("processed.json");
        let bak = dir.path().join("processed.json.bak");
        std::fs::write(&state, "{}").unwrap();
        std::fs::write(dir.path().join("processed.json.bak.1"), "{}").unwrap();
        std::fs::write(dir.path().join("other.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&state, dir.path().join("link.json")).unwrap();

        for refused in ["processed.json", "link.json", "processed.json.bak.1"] {
            let err = refuse_state_files(&dir.path().join(refused), &state, &bak).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{refused}");
        }
        for allowed in ["other.json", "new.json"] {
            refuse_state_files(&dir.path().join(allowed), &state, &bak).unwrap();
        }
    }
}
