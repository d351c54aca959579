//! mamfast keeps `processed.json`, the state file of an audiobook upload pipeline, safe:
//! locked, durably written, backed up and recovered, byte-compatible with the Python tool
//! that first wrote it.
//!
//! # Writing a plugin in Rust
//!
//! `mamfast state <name>` runs the program `mamfast-state-<name>` found in `plugins.dirs` or
//! `PATH`, with the resolved settings in its environment (`MAMFAST_STATE_FILE`, …). A Rust
//! plugin reads them with [`plugin::store`] (or [`Settings::from_plugin_env`] then
//! [`Settings::store`]) and gets the [`Store`] the built-in commands use: same lock, same
//! backups, same durable writes, `--dry-run` honoured. A complete plugin, `mamfast state
//! forget <ERROR_TYPE>`, that removes every failed entry of one error type
//! (`examples/mamfast-state-stats.rs` is a larger, read-only one):
//!
//! ```no_run
//! // src/bin/mamfast-state-forget.rs
//! use mamfast::{plugin, Outcome};
//!
//! fn main() {
//!     plugin::run(|| {
//!         let kind = std::env::args().nth(1).unwrap_or_default();
//!         let store = plugin::store()?; // same lock, backups, fsync and --dry-run as built-ins
//!         let removed = store.update(|state| {
//!             let before = state.failed.len();
//!             state.failed.retain(|_, e| e.error_type.as_deref() != Some(&kind));
//!             let removed = before - state.failed.len();
//!             Ok(if removed > 0 { Outcome::Changed(removed) } else { Outcome::Unchanged(0) })
//!         })?;
//!         println!("{removed} failed entries of type {kind} removed");
//!         Ok(0)
//!     })
//! }
//! ```
//!
//! Errors print as `error: …` and exit with mamfast's exit codes (`75` for a lock timeout, …).
//!
//! The default `cli` feature builds the `mamfast` binary; a plugin needs only the library:
//! `mamfast = { …, default-features = false }` leaves out every command-line crate.

pub mod config;
pub mod error;
pub mod escape;
pub mod plugin;
#[cfg(feature = "sample")]
pub mod sample;
pub mod state;
pub mod store;
pub mod suggest;

pub use config::Settings;
pub use error::{Error, Result};
pub use state::{Checkpoints, Entries, FailedEntry, ProcessedEntry, Stage, State, Status};
pub use store::{
    Generation, Loaded, Notice, Outcome, OwnFile, PreviousMain, Restored, Source, Store,
    StoreOptions, Summary,
};
