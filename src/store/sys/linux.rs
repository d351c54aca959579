//! The system calls of Linux (glibc) the store uses: `renameat2` to swap two names or rename
//! without replacing, `sync_file_range` to start writeback early, and `statfs` to tell a
//! network file system.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{renameat2, RenameFlags};

use super::Exchange;

/// Atomically swaps the names `a` and `b` (both must exist).
pub(crate) fn exchange(a: &Path, b: &Path) -> io::Result<Exchange> {
    match renameat2(None, a, None, b, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(Exchange::Done),
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => Ok(Exchange::Unsupported),
        Err(e) => Err(e.into()),
    }
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`, and nothing changes).
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => super::rename_if_free(from, to),
        done => done.map_err(io::Error::from),
    }
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` back to disk. Only a
/// head start for the `fsync` that follows: errors are left for that `fsync` to report.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on an open descriptor; it reads no memory of ours.
    unsafe {
        nix::libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            len,
            nix::libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

const NFS_MAGIC: u32 = 0x6969;

/// The network file system `dir` is on (`nfs`, `cifs`, …), if it is on one. `as_nfs` takes it
/// for NFS whatever it is (a test's fault point: tests cannot mount one).
pub(crate) fn network_fs(dir: &Path, as_nfs: bool) -> io::Result<Option<&'static str>> {
    let magic = if as_nfs {
        NFS_MAGIC
    } else {
        let stat = nix::sys::statfs::statfs(dir)?;
        (stat.filesystem_type().0 as u64 & 0xffff_ffff) as u32
    };
    Ok(network_fs_name(magic))
}

/// The name of a network file system, from a `statfs` magic number.
fn network_fs_name(magic: u32) -> Option<&'static str> {
    Some(match magic {
        NFS_MAGIC => "nfs",
        0xFF53_4D42 => "cifs",
        0xFE53_4D42 => "smb2",
        0x517B => "smb",
        0x5346_414F => "afs",
        0x00C3_6400 => "ceph",
        0x0102_1997 => "9p",
        0x0BD0_0BD0 => "lustre",
        0x6573_5546 => "fuse",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_systems_are_named() {
        assert_eq!(network_fs_name(0x6969), Some("nfs"));
        assert_eq!(network_fs_name(0xFF53_4D42), Some("cifs"));
        assert_eq!(network_fs_name(0xFE53_4D42), Some("smb2"));
        assert_eq!(network_fs_name(0xEF53), None); // ext4
        assert_eq!(network_fs_name(0x0102_1994), None); // tmpfs
    }
}
