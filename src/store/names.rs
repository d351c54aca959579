//! Every file name the store derives from the state file's: the lock, the backup generations,
//! the moved-aside corrupt files, the temp and held names of a write in progress, and how a
//! later writer recognises a temp name of ours. docs/FORMAT.md (*Files beside it*) lists them.
//!
//! Names are built here and nowhere else: the Python tool reads the same `.bak` names, and a
//! later writer must recognise exactly what an earlier one created.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};

use super::paths::Paths;

/// What every backup's name adds to the state file's.
const BACKUP: &str = ".bak";

/// `<path>.lock`: the lock of the state file named `path` (the Python tool's name for it).
pub(crate) fn lock_path_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// What backup `generation` adds to the state file's name: `.bak` for generation 0, then
/// `.bak.1`, `.bak.2` … (also how a generation is named on the command line).
pub fn backup_suffix(generation: usize) -> String {
    match generation {
        0 => BACKUP.to_string(),
        n => format!("{BACKUP}.{n}"),
    }
}

/// The backup `generation` of the state file at `path`: `<path>.bak`, then `<path>.bak.N`
/// (the names the Python tool reads too).
pub(crate) fn backup_path_of(path: &Path, generation: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(backup_suffix(generation));
    PathBuf::from(name)
}

/// The journal of the state file at `path`: `<path>.log` (`generation` 0), and the file it
/// is rotated to, `<path>.log.1` (1).
pub(crate) fn journal_path_of(path: &Path, generation: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(match generation {
        0 => ".log".to_string(),
        n => format!(".log.{n}"),
    });
    PathBuf::from(name)
}

/// The generation a file name stands for: `processed.json.bak` → 0, `processed.json.bak.2` → 2.
/// Names are bytes: a state file's name need not be UTF-8, and its backups are its own still.
pub(crate) fn generation_of(file_name: &OsStr, main_name: &OsStr) -> Option<usize> {
    let rest = file_name
        .as_bytes()
        .strip_prefix(main_name.as_bytes())?
        .strip_prefix(BACKUP.as_bytes())?;
    if rest.is_empty() {
        return Some(0);
    }
    let n = rest.strip_prefix(b".")?;
    // `.bak.0` and `.bak.01` are not names we write: leave them out.
    if n.is_empty() || n.starts_with(b"0") || !n.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// A fresh name to move a corrupt main file to: `processed.json.corrupt-20261126T101530Z`, with
/// `-2`, `-3`, … added if that name is taken. Call under the exclusive lock.
pub(crate) fn corrupt_path(paths: &Paths, now: DateTime<Utc>) -> PathBuf {
    aside_path(paths, "corrupt", now)
}

/// A fresh name to keep an earlier state that a killed write left, when it is older than the
/// newest backup and so has no place among the generations:
/// `processed.json.interrupted-20261126T101530Z`. Call under the exclusive lock.
pub(crate) fn interrupted_path(paths: &Paths, now: DateTime<Utc>) -> PathBuf {
    aside_path(paths, "interrupted", now)
}

/// A fresh name to keep the main file a `restore` replaced, outside the generations recovery
/// walks: `processed.json.rejected-20261126T101530Z`. Call under the exclusive lock.
pub(crate) fn rejected_path(paths: &Paths, now: DateTime<Utc>) -> PathBuf {
    aside_path(paths, REJECTED, now)
}

/// What a rejected file's name adds to the state file's, before its time.
const REJECTED: &str = "rejected";

/// Whether `file_name` is a rejected state of the state file `main_name` (see
/// [`rejected_path`]).
pub(crate) fn is_rejected(file_name: &OsStr, main_name: &OsStr) -> bool {
    file_name
        .as_bytes()
        .strip_prefix(main_name.as_bytes())
        .and_then(|rest| rest.strip_prefix(format!(".{REJECTED}-").as_bytes()))
        .is_some_and(|time| !time.is_empty())
}

/// Every rejected state beside the state file (see [`rejected_path`]), in name order, which
/// is the order of their times.
pub(crate) fn rejected_files(paths: &Paths) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(&paths.dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter(|e| is_rejected(&e.file_name(), &paths.name))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// `<name>.<what>-<UTC time>`, with `-2`, `-3`, … added if that name is taken.
fn aside_path(paths: &Paths, what: &str, now: DateTime<Utc>) -> PathBuf {
    let mut base = paths.name.clone();
    base.push(format!(".{what}-{}", now.format("%Y%m%dT%H%M%SZ")));
    let mut candidate = paths.dir.join(&base);
    let mut n = 2;
    while fs::symlink_metadata(&candidate).is_ok() {
        let mut name = base.clone();
        name.push(format!("-{n}"));
        candidate = paths.dir.join(name);
        n += 1;
    }
    candidate
}

/// `.processed.json.tmp-<pid>-<n>`: hidden, and recognisable as ours by a later writer.
pub(crate) fn temp_name(main_name: &OsStr) -> OsString {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(main_name);
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    name
}

/// Where the old main file goes once the new one is in place (the tag of a held name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    /// `.bak`, after the rotation.
    Bak,
    /// A `.corrupt-<UTC time>` name.
    Corrupt,
    /// A `.rejected-<UTC time>` name (the main file `restore` replaced).
    Rejected,
    /// Nowhere: it is removed.
    Gone,
}

impl Dest {
    const ALL: [Dest; 4] = [Dest::Bak, Dest::Corrupt, Dest::Rejected, Dest::Gone];

    fn tag(self) -> &'static str {
        match self {
            Dest::Bak => "bak",
            Dest::Corrupt => "corrupt",
            Dest::Rejected => "rejected",
            Dest::Gone => "gone",
        }
    }
}

/// `.processed.json.tmp-<pid>-<n>.was-<inode>.<dest>`: the name that holds the new file until
/// it replaces the main file (inode `<inode>`), and the old main file after. Which of the two
/// it holds is told by its inode, so a later writer never mistakes an old main file, kept
/// between two renames by a writer that was killed, for a stale temp file.
pub(crate) fn held_name(main_name: &OsStr, main_ino: u64, dest: Dest) -> OsString {
    let mut name = temp_name(main_name);
    name.push(format!(".was-{main_ino}.{}", dest.tag()));
    name
}

/// What a temp name of ours says: the writer's pid, and for a held name the old main file's
/// inode and where it was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TempOwner {
    pub(crate) pid: u32,
    pub(crate) held: Option<(u64, Dest)>,
}

/// Whether `file_name` starts as a temp name of ours for `main_name` does (whatever follows):
/// no other file may be created under such a name, since a later writer may remove it.
pub(crate) fn looks_like_temp(file_name: &OsStr, main_name: &OsStr) -> bool {
    let mut prefix = OsString::from(".");
    prefix.push(main_name);
    prefix.push(".tmp-");
    file_name
        .as_encoded_bytes()
        .starts_with(prefix.as_encoded_bytes())
}

/// The owner of a temp or held name of ours for `main_name`, if `file_name` is one.
pub(crate) fn temp_owner(file_name: &OsStr, main_name: &OsStr) -> Option<TempOwner> {
    let file_name = file_name.to_str()?;
    let rest = file_name
        .strip_prefix('.')?
        .strip_prefix(main_name.to_str()?)?
        .strip_prefix(".tmp-")?;
    let (pid, rest) = rest.split_once('-')?;
    let (n, held) = match rest.split_once(".was-") {
        None => (rest, None),
        Some((n, held)) => {
            let (ino, tag) = held.split_once('.')?;
            let dest = Dest::ALL.into_iter().find(|d| d.tag() == tag)?;
            (n, Some((digits(ino)?.parse().ok()?, dest)))
        }
    };
    digits(n)?;
    Some(TempOwner {
        pid: digits(pid)?.parse().ok()?,
        held,
    })
}

fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn generation_names() {
        let main = OsStr::new("processed.json");
        let of = |name: &str| generation_of(OsStr::new(name), main);
        assert_eq!(of("processed.json.bak"), Some(0));
        assert_eq!(of("processed.json.bak.1"), Some(1));
        assert_eq!(of("processed.json.bak.12"), Some(12));
        for other in [
            "processed.json",
            "processed.json.bak.",
            "processed.json.bak.0",
            "processed.json.bak.01",
            "processed.json.bak.x",
            "processed.json.bakx",
            "processed.json.corrupt-20261126T101530Z",
            "other.json.bak",
            "processed.json.bak.99999999999999999999999",
        ] {
            assert_eq!(of(other), None, "{other}");
        }
    }

    #[test]
    fn generation_names_need_not_be_utf8() {
        let main = OsStr::from_bytes(b"st\xe9.json");
        let name = |suffix: &[u8]| {
            let mut bytes = b"st\xe9.json".to_vec();
            bytes.extend_from_slice(suffix);
            std::ffi::OsString::from_vec(bytes)
        };
        assert_eq!(generation_of(&name(b".bak"), main), Some(0));
        assert_eq!(generation_of(&name(b".bak.2"), main), Some(2));
        assert_eq!(generation_of(&name(b".bak.\xff"), main), None);
        assert_eq!(generation_of(OsStr::new("st.json.bak"), main), None);
    }

    #[test]
    fn corrupt_names_never_clash() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::resolve(&dir.path().join("processed.json")).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-26T10:15:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let first = corrupt_path(&paths, now);
        assert!(first.ends_with("processed.json.corrupt-20261126T101530Z"));
        fs::write(&first, "x").unwrap();
        let second = corrupt_path(&paths, now);
        assert!(second.ends_with("processed.json.corrupt-20261126T101530Z-2"));
        let rejected = rejected_path(&paths, now);
        assert!(rejected.ends_with("processed.json.rejected-20261126T101530Z"));
        let main = OsStr::new("processed.json");
        assert!(is_rejected(rejected.file_name().unwrap(), main));
        for other in [
            "processed.json.rejected-",
            "processed.json.corrupt-20261126T101530Z",
            "processed.json.bak",
            "other.json.rejected-20261126T101530Z",
        ] {
            assert!(!is_rejected(OsStr::new(other), main), "{other}");
        }
    }

    #[test]
    fn temp_names_are_recognised() {
        let main = OsStr::new("processed.json");
        let name = temp_name(main);
        assert!(name.to_str().unwrap().starts_with(".processed.json.tmp-"));
        let pid = |name: &str| temp_owner(OsStr::new(name), main).map(|o| o.pid);
        assert_eq!(pid(name.to_str().unwrap()), Some(std::process::id()));
        let held = held_name(main, 77, Dest::Corrupt);
        assert_eq!(
            temp_owner(&held, main).and_then(|o| o.held),
            Some((77, Dest::Corrupt))
        );
        let rejected = held_name(main, 78, Dest::Rejected);
        assert_eq!(
            temp_owner(&rejected, main).and_then(|o| o.held),
            Some((78, Dest::Rejected))
        );
        assert!(looks_like_temp(&held, main) && looks_like_temp(&name, main));
        for other in [
            "processed.json",
            ".processed.json.tmp-",
            ".processed.json.tmp-12",
            ".processed.json.tmp-12-x",
            ".other.json.tmp-1-2",
            "processed.json.tmp",
            ".processed.json.tmp-1-2.was-3",
            ".processed.json.tmp-1-2.was-x.bak",
            ".processed.json.tmp-1-2.was-3.other",
            ".processed.json.tmp-1-2.bak",
        ] {
            assert_eq!(temp_owner(OsStr::new(other), main), None, "{other}");
        }
        assert_eq!(pid(".processed.json.tmp-42-7"), Some(42));
        assert_eq!(pid(".processed.json.tmp-42-7.was-9.gone"), Some(42));
    }
}
