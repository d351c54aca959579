//! mamfast keeps `processed.json`, the state file of an audiobook upload pipeline, safe:
//! locked, durably written, backed up and recovered, byte-compatible with the Python tool
//! that first wrote it.
//!
//! A Rust plugin uses [`Settings`] (from the environment mamfast hands it) and [`Store`] to read
//! and change the state exactly as the built-in commands do.

pub mod config;
pub mod error;
pub mod state;
pub mod store;

pub use config::Settings;
pub use error::{Error, Result};
pub use state::{Checkpoints, FailedEntry, ProcessedEntry, Stage, State, Status};
pub use store::{Generation, Loaded, Notice, Outcome, Source, Store, StoreOptions, Summary};

#[doc(hidden)]
pub mod cli;
