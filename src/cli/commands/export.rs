//! `mamfast state export`: the whole state in the file's byte format, to stdout or a file.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::store::format::to_python_json;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of stdout (created or replaced)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<i32> {
    let state = ctx.store().read()?;
    let bytes = to_python_json(&state);
    match args.output {
        None => ctx.console.data(String::from_utf8_lossy(&bytes)),
        Some(path) if ctx.dry_run() => ctx.console.info(format!(
            "would write {} bytes to {}",
            bytes.len(),
            path.display()
        )),
        Some(path) => {
            let cannot = |source| Error::CannotCreate {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::File::create(&path).map_err(cannot)?;
            file.write_all(&bytes)
                .and_then(|_| file.sync_all())
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
