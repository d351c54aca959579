//! Property tests: any state mamfast can hold writes, reads and writes again to the same bytes,
//! which are Python's `json.dump(indent=2, ensure_ascii=False, sort_keys=True)` bytes; and any
//! version 1 state migrates to version 2 keeping every field it had.

use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Number, Value};

use mamfast::state::migrate::migrate;
use mamfast::store::format::to_python_json;
use mamfast::{Checkpoints, FailedEntry, ProcessedEntry, State, Status};

/// Text with anything a release name may hold: ASCII, accents, CJK, quotes, backslashes,
/// control characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,16}",
        "\\PC{0,12}",
        Just("転生したらスライムだった件".to_string()),
        Just("q\"b\\n\n\t\u{1}\u{7f}\u{2028}é".to_string()),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        "[1-9][0-9]{19,30}".prop_map(|digits| serde_json::from_str(&digits).unwrap()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Unknown keys: never one of `known`.
fn extra(known: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..3).prop_map(move |m| {
        m.into_iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .collect()
    })
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        prop::sample::select(Status::KNOWN.to_vec()),
        "[A-Z_]{3,12}".prop_map(|s| Status::parse(&s)),
    ]
}

fn checkpoints() -> impl Strategy<Value = Checkpoints> {
    (
        [opt_text(), opt_text(), opt_text(), opt_text()],
        any::<u8>(),
        extra(Checkpoints::KEYS),
    )
        .prop_map(|([m, s, t, u], present, extra)| {
            let mut c = Checkpoints::default();
            (c.metadata_at, c.staged_at, c.torrent_at, c.uploaded_at) = (m, s, t, u);
            mark(Checkpoints::KEYS, present as u32, |k| c.mark_present(k));
            c.extra = extra;
            c
        })
}

/// Marks the keys whose bit is set in `bits` as present (written even when `None`).
fn mark(keys: &[&str], bits: u32, mut f: impl FnMut(&str)) {
    for (i, key) in keys.iter().enumerate() {
        if bits & (1 << i) != 0 {
            f(key);
        }
    }
}

fn processed_entry() -> impl Strategy<Value = ProcessedEntry> {
    (
        [opt_text(), opt_text(), opt_text(), opt_text()],
        [opt_text(), opt_text(), opt_text()],
        prop::option::of(status()),
        prop::option::of(checkpoints()),
        any::<u16>(),
        extra(ProcessedEntry::KEYS),
    )
        .prop_map(
            |([a, b, c, d], [e, f, g], status, checkpoints, present, extra)| {
                let mut entry = ProcessedEntry::default();
                (entry.asin, entry.author, entry.infohash, entry.processed_at) = (a, b, c, d);
                (entry.staging_dir, entry.title, entry.torrent_path) = (e, f, g);
                entry.status = status;
                entry.checkpoints = checkpoints;
                mark(ProcessedEntry::KEYS, present as u32, |k| {
                    entry.mark_present(k)
                });
                entry.extra = extra;
                entry
            },
        )
}

fn failed_entry() -> impl Strategy<Value = FailedEntry> {
    (
        [opt_text(), opt_text(), opt_text(), opt_text(), opt_text()],
        [opt_text(), opt_text(), opt_text(), opt_text()],
        prop::option::of(any::<u64>()),
        any::<u16>(),
        extra(FailedEntry::KEYS),
    )
        .prop_map(|([a, b, c, d, e], [f, g, h, i], retries, present, extra)| {
            let mut entry = FailedEntry::default();
            (
                entry.asin,
                entry.author,
                entry.error,
                entry.error_type,
                entry.failed_at,
            ) = (a, b, c, d, e);
            (
                entry.first_failed_at,
                entry.path,
                entry.source_dir,
                entry.title,
            ) = (f, g, h, i);
            entry.retry_count = retries;
            mark(FailedEntry::KEYS, present as u32, |k| entry.mark_present(k));
            entry.extra = extra;
            entry
        })
}

fn state(version: u64) -> impl Strategy<Value = State> {
    (
        prop::collection::btree_map(text(), processed_entry(), 0..5),
        prop::collection::btree_map(text(), failed_entry(), 0..5),
        extra(&["version", "processed", "failed"]),
    )
        .prop_map(move |(processed, failed, extra)| State {
            version,
            processed,
            failed,
            extra,
        })
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    #[test]
    fn write_read_write_gives_the_same_bytes(state in state(2)) {
        let first = to_python_json(&state);
        let read: State = serde_json::from_slice(&first).expect("mamfast reads what it wrote");
        prop_assert_eq!(String::from_utf8(to_python_json(&read)).unwrap(),
                        String::from_utf8(first).unwrap());
    }

    #[test]
    fn v1_states_migrate_keeping_every_field(state in state(1)) {
        let before: Value = serde_json::from_slice(&to_python_json(&state)).unwrap();
        let mut migrated = state.clone();
        migrate(&mut migrated).unwrap();
        prop_assert_eq!(migrated.version, 2);
        let after: Value = serde_json::from_slice(&to_python_json(&migrated)).unwrap();
        for kind in ["processed", "failed"] {
            for (id, entry) in before[kind].as_object().unwrap() {
                for (key, value) in entry.as_object().unwrap() {
                    prop_assert_eq!(&after[kind][id][key], value, "{} {} {}", kind, id, key);
                }
            }
        }
        for (id, _) in before["processed"].as_object().unwrap() {
            prop_assert!(after["processed"][id].get("checkpoints").is_some());
            prop_assert!(after["processed"][id].get("infohash").is_some());
        }
        for (id, entry) in before["failed"].as_object().unwrap() {
            let first = &after["failed"][id]["first_failed_at"];
            match entry.get("first_failed_at") {
                Some(kept) => prop_assert_eq!(first, kept),
                None => prop_assert_eq!(first, entry.get("failed_at").unwrap_or(&Value::Null)),
            }
            prop_assert!(after["failed"][id].get("error_type").is_some());
            prop_assert!(after["failed"][id].get("author").is_some());
        }
    }
}

/// Python re-dumps each generated file to the same bytes: one Python process for all of them.
#[test]
fn python_writes_the_same_bytes_for_generated_states() {
    const CHECK: &str = r#"
import json, sys
data = sys.stdin.buffer.read().split(b"\0")
bad = 0
for i, doc in enumerate(data):
    again = json.dumps(json.loads(doc.decode("utf-8")), indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")
    if again != doc:
        bad += 1
        if bad <= 3:
            sys.stderr.write("state %d differs:\n%s\n---\n%s\n" % (i, doc.decode(), again.decode()))
print(len(data), bad)
sys.exit(1 if bad else 0)
"#;
    let mut runner = TestRunner::new(Config::with_cases(1));
    let strategy = state(2);
    let mut docs = Vec::new();
    for _ in 0..300 {
        let tree = strategy.new_tree(&mut runner).unwrap();
        docs.push(to_python_json(&proptest::strategy::ValueTree::current(
            &tree,
        )));
    }
    let child = Command::new("python3")
        .args(["-c", CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: python3 cannot be run");
        return;
    };
    let input = docs.join(&b"\0"[..]);
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "300 0");
}
