//! The data of the state file, and only the data: no I/O happens here.

pub mod artifact;
pub mod diff;
pub mod entries;
pub mod migrate;
pub mod model;
pub mod ops;
pub mod select;
pub mod status;
pub mod stored_path;
pub mod time;
pub mod view;

pub use artifact::ArtifactField;
pub use entries::Entries;
pub use model::{
    CheckpointKey, Checkpoints, FailedEntry, FailedKey, ProcessedEntry, ProcessedKey, Stage, State,
    CURRENT_VERSION,
};
pub use status::Status;
