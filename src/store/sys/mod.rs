//! Every system call the store makes beyond `std::fs`, in one place. What Linux (with glibc,
//! through `nix`) offers is in `linux.rs`: `renameat2` (swap, rename without replacing),
//! `sync_file_range` (early writeback) and the `statfs` magic numbers of network file systems;
//! `generic.rs` has the plain POSIX stand-ins used elsewhere. What is the same on every Unix
//! is here.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod linux;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
use linux as imp;

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod generic;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
use generic as imp;

use std::fs::{self, File};
use std::io;
use std::path::Path;

pub(crate) use imp::{exchange, network_fs, prefer_huge_pages, rename_no_replace, start_writeback};

/// What [`exchange`] did.
pub(crate) enum Exchange {
    Done,
    /// The file system (or the system) cannot swap two names: nothing changed.
    Unsupported,
}

/// [`rename_no_replace`] where the system cannot: a check, then a rename (both under the
/// exclusive lock, so no other writer comes between them).
fn rename_if_free(from: &Path, to: &Path) -> io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    fs::rename(from, to)
}

/// Makes the directory's entries (a rename, a new file) durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether a process `pid` exists (signal 0; a process of another user counts).
pub(crate) fn process_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(Errno::ESRCH)
    )
}

/// Whether a second CPU is there to share large loads and writes with.
pub(crate) fn two_cpus() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0x7fff_fff0));
        assert!(!process_alive(u32::MAX));
    }
}
