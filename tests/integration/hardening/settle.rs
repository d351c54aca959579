//! Finishing what a killed write left behind never rolls back and never loses a generation,
//! whatever ran in between: `state restore`, the Python tool's own writes (its `shutil.copy2`
//! makes a newer `.bak`), a recovery. And a state file Python reads is never rolled back for
//! being large. Each case is a shell session as an operator would type it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `body` with bash in `dir`, with `$M` the mamfast binary and no config file.
fn session(dir: &Path, body: &str) -> Output {
    let out = Command::new("bash")
        .args(["-c", &format!("set -u\n{body}")])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("MAMFAST_CONFIG", "")
        .env("M", env!("CARGO_BIN_EXE_mamfast"))
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

fn tools_present(names: &[&str]) -> bool {
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| {
            !Command::new(n)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: needs {missing:?}, which cannot be run here");
    }
    missing.is_empty()
}

/// The failed IDs of a state file, or `None` if it is not one.
fn failed_ids(path: &Path) -> Option<BTreeSet<String>> {
    let value: serde_json::Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    Some(value.get("failed")?.as_object()?.keys().cloned().collect())
}

/// Every state held by a file of `dir` named after `p.json` (hidden ones too), by name.
fn states(dir: &Path) -> Vec<(String, BTreeSet<String>)> {
    let mut out: Vec<(String, BTreeSet<String>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains("p.json") && !name.ends_with(".lock")
        })
        .filter_map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            failed_ids(&p).map(|ids| (name, ids))
        })
        .collect();
    out.sort();
    out
}

fn ids(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn generation(dir: &Path, name: &str) -> BTreeSet<String> {
    failed_ids(&dir.join(name))
        .unwrap_or_else(|| panic!("{name} is not a state: {:?}", states(dir)))
}

/// Generations are history, newest first: each one holds no ID the newer ones lack (these
/// sessions only ever add IDs).
fn assert_in_order(dir: &Path) {
    let mut names = vec!["p.json".to_string(), "p.json.bak".to_string()];
    names.extend((1..10).map(|n| format!("p.json.bak.{n}")));
    let present: Vec<(String, BTreeSet<String>)> = names
        .into_iter()
        .filter_map(|n| failed_ids(&dir.join(&n)).map(|ids| (n, ids)))
        .collect();
    for pair in present.windows(2) {
        assert!(
            pair[1].1.is_subset(&pair[0].1),
            "{} is newer than {}: {present:?}",
            pair[1].0,
            pair[0].0
        );
    }
}

const FOUR_WRITES: &str =
    "for i in 1 2 3 4; do $M state mark-failed ID$i --error e --state-file p.json 2>/dev/null; done\n";

/// A write killed after its swap leaves the old main under a held name; `restore 0` must
/// settle it before it decides which generation leaves its slot, or that generation is lost.
#[test]
fn restore_after_a_write_killed_after_its_swap_loses_no_generation() {
    if !tools_present(&["strace"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    session(
        dir.path(),
        &format!(
            "{FOUR_WRITES}strace -f -o /dev/null -e inject=rename:signal=SIGKILL:when=1 \
             $M state mark-failed ID5 --error e --state-file p.json 2>/dev/null"
        ),
    );
    let before: BTreeSet<BTreeSet<String>> = states(dir.path()).into_iter().map(|s| s.1).collect();
    let out = session(dir.path(), "$M state restore 0 --state-file p.json");
    assert!(out.status.success(), "{out:?}");
    let after: BTreeSet<BTreeSet<String>> = states(dir.path()).into_iter().map(|s| s.1).collect();
    for state in [
        ids(&["ID1", "ID2", "ID3", "ID4"]),
        ids(&["ID1", "ID2", "ID3"]),
    ] {
        assert!(before.contains(&state), "set-up: {before:?}");
        assert!(
            after.contains(&state),
            "{state:?} lost: {:?}",
            states(dir.path())
        );
    }
}

/// The same without `RENAME_EXCHANGE` and without hard links (a moment with no main file).
#[test]
fn restore_after_a_write_killed_without_exchange_or_links_loses_no_generation() {
    if !tools_present(&["strace"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    session(
        dir.path(),
        &format!(
            "{FOUR_WRITES}MAMFAST_INJECT_FAULT=no-rename-exchange strace -f -o /dev/null \
             -e inject=link,linkat:error=EPERM -e inject=rename:signal=SIGKILL:when=2 \
             $M state mark-failed ID5 --error e --state-file p.json 2>/dev/null"
        ),
    );
    let out = session(dir.path(), "$M state restore 0 --state-file p.json");
    assert!(out.status.success(), "{out:?}");
    let after: Vec<BTreeSet<String>> = states(dir.path()).into_iter().map(|s| s.1).collect();
    assert!(
        after.contains(&ids(&["ID1", "ID2", "ID3", "ID4"])),
        "the acknowledged ID1-4 state was lost: {:?}",
        states(dir.path())
    );
}

const PYTHON_WRITE: &str = r#"
import fcntl, json, os, shutil, sys, tempfile
path, key = sys.argv[1], sys.argv[2]
with open(path + ".lock", "a+") as lk:
    fcntl.flock(lk, fcntl.LOCK_EX)
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    state.setdefault("failed", {})[key] = {"error": "py", "retry_count": 1}
    shutil.copy2(path, path + ".bak")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
"#;

/// A killed write's old main is older than the `.bak` the Python tool made since: it must not
/// be put at `.bak` above it, or a recovery restores the older state.
#[test]
fn a_killed_writes_old_main_never_goes_above_a_newer_python_backup() {
    if !tools_present(&["strace", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("pyw.py"), PYTHON_WRITE).unwrap();
    session(
        dir.path(),
        &format!(
            "{FOUR_WRITES}strace -f -o /dev/null -e inject=rename:signal=SIGKILL:when=1 \
             $M state mark-failed ID5 --error e --state-file p.json 2>/dev/null\n\
             python3 pyw.py p.json PY6 && python3 pyw.py p.json PY7"
        ),
    );
    let newest_backup = ids(&["ID1", "ID2", "ID3", "ID4", "ID5", "PY6"]);
    assert_eq!(
        generation(dir.path(), "p.json.bak"),
        newest_backup,
        "set-up"
    );

    // A write settles the killed one: the generations stay in order.
    let order = tempfile::tempdir().unwrap();
    for (name, _) in states(dir.path()) {
        fs::copy(dir.path().join(&name), order.path().join(&name)).unwrap();
    }
    let out = session(
        order.path(),
        "$M state mark-failed ID8 --error e --state-file p.json",
    );
    assert!(out.status.success(), "{out:?}");
    assert_in_order(order.path());

    // A damaged main file is recovered from the newest backup, not the killed write's.
    let main = dir.path().join("p.json");
    let bytes = fs::read(&main).unwrap();
    fs::write(&main, &bytes[..100]).unwrap();
    let out = session(dir.path(), "$M state list --failed --state-file p.json");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        generation(dir.path(), "p.json"),
        newest_backup,
        "{:?}",
        states(dir.path())
    );
    let all: Vec<BTreeSet<String>> = states(dir.path()).into_iter().map(|s| s.1).collect();
    assert!(
        all.contains(&ids(&["ID1", "ID2", "ID3", "ID4"])),
        "the killed write's old main is kept: {:?}",
        states(dir.path())
    );
}

/// A state file larger than mamfast reads, which Python reads (it ends in a lot of white
/// space), is refused, not moved aside for an older backup.
#[test]
fn a_huge_state_file_python_reads_is_refused_not_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = session(
        dir.path(),
        "$M state mark-failed OLD --error e --state-file p.json 2>/dev/null\n\
         $M state mark-failed NEW --error e --state-file p.json 2>/dev/null",
    );
    assert!(out.status.success(), "{out:?}");
    let main = dir.path().join("p.json");
    let mut file = fs::OpenOptions::new().append(true).open(&main).unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..513 {
        std::io::Write::write_all(&mut file, &spaces).unwrap();
    }
    drop(file);
    let size = fs::metadata(&main).unwrap().len();
    for command in ["state list", "state mark-failed X --error e"] {
        let out = session(dir.path(), &format!("$M {command} --state-file p.json"));
        assert_eq!(out.status.code(), Some(65), "{command}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("512 MiB"), "{command}: {stderr}");
        assert_eq!(
            fs::metadata(&main).unwrap().len(),
            size,
            "{command}: main untouched"
        );
        assert_eq!(generation(dir.path(), "p.json.bak"), ids(&["OLD"]));
        assert!(
            !fs::read_dir(dir.path()).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("corrupt")),
            "{command}: nothing moved aside"
        );
    }
    // What the message offers works: the newest backup comes back, the large file is kept.
    let out = session(dir.path(), "$M state restore 0 --state-file p.json");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(generation(dir.path(), "p.json"), ids(&["OLD"]));
    // Kept aside as rejected, where recovery never takes it from.
    let rejected: Vec<u64> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("p.json.rejected-")
        })
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert_eq!(rejected, [size]);
}
