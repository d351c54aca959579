//! `mamfast state verify`: load and validate the state without changing anything, and report
//! what an operator should know. Exit 65 when the state is not usable, 1 when it is usable only
//! from a backup (the main file is corrupt or missing), so that a monitoring check fires.

use clap::Args;
use serde::Serialize;

use super::backups::label;
use super::{count, path_exists};
use crate::cli::Ctx;
use mamfast::error::{exit, Result};
use mamfast::escape::escape;
use mamfast::state::ops::find_stale_entries;
use mamfast::state::time::parse_timestamp;
use mamfast::state::{Stage, State, Status, CURRENT_VERSION};
use mamfast::store::{Source, Store, StoreOptions};

/// The exit code of a state that is usable only from a backup: not an error (the next command
/// recovers it), but not 0 either, or a check built on `verify` never fires while the main
/// file is corrupt.
pub const USABLE_FROM_BACKUP: i32 = exit::FAILURE;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print {"usable", "file", "source", "version", "processed", "failed", "problems"}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Problem {
    message: String,
    severity: Severity,
}

/// How bad a problem is; `--json` writes it in lower case (`"error"`, `"warning"`, `"info"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    /// The state cannot be used.
    Error,
    /// Usable, but something needs the operator.
    Warning,
    /// Worth knowing; nothing to do.
    Info,
}

#[derive(Debug, Serialize)]
struct Report {
    failed: usize,
    file: String,
    problems: Vec<Problem>,
    processed: usize,
    source: String,
    usable: bool,
    version: Option<u64>,
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> Result<i32> {
    // A dry-run store recovers in memory only: verifying never moves or writes a file.
    let options = StoreOptions {
        dry_run: true,
        ..ctx.settings.store_options()
    };
    let store = Store::new(ctx.settings.state_file.clone(), options)
        .with_periodic_backups(ctx.settings.backup_hourly, ctx.settings.backup_daily)
        .with_notices(|_| {});
    let mut problems = Vec::new();
    for g in store.generations() {
        if let (true, Err(why)) = (g.exists, &g.summary) {
            problems.push(Problem {
                severity: Severity::Warning,
                message: format!(
                    "{} ({}) is not valid: {why}",
                    label(g.generation),
                    g.path.display()
                ),
            });
        }
    }
    let mut report = Report {
        failed: 0,
        file: store.path().display().to_string(),
        problems,
        processed: 0,
        source: "none".into(),
        usable: false,
        version: None,
    };
    let outcome = store.read_loaded();
    let from_backup = matches!(&outcome, Ok(l) if matches!(l.source, Source::Backup { .. }));
    let failure = match outcome {
        Ok(loaded) => {
            report.usable = true;
            report.source = match &loaded.source {
                Source::Main => "main".into(),
                Source::Missing => "missing".into(),
                Source::Backup { generation, .. } => label(Some(*generation)),
            };
            if loaded.source == Source::Missing {
                // The store's own notice is silenced here; a mistyped path must still show.
                report.problems.push(Problem {
                    severity: Severity::Warning,
                    message: format!(
                        "{} does not exist yet: the state is empty",
                        store.path().display()
                    ),
                });
            }
            if let Source::Backup { generation, .. } = &loaded.source {
                report.problems.push(Problem {
                    severity: Severity::Warning,
                    message: format!(
                        "the next command will move the main file aside and restore {}",
                        label(Some(*generation))
                    ),
                });
            }
            if let Some(from) = loaded.migrated_from {
                report.problems.push(Problem {
                    severity: Severity::Info,
                    message: format!(
                        "schema version {from}: migrated in memory, written as version \
                         {CURRENT_VERSION} on the next change"
                    ),
                });
            }
            check_content(&loaded.state, &mut report.problems);
            report.version = Some(loaded.state.version);
            report.processed = loaded.state.processed.len();
            report.failed = loaded.state.failed.len();
            None
        }
        Err(err) => {
            report.problems.push(Problem {
                severity: Severity::Error,
                message: err.to_string(),
            });
            Some(err)
        }
    };
    if args.json {
        ctx.console.json(&report)?;
    } else {
        print_report(ctx, &report);
    }
    match failure {
        // The JSON report already holds the error; its exit code still tells.
        Some(err) if args.json => Ok(err.exit_code()),
        Some(err) => Err(err),
        None if from_backup => Ok(USABLE_FROM_BACKUP),
        None => Ok(exit::OK),
    }
}

fn print_report(ctx: &Ctx, report: &Report) {
    // When the state is unusable, the error names every file tried and why: the per-file
    // warnings would only say it twice.
    let shown = |p: &&Problem| {
        p.severity != Severity::Error && (report.usable || p.severity != Severity::Warning)
    };
    for p in report.problems.iter().filter(shown) {
        match p.severity {
            Severity::Warning => ctx.console.warn(&p.message),
            _ => ctx.console.info(&p.message),
        }
    }
    if let Some(version) = report.version {
        ctx.console.success(format!(
            "{}: usable (from {}, version {version}, {} processed, {} failed)",
            report.file, report.source, report.processed, report.failed
        ));
    }
}

/// What is odd but not fatal inside a state that loaded.
fn check_content(state: &State, problems: &mut Vec<Problem>) {
    let mut note = |severity, message| problems.push(Problem { severity, message });
    // Python reads these, so the state is usable; only a change to them is refused.
    let kept = [
        (
            "processed",
            "clear",
            state.processed.problems().collect::<Vec<_>>(),
        ),
        ("failed", "retry", state.failed.problems().collect()),
    ];
    for (map, remove, entries) in kept {
        for (id, problem) in entries {
            note(
                Severity::Warning,
                format!(
                    "{map} {id:?}: {problem}: kept as it is; a command that must change it \
                     refuses (exit 65): fix the value in the file, or remove the entry \
                     (`mamfast state {remove} -- ID`)"
                ),
            );
        }
    }
    for (id, entry) in &state.processed {
        if let Some(Status::Unknown(name)) = &entry.status {
            note(
                Severity::Info,
                format!(
                    "processed {}: unknown status {name:?} (kept as it is)",
                    escape(id)
                ),
            );
        }
        let mut times = vec![("processed_at", entry.processed_at.as_deref())];
        if let Some(c) = &entry.checkpoints {
            times.extend(Stage::ALL.map(|stage| (stage.key(), c.get(stage))));
        }
        for (key, value) in times {
            if let Some(text) = value.filter(|t| parse_timestamp(t).is_none()) {
                note(
                    Severity::Warning,
                    format!(
                        "processed {}: {key} {text:?} is not an ISO 8601 time",
                        escape(id)
                    ),
                );
            }
        }
        if state.failed.contains_key(id) {
            note(
                Severity::Info,
                format!("{} is in both processed and failed", escape(id)),
            );
        }
    }
    for (id, entry) in &state.failed {
        if let Some(text) = entry
            .failed_at
            .as_deref()
            .filter(|t| parse_timestamp(t).is_none())
        {
            note(
                Severity::Warning,
                format!(
                    "failed {}: failed_at {text:?} is not an ISO 8601 time (TTL pruning keeps it)",
                    escape(id)
                ),
            );
        }
    }
    let stale = find_stale_entries(state, path_exists).len();
    if stale > 0 {
        note(
            Severity::Info,
            format!(
                "{} a path {} status needs; `mamfast state prune --dry-run` lists them",
                count(stale, "processed entry misses", "processed entries miss"),
                if stale == 1 { "its" } else { "their" }
            ),
        );
    }
}
