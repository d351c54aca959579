//! Reading a file safely, and the size a state file may have: a file is read only if it is a
//! regular one (opened without blocking, checked on the open file) of at most a given size,
//! and a state is never written larger than [`MAX_STATE_BYTES`], the size it is read back at.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::sys::{prefer_huge_pages, two_cpus};

/// The most a state file can sensibly be: 512 MiB. A state takes about 660 bytes an entry
/// (100 000 entries are 66 MB), so this is some 800 000 entries, eight times the largest
/// library measured, while loading it already takes about 2.5 times its size in memory. A larger
/// file (a runaway `truncate`, a wrong file) is never read into memory: it is refused as
/// corrupt, and moved aside whole when a backup replaces it.
pub const MAX_STATE_BYTES: u64 = 512 << 20;

/// Why a file that exists was not read: it is no regular file, or it is larger than allowed.
/// Travels inside an [`io::Error`], so that callers tell it apart with [`unreadable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// A FIFO, a device, a socket: what it is.
    NotRegular(&'static str),
    TooLarge {
        len: u64,
        max: u64,
    },
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::NotRegular(what) => write!(f, "{what}, not a regular file"),
            Unreadable::TooLarge { len, max } => write!(
                f,
                "{len} bytes, larger than the {} MiB a state file can be",
                max >> 20
            ),
        }
    }
}

impl std::error::Error for Unreadable {}

/// The [`Unreadable`] inside `err`, if that is why a file was not read.
pub(crate) fn unreadable(err: &io::Error) -> Option<&Unreadable> {
    err.get_ref()?.downcast_ref::<Unreadable>()
}

/// What a file that is not a regular one is, for messages.
fn kind_of(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Opens `path` to read it only if it is a regular file of at most `max` bytes, never blocking:
/// the open is non-blocking (a FIFO without a writer would wait forever), and the type and size
/// are checked on the open file (`fstat`), not on the name, which may change in between. A
/// directory is `EISDIR`, as reading it would be; anything else not regular, or too large, is
/// an [`Unreadable`].
pub(crate) fn open_regular(path: &Path, max: u64) -> io::Result<(fs::File, fs::Metadata)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| socket_or(e, path))?;
    let meta = file.metadata()?;
    let file_type = meta.file_type();
    if file_type.is_dir() {
        return Err(io::Error::from_raw_os_error(nix::libc::EISDIR));
    }
    if !file_type.is_file() {
        let why = Unreadable::NotRegular(kind_of(file_type));
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    if meta.len() > max {
        let why = Unreadable::TooLarge {
            len: meta.len(),
            max,
        };
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    // A regular file: reads behave as they always do (the flag only mattered for the open).
    fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty())).map_err(io::Error::from)?;
    Ok((file, meta))
}

/// A socket cannot be opened at all (`ENXIO`, "no such device or address"): said as what it is.
fn socket_or(err: io::Error, path: &Path) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = || fs::metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if err.raw_os_error() == Some(nix::libc::ENXIO) && is_socket() {
        let why = Unreadable::NotRegular("a socket");
        return io::Error::new(io::ErrorKind::InvalidInput, why);
    }
    err
}

/// A whole regular file of at most `max` bytes (see [`open_regular`]), read to the end even if
/// it grew since it was opened, but never past `max`.
pub(crate) fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, meta) = open_regular(path, max)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    check_len(bytes.len() as u64, max)?;
    Ok(bytes)
}

/// A writer that refuses to write more than `max` bytes: a state is never written larger than
/// it can be read back ([`MAX_STATE_BYTES`]); the write fails and the previous file stays.
pub(crate) struct Capped<'a> {
    inner: &'a mut dyn io::Write,
    left: u64,
    max: u64,
}

impl<'a> Capped<'a> {
    pub(crate) fn new(inner: &'a mut dyn io::Write, max: u64) -> Self {
        Capped {
            inner,
            left: max,
            max,
        }
    }
}

impl io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the state would be larger than the {} MiB a state file can be read back at; \
                     remove entries (`mamfast state prune`) to make room",
                    self.max >> 20
                ),
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file that grew past `max` while it was read is refused as one that was too large.
fn check_len(len: u64, max: u64) -> io::Result<()> {
    if len > max {
        let why = Unreadable::TooLarge { len, max };
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    Ok(())
}

/// A whole state file and its permission bits (at most [`MAX_STATE_BYTES`]; see
/// [`open_regular`]). A large file is read by two threads, one half each: most of the time of
/// reading it goes into the first touch of the fresh memory, which the second CPU then shares.
pub(crate) fn read_file(path: &Path) -> io::Result<(Vec<u8>, u32)> {
    read_file_with(path, 8 << 20, MAX_STATE_BYTES)
}

fn read_file_with(path: &Path, two_threads_from: u64, max: u64) -> io::Result<(Vec<u8>, u32)> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;

    let (file, meta) = open_regular(path, max)?;
    let mode = meta.mode() & 0o7777;
    let len = meta.len();
    if len >= two_threads_from && two_cpus() {
        if let Ok(len) = usize::try_from(len) {
            // Zeroed by the system, not by us: no page is touched before the reads.
            let mut bytes = vec![0u8; len];
            prefer_huge_pages(&mut bytes);
            let (head, tail) = bytes.split_at_mut(len / 2);
            let file_ref = &file;
            let both = std::thread::scope(|scope| {
                let tail_read = std::thread::Builder::new()
                    .spawn_scoped(scope, move || {
                        file_ref.read_exact_at(tail, (len / 2) as u64)
                    })
                    .ok()?;
                let head_read = file_ref.read_exact_at(head, 0);
                Some(head_read.is_ok() && tail_read.join().is_ok_and(|r| r.is_ok()))
            });
            // The file must not have grown meanwhile: nothing may follow.
            if both == Some(true) && file.read_at(&mut [0u8; 1], len as u64)? == 0 {
                return Ok((bytes, mode));
            }
        }
    }
    let mut bytes = Vec::new();
    // Positional reads leave the offset at 0: this reads from the start, never past `max`.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    check_len(bytes.len() as u64, max)?;
    Ok((bytes, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_in_two_halves_is_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..100_001u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        for threshold in [0, u64::MAX] {
            let (read, _) = read_file_with(&path, threshold, MAX_STATE_BYTES).unwrap();
            assert!(read == bytes, "threshold {threshold}");
        }
        fs::write(&path, b"").unwrap();
        assert!(read_file_with(&path, 0, MAX_STATE_BYTES)
            .unwrap()
            .0
            .is_empty());
    }

    #[test]
    fn a_file_larger_than_the_limit_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, vec![b'x'; 1001]).unwrap();
        for threshold in [0, u64::MAX] {
            let err = read_file_with(&path, threshold, 1000).unwrap_err();
            let too_large = Unreadable::TooLarge {
                len: 1001,
                max: 1000,
            };
            assert_eq!(unreadable(&err), Some(&too_large));
            assert_eq!(
                read_file_with(&path, threshold, 1001).unwrap().0.len(),
                1001
            );
        }
        assert_eq!(
            read_regular(&path, 1000).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn a_state_is_never_written_larger_than_it_can_be_read() {
        use std::io::Write;
        let mut out = Vec::new();
        let mut capped = Capped::new(&mut out, 10);
        capped.write_all(b"0123456789").unwrap();
        let err = capped.write_all(b"x").unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        assert_eq!(out, b"0123456789");
    }
}
