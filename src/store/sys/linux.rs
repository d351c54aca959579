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

/// Asks for transparent huge pages under `buf`, a large buffer about to be filled: its first
/// writes then fault once per 2 MiB instead of once per 4 KiB page (some 16 000 faults for a
/// 66 MB state, a tenth of the time `state list` takes). Only the 2 MiB-aligned part can be
/// backed so. A hint: where the system declines (huge pages off, no memory to spare), the
/// pages are the usual ones.
pub(crate) fn prefer_huge_pages(buf: &mut [u8]) {
    const HUGE: usize = 2 << 20;
    let start = buf.as_mut_ptr() as usize;
    let (first, end) = (
        start.next_multiple_of(HUGE),
        (start + buf.len()) / HUGE * HUGE,
    );
    if end > first {
        // SAFETY: advice on whole pages inside `buf`, which we own; it changes no content.
        unsafe {
            nix::libc::madvise(
                first as *mut nix::libc::c_void,
                end - first,
                nix::libc::MADV_HUGEPAGE,
            );
        }
    }
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

    /// The `VmFlags` of the mapping holding `addr`, from /proc/self/smaps.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or_default();
            if let Some((from, to)) = range.split_once('-') {
                if let (Ok(from), Ok(to)) = (
                    usize::from_str_radix(from, 16),
                    usize::from_str_radix(to, 16),
                ) {
                    inside = (from..to).contains(&addr);
                    continue;
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return flags.to_string();
                }
            }
        }
        panic!("no mapping holds {addr:#x}")
    }

    #[test]
    fn a_large_buffer_asks_for_huge_pages() {
        let mut buf = vec![0u8; 16 << 20];
        let middle = buf.as_ptr() as usize + buf.len() / 2;
        assert!(!vm_flags(middle).split_whitespace().any(|f| f == "hg"));
        prefer_huge_pages(&mut buf);
        // `hg`: advised MADV_HUGEPAGE (the advice is kept even where huge pages are off).
        assert!(vm_flags(middle).split_whitespace().any(|f| f == "hg"));
        // Small or empty buffers are left alone.
        prefer_huge_pages(&mut [0u8; 100]);
        prefer_huge_pages(&mut []);
    }
}
