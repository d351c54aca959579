//! Property tests over arbitrary states: IDs in any Unicode, known keys missing, null or set,
//! unknown keys at every level holding nested JSON with floats and big integers.
//!
//! - write → read → write gives the same bytes, by both writers (serde's and the direct one),
//!   and the bytes Python's `json.dump(indent=2, ensure_ascii=False, sort_keys=True)` gives for
//!   the same data (all cases checked by one `python3` at the end, when there is one);
//! - an arbitrary version 1 state migrates to version 2 keeping every key and value it had,
//!   and gains exactly the version 2 keys;
//! - floats (any bits, and values halfway between two shortest spellings) are spelled as
//!   Python's `repr` spells them;
//! - the lazy load of an update (entries kept as their text) gives the state the full parse
//!   gives, and the same bytes when written, changed or not; on a damaged file it fails when
//!   and as the full parse fails.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::sync::{Arc, Mutex};

use mamfast::state::migrate::migrate;
use mamfast::store::format::{parse_state, parse_state_lazy, to_python_json, write_state};
use mamfast::{FailedEntry, ProcessedEntry, State};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Number, Value};

/// Any string: every Unicode scalar value is possible, control characters, quotes and
/// backslashes included.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter),
        "[ -~]{0,12}",
        Just("a\"b\\c\n\t\u{1}\u{7f}\u{2028}é“”".to_string()),
    ]
}

/// Any JSON value, nested up to three levels: floats, integers beyond 64 bits, any strings.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "-?[1-9][0-9]{19,40}".prop_map(|digits| Value::Number(digits.parse::<Number>().unwrap())),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        (-1e6f64..1e6).prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        any_text(10).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any_text(6), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Unknown keys for an object whose known keys are `known`.
fn unknown_keys(known: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(any_text(8), any_json(), 0..3).prop_map(move |m| {
        m.into_iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .collect()
    })
}

/// A known key: missing (`None`), `null`, or a value from `value`.
fn known<S: Strategy<Value = Value>>(value: S) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        3 => value.prop_map(Some),
    ]
}

fn text_value() -> impl Strategy<Value = Value> {
    any_text(16).prop_map(Value::String)
}

fn status_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "DISCOVERED",
            "STAGED",
            "METADATA_FETCHED",
            "TORRENT_CREATED",
            "UPLOADED",
            "COMPLETE",
            "FAILED",
        ])
        .prop_map(Value::from),
        text_value(),
    ]
}

/// An object from known keys (each with its strategy) and unknown keys.
fn object(
    fields: Vec<(&'static str, BoxedStrategy<Option<Value>>)>,
    unknown: Map<String, Value>,
) -> impl Strategy<Value = Value> {
    let (keys, values): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
    values.prop_map(move |values| {
        let mut object = unknown.clone();
        for (key, value) in keys.iter().zip(values) {
            if let Some(value) = value {
                object.insert(key.to_string(), value);
            }
        }
        Value::Object(object)
    })
}

fn checkpoints() -> impl Strategy<Value = Value> {
    unknown_keys(mamfast::Checkpoints::KEYS).prop_flat_map(|unknown| {
        let fields = mamfast::Checkpoints::KEYS
            .iter()
            .map(|k| (*k, known(text_value()).boxed()))
            .collect();
        object(fields, unknown)
    })
}

/// A processed entry; without the keys version 2 added when `v1`.
fn processed_entry(v1: bool) -> impl Strategy<Value = Value> {
    unknown_keys(ProcessedEntry::KEYS).prop_flat_map(move |unknown| {
        let fields = ProcessedEntry::KEYS
            .iter()
            .filter(|k| !(v1 && matches!(**k, "checkpoints" | "infohash")))
            .map(|k| {
                let value = match *k {
                    "status" => known(status_value()).boxed(),
                    "checkpoints" => known(checkpoints()).boxed(),
                    _ => known(text_value()).boxed(),
                };
                (*k, value)
            })
            .collect();
        object(fields, unknown)
    })
}

/// A failed entry; without the keys version 2 added when `v1`.
fn failed_entry(v1: bool) -> impl Strategy<Value = Value> {
    unknown_keys(FailedEntry::KEYS).prop_flat_map(move |unknown| {
        let fields = FailedEntry::KEYS
            .iter()
            .filter(|k| !(v1 && matches!(**k, "first_failed_at" | "error_type" | "author")))
            .map(|k| {
                let value = match *k {
                    "retry_count" => known(any::<u64>().prop_map(Value::from)).boxed(),
                    _ => known(text_value()).boxed(),
                };
                (*k, value)
            })
            .collect();
        object(fields, unknown)
    })
}

/// A whole state file's data. `version`: `None` leaves the key out.
fn state_value(version: Option<u64>, v1: bool) -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(any_text(12), processed_entry(v1), 0..5),
        prop::collection::btree_map(any_text(12), failed_entry(v1), 0..4),
        unknown_keys(&["version", "processed", "failed"]),
    )
        .prop_map(move |(processed, failed, mut top)| {
            let entries = |m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect());
            top.insert("processed".into(), entries(processed));
            top.insert("failed".into(), entries(failed));
            if let Some(version) = version {
                top.insert("version".into(), version.into());
            }
            Value::Object(top)
        })
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn states_round_trip_byte_for_byte_and_as_python_writes_them() {
    let written: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = written.clone();
    let strategy = prop_oneof![state_value(Some(2), false), state_value(Some(1), false)];
    runner()
        .run(&strategy, move |value| {
            // The file as the Python layout has it (serde's writer on the plain JSON value).
            let file = to_python_json(&value);
            let state = parse_state(&file).map_err(TestCaseError::fail)?;
            let mut direct = Vec::new();
            write_state(&mut direct, &state).unwrap();
            prop_assert!(direct == file, "direct writer differs");
            prop_assert!(to_python_json(&state) == file, "serde writer differs");
            let again = parse_state(&direct).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&again, &state);
            sink.lock().unwrap().push(file);
            Ok(())
        })
        .unwrap();

    if !crate::support::cli::python3("the comparison with Python's bytes") {
        return;
    }
    let files = written.lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, bytes) in files.iter().enumerate() {
        fs::write(dir.path().join(format!("{i}.json")), bytes).unwrap();
    }
    let script = r#"
import json, os, sys
bad = []
for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True) != text:
        bad.append(name)
print(len(os.listdir(sys.argv[1])), " ".join(bad))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    let (count, bad) = report
        .trim_end()
        .split_once(' ')
        .unwrap_or((report.trim(), ""));
    assert_eq!(count, files.len().to_string());
    if let Some(first) = bad.split_whitespace().next() {
        let i: usize = first.trim_end_matches(".json").parse().unwrap();
        panic!(
            "Python writes other bytes for {bad}; the first:\n{}",
            String::from_utf8_lossy(&files[i])
        );
    }
}

#[test]
fn floats_are_spelled_as_python_spells_them() {
    // Any bits, and values halfway between two shortest spellings (exact binary fractions
    // with 17 or 18 digits), where Python's `repr` takes the even last digit.
    let mut rng = mamfast::sample::Rng::new(0xf10a7);
    let mut floats: Vec<f64> = Vec::new();
    while floats.len() < 20_000 {
        let bits = f64::from_bits(rng.next_u64());
        if bits.is_finite() {
            floats.push(bits);
        }
        let whole = (rng.next_u64() % 1_000_000_000_000_000) as f64;
        let eighths = (rng.below(8) as f64) / 8.0;
        floats.push(-(whole + eighths));
        floats.push((rng.next_u64() >> 11) as f64 / f64::from(1u32 << rng.below(30)));
    }
    let spelled: Vec<String> = floats
        .iter()
        .map(|f| mamfast::store::format::python_float(*f))
        .collect();
    for (f, text) in floats.iter().zip(&spelled) {
        assert_eq!(text.parse::<f64>().ok(), Some(*f), "{text} is not {f:?}");
    }
    if !crate::support::cli::python3("the comparison with Python's repr") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("floats.txt");
    fs::write(&list, spelled.join("\n")).unwrap();
    let script = "import sys\n\
                  bad = [t for t in open(sys.argv[1]).read().split() if repr(float(t)) != t]\n\
                  print(len(bad), *[repr(float(t)) + ' not ' + t for t in bad[:5]])";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&list)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && report.starts_with("0"), "{report}");
}

/// `object` as a JSON object (`{}` for anything else).
fn written(state: &State) -> Vec<u8> {
    let mut out = Vec::new();
    write_state(&mut out, state).unwrap();
    out
}

#[test]
fn lazily_loaded_states_are_the_fully_parsed_ones_and_write_the_same_bytes() {
    // How many cases kept entries as text: the property must be about the lazy path, not
    // only about its fallback to the full parse.
    let kept_as_text = Arc::new(Mutex::new((0usize, 0usize)));
    let count = kept_as_text.clone();
    runner()
        .run(&state_value(Some(2), false), move |value| {
            let file = to_python_json(&value);
            let full = parse_state(&file).map_err(TestCaseError::fail)?;
            let mut lazy = parse_state_lazy(file.clone()).map_err(TestCaseError::fail)?;
            {
                let mut count = count.lock().unwrap();
                count.0 += 1;
                count.1 += usize::from(lazy.processed.unparsed() + lazy.failed.unparsed() > 0);
            }
            prop_assert!(
                written(&lazy) == file,
                "unchanged lazy state written differently"
            );
            prop_assert_eq!(&lazy, &full);
            // One entry changed, the others left as text.
            let mut full = full;
            let first = full.processed.keys().next().cloned();
            if let Some(id) = first {
                for state in [&mut full, &mut lazy] {
                    state.processed.get_mut(&id).unwrap().title = Some("changed \"é\"".into());
                }
            }
            let last = full.failed.keys().next_back().cloned();
            if let Some(id) = last {
                for state in [&mut full, &mut lazy] {
                    state.failed.remove(&id);
                }
            }
            prop_assert!(
                written(&lazy) == written(&full),
                "changed states written differently"
            );
            Ok(())
        })
        .unwrap();
    let (cases, lazy) = *kept_as_text.lock().unwrap();
    eprintln!("{lazy} of {cases} states kept entries as text in the lazy load");
    assert!(
        lazy * 2 > cases,
        "only {lazy} of {cases} cases kept entries as text"
    );
}

#[test]
fn on_a_damaged_file_the_lazy_load_agrees_with_the_full_parse() {
    const BYTES: &[u8] = b" \n\"\\,:{}[]0-.eEa\x01\xc3";
    let damage = (
        any::<prop::sample::Index>(),
        0..3u8,
        prop::sample::select(BYTES),
    );
    runner()
        .run(
            &(state_value(Some(2), false), damage),
            |(value, (at, how, byte))| {
                let mut file = to_python_json(&value);
                let at = at.index(file.len());
                match how {
                    0 => {
                        file.remove(at);
                    }
                    1 => file.insert(at, byte),
                    _ => file[at] = byte,
                }
                match (parse_state(&file), parse_state_lazy(file.clone())) {
                    (Ok(full), Ok(lazy)) => {
                        prop_assert!(written(&lazy) == written(&full), "written differently");
                        prop_assert_eq!(lazy, full);
                    }
                    (Err(full), Err(lazy)) => prop_assert_eq!(lazy, full),
                    (full, lazy) => prop_assert!(
                        false,
                        "full parse {:?}, lazy load {:?}",
                        full.map(|_| "ok"),
                        lazy.map(|_| "ok")
                    ),
                }
                Ok(())
            },
        )
        .unwrap();
}

fn fields(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[test]
fn version_1_states_migrate_to_version_2_keeping_every_key_and_value() {
    let strategy = prop_oneof![state_value(Some(1), true), state_value(None, true)];
    runner()
        .run(&strategy, |v1| {
            // As read back from its file: numbers spelled as Python spells them.
            let file = to_python_json(&v1);
            let v1: Value = serde_json::from_slice(&file).unwrap();
            let mut state: State = serde_json::from_slice(&file).unwrap();
            prop_assert_eq!(state.version, 1);
            prop_assert_eq!(migrate(&mut state), Ok(true));
            let v2: Value = serde_json::from_slice(&to_python_json(&state)).unwrap();
            prop_assert_eq!(&v2["version"], &Value::from(2));
            for (key, value) in fields(&v1) {
                if !matches!(key.as_str(), "processed" | "failed" | "version") {
                    prop_assert_eq!(&v2[&key], &value);
                }
            }
            for (kind, added) in [
                ("processed", &["checkpoints", "infohash"][..]),
                ("failed", &["first_failed_at", "error_type", "author"][..]),
            ] {
                let old = fields(&v1[kind]);
                let new = fields(&v2[kind]);
                prop_assert_eq!(old.len(), new.len());
                for (id, entry) in &old {
                    let old_entry = fields(entry);
                    let new_entry = fields(&new[id]);
                    for (key, value) in &old_entry {
                        prop_assert_eq!(&new_entry[key], value, "{} {} {}", kind, id, key);
                    }
                    for key in added {
                        prop_assert!(
                            new_entry.contains_key(*key),
                            "{} {} lacks {}",
                            kind,
                            id,
                            key
                        );
                    }
                    let gained: Vec<&String> = new_entry
                        .keys()
                        .filter(|k| !old_entry.contains_key(*k))
                        .collect();
                    prop_assert!(gained.iter().all(|k| added.contains(&k.as_str())));
                    match kind {
                        "processed" => {
                            prop_assert_eq!(&new_entry["checkpoints"], &serde_json::json!({}));
                            prop_assert_eq!(&new_entry["infohash"], &Value::Null);
                        }
                        _ => {
                            let failed_at = old_entry.get("failed_at").cloned();
                            prop_assert_eq!(
                                &new_entry["first_failed_at"],
                                &failed_at.unwrap_or(Value::Null)
                            );
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
