//! The journal: one JSON line per change of the state file, beside it as
//! `processed.json.log` (rotated to `processed.json.log.1`). Written under the write lock,
//! after the state itself is durable, so a record never tells of a change that did not
//! happen; a change whose record is missing (a writer killed between the two, the Python
//! tool, an editor) is noticed by the next writer, because the main file is then not the one
//! the last record says it left, and recorded as a change made outside mamfast.
//!
//! The journal never stands in the way of a write: whatever goes wrong with it (a FIFO or a
//! symlink in its place, no permission, a full disk) is a warning, and the state write stands.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::notice::Notice;
use super::paths::Paths;
use super::sys::fsync_dir;
use crate::state::diff::StateDiff;
use crate::state::time::{format_timestamp, local_now};
use crate::state::State;

/// The default bound of the journal file, in bytes (`state.journal_kib` = 1024): past it
/// the file is rotated to `.log.1`, so the journal takes at most twice this.
pub const DEFAULT_JOURNAL_MAX_BYTES: u64 = 1024 * 1024;

/// What a record tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A write by mamfast (`Store::update`: a built-in command, `state apply`, a plugin).
    Write,
    /// `state restore`: a backup generation became the main file.
    Restore,
    /// A corrupt or missing main file replaced by a backup's copy.
    Recover,
    /// The main file is not the one the last record left: changed by another program (the
    /// Python tool), or by a mamfast write killed before its record. Noticed by `detected_by`.
    Outside,
}

/// Which file the main file is, and what it held: a record's `before` and `after`. Two
/// fingerprints name the same file when size, modification time and inode agree; every
/// writer that replaces the file (mamfast, Python's `os.replace`) changes the inode, and one
/// that writes in place changes the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub failed: usize,
    pub ino: u64,
    pub mtime_ns: i64,
    pub processed: usize,
    pub size: u64,
}

impl Fingerprint {
    /// The fingerprint of the file at `path` holding `state`; `None` when it does not exist.
    pub(crate) fn of(path: &Path, state: &State) -> Option<Fingerprint> {
        let meta = fs::metadata(path).ok()?;
        Some(Fingerprint {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ino: meta.ino(),
            processed: state.processed.len(),
            failed: state.failed.len(),
        })
    }

    /// Whether both name the same file (same bytes, as far as metadata tells).
    pub fn same_file(&self, other: &Fingerprint) -> bool {
        (self.size, self.mtime_ns, self.ino) == (other.size, other.mtime_ns, other.ino)
    }

    /// Whether `path` could hold a copy of this file: same size and modification time (a
    /// rename keeps both, and so does the Python tool's `shutil.copy2` of main to `.bak`).
    pub(crate) fn copied_to(&self, path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|m| {
            m.len() == self.size && m.mtime() * 1_000_000_000 + m.mtime_nsec() == self.mtime_ns
        })
    }
}

/// Whether two "main file" fingerprints (`None`: no main file) name the same file.
pub(crate) fn same(a: &Option<Fingerprint>, b: &Option<Fingerprint>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_file(b),
        _ => false,
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The main file after (`None`: there is none).
    pub after: Option<Fingerprint>,
    /// The main file before (`None`: there was none).
    pub before: Option<Fingerprint>,
    /// What changed, entry by entry; `None` when it cannot be known (the earlier state is no
    /// longer on disk, the main file was corrupt) or was too large to record.
    pub changes: Option<StateDiff>,
    /// The command line of the process that made the change (for [`RecordKind::Outside`]:
    /// that noticed it).
    pub command: Vec<String>,
    pub kind: RecordKind,
    /// Why `changes` is missing or cut down, or what else the operator should know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub pid: u32,
    /// For [`RecordKind::Outside`]: the time of the last record before it (the change
    /// happened between that and `time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// When it was recorded, local time with offset (`MAMFAST_NOW` in tests).
    pub time: String,
    pub uid: u32,
    /// Who: the user name of `uid` (the number when it has none).
    pub user: String,
}

impl Record {
    /// A record of this process, now.
    pub(crate) fn new(
        kind: RecordKind,
        before: Option<Fingerprint>,
        after: Option<Fingerprint>,
    ) -> Record {
        let uid = nix::unistd::getuid();
        Record {
            time: now_text(),
            kind,
            user: nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map_or_else(|| uid.to_string(), |u| u.name),
            uid: uid.as_raw(),
            pid: std::process::id(),
            command: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            before,
            after,
            since: None,
            changes: None,
            note: None,
        }
    }
}

/// Now, from `MAMFAST_NOW` when it is set (the tests' clock), else the clock.
fn now_text() -> String {
    let now = std::env::var("MAMFAST_NOW")
        .ok()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .unwrap_or_else(local_now);
    format_timestamp(now)
}

/// `processed.json.log`, beside the (symlink-resolved) state file.
pub(crate) fn journal_path(paths: &Paths) -> PathBuf {
    super::names::journal_path_of(&paths.target, 0)
}

/// What reading the journal found: its records, oldest first, and a warning for each line
/// that is not a record (skipped).
#[derive(Debug, Default)]
pub struct JournalRead {
    pub records: Vec<Record>,
    pub skipped: Vec<String>,
}

/// Reads the journal (`.log.1`, then `.log`), skipping lines that are not records. A
/// journal that does not exist is empty; one that is not a regular file is a warning. Of a
/// file larger than `max_bytes` (the bound mamfast rotates at, at least the default) only the
/// last `max_bytes` are read, from the first whole line: mamfast never writes one that large,
/// and reading all of a huge one would take the time and memory of all of it.
pub(crate) fn read(target: &Path, max_bytes: u64) -> JournalRead {
    let max_bytes = max_bytes.max(DEFAULT_JOURNAL_MAX_BYTES);
    let mut out = JournalRead::default();
    for generation in [1, 0] {
        let path = super::names::journal_path_of(target, generation);
        let mut file = match open_regular_for_read(&path) {
            Ok(Some(file)) => file,
            Ok(None) => continue,
            Err(why) => {
                out.skipped
                    .push(format!("{}: {why}; not read", path.display()));
                continue;
            }
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let from_end = len > max_bytes;
        if from_end {
            out.skipped.push(format!(
                "{} is {} KiB, larger than the journal's bound (state.journal_kib): only its \
                 last {} KiB are read",
                path.display(),
                len >> 10,
                max_bytes >> 10
            ));
            if let Err(e) = file.seek(SeekFrom::Start(len - max_bytes)) {
                out.skipped
                    .push(format!("{}: {e}; not read", path.display()));
                continue;
            }
        }
        let mut lines = BufReader::new(file.take(max_bytes)).split(b'\n');
        if from_end {
            // The line the cut falls in is not whole.
            lines.next();
        }
        for (n, line) in lines.enumerate() {
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    out.skipped
                        .push(format!("{}: {e}; the rest is not read", path.display()));
                    break;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Record>(&line) {
                Ok(record) => out.records.push(record),
                // serde quotes the line's own text (a hostile `kind`, say), newlines
                // included: escaped here so that the warning stays one line.
                Err(e) => out.skipped.push(
                    crate::escape::escape(&format!(
                        "{} line {}: not a journal record ({e}): skipped",
                        path.display(),
                        n + 1
                    ))
                    .into_owned(),
                ),
            }
        }
    }
    out
}

/// The last record's `after`: `None` when there is no record (no baseline to compare with).
pub(crate) fn last_after(target: &Path) -> Option<(Option<Fingerprint>, String)> {
    // Only the tail is needed: read the last part of `.log`, or of `.log.1` when `.log` has
    // no whole record.
    for generation in [0, 1] {
        let path = super::names::journal_path_of(target, generation);
        let Ok(Some(mut file)) = open_regular_for_read(&path) else {
            continue;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let mut window = 64 * 1024;
        loop {
            let start = len.saturating_sub(window);
            let mut bytes = Vec::new();
            if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
                break;
            }
            // Lines wholly inside the window (the first may be cut unless the window is all).
            let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            let whole = if start == 0 { &lines[..] } else { &lines[1..] };
            if let Some(record) = whole
                .iter()
                .rev()
                .find_map(|line| serde_json::from_slice::<Record>(line).ok())
            {
                return Some((record.after, record.time));
            }
            if start == 0 {
                break;
            }
            window *= 4;
        }
    }
    None
}

/// Opens an existing journal file to read: `None` if there is none; an error (to warn with)
/// if it is not a regular file, so that a FIFO never blocks and a link is never followed.
fn open_regular_for_read(path: &Path) -> Result<Option<File>, String> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(m) if !m.file_type().is_file() => return Err("not a regular file".into()),
        Ok(_) => {}
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Appends `record` to the journal and makes it durable; rotates first when the file would
/// grow past `max_bytes` (0: no journal). Never fails: a journal that cannot be written is a
/// notice, and the state write it tells of stands.
pub(crate) fn append(paths: &Paths, max_bytes: u64, mut record: Record, notify: &dyn Fn(&Notice)) {
    if max_bytes == 0 {
        return;
    }
    let mut line = to_line(&record);
    // A record is bounded too: past a quarter of the journal, the entries' values are left
    // out (their IDs and fields stay); past that, the changes are left out.
    if line.len() as u64 > max_bytes / 4 {
        if let Some(changes) = record.changes.as_mut() {
            shrink(changes);
            record.note = Some("too large to record in full: values left out".into());
            line = to_line(&record);
        }
    }
    if line.len() as u64 > max_bytes / 4 {
        record.changes = None;
        record.note = Some("too large to record: see the counts in before and after".into());
        line = to_line(&record);
    }
    let journal = journal_path(paths);
    if let Err(e) = write_line(paths, &journal, max_bytes, &line) {
        notify(&Notice::JournalNotWritten {
            journal,
            reason: e.to_string(),
        });
    }
}

fn to_line(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("a record serializes");
    line.push(b'\n');
    line
}

/// Keeps the IDs and field names of a diff, without the values.
fn shrink(changes: &mut StateDiff) {
    for kind in [&mut changes.processed, &mut changes.failed] {
        for value in kind.added.values_mut().chain(kind.removed.values_mut()) {
            *value = serde_json::Value::Null;
        }
        for fields in kind.changed.values_mut() {
            for change in fields.values_mut() {
                change.before = None;
                change.after = None;
            }
        }
    }
}

fn write_line(paths: &Paths, journal: &Path, max_bytes: u64, line: &[u8]) -> io::Result<()> {
    // The journal holds what the state holds: readable by whom the state file is.
    let mode = fs::metadata(&paths.target).map_or(0o600, |m| m.mode() & 0o666);
    let (mut file, mut created) = open_for_append(journal, mode)?;
    let mut len = file.metadata()?.len();
    if len > 0 && len + line.len() as u64 > max_bytes {
        fs::rename(journal, super::names::journal_path_of(&paths.target, 1))?;
        (file, _) = open_for_append(journal, mode)?;
        created = true;
        len = file.metadata()?.len();
    }
    let mut out = Vec::with_capacity(line.len() + 1);
    // A record cut short by a killed writer is left as a line of its own (skipped when read),
    // never glued to this one.
    if len > 0 && !ends_with_newline(&file, len) {
        out.push(b'\n');
    }
    out.extend_from_slice(line);
    file.write_all(&out)?;
    file.sync_data()?;
    if created {
        fsync_dir(&paths.dir)?;
    }
    Ok(())
}

/// Opens (or creates) the journal to append: never through a symlink, never a FIFO or other
/// non-regular file (opened without blocking, then checked).
fn open_for_append(journal: &Path, mode: u32) -> io::Result<(File, bool)> {
    let existed = fs::symlink_metadata(journal).is_ok();
    // Readable too: the last byte is looked at (`ends_with_newline`).
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(journal)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok((file, !existed))
}

fn ends_with_newline(file: &File, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut last = [0u8];
    // Unreadable: a newline more makes at worst an empty line, which readers skip.
    file.read_at(&mut last, len - 1).is_ok_and(|n| n == 1) && last[0] == b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> Record {
        let mut r = Record::new(RecordKind::Write, None, None);
        r.note = Some(format!("record {n}"));
        r
    }

    fn paths(dir: &Path) -> Paths {
        Paths::resolve(&dir.join("processed.json")).unwrap()
    }

    #[test]
    fn records_are_appended_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        for n in 0..3 {
            append(&p, 1 << 20, record(n), &|n| panic!("{n}"));
        }
        let read = read(&p.target, DEFAULT_JOURNAL_MAX_BYTES);
        assert!(read.skipped.is_empty(), "{:?}", read.skipped);
        let notes: Vec<_> = read
            .records
            .iter()
            .map(|r| r.note.clone().unwrap())
            .collect();
        assert_eq!(notes, ["record 0", "record 1", "record 2"]);
    }

    #[test]
    fn a_cut_line_is_skipped_with_a_warning_and_never_glued_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        append(&p, 1 << 20, record(0), &|_| {});
        let journal = journal_path(&p);
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(br#"{"time": "2026-"#).unwrap();
        append(&p, 1 << 20, record(1), &|_| {});
        let read = read(&p.target, DEFAULT_JOURNAL_MAX_BYTES);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.skipped.len(), 1, "{:?}", read.skipped);
        assert!(read.skipped[0].contains("line 2"), "{}", read.skipped[0]);
        assert_eq!(last_after(&p.target).map(|(a, _)| a), Some(None));
    }

    #[test]
    fn the_journal_rotates_past_its_bound_and_keeps_one_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let one = to_line(&record(0)).len() as u64;
        for n in 0..10 {
            append(&p, one * 4, record(n), &|n| panic!("{n}"));
        }
        let log = fs::metadata(journal_path(&p)).unwrap().len();
        let log1 = fs::metadata(super::super::names::journal_path_of(&p.target, 1))
            .unwrap()
            .len();
        assert!(log <= one * 4 && log1 <= one * 4, "{log} {log1}");
        let read = read(&p.target, DEFAULT_JOURNAL_MAX_BYTES);
        // The newest are kept, in order.
        let notes: Vec<_> = read
            .records
            .iter()
            .map(|r| r.note.clone().unwrap())
            .collect();
        assert_eq!(notes.last().unwrap(), "record 9");
        assert!(notes.len() >= 4 && notes.len() <= 8, "{notes:?}");
    }

    #[test]
    fn a_record_too_large_keeps_ids_or_only_counts_and_the_journal_takes_the_states_mode() {
        use crate::state::diff::KindDiff;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        fs::write(&p.target, "{}").unwrap();
        fs::set_permissions(&p.target, fs::Permissions::from_mode(0o600)).unwrap();
        let mut big = record(0);
        let mut changes = StateDiff::default();
        let mut kind = KindDiff::default();
        for n in 0..50 {
            kind.added.insert(
                format!("B{n:09}"),
                serde_json::Value::String("x".repeat(200)),
            );
        }
        changes.processed = kind;
        big.changes = Some(changes);
        append(&p, 16 * 1024, big.clone(), &|n| panic!("{n}"));
        append(&p, 4 * 1024, big, &|n| panic!("{n}"));
        let read = read(&p.target, DEFAULT_JOURNAL_MAX_BYTES);
        let first = read.records[0].changes.as_ref().unwrap();
        assert_eq!(first.processed.added.len(), 50);
        assert!(first
            .processed
            .added
            .values()
            .all(serde_json::Value::is_null));
        assert!(read.records[0]
            .note
            .as_ref()
            .unwrap()
            .contains("values left out"));
        assert!(read.records[1].changes.is_none());
        let mode = fs::metadata(journal_path(&p)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_journal_that_is_a_fifo_or_a_symlink_is_a_notice_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let journal = journal_path(&p);
        nix::unistd::mkfifo(&journal, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let told = std::sync::Mutex::new(Vec::new());
        append(&p, 1 << 20, record(0), &|n| {
            told.lock().unwrap().push(n.to_string())
        });
        fs::remove_file(&journal).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, &journal).unwrap();
        append(&p, 1 << 20, record(1), &|n| {
            told.lock().unwrap().push(n.to_string())
        });
        assert!(!elsewhere.exists());
        let told = told.into_inner().unwrap();
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].contains("processed.json.log"), "{}", told[0]);
        assert_eq!(read(&p.target, DEFAULT_JOURNAL_MAX_BYTES).records.len(), 0);
    }
}
