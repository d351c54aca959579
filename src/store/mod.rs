//! The state file, and only the file: locking, durable writes, backups and recovery.

pub mod format;
