//! Hostile inputs against the journal and `state restore`: what an attacker (or an accident)
//! can put beside the state file must neither reach the terminal raw nor make mamfast use a
//! file other than the one named.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::cli::mamfast_run;
use crate::support::*;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, fixture("pipeline-written.json")).unwrap();
    (dir, path)
}

fn journal_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".log");
    PathBuf::from(name)
}

#[test]
fn a_journal_line_that_cannot_be_read_is_reported_on_one_escaped_line() {
    let (_dir, path) = setup();
    mamfast_run(
        &path,
        ["state", "mark-failed", "B0ATTACK01", "--error", "e"],
    )
    .expect_code(0, "first write");
    // A record whose `kind` is hostile text: serde quotes it in its error message as it is.
    let hostile = r#"{"kind": "write\u001b[2J\nforged: line\r\u202e", "time": "x"}"#;
    let mut text = fs::read_to_string(journal_of(&path)).unwrap();
    text.push_str(hostile);
    text.push('\n');
    fs::write(journal_of(&path), text).unwrap();
    let run = mamfast_run(&path, ["state", "log"]);
    run.expect_code(0, "state log");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert!(
        warnings.is_empty(),
        "every stderr line is a warning of its own: {:?}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'),
        "{:?}",
        run.stderr
    );
    assert!(
        run.stderr.contains("line 2: not a journal record") && run.stderr.contains("\\n"),
        "{:?}",
        run.stderr
    );
}

#[test]
fn a_rejected_state_named_by_a_path_elsewhere_is_not_replaced_by_the_one_beside_the_state() {
    let (dir, path) = setup();
    let name = "processed.json.rejected-20260101T000000Z";
    let empty = br#"{"version": 2, "processed": {}, "failed": {}}"#;
    fs::write(dir.path().join(name), empty).unwrap();
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::copy(&path, other.join(name)).unwrap();
    let before = fs::read(&path).unwrap();
    for given in [
        other.join(name),
        dir.path().join("other/../other").join(name),
        PathBuf::from("/nonexistent").join(name),
    ] {
        let run = mamfast_run(
            &path,
            ["state".as_ref(), "restore".as_ref(), given.as_os_str()],
        );
        run.expect_code(2, &given.display().to_string());
        assert!(
            run.stderr.contains("not beside the state file") && run.stderr.contains("state import"),
            "{}",
            run.stderr
        );
        assert_eq!(fs::read(&path).unwrap(), before, "nothing restored");
    }
    // Beside the state file, under any spelling of its directory, it is restored.
    let beside = dir.path().join("other/..").join(name);
    mamfast_run(
        &path,
        ["state".as_ref(), "restore".as_ref(), beside.as_os_str()],
    )
    .expect_code(0, "restore beside");
    assert_eq!(fs::read(&path).unwrap(), empty);
}

/// Runs `mamfast state import <file> --force` and waits at most 20 s for it.
fn import_within_seconds(path: &Path, file: &Path) -> (i32, String) {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = crate::support::cli::mamfast(path)
        .args([
            "state".as_ref(),
            "import".as_ref(),
            file.as_os_str(),
            "--force".as_ref(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap(), stderr);
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("state import {} hung", file.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn import_of_a_fifo_without_writer_ends_and_a_device_is_not_read() {
    let (dir, path) = setup();
    let before = fs::read(&path).unwrap();
    let fifo = dir.path().join("incoming.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let (code, stderr) = import_within_seconds(&path, &fifo);
    assert_eq!(code, 65, "an empty pipe is no state: {stderr}");
    // A device is refused before a byte is read: /dev/zero would otherwise be read up to the
    // size limit.
    let (code, stderr) = import_within_seconds(&path, Path::new("/dev/zero"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("a character device"), "{stderr}");
    assert_eq!(fs::read(&path).unwrap(), before, "nothing imported");
}

#[test]
fn a_journal_far_past_its_bound_is_read_only_from_its_end() {
    let (_dir, path) = setup();
    mamfast_run(
        &path,
        ["state", "mark-failed", "B0ATTACK02", "--error", "e"],
    )
    .expect_code(0, "first write");
    let journal = journal_of(&path);
    let record = fs::read(&journal).unwrap();
    // 3 MiB of garbage (a writer outside mamfast, or an attacker) before the last record: far
    // more than the journal's default bound of 1 MiB, which mamfast never writes past.
    let mut text = vec![b'x'; 3 << 20];
    text.push(b'\n');
    text.extend_from_slice(&record);
    fs::write(&journal, text).unwrap();
    let run = mamfast_run(&path, ["state", "log"]);
    run.expect_code(0, "state log");
    assert!(run.stdout.contains("mark-failed B0ATTACK02"), "{run:#?}");
    assert!(
        run.stderr.contains("only its last 1024 KiB are read"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("not a journal record"),
        "{}",
        run.stderr
    );
}
