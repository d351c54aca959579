//! The integration tests, one test binary with one module per subject (a single binary links
//! once and runs every test in one pool). Tests that change their own process environment are
//! separate binaries: `tests/cmd.rs` and `tests/store_env.rs`.
//!
//! Run one subject with `cargo test --test integration store_lock::`.

mod support;

mod apply;
mod attack;
mod bad_input;
mod bulk;
mod bulk_filter;
mod concurrency;
mod config;
mod crash;
mod faults;
mod find;
mod fixtures_roundtrip;
mod hardening;
mod history;
mod journal;
mod loud;
mod machine;
mod perf_paths;
mod plugins;
mod properties;
mod python_interop;
mod readme_examples;
mod retention;
mod shell;
mod store_backups;
mod store_faults;
mod store_files;
mod store_lock;
mod store_recovery;
mod store_roundtrip;
mod systemd_units;
