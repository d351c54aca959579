//! Where the state file really is: its symlinks followed by hand (a dangling link still names
//! where a new file goes), and the directory every temp, backup and corrupt file shares with it.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::names::backup_path_of;

/// The files of one operation, with the state file's symlinks resolved.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The file actually read and replaced (the symlink's target).
    pub target: PathBuf,
    /// `target`'s directory: temp, backup and corrupt files go here.
    pub dir: PathBuf,
    /// `target`'s file name.
    pub name: OsString,
}

impl Paths {
    pub(crate) fn resolve(given: &Path) -> io::Result<Paths> {
        let mut target = given.to_path_buf();
        // Follow the chain by hand: canonicalize() fails on a dangling link, whose target is
        // still where a new state file must be written.
        let mut hops = 0;
        loop {
            match fs::symlink_metadata(&target) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(io::Error::from_raw_os_error(nix::libc::ELOOP));
                    }
                    let link = fs::read_link(&target)?;
                    target = match link.is_absolute() {
                        true => link,
                        false => parent_dir(&target).join(link),
                    };
                }
                _ => break,
            }
        }
        let name = target
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the state file path does not end in a file name",
                )
            })?
            .to_os_string();
        Ok(Paths {
            dir: parent_dir(&target),
            target,
            name,
        })
    }

    /// `.bak` for generation 0, `.bak.N` after.
    pub(crate) fn backup(&self, generation: usize) -> PathBuf {
        backup_path_of(&self.dir.join(&self.name), generation)
    }
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_symlinks_even_dangling_ones() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real/processed.json", &link).unwrap();
        let paths = Paths::resolve(&link).unwrap();
        assert_eq!(paths.target, dir.path().join("real/processed.json"));
        assert_eq!(paths.dir, dir.path().join("real"));
        assert_eq!(paths.name, "processed.json");
        assert_eq!(
            paths.backup(2),
            dir.path().join("real/processed.json.bak.2")
        );

        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped).unwrap();
        assert!(Paths::resolve(&looped).is_err());

        let bare = Paths::resolve(Path::new("processed.json")).unwrap();
        assert_eq!(bare.dir, PathBuf::from("."));
    }
}
