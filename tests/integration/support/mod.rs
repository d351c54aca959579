//! Helpers shared by the integration tests: fixtures, stores that collect their notices,
//! snapshots of a directory to prove that nothing changed, a held `flock`; `cli` runs the
//! binary hermetically. Realistic states of any size come from `mamfast::sample`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mamfast::{Notice, Outcome, State, Store, StoreOptions};

pub mod cli;

/// A JSON file's value (a state file, a backup), read whole.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The IDs in `kind` (`processed` or `failed`) of the state file at `path`, sorted.
pub fn ids(path: &Path, kind: &str) -> Vec<String> {
    let mut ids: Vec<String> = read_json(path)[kind]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    ids.sort();
    ids
}

pub fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub const FIXTURES: [&str; 4] = [
    "pipeline-written.json",
    "v1-small.json",
    "v1-small.migrated.json",
    "v2-unknown-fields.json",
];

pub type Notices = Arc<Mutex<Vec<Notice>>>;

pub fn options(depth: usize) -> StoreOptions {
    StoreOptions {
        backup_depth: depth,
        lock_timeout: Duration::from_secs(10),
        dry_run: false,
    }
}

/// A store on `path` whose notices are collected instead of printed.
pub fn store_with(path: &Path, options: StoreOptions) -> (Store, Notices) {
    let notices: Notices = Arc::default();
    let sink = notices.clone();
    let store =
        Store::new(path, options).with_notices(move |n| sink.lock().unwrap().push(n.clone()));
    (store, notices)
}

pub fn store(path: &Path) -> (Store, Notices) {
    store_with(path, options(3))
}

/// Writes a state whose top-level `x_gen` key is `generation`, through `store`.
pub fn write_generation(store: &Store, generation: u64) -> mamfast::Result<()> {
    store.update(|s| {
        s.extra.insert("x_gen".into(), generation.into());
        Ok(Outcome::Changed(()))
    })
}

/// The `x_gen` marker of a state file's bytes.
pub fn generation_in(bytes: &[u8]) -> Option<u64> {
    let state: State = serde_json::from_slice(bytes).ok()?;
    state.extra.get("x_gen")?.as_u64()
}

pub fn generation_of_file(path: &Path) -> Option<u64> {
    generation_in(&fs::read(path).ok()?)
}

/// Every entry of `dir`: name → (bytes or symlink target, permission bits, inode).
pub fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32, u64)> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        let content = if meta.file_type().is_symlink() {
            fs::read_link(entry.path())
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if meta.is_dir() {
            b"<dir>".to_vec()
        } else {
            fs::read(entry.path()).unwrap()
        };
        out.insert(
            entry.file_name().to_string_lossy().into_owned(),
            (content, meta.mode() & 0o7777, meta.ino()),
        );
    }
    out
}

/// The snapshot without the lock file (which a locked read may create).
pub fn snapshot_without_lock(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32, u64)> {
    let mut snap = snapshot(dir);
    snap.retain(|name, _| !name.ends_with(".lock"));
    snap
}

/// Names in `dir` that look like temp files.
pub fn temp_files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.contains(".tmp"))
        .collect()
}

/// Names in `dir` that start `processed.json.corrupt-`.
pub fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = names(dir)
        .into_iter()
        .filter(|n| n.starts_with("processed.json.corrupt-"))
        .map(|n| dir.join(n))
        .collect();
    found.sort();
    found
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

/// Asserts that the main file and every existing backup are distinct inodes.
pub fn assert_no_shared_inode(store: &Store) {
    let main = inode(store.path());
    for generation in 0..10 {
        let bak = store.backup_path(generation);
        if bak.exists() {
            assert_ne!(
                main,
                inode(&bak),
                "main shares its inode with {}",
                bak.display()
            );
        }
    }
}

/// Holds a `flock` on `path` (created if needed), as another process would.
pub fn hold(path: &Path, arg: nix::fcntl::FlockArg) -> nix::fcntl::Flock<fs::File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    nix::fcntl::Flock::lock(file, arg).unwrap()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The `.json` files of a directory of the repository: (file name, bytes), sorted by name.
pub fn corpus_in(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The Python tool's read-modify-write (`python3 -c PYTHON_WRITER MAIN N KEY`), N times: lock, load, +1, backup with
/// `shutil.copy2`, write to a temp file, fsync, `os.replace`, unlock.
pub const PYTHON_WRITER: &str = r#"
import fcntl, json, os, shutil, sys
main, writes, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for _ in range(writes):
    with open(main + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(main, encoding="utf-8") as f:
            state = json.load(f)
        entry = state["failed"][key]
        entry["retry_count"] = entry.get("retry_count", 0) + 1
        shutil.copy2(main, main + ".bak")
        temp = main + ".tmp"
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, main)
        fcntl.flock(lock, fcntl.LOCK_UN)
"#;
