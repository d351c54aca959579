//! Configuration layers, origins and messages, through the public API. Hermetic: every test has
//! its own HOME in a temporary directory and injects its environment through
//! `Settings::load_with_env`; the real process environment is never read or changed. Tests that
//! do not name a config file set `MAMFAST_CONFIG=""` so a real /etc/mamfast/mamfast.toml cannot
//! leak in (the system/user search itself is tested in `src/config.rs` with a sandboxed /etc).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mamfast::config::{config_candidates, ConfigCandidate, Origin, Overrides, KEYS};
use mamfast::{Error, Settings};

struct Sandbox {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Sandbox {
    /// A HOME of its own and no config file.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut sb = Sandbox {
            env: HashMap::new(),
            dir,
        };
        let home = sb.home();
        std::fs::create_dir_all(&home).unwrap();
        sb.set("HOME", &home.display().to_string());
        sb.set("MAMFAST_CONFIG", "");
        sb
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn set(&mut self, var: &str, value: &str) -> &mut Self {
        self.env.insert(var.into(), value.into());
        self
    }

    fn unset(&mut self, var: &str) -> &mut Self {
        self.env.remove(var);
        self
    }

    /// Writes a config file (under the sandbox) and returns its path.
    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(&self, overrides: &Overrides) -> Result<Settings, Error> {
        Settings::load_with_env(overrides, &|k| self.env.get(k).cloned())
    }

    fn load_ok(&self, overrides: &Overrides) -> Settings {
        self.load(overrides).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The config error message, checking the exit code on the way.
    fn error(&self, overrides: &Overrides) -> String {
        match self.load(overrides) {
            Ok(s) => panic!("expected an error, got {s:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), 78, "{e}");
                assert!(matches!(e, Error::Config(_)), "{e:?}");
                e.to_string()
            }
        }
    }
}

fn with_config(path: &Path) -> Overrides {
    Overrides {
        config: Some(path.to_path_buf()),
        ..Overrides::default()
    }
}

fn values(s: &Settings) -> Vec<(&'static str, serde_json::Value)> {
    s.rows().into_iter().map(|r| (r.key, r.value)).collect()
}

const FULL_FILE: &str = r#"
[state]
file = "/srv/state/processed.json"
backup_depth = 5
backup_hourly = 2
backup_daily = 9
lock_timeout = "1m"
failed_ttl = "30d"
journal_kib = 64

[plugins]
dirs = ["/opt/mamfast/plugins"]
"#;

// --- layers -----------------------------------------------------------------------------------

#[test]
fn each_layer_overrides_the_one_before() {
    let mut sb = Sandbox::new();
    let file = sb.file("conf/mamfast.toml", FULL_FILE);

    // defaults → file
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(s.state_file, Path::new("/srv/state/processed.json"));
    assert_eq!(s.backup_depth, 5);
    assert_eq!(s.lock_timeout, Duration::from_secs(60));
    assert_eq!(s.failed_ttl, Some(Duration::from_secs(30 * 86400)));
    assert_eq!(s.plugin_dirs, [PathBuf::from("/opt/mamfast/plugins")]);
    assert_eq!(s.config_files, std::slice::from_ref(&file));

    // file → environment
    sb.set("MAMFAST_STATE_FILE", "/env/processed.json")
        .set("MAMFAST_BACKUP_DEPTH", "9")
        .set("MAMFAST_LOCK_TIMEOUT", "5s")
        .set("MAMFAST_FAILED_TTL", "2w")
        .set("MAMFAST_PLUGIN_DIRS", "/env/a:/env/b")
        .set("MAMFAST_DRY_RUN", "0");
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(s.state_file, Path::new("/env/processed.json"));
    assert_eq!(s.backup_depth, 9);
    assert_eq!(s.lock_timeout, Duration::from_secs(5));
    assert_eq!(s.failed_ttl, Some(Duration::from_secs(14 * 86400)));
    assert_eq!(
        s.plugin_dirs,
        [PathBuf::from("/env/a"), PathBuf::from("/env/b")]
    );
    assert!(!s.dry_run);

    // environment → flags
    let s = sb.load_ok(&Overrides {
        config: Some(file.clone()),
        state_file: Some("/flag/processed.json".into()),
        dry_run: true,
    });
    assert_eq!(s.state_file, Path::new("/flag/processed.json"));
    assert!(s.dry_run);
    assert_eq!(s.backup_depth, 9);
}

#[test]
fn flags_not_given_leave_lower_layers_alone() {
    let mut sb = Sandbox::new();
    let file = sb.file("mamfast.toml", "[state]\nfile = \"/from/file.json\"\n");
    sb.set("MAMFAST_DRY_RUN", "yes");
    // state_file: None and dry_run: false are "not given", not "set to nothing / false".
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(s.state_file, Path::new("/from/file.json"));
    assert_eq!(s.origin("state.file"), Origin::File(file));
    assert!(s.dry_run);
    assert_eq!(s.origin("dry_run"), Origin::Env("MAMFAST_DRY_RUN"));
}

#[test]
fn origins_name_the_default_the_file_the_variable_and_the_flag() {
    let mut sb = Sandbox::new();
    let s = sb.load_ok(&Overrides::default());
    for key in KEYS {
        assert_eq!(s.origin(key), Origin::Default, "{key}");
    }

    let file = sb.file("etc/mamfast.toml", FULL_FILE);
    let s = sb.load_ok(&with_config(&file));
    for key in &KEYS[..KEYS.len() - 1] {
        assert_eq!(s.origin(key), Origin::File(file.clone()), "{key}");
    }
    assert_eq!(s.origin("dry_run"), Origin::Default);

    let vars = [
        ("MAMFAST_STATE_FILE", "state.file", "/e.json"),
        ("MAMFAST_BACKUP_DEPTH", "state.backup_depth", "1"),
        ("MAMFAST_BACKUP_HOURLY", "state.backup_hourly", "4"),
        ("MAMFAST_BACKUP_DAILY", "state.backup_daily", "0"),
        ("MAMFAST_LOCK_TIMEOUT", "state.lock_timeout", "1s"),
        ("MAMFAST_FAILED_TTL", "state.failed_ttl", "1d"),
        ("MAMFAST_JOURNAL_KIB", "state.journal_kib", "8"),
        ("MAMFAST_PLUGIN_DIRS", "plugins.dirs", "/p"),
        ("MAMFAST_DRY_RUN", "dry_run", "1"),
    ];
    for (var, _, value) in vars {
        sb.set(var, value);
    }
    let s = sb.load_ok(&with_config(&file));
    for (var, key, _) in vars {
        assert_eq!(s.origin(key), Origin::Env(var), "{key}");
    }
    assert_eq!(
        s.origin("state.backup_depth").to_string(),
        "env MAMFAST_BACKUP_DEPTH"
    );

    let s = sb.load_ok(&Overrides {
        config: Some(file.clone()),
        state_file: Some("/f.json".into()),
        dry_run: true,
    });
    assert_eq!(s.origin("state.file"), Origin::Flag("--state-file"));
    assert_eq!(s.origin("dry_run"), Origin::Flag("--dry-run"));
    assert_eq!(s.origin("state.file").to_string(), "flag --state-file");

    let rows = s.rows();
    let keys: Vec<_> = rows.iter().map(|r| r.key).collect();
    assert_eq!(keys, KEYS);
    assert_eq!(rows[0].origin, Origin::Flag("--state-file"));
    assert_eq!(rows[1].origin, Origin::Env("MAMFAST_BACKUP_DEPTH"));
}

#[test]
fn rows_give_json_values() {
    let sb = Sandbox::new();
    let s = sb.load_ok(&Overrides::default());
    let home = sb.home().display().to_string();
    assert_eq!(
        values(&s),
        vec![
            (
                "state.file",
                serde_json::json!(format!("{home}/.local/state/mamfast/processed.json"))
            ),
            ("state.backup_depth", serde_json::json!(3)),
            ("state.backup_hourly", serde_json::json!(0)),
            ("state.backup_daily", serde_json::json!(7)),
            ("state.lock_timeout", serde_json::json!("30s")),
            ("state.failed_ttl", serde_json::Value::Null),
            ("state.journal_kib", serde_json::json!(1024)),
            (
                "plugins.dirs",
                serde_json::json!([format!("{home}/.local/libexec/mamfast")])
            ),
            ("dry_run", serde_json::json!(false)),
        ]
    );
}

// --- files ------------------------------------------------------------------------------------

#[test]
fn relative_paths_in_a_file_resolve_against_its_directory() {
    let sb = Sandbox::new();
    let file = sb.file(
        "conf/sub/mamfast.toml",
        "[state]\nfile = \"../data/./processed.json\"\n[plugins]\ndirs = [\"plugins\", \"/abs\"]\n",
    );
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(s.state_file, sb.path("conf/data/processed.json"));
    assert_eq!(
        s.plugin_dirs,
        [sb.path("conf/sub/plugins"), PathBuf::from("/abs")]
    );
}

#[test]
fn tilde_expands_in_files_environment_and_flags() {
    let mut sb = Sandbox::new();
    let home = sb.home();
    let file = sb.file(
        "mamfast.toml",
        "[state]\nfile = \"~/f.json\"\n[plugins]\ndirs = [\"~\", \"~/p\"]\n",
    );
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(s.state_file, home.join("f.json"));
    assert_eq!(s.plugin_dirs, [home.clone(), home.join("p")]);

    sb.set("MAMFAST_STATE_FILE", "~/e.json")
        .set("MAMFAST_PLUGIN_DIRS", "~/x::~/y");
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(s.state_file, home.join("e.json"));
    assert_eq!(s.plugin_dirs, [home.join("x"), home.join("y")]);

    let s = sb.load_ok(&Overrides {
        state_file: Some("~/flag.json".into()),
        ..with_config(&file)
    });
    assert_eq!(s.state_file, home.join("flag.json"));
}

#[test]
fn environment_and_flag_paths_resolve_against_the_current_directory() {
    let mut sb = Sandbox::new();
    let cwd = std::env::current_dir().unwrap();
    // A value that looks like a number is still a path for state.file.
    sb.set("MAMFAST_STATE_FILE", "123");
    let s = sb.load_ok(&Overrides::default());
    assert_eq!(s.state_file, cwd.join("123"));
    assert!(s.state_file.is_absolute());

    let s = sb.load_ok(&Overrides {
        state_file: Some("./sub/../state.json".into()),
        ..Overrides::default()
    });
    assert_eq!(s.state_file, cwd.join("state.json"));

    // Except a plugin directory: resolved against the current directory it would run
    // whatever is there, so it stays relative and the plugin search skips it with a warning.
    sb.set("MAMFAST_PLUGIN_DIRS", "rel:/abs");
    assert_eq!(
        sb.load_ok(&Overrides::default()).plugin_dirs,
        [PathBuf::from("rel"), PathBuf::from("/abs")]
    );
}

#[test]
fn a_missing_config_file_is_a_config_error_naming_it_and_where_it_was_named() {
    let mut sb = Sandbox::new();
    let missing = sb.path("nope/mamfast.toml");
    let text = sb.error(&with_config(&missing));
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(
        text.contains("(named by --config) does not exist"),
        "{text}"
    );
    assert!(text.contains("leave out --config"), "{text}");

    sb.set("MAMFAST_CONFIG", &missing.display().to_string());
    let text = sb.error(&Overrides::default());
    assert!(
        text.contains("(named by MAMFAST_CONFIG) does not exist"),
        "{text}"
    );
    assert!(text.contains("unset MAMFAST_CONFIG"), "{text}");
}

#[test]
fn config_flag_wins_over_mamfast_config() {
    let mut sb = Sandbox::new();
    let a = sb.file("a.toml", "[state]\nbackup_depth = 1\n");
    let b = sb.file("b.toml", "[state]\nbackup_depth = 2\n");
    sb.set("MAMFAST_CONFIG", &a.display().to_string());
    assert_eq!(sb.load_ok(&Overrides::default()).backup_depth, 1);
    let s = sb.load_ok(&with_config(&b));
    assert_eq!(s.backup_depth, 2);
    assert_eq!(s.config_files, std::slice::from_ref(&b));
    let env = |k: &str| sb.env.get(k).cloned();
    assert_eq!(
        config_candidates(&with_config(&b), &env),
        [ConfigCandidate {
            path: b,
            exists: true,
            why: "--config"
        }]
    );
}

#[test]
fn mamfast_config_empty_means_no_file_and_is_never_a_key() {
    let mut sb = Sandbox::new();
    let env = |k: &str| sb.env.get(k).cloned();
    assert!(config_candidates(&Overrides::default(), &env).is_empty());
    let s = sb.load_ok(&Overrides::default());
    assert!(s.config_files.is_empty());
    assert_eq!(s.plugin_env()[1], ("MAMFAST_CONFIG", String::new()));

    // Set to a file, MAMFAST_CONFIG picks the file and sets no key; other MAMFAST_* variables
    // that are not ours (a plugin's own) are ignored.
    let file = sb.file("m.toml", "");
    sb.set("MAMFAST_CONFIG", &file.display().to_string())
        .set("MAMFAST_MY_PLUGIN_TOKEN", "x");
    let s = sb.load_ok(&Overrides::default());
    assert_eq!(s.config_files, [file]);
    assert_eq!(s.rows().len(), 9);
}

#[test]
fn without_a_named_file_the_system_then_the_user_file_are_candidates() {
    let mut sb = Sandbox::new();
    sb.unset("MAMFAST_CONFIG");
    let env = |k: &str| sb.env.get(k).cloned();
    let found = config_candidates(&Overrides::default(), &env);
    let paths: Vec<_> = found.iter().map(|c| (c.path.clone(), c.why)).collect();
    assert_eq!(
        paths,
        [
            (PathBuf::from("/etc/mamfast/mamfast.toml"), "system"),
            (sb.home().join(".config/mamfast/mamfast.toml"), "user"),
        ]
    );
    assert!(!found[1].exists);
}

#[test]
fn unknown_keys_are_errors_naming_the_key_the_file_and_the_known_keys() {
    let sb = Sandbox::new();
    let file = sb.file(
        "mamfast.toml",
        "[state]\nbackup_dept = 5\n[plugin]\ndirs = []\n",
    );
    let text = sb.error(&with_config(&file));
    assert!(
        text.starts_with(&format!("unknown keys in {}:", file.display())),
        "{text}"
    );
    assert!(
        text.contains("state.backup_dept (did you mean state.backup_depth?)"),
        "{text}"
    );
    assert!(
        text.contains("[plugin] (did you mean [plugins]?)"),
        "{text}"
    );
    assert!(
        text.contains(
            "known keys: state.file, state.backup_depth, state.backup_hourly, state.backup_daily, state.lock_timeout, state.failed_ttl, state.journal_kib, plugins.dirs"
        ),
        "{text}"
    );

    let file = sb.file("dry.toml", "dry_run = true\n");
    let text = sb.error(&with_config(&file));
    assert!(
        text.contains("dry_run (dry-run is per invocation"),
        "{text}"
    );

    let file = sb.file("scalar.toml", "state = \"x\"\n");
    let text = sb.error(&with_config(&file));
    assert!(
        text.starts_with(&format!(
            "invalid value for state in {}: found string \"x\", expected a table",
            file.display()
        )),
        "{text}"
    );
}

#[test]
fn malformed_toml_names_the_file_and_the_position() {
    let sb = Sandbox::new();
    let file = sb.file("bad.toml", "[state]\nbackup_depth = = 3\n");
    let text = sb.error(&with_config(&file));
    assert!(
        text.starts_with(&format!("cannot parse config file {}:", file.display())),
        "{text}"
    );
    assert!(text.contains("line 2"), "{text}");
}

// --- bad values -------------------------------------------------------------------------------

#[test]
fn bad_values_in_a_file_name_key_file_value_and_expectation() {
    let sb = Sandbox::new();
    let cases = [
        (
            "[state]\nbackup_depth = \"three\"",
            "state.backup_depth",
            "found string \"three\", expected a whole number from 0 to 100",
        ),
        (
            "[state]\nbackup_depth = -1",
            "state.backup_depth",
            "found integer -1, expected a whole number from 0 to 100",
        ),
        (
            "[state]\nbackup_depth = 2.5",
            "state.backup_depth",
            "found float 2.5, expected a whole number from 0 to 100",
        ),
        (
            "[state]\nlock_timeout = 30",
            "state.lock_timeout",
            "found integer 30: a duration needs a unit; write e.g. \"30s\", \"30m\" or \"30d\" (as a string)",
        ),
        (
            "[state]\nlock_timeout = \"30\"",
            "state.lock_timeout",
            "\"30\" has no unit; add one, e.g. \"30s\", \"30m\" or \"30d\"",
        ),
        (
            "[state]\nfailed_ttl = \"a month\"",
            "state.failed_ttl",
            "\"a month\" is not a duration; expected e.g. \"30s\", \"5m\"",
        ),
        (
            "[state]\nfailed_ttl = true",
            "state.failed_ttl",
            "found boolean true, expected a duration such as \"30s\", \"5m\"",
        ),
        (
            "[state]\nfile = 3",
            "state.file",
            "found integer 3, expected a path (a string)",
        ),
        (
            "[state]\nfile = \"\"",
            "state.file",
            "found an empty string, expected a path",
        ),
        (
            "[state]\nfile = \"~bob/p.json\"",
            "state.file",
            "\"~bob/p.json\": ~user paths are not supported; write the full path",
        ),
        (
            "[plugins]\ndirs = \"/a\"",
            "plugins.dirs",
            "found string \"/a\", expected a list of paths, e.g. [\"~/.local/libexec/mamfast\"]",
        ),
        (
            "[plugins]\ndirs = [1]",
            "plugins.dirs",
            "found integer 1, expected a path (a string)",
        ),
    ];
    for (text, key, detail) in cases {
        let file = sb.file("mamfast.toml", text);
        let got = sb.error(&with_config(&file));
        let want = format!("invalid value for {key} in {}: {detail}", file.display());
        assert_eq!(got, want, "for {text:?}");
    }
}

#[test]
fn bad_values_in_the_environment_name_the_variable() {
    let cases = [
        (
            "MAMFAST_LOCK_TIMEOUT",
            "soon",
            "invalid value for state.lock_timeout from MAMFAST_LOCK_TIMEOUT: \"soon\" is not a duration; expected e.g. \"30s\", \"5m\"",
        ),
        (
            "MAMFAST_LOCK_TIMEOUT",
            "30",
            "invalid value for state.lock_timeout from MAMFAST_LOCK_TIMEOUT: \"30\" has no unit; add one, e.g. \"30s\", \"30m\" or \"30d\"",
        ),
        (
            "MAMFAST_BACKUP_DEPTH",
            "three",
            "invalid value for state.backup_depth from MAMFAST_BACKUP_DEPTH: found string \"three\", expected a whole number from 0 to 100",
        ),
        (
            "MAMFAST_BACKUP_DEPTH",
            "-2",
            "invalid value for state.backup_depth from MAMFAST_BACKUP_DEPTH: found string \"-2\", expected a whole number from 0 to 100",
        ),
        (
            "MAMFAST_FAILED_TTL",
            "forever",
            "invalid value for state.failed_ttl from MAMFAST_FAILED_TTL: \"forever\" is not a duration; expected e.g. \"30s\", \"5m\"",
        ),
        (
            "MAMFAST_DRY_RUN",
            "maybe",
            "invalid value for dry_run from MAMFAST_DRY_RUN: found string \"maybe\", expected 1, true, yes, 0, false, no or empty",
        ),
        (
            "MAMFAST_STATE_FILE",
            "",
            "invalid value for state.file from MAMFAST_STATE_FILE: found an empty string, expected a path",
        ),
    ];
    for (var, value, want) in cases {
        let mut sb = Sandbox::new();
        sb.set(var, value);
        assert_eq!(sb.error(&Overrides::default()), want, "{var}={value:?}");
    }
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let mut sb = Sandbox::new();
    let file = sb.file("m.toml", "[state]\nbackup_depth = \"x\"\n");
    sb.set("MAMFAST_LOCK_TIMEOUT", "soon");
    let text = sb.error(&with_config(&file));
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("invalid value for state.backup_depth in "));
    assert!(lines[1].starts_with("invalid value for state.lock_timeout from MAMFAST_LOCK_TIMEOUT"));
}

// --- environment values -----------------------------------------------------------------------

#[test]
fn environment_values_work_for_the_key_they_belong_to() {
    let mut sb = Sandbox::new();
    sb.set("MAMFAST_BACKUP_DEPTH", "0")
        .set("MAMFAST_LOCK_TIMEOUT", "0s")
        .set("MAMFAST_STATE_FILE", "/var/lib/mamfast/processed.json")
        .set("MAMFAST_PLUGIN_DIRS", "")
        .set("MAMFAST_DRY_RUN", "");
    let s = sb.load_ok(&Overrides::default());
    assert_eq!(s.backup_depth, 0);
    assert_eq!(s.lock_timeout, Duration::ZERO);
    assert_eq!(s.state_file, Path::new("/var/lib/mamfast/processed.json"));
    assert!(s.plugin_dirs.is_empty());
    assert_eq!(s.origin("plugins.dirs"), Origin::Env("MAMFAST_PLUGIN_DIRS"));
    assert!(!s.dry_run);
    for yes in ["1", "true", "yes", "TRUE"] {
        sb.set("MAMFAST_DRY_RUN", yes);
        assert!(sb.load_ok(&Overrides::default()).dry_run, "{yes}");
    }
}

#[test]
fn an_empty_failed_ttl_in_the_environment_keeps_failures_forever() {
    let mut sb = Sandbox::new();
    let file = sb.file("m.toml", "[state]\nfailed_ttl = \"30d\"\n");
    sb.set("MAMFAST_FAILED_TTL", "");
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(s.failed_ttl, None);
    assert_eq!(
        s.origin("state.failed_ttl"),
        Origin::Env("MAMFAST_FAILED_TTL")
    );
}

// --- plugins ----------------------------------------------------------------------------------

#[test]
fn plugin_env_round_trips_to_the_same_settings() {
    let mut sb = Sandbox::new();
    let file = sb.file("conf/mamfast.toml", FULL_FILE);
    sb.set("MAMFAST_LOCK_TIMEOUT", "1500ms")
        .set("MAMFAST_PLUGIN_DIRS", "/a:~/b");
    let cases = [
        Overrides::default(),
        with_config(&file),
        Overrides {
            config: Some(file.clone()),
            state_file: Some("rel/state.json".into()),
            dry_run: true,
        },
    ];
    for overrides in cases {
        let first = sb.load_ok(&overrides);
        let env: HashMap<String, String> = first
            .plugin_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        // The plugin sees mamfast's variables and its own HOME, nothing else.
        let home = sb.home().display().to_string();
        let lookup = |k: &str| match k {
            "HOME" => Some(home.clone()),
            _ => env.get(k).cloned(),
        };
        let again = Settings::load_with_env(&Overrides::default(), &lookup).unwrap();
        assert_eq!(values(&again), values(&first), "{overrides:?}");
        assert_eq!(again.config_files, first.config_files);
    }
}

#[test]
fn plugin_env_has_the_contract_shape() {
    let mut sb = Sandbox::new();
    let file = sb.file("m.toml", "[state]\nfile = \"/s/p.json\"\n");
    sb.set("MAMFAST_PLUGIN_DIRS", "/a:/b");
    let s = sb.load_ok(&with_config(&file));
    let env = s.plugin_env();
    let names: Vec<_> = env.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "MAMFAST_STATE_FILE",
            "MAMFAST_CONFIG",
            "MAMFAST_BACKUP_DEPTH",
            "MAMFAST_BACKUP_HOURLY",
            "MAMFAST_BACKUP_DAILY",
            "MAMFAST_LOCK_TIMEOUT",
            "MAMFAST_FAILED_TTL",
            "MAMFAST_JOURNAL_KIB",
            "MAMFAST_DRY_RUN",
            "MAMFAST_PLUGIN_DIRS",
        ]
    );
    let get = |k: &str| env.iter().find(|(n, _)| *n == k).unwrap().1.clone();
    assert_eq!(get("MAMFAST_STATE_FILE"), "/s/p.json");
    assert_eq!(get("MAMFAST_CONFIG"), file.display().to_string());
    assert_eq!(get("MAMFAST_BACKUP_DEPTH"), "3");
    assert_eq!(get("MAMFAST_BACKUP_HOURLY"), "0");
    assert_eq!(get("MAMFAST_BACKUP_DAILY"), "7");
    assert_eq!(get("MAMFAST_LOCK_TIMEOUT"), "30s");
    assert_eq!(get("MAMFAST_FAILED_TTL"), "");
    assert_eq!(get("MAMFAST_JOURNAL_KIB"), "1024");
    assert_eq!(get("MAMFAST_DRY_RUN"), "0");
    assert_eq!(get("MAMFAST_PLUGIN_DIRS"), "/a:/b");
}

// --- the example ------------------------------------------------------------------------------

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mamfast.toml.example")
}

#[test]
fn the_example_parses_to_exactly_the_defaults() {
    let sb = Sandbox::new();
    let defaults = sb.load_ok(&Overrides::default());
    let from_example = sb.load_ok(&with_config(&example()));
    assert_eq!(values(&from_example), values(&defaults));
    assert_eq!(from_example.config_files, [example()]);
}

#[test]
fn the_example_documents_every_key_and_its_commented_lines_are_valid() {
    let text = std::fs::read_to_string(example()).unwrap();
    for key in &KEYS[..KEYS.len() - 1] {
        let leaf = key.rsplit('.').next().unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.trim_start_matches("# ")
                    .starts_with(&format!("{leaf} = "))
            })
            .unwrap_or_else(|| panic!("{key} is not in the example"));
        assert!(line.contains(" # "), "{key} has no explanation: {line}");
    }
    // Uncommenting the commented-out keys still gives a valid file.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.contains(" = ") => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let sb = Sandbox::new();
    let file = sb.file("uncommented.toml", &uncommented);
    let s = sb.load_ok(&with_config(&file));
    assert_eq!(
        s.state_file,
        sb.home().join(".local/state/mamfast/processed.json")
    );
    assert_eq!(s.failed_ttl, Some(Duration::from_secs(30 * 86400)));
}

#[test]
fn a_variable_that_is_not_utf8_is_a_config_error_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mamfast"))
        .args(["state", "list", "--state-file"])
        .arg(dir.path().join("processed.json"))
        .env("MAMFAST_CONFIG", "")
        .env("MAMFAST_FAILED_TTL", std::ffi::OsStr::from_bytes(b"3\xffd"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("MAMFAST_FAILED_TTL is not valid UTF-8")
            && stderr.contains("Set MAMFAST_FAILED_TTL to a UTF-8 value, or unset it"),
        "{stderr}"
    );
}
