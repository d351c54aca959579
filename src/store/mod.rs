//! The state file, and only the file: locking, durable writes, backups and recovery.
//! [`Store::read`] and [`Store::update`] are the one way in; nothing else touches the files.
//!
//! Assumptions: Linux (`flock(2)`, `renameat2`, `/proc/locks`, `statfs`), and a state file whose
//! backups, temp and corrupt files live in the same directory as the (symlink-resolved) file, so
//! that every rename stays on one file system. The lock is `<given path>.lock`, as the Python
//! tool has it, and, for a write through another name (a symlink), also `<real path>.lock`
//! beside the file itself; they are created when needed and never deleted.
//!
//! Files beside `processed.json` (docs/FORMAT.md, *Files beside it*):
//! - `processed.json.lock`: the lock, exclusive to write; shared only for a read that has to
//!   look past a clean main file (a read of a clean main file takes no lock).
//! - `processed.json.bak`, `.bak.1` …: the generations before the last writes, newest first.
//! - `processed.json.corrupt-<UTC time>`: a corrupt main file moved aside before a backup is
//!   restored (`-2`, `-3` … added if the name is taken). Never deleted by mamfast.
//! - `.processed.json.tmp-<pid>-<n>`: a write in progress; never read, and removed by the next
//!   writer if its process is gone.
//! - `.processed.json.tmp-<pid>-<n>.was-<inode>.<bak|corrupt|gone>`: the new file until it
//!   replaces the main file (inode `<inode>`), the old main file after; a later writer tells
//!   the two apart by the inode and finishes the move of an old main file, never deletes it.
//!
//! This file is the [`Store`] API; the rest is one concern a file: `types.rs` (what the API
//! takes and returns), `notice.rs` (what the operator is told), `paths.rs` and `names.rs`
//! (where the file really is, and every name derived from it), `lock.rs` (the lock, and which
//! lock files a write takes), `bounded_io.rs` (reading a file safely, the size limit),
//! `load.rs` (parsing a candidate, the recovery chain), `durable.rs` (the write),
//! `backups.rs` (the rotation), `interrupted.rs` (what a killed writer left), `sys/` (the
//! system calls), `faults.rs` (the test-only fault seam) and `format.rs` (the bytes).

pub mod format;

mod backups;
mod bounded_io;
mod durable;
mod faults;
mod interrupted;
mod journal;
mod load;
mod lock;
mod names;
mod notice;
mod paths;
mod retention;
mod stuck;
mod sys;
mod token;
mod types;

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::state::diff::diff;
use crate::state::State;
use bounded_io::Capped;
use durable::OldMain;
use faults::Faults;
use journal::{Fingerprint, Record, RecordKind};
use load::{load_chain, probe, summarize, Found, MainState, Parse, Probe};
use lock::{Lock, LockMode};
use paths::{parent_dir, Paths};

pub use bounded_io::MAX_STATE_BYTES;
pub(crate) use bounded_io::{read_regular, unreadable, Unreadable};
#[doc(hidden)]
pub use faults::FaultPoint;
pub use journal::{
    Fingerprint as JournalFingerprint, JournalRead, Record as JournalRecord,
    RecordKind as JournalRecordKind, DEFAULT_JOURNAL_MAX_BYTES,
};
pub use names::backup_suffix;
pub use notice::Notice;
pub use retention::{Kept, Retention};
pub use stuck::STUCK_AFTER;
pub(crate) use sys::two_cpus;
pub use token::{state_token, Tee, TokenWriter};
pub use types::{
    Generation, Loaded, Outcome, OwnFile, PreviousMain, Restored, Source, StoreOptions, Summary,
};

type Sink = Box<dyn Fn(&Notice) + Send + Sync>;

/// The state file: locked, durably written, backed up and recovered.
pub struct Store {
    path: PathBuf,
    options: StoreOptions,
    notify: Sink,
    faults: Faults,
    /// A bad `MAMFAST_INJECT_FAULT`, reported by every operation.
    fault_env_error: Option<String>,
    network_checked: AtomicBool,
    /// Hourly and daily backups kept besides the newest `backup_depth`.
    periodic: (usize, usize),
    /// Whether a write may create the state's missing directory (see [`Store::creating_dir`]).
    create_dir: bool,
    /// The journal's bound in bytes (`state.journal_kib`); 0 keeps no journal.
    journal_max_bytes: u64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store for the state file at `path` (nothing is opened yet).
    pub fn new(path: impl Into<PathBuf>, options: StoreOptions) -> Store {
        let (faults, fault_env_error) = Faults::from_env();
        Store {
            path: path.into(),
            options,
            notify: Box::new(|notice| {
                let text = crate::escape::escape_lines(&notice.to_string()).into_owned();
                eprintln!("warning: {text}")
            }),
            faults,
            fault_env_error,
            network_checked: AtomicBool::new(false),
            periodic: (0, 0),
            create_dir: false,
            journal_max_bytes: DEFAULT_JOURNAL_MAX_BYTES,
        }
    }

    /// Keeps, besides the newest `backup_depth` generations, the newest generation of each of
    /// the `hourly` newest hours and of the `daily` newest days that have one
    /// (`state.backup_hourly`, `state.backup_daily`; see [`Retention`]). None by default.
    pub fn with_periodic_backups(mut self, hourly: usize, daily: usize) -> Store {
        self.periodic = (hourly, daily);
        self
    }

    /// Which backup generations a write keeps.
    pub fn retention(&self) -> Retention {
        Retention {
            last: self.options.backup_depth,
            hourly: self.periodic.0,
            daily: self.periodic.1,
        }
    }

    /// Lets a write create the state file's directory when it does not exist. Without it, a
    /// write to a file in a missing directory is an error (exit 74): in a timer or cron job a
    /// mistyped path must be noticed, not become a new empty state. For a path nobody typed
    /// (the built-in default under `$XDG_STATE_HOME`), creating it is what a first run needs.
    pub fn creating_dir(mut self, create: bool) -> Store {
        self.create_dir = create;
        self
    }

    /// Sends notices to `sink` instead of standard error.
    pub fn with_notices(mut self, sink: impl Fn(&Notice) + Send + Sync + 'static) -> Store {
        self.notify = Box::new(sink);
        self
    }

    /// Bounds the journal (`processed.json.log`) to `bytes` before it is rotated; 0 keeps no
    /// journal at all.
    pub fn with_journal_max_bytes(mut self, bytes: u64) -> Store {
        self.journal_max_bytes = bytes;
        self
    }

    /// The journal file, `<state file>.log` beside the symlink-resolved state file.
    pub fn journal_path(&self) -> PathBuf {
        match Paths::resolve(&self.path) {
            Ok(paths) => journal::journal_path(&paths),
            Err(_) => names::journal_path_of(&self.path, 0),
        }
    }

    /// Every record of the journal (the rotated file's first), oldest first, and a warning
    /// for each line that is not a record. Takes no lock: records are appended whole.
    pub fn journal(&self) -> JournalRead {
        match Paths::resolve(&self.path) {
            Ok(paths) => journal::read(&paths.target, self.journal_max_bytes),
            Err(_) => JournalRead::default(),
        }
    }

    /// Records a change made outside mamfast since the journal's last record, if there is
    /// one, under the write lock (as the next write would). Nothing in dry run, or without a
    /// journal (no record to compare with).
    pub fn record_outside_changes(&self) -> Result<()> {
        let has_journal = fs::symlink_metadata(self.journal_path()).is_ok();
        if self.options.dry_run || self.journal_max_bytes == 0 || !has_journal {
            return Ok(());
        }
        self.update(|_| Ok(Outcome::Unchanged(())))
    }

    /// Loads any state file (an export, another host's copy, a backup) as it is, with no
    /// lock and no recovery: for comparing. A file that does not exist is a usage error
    /// (exit 2), one that is not a valid state a data error (65).
    pub fn load_file(path: &Path) -> Result<State> {
        match probe(path, false, Parse::Lazy)? {
            Probe::Valid { state, .. } => Ok(state),
            Probe::Missing => Err(Error::Usage(format!(
                "{} does not exist. Name a generation (main, bak, 1, …: see `mamfast state \
                 backups`) or an existing state file.",
                path.display()
            ))),
            Probe::Invalid(reason) => Err(Error::Data(format!(
                "{} is not a valid state: {reason}",
                path.display()
            ))),
        }
    }

    /// Makes the given step of every write fail (a testing aid).
    #[doc(hidden)]
    pub fn inject_fault(mut self, point: FaultPoint) -> Store {
        self.faults.add(point);
        self
    }

    /// The state file, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// `<state file>.lock`, beside the path as given (not the symlink's target), as the Python
    /// tool has it.
    pub fn lock_path(&self) -> PathBuf {
        names::lock_path_of(&self.path)
    }

    /// `.bak` (generation 0) or `.bak.N`, beside the symlink-resolved state file.
    pub fn backup_path(&self, generation: usize) -> PathBuf {
        match Paths::resolve(&self.path) {
            Ok(paths) => paths.backup(generation),
            Err(_) => names::backup_path_of(&self.path, generation),
        }
    }

    /// Which of the store's own files `path` is, under any name (links included): the state
    /// file, a backup, a moved-aside corrupt file, the lock file or a temp file, all of which
    /// only the store may write. `None` for any other file, or one that does not exist.
    pub fn own_file(&self, path: &Path) -> Option<OwnFile> {
        let given = fs::metadata(path).ok()?;
        let paths = self.paths().ok()?;
        let main_name = paths.name.as_encoded_bytes();
        let ours = |name: &std::ffi::OsStr| {
            name.as_encoded_bytes().starts_with(main_name)
                || names::temp_owner(name, &paths.name).is_some()
        };
        let mut files = vec![paths.target.clone()];
        if let Ok(entries) = fs::read_dir(&paths.dir) {
            files.extend(
                entries
                    .flatten()
                    .filter(|e| ours(&e.file_name()))
                    .map(|e| e.path()),
            );
        }
        let found = files.into_iter().find(|file| {
            fs::metadata(file).is_ok_and(|m| m.dev() == given.dev() && m.ino() == given.ino())
        })?;
        Some(if found == paths.target {
            OwnFile::State(found)
        } else {
            OwnFile::Other(found)
        })
    }

    /// The current state (see [`Store::read_loaded`]).
    pub fn read(&self) -> Result<State> {
        self.read_loaded().map(|loaded| loaded.state)
    }

    /// [`Store::read`] for a command that looks at a few entries (`state show`) or copies them
    /// (`state export`): entries are parsed when first looked at, as in [`Store::update`].
    pub fn read_lazy(&self) -> Result<State> {
        self.read_with(Parse::Lazy).map(|loaded| loaded.state)
    }

    /// Loads the state: a clean main file without a lock (writers rename a whole file into
    /// place, so the one opened is whole, and readers never hold writers off); otherwise, under
    /// a shared lock, the main file, else the first valid backup (which is then copied back to
    /// the main file under the exclusive lock, the corrupt file kept as `.corrupt-…`). A
    /// missing file (or directory) is an empty state; nothing is created.
    pub fn read_loaded(&self) -> Result<Loaded> {
        self.read_with(Parse::Full)
    }

    fn read_with(&self, parse: Parse) -> Result<Loaded> {
        self.check_env()?;
        // A path that names no file (`/`) is refused here, before a lock file is made beside it.
        if let Some(loaded) = self.read_clean_main(parse)? {
            self.notify_problems(&loaded.state);
            self.record_outside_change_on_read(&loaded.state);
            return Ok(loaded);
        }
        let lock = self.lock_for_read()?;
        let paths = self.paths()?;
        self.check_network(&paths);
        let found = load_chain(&paths, &self.path, parse)?;
        self.notify_problems(&found.loaded.state);
        if found.loaded.source == Source::Missing {
            (self.notify)(&Notice::StateMissing(self.path.clone()));
        }
        if !matches!(found.loaded.source, Source::Backup { .. }) {
            return Ok(found.loaded);
        }
        if self.options.dry_run {
            self.notify_in_memory(&paths, &found, "dry run".into());
            return Ok(found.loaded);
        }
        // Repairing needs the exclusive lock; another process may have repaired it meanwhile,
        // so everything is checked again once we hold it.
        drop(lock);
        match self.repair_exclusively(parse) {
            Ok(loaded) => Ok(loaded),
            Err(e @ (Error::NewerVersion { .. } | Error::Corrupt { .. })) => Err(e),
            Err(e) => {
                let why = e.to_string().lines().next().unwrap_or_default().to_string();
                self.notify_in_memory(&paths, &found, why);
                Ok(found.loaded)
            }
        }
    }

    /// The main file, read without a lock, if it is a valid state; `None` for anything else.
    ///
    /// A reader takes no lock when it need not, so that readers coming one after another never
    /// hold a writer off. Every writer, mamfast and the Python tool, replaces the main file by
    /// a rename (`renameat2`, `os.replace`), so the file we opened is one whole state, old or
    /// new, whatever is written meanwhile. Anything else is read again under the lock, as
    /// before: a missing main file (a writer without `RENAME_EXCHANGE` may be moving a corrupt
    /// one aside), a corrupt one (its recovery reads `.bak`, which the Python tool writes in
    /// place with `shutil.copy2`), an unreadable or newer one (for the same error as before).
    fn read_clean_main(&self, parse: Parse) -> Result<Option<Loaded>> {
        let paths = self.paths()?;
        self.check_network(&paths);
        Ok(match probe(&paths.target, true, parse) {
            Ok(Probe::Valid {
                state,
                migrated_from,
                ..
            }) => Some(Loaded {
                state,
                source: Source::Main,
                migrated_from,
            }),
            _ => None,
        })
    }

    /// Read-modify-write under the exclusive lock: loads (with recovery and migration), runs
    /// `f`, and on [`Outcome::Changed`] rotates the backups and writes the state durably.
    /// `Outcome::Unchanged` and dry run write nothing, not even a backup. The state's
    /// directory is created if needed.
    ///
    /// Entries are parsed when `f` first looks at them, and those it leaves alone are written
    /// back as the text they were read as: the cost of a change to a few entries of a large
    /// state is mostly that of copying the file.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> Result<Outcome<T>>) -> Result<T> {
        self.update_with(Parse::Lazy, f)
    }

    /// [`Store::update`] for a change that looks at every entry (`state prune`): every entry
    /// is parsed before `f` runs, by two threads on a large file, as a read does.
    pub fn update_all<T>(&self, f: impl FnOnce(&mut State) -> Result<Outcome<T>>) -> Result<T> {
        self.update_with(Parse::Full, f)
    }

    fn update_with<T>(
        &self,
        parse: Parse,
        f: impl FnOnce(&mut State) -> Result<Outcome<T>>,
    ) -> Result<T> {
        if self.options.dry_run {
            // Loaded as a read loads in a dry run (nothing repaired), and kept.
            let mut state = self.read_with(parse)?.state;
            return Ok(match f(&mut state)? {
                Outcome::Changed(t) | Outcome::Unchanged(t) => t,
            });
        }
        self.check_env()?;
        // A path that names no file (`/`) is refused by `paths` before a directory is made.
        let real_dir = self.paths()?.dir;
        let given_dir = parent_dir(&self.path);
        if !self.create_dir && !given_dir.is_dir() {
            return Err(missing_dir(&self.path, &given_dir));
        }
        fs::create_dir_all(&given_dir)
            .map_err(|e| Error::io("creating the directory", &given_dir, e))?;
        // A (dangling) symlink into a directory that does not exist yet: the lock of the real
        // path is made there.
        fs::create_dir_all(&real_dir)
            .map_err(|e| Error::io("creating the directory", &real_dir, e))?;
        // A holder that outlasts several writes in a row is reported as stuck (exit 74).
        let _lock = self
            .lock_for_write()
            .map_err(|e| stuck::count(&self.path, e))?;
        stuck::clear(&self.path);
        let paths = self.paths()?;
        self.check_network(&paths);
        interrupted::settle(&paths, &self.retention(), &*self.notify);
        let found = load_chain(&paths, &self.path, parse)?;
        self.notify_problems(&found.loaded.state);
        if found.loaded.source == Source::Missing {
            // A first run, or a mistyped name in an existing directory: said, as a read says it.
            (self.notify)(&Notice::StateMissing(self.path.clone()));
        }
        let loaded = self.repair(&paths, found)?;
        let mut state = loaded.state;
        let main_before = self.record_outside_change(&paths, &state);
        let before = (self.journal_max_bytes > 0).then(|| state.clone());
        let done = match f(&mut state)? {
            Outcome::Unchanged(t) => t,
            Outcome::Changed(t) => {
                // Only a file that loaded cleanly is worth a backup generation.
                let old = match (&loaded.source, self.retention()) {
                    (Source::Main, retention) if retention.keeps_any() => {
                        OldMain::Rotate(retention)
                    }
                    _ => OldMain::Discard,
                };
                durable::commit(&paths, &self.faults, old, None, &mut |w| {
                    format::write_state(&mut Capped::new(w, MAX_STATE_BYTES), &state)
                })?;
                if let Some(before) = before {
                    let after = Fingerprint::of(&paths.target, &state);
                    let mut record = Record::new(RecordKind::Write, main_before, after);
                    record.changes = Some(diff(&before, &state));
                    self.journal_append(&paths, record);
                }
                t
            }
        };
        free_in_background(state);
        Ok(done)
    }

    /// The main file and every backup generation (at least `backup_depth` of them, plus any
    /// older ones that exist), with what each holds and why it is kept. Read under a shared
    /// lock when one can be had; never creates a file.
    pub fn generations(&self) -> Vec<Generation> {
        self.listing(false)
    }

    /// The states `restore` replaced (`.rejected-<UTC time>`), oldest first, as
    /// [`Store::generations`] describes files.
    pub fn rejected(&self) -> Vec<Generation> {
        self.listing(true)
    }

    fn listing(&self, rejected: bool) -> Vec<Generation> {
        let _lock = self.open_lock(false).and_then(Result::ok).and_then(|file| {
            lock::acquire(
                file,
                &self.lock_path(),
                LockMode::Shared,
                self.options.lock_timeout,
                false,
                &*self.notify,
            )
            .ok()
        });
        let describe = |generation: Option<usize>, path: PathBuf, kept: Option<Kept>| {
            let meta = fs::metadata(&path).ok();
            Generation {
                generation,
                exists: meta.is_some(),
                size: meta.as_ref().map(|m| m.len()),
                modified: meta.as_ref().and_then(|m| m.modified().ok()),
                summary: summarize(&path),
                path,
                kept,
                rejected,
            }
        };
        let paths = Paths::resolve(&self.path);
        if rejected {
            let Ok(paths) = paths else {
                return Vec::new();
            };
            return names::rejected_files(&paths)
                .into_iter()
                .map(|path| describe(None, path, None))
                .collect();
        }
        let mut out = vec![describe(None, self.path.clone(), None)];
        let Ok(paths) = paths else {
            return out;
        };
        let mut judged = backups::reasons(&paths, &self.retention());
        let last = judged.last().map_or(0, |(g, _, _)| g + 1);
        for generation in 0..self.options.backup_depth.max(last) {
            let kept = judged
                .iter_mut()
                .find(|(g, _, _)| *g == generation)
                .and_then(|(_, _, kept)| kept.take());
            out.push(describe(Some(generation), paths.backup(generation), kept));
        }
        out
    }

    /// Makes backup `generation` (0 = `.bak`) the main file, under the exclusive lock.
    ///
    /// The backup must exist (else [`Error::Usage`], exit 2: the generation named on the
    /// command line is wrong) and be a valid state (else [`Error::Data`], exit 65, or
    /// [`Error::NewerVersion`]). Its bytes are written as they are. The current main file, if it
    /// loads cleanly, is the state the operator rejects: it is kept as `.rejected-<UTC time>`,
    /// where automatic recovery never looks, and never deleted; if corrupt, it is moved to
    /// `.corrupt-…`; if newer than this build, nothing is done ([`Error::NewerVersion`]). The
    /// backup generations are left as they are. In dry run, everything is checked and nothing
    /// changed.
    pub fn restore(&self, generation: usize) -> Result<Restored> {
        self.restore_from(&|paths| paths.backup(generation), &|path| {
            Error::Usage(format!(
                "backup generation {generation} does not exist: {} not found.\n\
                 Run `mamfast state backups` to see the generations there are.",
                path.display()
            ))
        })
    }

    /// Makes a rejected state (`name`: the file name of a `.rejected-<UTC time>` file beside
    /// the state file, as [`Store::rejected`] lists them, or just `.rejected-<UTC time>`) the
    /// main file again, as [`Store::restore`] does. The
    /// rejected file stays; the main file it replaces is rejected in its turn.
    pub fn restore_rejected(&self, name: &std::ffi::OsStr) -> Result<Restored> {
        let not_rejected = |path: &Path| {
            Error::Usage(format!(
                "{} is not a rejected state of {}: run `mamfast state backups` to see the \
                 rejected states there are (`.rejected-<time>`).",
                path.display(),
                self.path.display()
            ))
        };
        let pre = self.paths()?;
        // As `state backups` labels it: what it adds to the state file's name.
        let name = if name.as_encoded_bytes().starts_with(b".rejected-") {
            let mut full = pre.name.clone();
            full.push(name);
            full
        } else {
            name.to_os_string()
        };
        if !names::is_rejected(&name, &pre.name) {
            return Err(not_rejected(&pre.dir.join(&name)));
        }
        self.restore_from(&|paths| paths.dir.join(&name), &not_rejected)
    }

    fn restore_from(
        &self,
        which: &dyn Fn(&Paths) -> PathBuf,
        missing: &dyn Fn(&Path) -> Error,
    ) -> Result<Restored> {
        self.check_env()?;
        let pre = self.paths()?;
        if !pre.dir.is_dir() {
            return Err(missing(&which(&pre)));
        }
        let _lock: Vec<Lock> = if self.options.dry_run {
            self.lock_for_read()?.into_iter().collect()
        } else {
            self.lock_for_write()?
        };
        let paths = self.paths()?;
        // What a killed writer left is finished first: the generations are then the ones the
        // operator chose among.
        if !self.options.dry_run {
            interrupted::settle(&paths, &self.retention(), &*self.notify);
        }
        let chosen = which(&paths);
        let (bytes, mode, summary, restored_state) = match probe(&chosen, false, Parse::Full)? {
            Probe::Missing => return Err(missing(&chosen)),
            Probe::Invalid(reason) => {
                return Err(Error::Data(format!(
                    "{} cannot be restored: {reason}\nNothing was changed. Run `mamfast state \
                     backups` to find a valid generation.",
                    chosen.display()
                )))
            }
            Probe::Valid {
                bytes,
                mode,
                state,
                migrated_from,
            } => (
                bytes.expect("a backup's bytes are kept"),
                mode,
                Summary::of(&state, migrated_from),
                state,
            ),
        };
        // Its validity decides its fate; its state, what the journal says changed.
        let mut main_state = None;
        let main = match probe(&paths.target, true, Parse::Lazy) {
            Ok(Probe::Valid { state, .. }) => {
                main_state = Some(state);
                MainState::Clean
            }
            Ok(Probe::Missing) => {
                main_state = Some(State::default());
                MainState::Missing
            }
            Ok(Probe::Invalid(reason)) => MainState::Corrupt(reason),
            // Python reads it, though mamfast cannot use it (see `probe`): not corrupt, so it
            // is rejected as a clean one is.
            Err(Error::Data(_)) => MainState::Clean,
            Err(e) => return Err(e),
        };
        // The operator rejects the main file: kept, but out of recovery's way, whatever the
        // policy (a `.bak` it became would be the first state recovery brings back).
        let old = match main {
            MainState::Clean => OldMain::Reject(names::rejected_path(&paths, chrono::Utc::now())),
            _ => main.fate(&paths, &Retention::default()),
        };
        let restored = Restored {
            backup: chosen,
            summary,
            previous_main: match &old {
                OldMain::Reject(to) => PreviousMain::Rejected(to.clone()),
                OldMain::Quarantine(to) => PreviousMain::MovedAside(to.clone()),
                _ => PreviousMain::Missing,
            },
        };
        if self.options.dry_run {
            return Ok(restored);
        }
        let main_before = match &main_state {
            Some(state) => self.record_outside_change(&paths, state),
            None => None,
        };
        durable::commit(&paths, &self.faults, old.clone(), Some(mode), &mut |w| {
            w.write_all(&bytes)
        })?;
        let after = Fingerprint::of(&paths.target, &restored_state);
        let mut record = Record::new(RecordKind::Restore, main_before, after);
        record.note = Some(format!("restored {}", restored.backup.display()));
        match &main_state {
            Some(before) => record.changes = Some(diff(before, &restored_state)),
            None => {
                record.note = Some(format!(
                    "restored {}; the main file it replaced was corrupt, so what changed is \
                     not known",
                    restored.backup.display()
                ))
            }
        }
        self.journal_append(&paths, record);
        if let (MainState::Corrupt(reason), OldMain::Quarantine(moved_to)) = (main, old) {
            (self.notify)(&Notice::CorruptMovedAside {
                corrupt: paths.target.clone(),
                reason,
                moved_to,
            });
        }
        Ok(restored)
    }

    fn check_env(&self) -> Result<()> {
        match &self.fault_env_error {
            Some(msg) => Err(Error::Config(msg.clone())),
            None => Ok(()),
        }
    }

    fn paths(&self) -> Result<Paths> {
        Paths::resolve(&self.path).map_err(|e| {
            // A path without a file name (`/`, `dir/..`) names a directory.
            let e = match e.kind() {
                io::ErrorKind::InvalidInput if self.path.is_dir() => {
                    io::Error::from_raw_os_error(nix::libc::EISDIR)
                }
                _ => e,
            };
            Error::io("resolving", &self.path, e)
        })
    }

    /// Whether `path`, once its links are followed, is in the state's directory under a name
    /// that the state's temp files take: a later writer could remove such a file.
    pub fn is_temp_name(&self, path: &Path) -> bool {
        let (Ok(paths), Ok(given)) = (self.paths(), Paths::resolve(path)) else {
            return false;
        };
        let same_dir = match (fs::canonicalize(&paths.dir), fs::canonicalize(&given.dir)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        same_dir && names::looks_like_temp(&given.name, &paths.name)
    }

    /// Opens the lock file. `None`: it does not exist and may not be created.
    fn open_lock(&self, create: bool) -> Option<io::Result<fs::File>> {
        match lock::open(&self.lock_path(), create) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => None,
            other => Some(other),
        }
    }

    /// A shared lock for reading, or none where none can be had: no lock file in dry run, no
    /// directory, or a directory where it cannot be created (with a notice).
    fn lock_for_read(&self) -> Result<Option<Lock>> {
        // A read leaves no file behind: the lock file is made only beside a state file that
        // exists (through its symlinks), which a read may have to repair from a backup.
        let create = !self.options.dry_run && fs::metadata(&self.path).is_ok();
        let lock_file = self.lock_path();
        let file = match self.open_lock(create) {
            None => return Ok(None),
            Some(Ok(file)) => file,
            Some(Err(_)) if !parent_dir(&lock_file).exists() => return Ok(None),
            Some(Err(e)) => {
                (self.notify)(&Notice::ReadWithoutLock {
                    lock_file,
                    reason: e.to_string(),
                });
                return Ok(None);
            }
        };
        lock::acquire(
            file,
            &lock_file,
            LockMode::Shared,
            self.options.lock_timeout,
            create,
            &*self.notify,
        )
        .map(Some)
    }

    /// The exclusive locks a write needs (see [`lock::take_for_write`]).
    fn lock_for_write(&self) -> Result<Vec<Lock>> {
        lock::take_for_write(
            &self.lock_path(),
            &|| self.real_lock_path(),
            self.options.lock_timeout,
            &*self.notify,
        )
    }

    /// `<real path of the state file>.lock`: the symlinks of the name followed, its directory
    /// canonicalised (which therefore must exist).
    fn real_lock_path(&self) -> Result<PathBuf> {
        let paths = self.paths()?;
        let dir = fs::canonicalize(&paths.dir)
            .map_err(|e| Error::io("resolving the directory", &paths.dir, e))?;
        Ok(names::lock_path_of(&dir.join(paths.name)))
    }

    fn check_network(&self, paths: &Paths) {
        if self.network_checked.load(Ordering::Relaxed) {
            return;
        }
        let as_nfs = self.faults.has(FaultPoint::NetworkFs);
        let Ok(network_fs) = sys::network_fs(&paths.dir, as_nfs) else {
            return;
        };
        self.network_checked.store(true, Ordering::Relaxed);
        if let Some(fs) = network_fs {
            (self.notify)(&Notice::NetworkFileSystem {
                path: paths.target.clone(),
                fs: fs.to_string(),
            });
        }
    }

    fn repair_exclusively(&self, parse: Parse) -> Result<Loaded> {
        let _lock = self.lock_for_write()?;
        let paths = self.paths()?;
        interrupted::settle(&paths, &self.retention(), &*self.notify);
        let found = load_chain(&paths, &self.path, parse)?;
        self.repair(&paths, found)
    }

    /// When a backup won: moves the corrupt main aside and copies the backup's bytes to the
    /// main file (a copy, never a link). Call under the exclusive lock.
    fn repair(&self, paths: &Paths, found: Found) -> Result<Loaded> {
        let (Source::Backup { path: backup, .. }, Some((bytes, mode))) =
            (&found.loaded.source, &found.backup)
        else {
            return Ok(found.loaded);
        };
        // The backup's copy is no generation of its own: nothing rotates.
        let old = found.main.fate(paths, &Retention::default());
        let reason = found.main.reason().to_string();
        durable::commit(paths, &self.faults, old.clone(), Some(*mode), &mut |w| {
            w.write_all(bytes)
        })?;
        let after = Fingerprint::of(&paths.target, &found.loaded.state);
        let mut record = Record::new(RecordKind::Recover, None, after);
        record.note = Some(format!(
            "the main file was {}: replaced by a copy of {}; what changed is not known",
            if matches!(found.main, MainState::Missing) {
                "missing".to_string()
            } else {
                format!("corrupt ({reason})")
            },
            backup.display()
        ));
        self.journal_append(paths, record);
        (self.notify)(&Notice::Recovered {
            corrupt: paths.target.clone(),
            reason,
            moved_to: match old {
                OldMain::Quarantine(to) => Some(to),
                _ => None,
            },
            backup: backup.clone(),
        });
        Ok(found.loaded)
    }

    /// Appends `record` to the journal; a journal that cannot be written is a notice.
    fn journal_append(&self, paths: &Paths, record: Record) {
        journal::append(paths, self.journal_max_bytes, record, &*self.notify);
    }

    /// Compares the main file (holding `state`) with the journal's last record and, when
    /// another program changed it since (or a mamfast write was killed before its record),
    /// records that, with the entries that changed when the state the last record left is
    /// still on disk (a backup generation: mamfast's rotation keeps its size and time, and so
    /// does the Python tool's `shutil.copy2` to `.bak`). Call under the exclusive lock.
    /// Returns the main file's fingerprint.
    /// After a clean read: a main file that is not the one the journal's last record left
    /// (another program wrote it) is recorded now, as the next write would record it, but
    /// only if the write lock is free at once: a reader never waits for writers (nor counts
    /// toward a stuck lock). Otherwise the next write records it. Costs a read one `stat` and
    /// the journal's tail.
    fn record_outside_change_on_read(&self, state: &State) {
        if self.options.dry_run || self.journal_max_bytes == 0 {
            return;
        }
        let Ok(paths) = self.paths() else { return };
        let Some((last, _)) = journal::last_after(&paths.target) else {
            return;
        };
        if journal::same(&last, &Fingerprint::of(&paths.target, state)) {
            return;
        }
        let quiet = |_: &Notice| {};
        let Ok(_lock) = lock::take_for_write(
            &self.lock_path(),
            &|| self.real_lock_path(),
            std::time::Duration::ZERO,
            &quiet,
        ) else {
            return;
        };
        // Under the lock the main file is read again: it may have changed since.
        if let Ok(found) = load_chain(&paths, &self.path, Parse::Lazy) {
            if found.loaded.source == Source::Main {
                self.record_outside_change(&paths, &found.loaded.state);
            }
        }
    }

    fn record_outside_change(&self, paths: &Paths, state: &State) -> Option<Fingerprint> {
        let current = Fingerprint::of(&paths.target, state);
        if self.journal_max_bytes == 0 {
            return current;
        }
        let Some((last, since)) = journal::last_after(&paths.target) else {
            return current;
        };
        if journal::same(&last, &current) {
            return current;
        }
        let known = match &last {
            None => Some(State::default()),
            Some(fingerprint) => backups::existing(paths)
                .into_iter()
                .filter(|(_, path)| fingerprint.copied_to(path))
                .find_map(|(_, path)| match probe(&path, false, Parse::Lazy) {
                    Ok(Probe::Valid { state, .. }) => Some(state),
                    _ => None,
                }),
        };
        let mut record = Record::new(RecordKind::Outside, last, current.clone());
        record.since = Some(since);
        match known {
            Some(known) => record.changes = Some(diff(&known, state)),
            None => {
                record.note = Some(
                    "the state the last record left is no longer on disk: only the counts \
                     before and after are known"
                        .into(),
                )
            }
        }
        self.journal_append(paths, record);
        current
    }

    /// Says, in one line, that the state holds entries kept as they are (see
    /// [`Notice::EntriesKeptAsTheyAre`]).
    fn notify_problems(&self, state: &State) {
        let processed = state.processed.problems();
        let mut all = processed.chain(state.failed.problems());
        if let Some((id, problem)) = all.next() {
            (self.notify)(&Notice::EntriesKeptAsTheyAre {
                path: self.path.clone(),
                count: 1 + all.count(),
                first: (id.clone(), problem.to_string()),
            });
        }
    }

    fn notify_in_memory(&self, paths: &Paths, found: &Found, why: String) {
        if let Source::Backup { path, .. } = &found.loaded.source {
            (self.notify)(&Notice::RecoveredInMemory {
                corrupt: paths.target.clone(),
                reason: found.main.reason().to_string(),
                backup: path.clone(),
                why,
            });
        }
    }
}

/// A write to a state file whose directory does not exist (and may not be created).
fn missing_dir(path: &Path, dir: &Path) -> Error {
    Error::io(
        "writing",
        path,
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "its directory {} does not exist (a typo in the path?); if the path is right, \
                 create the directory first",
                dir.display()
            ),
        ),
    )
}

/// Frees a large state on a thread of its own: freeing 100k entries takes about 20 ms that
/// the caller (and the lock) need not wait for. Small states, or no thread to be had, are
/// freed here.
fn free_in_background(state: State) {
    if state.processed.len() + state.failed.len() >= 10_000 {
        let _ = std::thread::Builder::new()
            .name("mamfast-free".into())
            .spawn(move || drop(state));
    }
}
