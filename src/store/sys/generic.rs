//! Stand-ins for the Linux system calls on other systems (where mamfast is not supported for
//! concurrent use): no atomic swap, a checked rename, no early writeback, no network file
//! system detection.

use std::fs::File;
use std::io;
use std::path::Path;

use super::Exchange;

/// Swapping two names is Linux's (`RENAME_EXCHANGE`): the caller falls back to two renames.
pub(crate) fn exchange(_a: &Path, _b: &Path) -> io::Result<Exchange> {
    Ok(Exchange::Unsupported)
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`, and nothing changes).
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    super::rename_if_free(from, to)
}

/// Nothing to start: the `fsync` that follows writes everything back.
pub(crate) fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// The `statfs` magic numbers are Linux's: only the fault point can say NFS here.
pub(crate) fn network_fs(_dir: &Path, as_nfs: bool) -> io::Result<Option<&'static str>> {
    Ok(as_nfs.then_some("nfs"))
}

/// Huge pages are a Linux hint: nothing to ask for here.
pub(crate) fn prefer_huge_pages(_buf: &mut [u8]) {}
