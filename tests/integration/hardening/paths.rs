//! Which files are state files, and where a path leads: a FIFO, a device or a huge file is never
//! read into memory nor waited on; `..` after a symlink means what the kernel means; a state
//! file's name need not be UTF-8; numeric settings have sane maxima; a config file that is not
//! UTF-8 says so.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{mamfast, mamfast_run, Run};
use crate::support::fixture;

const MARK: [&str; 5] = ["state", "mark-failed", "B0PATHS001", "--error", "e"];

/// The commands that read the state, each of which must end, whatever the files are.
const READERS: [&[&str]; 5] = [
    &["state", "list"],
    &["state", "verify"],
    &["state", "backups"],
    &["state", "show", "B0PATHS001"],
    &MARK,
];

/// Runs `cmd` with `args`, killing it and failing the test if it runs longer than 10 s.
fn run_guarded(mut cmd: Command, args: &[&str]) -> Run {
    let mut child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mamfast");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mamfast {args:?} hung for more than 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let run = Run {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("mamfast {args:?} killed: {}", out.status)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
    run
}

/// The `.corrupt-…` files kept in `dir` (any state file name, UTF-8 or not).
fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    found.sort();
    found
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn a_fifo_as_the_state_file_is_refused_at_once_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    mkfifo(&state);
    for args in READERS {
        let run = run_guarded(mamfast(&state), args);
        let text = format!("{args:?}: {run:#?}");
        assert!(run.code != 0 || args[1] == "backups", "{text}");
        assert!(
            run.stdout.contains("FIFO") || run.stderr.contains("FIFO"),
            "{text}"
        );
        assert!(is_fifo(&state), "the FIFO stays where it was: {text}");
    }
    let run = run_guarded(mamfast(&state), &MARK);
    run.expect_code(74, "a FIFO as the state file");
    assert!(
        run.stderr.contains("a FIFO, not a regular file"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("must name a regular file"), "{run:#?}");
    assert!(corrupt_files(dir.path()).is_empty());
}

#[test]
fn a_fifo_as_a_backup_is_reported_not_valid_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    let bytes = fixture("pipeline-written.json");
    fs::write(&state, "{ not json").unwrap();
    // A FIFO named as a backup, and a backup that is a link to one.
    mkfifo(&dir.path().join("fifo"));
    symlink("fifo", dir.path().join("p.json.bak")).unwrap();
    mkfifo(&dir.path().join("p.json.bak.1"));
    fs::write(dir.path().join("p.json.bak.2"), &bytes).unwrap();

    let run = run_guarded(mamfast(&state), &["state", "backups"]);
    run.expect_code(0, "state backups");
    assert!(run.stdout.contains("FIFO"), "{run:#?}");
    let run = run_guarded(mamfast(&state), &["state", "verify"]);
    assert!(
        run.stderr.contains(".bak.1") && run.stderr.contains("FIFO"),
        "{run:#?}"
    );

    let run = run_guarded(mamfast(&state), &["state", "list"]);
    run.expect_code(0, "recovered from .bak.2");
    assert!(run.stderr.contains("p.json.bak.2"), "{run:#?}");
    assert!(fs::read(&state).unwrap() == bytes);
    assert_eq!(
        corrupt_files(dir.path()).len(),
        1,
        "the corrupt main is kept"
    );

    // A write rotates the links and FIFOs along and never opens them.
    for _ in 0..4 {
        run_guarded(mamfast(&state), &MARK).expect_code(0, "mark-failed");
    }
    assert!(is_fifo(&dir.path().join("fifo")));
}

#[test]
fn a_device_as_the_state_file_or_a_backup_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    symlink("/dev/zero", &state).unwrap();
    for args in READERS {
        let run = run_guarded(mamfast(&state), args);
        let text = format!("{args:?}: {run:#?}");
        assert!(
            run.stdout.contains("a character device") || run.stderr.contains("a character device"),
            "{text}"
        );
    }
    run_guarded(mamfast(&state), &["state", "list"]).expect_code(74, "/dev/zero");
    assert_eq!(fs::read_link(&state).unwrap(), Path::new("/dev/zero"));

    // A socket cannot even be opened: said as what it is.
    let socket = dir.path().join("s.json");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let run = run_guarded(mamfast(&socket), &MARK);
    run.expect_code(74, "a socket");
    assert!(
        run.stderr.contains("a socket, not a regular file"),
        "{run:#?}"
    );

    // As a backup: not valid, skipped.
    fs::remove_file(&state).unwrap();
    fs::write(&state, "").unwrap();
    symlink("/dev/zero", dir.path().join("p.json.bak")).unwrap();
    fs::write(
        dir.path().join("p.json.bak.1"),
        fixture("pipeline-written.json"),
    )
    .unwrap();
    run_guarded(mamfast(&state), &["state", "list"]).expect_code(0, "recovered from .bak.1");
}

#[test]
fn a_huge_sparse_state_file_is_moved_aside_whole_and_recovered_from_its_backup() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    let bytes = fixture("pipeline-written.json");
    fs::write(dir.path().join("p.json.bak"), &bytes).unwrap();
    let huge = 50u64 << 30;
    fs::File::create(&state).unwrap().set_len(huge).unwrap();

    let run = run_guarded(mamfast(&state), &MARK);
    run.expect_code(0, "recovered from .bak");
    assert!(run.stderr.contains("larger than the 512 MiB"), "{run:#?}");
    let kept = corrupt_files(dir.path());
    assert_eq!(kept.len(), 1, "{run:#?}");
    assert_eq!(fs::metadata(&kept[0]).unwrap().len(), huge, "kept whole");
    let show = mamfast_run(&state, ["state", "show", "B0PATHS001", "--json"]);
    show.expect_code(0, "the write went on the backup's state");

    // Without a valid backup: corrupt, exit 65, nothing moved.
    fs::remove_file(dir.path().join("p.json.bak")).unwrap();
    fs::File::create(&state).unwrap().set_len(huge).unwrap();
    let run = run_guarded(mamfast(&state), &["state", "list"]);
    run.expect_code(65, "no backup");
    assert!(run.stderr.contains("larger than the 512 MiB"), "{run:#?}");
    assert_eq!(fs::metadata(&state).unwrap().len(), huge);
}

/// `a/link/../p.json` with `a/link` → `real/sub`: the kernel opens `real/p.json`.
fn linked_tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    fs::create_dir_all(root.join("real/sub")).unwrap();
    fs::create_dir_all(root.join("a")).unwrap();
    symlink(root.join("real/sub"), root.join("a/link")).unwrap();
    (dir, root)
}

/// mamfast with no `--state-file`: the settings come from `env` only.
fn bare(env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamfast"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent/home")
        .env("XDG_CONFIG_HOME", "/nonexistent/config")
        .env("MAMFAST_CONFIG", "")
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn state_file_shown(run: &Run) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("state.file"))
        .unwrap_or_else(|| panic!("{run:#?}"));
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn dot_dot_after_a_symlinked_directory_means_what_the_kernel_means() {
    let (_dir, root) = linked_tree();
    let given = root.join("a/link/../p.json");
    let kernel = root.join("real/p.json");

    // --state-file
    run_guarded(mamfast(&given), &MARK).expect_code(0, "--state-file");
    assert!(kernel.exists() && !root.join("a/p.json").exists());
    let shown = run_guarded(mamfast(&given), &["config", "show"]);
    assert_eq!(state_file_shown(&shown), kernel.display().to_string());
    fs::remove_file(&kernel).unwrap();

    // MAMFAST_STATE_FILE
    let run = run_guarded(bare(&[("MAMFAST_STATE_FILE", &given)]), &MARK);
    run.expect_code(0, "MAMFAST_STATE_FILE");
    assert!(kernel.exists() && !root.join("a/p.json").exists());

    // --config a/link/../m.toml, whose state.file is relative to the config file's real place.
    fs::write(
        root.join("real/m.toml"),
        "[state]\nfile = \"sub/../q.json\"\n",
    )
    .unwrap();
    fs::write(root.join("a/m.toml"), "[state]\nfile = \"decoy.json\"\n").unwrap();
    let config = root.join("a/link/../m.toml");
    let mut cmd = bare(&[]);
    cmd.arg("--config").arg(&config);
    let run = run_guarded(cmd, &["config", "show", "--origin"]);
    run.expect_code(0, "--config");
    assert!(
        run.stdout
            .contains(&root.join("real/m.toml").display().to_string()),
        "{run:#?}"
    );
    assert_eq!(
        state_file_shown(&run),
        root.join("real/q.json").display().to_string()
    );
    // state.file through a link in the config file's directory.
    fs::write(
        root.join("real/n.toml"),
        "[state]\nfile = \"../a/link/../r.json\"\n",
    )
    .unwrap();
    let run = run_guarded(
        bare(&[("MAMFAST_CONFIG", &root.join("real/n.toml"))]),
        &["config", "show"],
    );
    assert_eq!(
        state_file_shown(&run),
        root.join("real/r.json").display().to_string()
    );
}

#[test]
fn a_symlinked_final_component_stays_a_link_written_through() {
    let (_dir, root) = linked_tree();
    let bytes = fixture("pipeline-written.json");
    fs::write(root.join("real/target.json"), &bytes).unwrap();
    symlink("../target.json", root.join("real/sub/p.json")).unwrap();
    // `a/link/./p.json`: the directory resolves, the link itself is kept and written through.
    let given = root.join("a/link/./p.json");
    run_guarded(mamfast(&given), &MARK).expect_code(0, "through the link");
    assert_eq!(
        fs::read_link(root.join("real/sub/p.json")).unwrap(),
        Path::new("../target.json")
    );
    assert!(fs::read(root.join("real/target.json.bak")).unwrap() == bytes);
    assert!(root.join("real/sub/p.json.lock").exists());
}

#[test]
fn a_state_file_whose_target_name_is_not_utf8_keeps_every_generation_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let name = |suffix: &str| {
        let mut bytes = b"st\xe9te.json".to_vec();
        bytes.extend_from_slice(suffix.as_bytes());
        dir.path().join(OsString::from_vec(bytes))
    };
    fs::write(name(""), fixture("pipeline-written.json")).unwrap();
    let state = dir.path().join("p.json");
    symlink(name(""), &state).unwrap();
    for _ in 0..4 {
        run_guarded(mamfast(&state), &MARK).expect_code(0, "mark-failed");
    }
    for generation in [".bak", ".bak.1", ".bak.2"] {
        assert!(name(generation).exists(), "{generation} kept");
    }
    assert!(!name(".bak.3").exists(), "depth 3");

    // The main file corrupt, .bak too: recovered from .bak.1.
    fs::write(name(""), "{ not json").unwrap();
    fs::write(name(".bak"), "").unwrap();
    let run = run_guarded(mamfast(&state), &["state", "show", "B0PATHS001", "--json"]);
    run.expect_code(0, "recovered from .bak.1");
    assert!(run.stdout.contains("\"retry_count\": 2"), "{run:#?}");
    assert_eq!(corrupt_files(dir.path()).len(), 1);
}

#[test]
fn numeric_settings_have_a_maximum_and_exit_78_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    let config = dir.path().join("m.toml");
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            "MAMFAST_BACKUP_DEPTH",
            "5000000",
            "backup_depth = 101",
            "from 0 to 100",
        ),
        (
            "MAMFAST_LOCK_TIMEOUT",
            "2d",
            "lock_timeout = \"25h\"",
            "longest allowed is 1d",
        ),
        (
            "MAMFAST_FAILED_TTL",
            "36501d",
            "failed_ttl = \"200years\"",
            "longest allowed is 36500d",
        ),
    ];
    for (var, value, line, range) in cases {
        let key = format!("state.{}", var["MAMFAST_".len()..].to_lowercase());
        let mut cmd = mamfast(&state);
        cmd.env(var, value);
        let run = run_guarded(cmd, &["config", "show"]);
        run.expect_code(78, var);
        for want in [&key[..], var, range] {
            assert!(run.stderr.contains(want), "{want}: {run:#?}");
        }
        fs::write(&config, format!("[state]\n{line}\n")).unwrap();
        let mut cmd = mamfast(&state);
        cmd.arg("--config").arg(&config);
        let run = run_guarded(cmd, &["state", "list"]);
        run.expect_code(78, line);
        let config_text = config.display().to_string();
        for want in [&key[..], &config_text, range] {
            assert!(run.stderr.contains(want), "{want}: {run:#?}");
        }
    }
    // The maxima themselves are allowed.
    let mut cmd = mamfast(&state);
    cmd.env("MAMFAST_BACKUP_DEPTH", "100")
        .env("MAMFAST_LOCK_TIMEOUT", "24h")
        .env("MAMFAST_FAILED_TTL", "36500d");
    run_guarded(cmd, &["config", "show"]).expect_code(0, "the maxima");
    // And the flag that sets a TTL: a usage error.
    let run = run_guarded(
        mamfast(&state),
        &["state", "prune", "--failed-older-than", "99999999"],
    );
    run.expect_code(2, "--failed-older-than");
    assert!(run.stderr.contains("longest allowed is 36500d"), "{run:#?}");
}

#[test]
fn a_config_file_that_is_not_utf8_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m.toml");
    fs::write(&config, b"[state]\n# caf\xe9\nbackup_depth = 2\n").unwrap();
    let mut cmd = mamfast(&dir.path().join("p.json"));
    cmd.arg("--config").arg(&config);
    let run = run_guarded(cmd, &["state", "list"]);
    run.expect_code(78, "latin-1 config");
    assert!(run.stderr.contains("is not UTF-8 text"), "{run:#?}");
    assert!(run.stderr.contains("line 2"), "{run:#?}");
    assert!(!run.stderr.contains("permissions"), "{run:#?}");

    // A FIFO as the config file: refused at once, not waited on.
    let fifo = dir.path().join("fifo.toml");
    mkfifo(&fifo);
    let mut cmd = mamfast(&dir.path().join("p.json"));
    cmd.arg("--config").arg(&fifo);
    let run = run_guarded(cmd, &["state", "list"]);
    run.expect_code(78, "FIFO config");
    assert!(
        run.stderr.contains("a FIFO, not a regular file"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("Name the config file itself"),
        "{run:#?}"
    );
}

/// A plain FIFO under a backup's name is one of the files tried, and the error says so.
#[test]
fn a_fifo_as_the_only_backup_is_named_among_the_files_tried() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("p.json");
    fs::write(&state, "{ not json").unwrap();
    mkfifo(&dir.path().join("p.json.bak"));
    let run = run_guarded(mamfast(&state), &["state", "list"]);
    run.expect_code(65, "no valid generation");
    assert!(
        run.stderr.contains("p.json.bak") && run.stderr.contains("FIFO"),
        "{run:#?}"
    );
    assert!(is_fifo(&dir.path().join("p.json.bak")));
    assert_eq!(fs::read(&state).unwrap(), b"{ not json");
}
