//! The fault seam: steps of a write that tests can make fail, to prove that a failure at any
//! step leaves the state file as it was. A testing aid, not a user setting.
//!
//! Faults are set with `Store::inject_fault`, or for end-to-end tests of the binary with the
//! environment variable `MAMFAST_INJECT_FAULT=<name>[,<name>…]` (kebab-case names, e.g.
//! `fsync-dir`), read once in `Store::new`. An unknown name makes every operation fail with a
//! configuration error, so that a mistyped fault never passes for a write that survived it.

use std::io::{self, Write};

/// A step of a write that tests can make fail (a testing aid; not part of the stable API).
///
/// Set with [`Store::inject_fault`](super::Store::inject_fault), or with the environment
/// variable `MAMFAST_INJECT_FAULT=<name>[,<name>…]` (kebab-case names, e.g. `fsync-dir`), read
/// once in [`Store::new`](super::Store::new), so that end-to-end tests of the binary can use
/// it. An unknown name makes every operation fail with a configuration error.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Creating the temp file.
    CreateTemp,
    /// Writing it (fails after 100 bytes, leaving a partial temp file).
    Write,
    /// Setting its permission bits.
    SetPermissions,
    /// `fsync` of the temp file.
    FsyncFile,
    /// Shifting the backup generations.
    Rotate,
    /// Swapping / renaming the new file over the main file.
    Rename,
    /// Keeping the old main file as `.bak`.
    Backup,
    /// Moving a corrupt main file to `.corrupt-…`.
    Quarantine,
    /// `fsync` of the directory.
    FsyncDir,
    /// Not a failure: behave as on a file system without `RENAME_EXCHANGE`.
    NoRenameExchange,
    /// Not a failure: take the state's directory for an NFS mount (tests cannot mount one).
    NetworkFs,
}

impl FaultPoint {
    pub const ALL: [FaultPoint; 11] = [
        FaultPoint::CreateTemp,
        FaultPoint::Write,
        FaultPoint::SetPermissions,
        FaultPoint::FsyncFile,
        FaultPoint::Rotate,
        FaultPoint::Rename,
        FaultPoint::Backup,
        FaultPoint::Quarantine,
        FaultPoint::FsyncDir,
        FaultPoint::NoRenameExchange,
        FaultPoint::NetworkFs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::CreateTemp => "create-temp",
            FaultPoint::Write => "write",
            FaultPoint::SetPermissions => "set-permissions",
            FaultPoint::FsyncFile => "fsync-file",
            FaultPoint::Rotate => "rotate",
            FaultPoint::Rename => "rename",
            FaultPoint::Backup => "backup",
            FaultPoint::Quarantine => "quarantine",
            FaultPoint::FsyncDir => "fsync-dir",
            FaultPoint::NoRenameExchange => "no-rename-exchange",
            FaultPoint::NetworkFs => "network-fs",
        }
    }

    /// Accepts `fsync-dir`, `fsync_dir` or `FsyncDir`.
    pub fn from_name(name: &str) -> Option<FaultPoint> {
        let squash = |s: &str| {
            s.chars()
                .filter(|c| *c != '-' && *c != '_')
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let wanted = squash(name.trim());
        FaultPoint::ALL
            .into_iter()
            .find(|p| squash(p.name()) == wanted)
    }
}

/// The faults a store was told to inject.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults(Vec<FaultPoint>);

impl Faults {
    /// The faults `MAMFAST_INJECT_FAULT` names, and the error every operation must report if
    /// it names one that does not exist.
    pub(crate) fn from_env() -> (Faults, Option<String>) {
        let mut faults = Faults::default();
        let mut error = None;
        if let Ok(names) = std::env::var("MAMFAST_INJECT_FAULT") {
            for name in names.split(',').filter(|n| !n.trim().is_empty()) {
                match FaultPoint::from_name(name) {
                    Some(point) => faults.add(point),
                    None => {
                        let known: Vec<&str> = FaultPoint::ALL.iter().map(|p| p.name()).collect();
                        error = Some(format!(
                            "MAMFAST_INJECT_FAULT: unknown fault point \"{}\" (known: {})",
                            name.trim(),
                            known.join(", ")
                        ));
                    }
                }
            }
        }
        (faults, error)
    }

    pub(crate) fn add(&mut self, point: FaultPoint) {
        self.0.push(point);
    }

    pub(crate) fn has(&self, point: FaultPoint) -> bool {
        self.0.contains(&point)
    }

    pub(crate) fn check(&self, point: FaultPoint) -> io::Result<()> {
        if self.has(point) {
            Err(Self::injected(point))
        } else {
            Ok(())
        }
    }

    pub(crate) fn injected(point: FaultPoint) -> io::Error {
        io::Error::other(format!("injected fault at {}", point.name()))
    }
}

/// Passes writes on; with `FaultPoint::Write`, fails after `remaining` bytes (or at the end,
/// for a shorter file), to simulate a write cut short.
pub(crate) struct Faulty<W> {
    inner: W,
    remaining: Option<usize>,
}

impl<W> Faulty<W> {
    pub(crate) fn new(inner: W, faults: &Faults) -> Self {
        Faulty {
            inner,
            remaining: faults.has(FaultPoint::Write).then_some(100),
        }
    }
}

impl<W: Write> Write for Faulty<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.remaining {
            None => self.inner.write(buf),
            Some(0) => Err(Faults::injected(FaultPoint::Write)),
            Some(left) => {
                let n = self.inner.write(&buf[..buf.len().min(*left)])?;
                *left -= n;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.remaining {
            Some(_) => Err(Faults::injected(FaultPoint::Write)),
            None => self.inner.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for point in FaultPoint::ALL {
            assert_eq!(FaultPoint::from_name(point.name()), Some(point));
        }
        assert_eq!(
            FaultPoint::from_name("FsyncDir"),
            Some(FaultPoint::FsyncDir)
        );
        assert_eq!(
            FaultPoint::from_name("fsync_dir"),
            Some(FaultPoint::FsyncDir)
        );
        assert_eq!(FaultPoint::from_name("bogus"), None);
    }
}
