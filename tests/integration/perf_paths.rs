//! The fast read path of `state list`: a file in the writer's layout is listed from views of
//! its entries' text (no entry parsed whole but those shown); anything else falls back to the
//! full Python-compatible load. Both must print exactly the same thing.

use std::path::Path;

use mamfast::sample;
use mamfast::state::view::{FailedView, ProcessedView};
use mamfast::state::State;
use mamfast::store::format::to_python_json;
use mamfast::{Store, StoreOptions};

use crate::support::cli::{mamfast, run, Run};

const NOW: &str = "2026-11-26T10:00:00+00:00";

fn list(state: &Path, args: &[&str]) -> Run {
    let mut cmd = mamfast(state);
    cmd.env("MAMFAST_NOW", NOW);
    run(cmd, ["state", "list"].iter().chain(args))
}

/// What `state list` is asked in these tests: every filter, counts, JSON and limits.
const QUERIES: &[&[&str]] = &[
    &[],
    &["--limit", "all"],
    &["--limit", "3"],
    &["--processed"],
    &["--failed", "--limit", "5"],
    &["--status", "uploaded"],
    &["--status", "staged", "--status", "complete", "--limit", "7"],
    &["--stage", "torrent"],
    &["--error-type", "audnexerror"],
    &["--grep", "ÉT"],
    &["--grep", "b0"],
    &["--newer-than", "30d"],
    &["--older-than", "400d", "--limit", "all"],
    &["--counts"],
    &["--counts", "--json"],
    &["--counts", "--status", "complete"],
    &["--json", "--limit", "4"],
    &["--json", "--grep", "a", "--limit", "3"],
];

/// Lists `a` and `b` with every query and asserts the same output, error output and code.
fn same_lists(a: &Path, b: &Path) {
    for query in QUERIES {
        let (x, y) = (list(a, query), list(b, query));
        assert_eq!(x.code, y.code, "{query:?}\n{x:#?}\n{y:#?}");
        assert_eq!(x.stdout, y.stdout, "{query:?}");
        let unnamed =
            |run: &Run, path: &Path| run.stderr.replace(&path.display().to_string(), "STATE");
        assert_eq!(unnamed(&x, a), unnamed(&y, b), "{query:?}");
    }
}

fn state() -> State {
    let mut state = sample::realistic_state(400, 7);
    // Strings with escapes (not borrowed from the file) and text to grep without case.
    let first = first_id(&state);
    let entry = state.processed.get_mut(&first).unwrap();
    entry.title = Some("L'\"été\"\tÉTÉ \\ end".into());
    state
}

fn first_id(state: &State) -> String {
    state.processed.keys().next().unwrap().clone()
}

#[test]
fn a_canonical_file_is_listed_without_parsing_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    std::fs::write(&path, to_python_json(&sample::realistic_state(300, 3))).unwrap();
    let store = Store::new(&path, StoreOptions::default());
    let state = store.read_lazy().unwrap();
    let total = state.processed.len() + state.failed.len();
    assert_eq!(state.processed.unparsed() + state.failed.unparsed(), total);
    let titled = state
        .processed
        .views::<ProcessedView>()
        .filter(|(_, v)| v.title.is_some())
        .count();
    let failed_at = state
        .failed
        .views::<FailedView>()
        .filter(|(_, v)| v.failed_at.is_some())
        .count();
    assert!(titled > 0 && failed_at > 0);
    // Looked at through views: still not one entry parsed, nor kept.
    assert_eq!(state.processed.unparsed() + state.failed.unparsed(), total);
    // The views agree with the entries parsed whole.
    let parsed = store.read().unwrap();
    assert_eq!(
        titled,
        parsed
            .processed
            .values()
            .filter(|e| e.title.is_some())
            .count()
    );
}

#[test]
fn a_file_in_another_layout_is_listed_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let state = state();
    let canonical = dir.path().join("canonical.json");
    std::fs::write(&canonical, to_python_json(&state)).unwrap();
    // Compact JSON: Python reads it alike, the writer's layout it is not (full load).
    let compact = dir.path().join("compact.json");
    std::fs::write(&compact, serde_json::to_vec(&state).unwrap()).unwrap();
    let lazy = Store::new(&compact, StoreOptions::default())
        .read_lazy()
        .unwrap();
    assert_eq!(
        lazy.processed.unparsed(),
        0,
        "the compact file is loaded in full"
    );
    assert!(list(&canonical, &[]).stdout.contains("Processed: "));
    same_lists(&canonical, &compact);
}

/// `text` with `from` replaced once by `to` (which must be there).
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn duplicate_ids_nan_and_big_numbers_fall_back_to_the_python_reading() {
    let dir = tempfile::tempdir().unwrap();
    let state = state();
    let id = first_id(&state);
    let text = String::from_utf8(to_python_json(&state)).unwrap();
    let plain = dir.path().join("plain.json");
    std::fs::write(&plain, &text).unwrap();

    // A duplicate ID: the last one wins, as in Python; the first is what the plain file lacks.
    let key = format!("\n    {}: {{", serde_json::to_string(&id).unwrap());
    let dup = replaced(
        &text,
        &key,
        &format!("{key}\n      \"title\": \"first, overridden\"\n    }},{key}"),
    );
    let dup_path = dir.path().join("dup.json");
    std::fs::write(&dup_path, dup).unwrap();
    same_lists(&plain, &dup_path);

    // NaN, Infinity and a big integer under unknown keys (list shows none of them).
    let odd = replaced(
        &text,
        &key,
        &format!("{key}\n      \"a_nan\": NaN,\n      \"a_inf\": -Infinity,\n      \"a_big\": 123456789012345678901234567890,"),
    );
    let odd_path = dir.path().join("odd.json");
    std::fs::write(&odd_path, odd).unwrap();
    // Listed alike; the entry holding NaN is named on stderr, as the full load names it.
    for query in QUERIES {
        let (x, y) = (list(&plain, query), list(&odd_path, query));
        assert_eq!((x.code, &x.stdout), (y.code, &y.stdout), "{query:?}");
        assert!(y.stderr.contains("NaN") && y.stderr.contains(&id), "{y:#?}");
    }
}

#[test]
fn an_unusable_entry_is_listed_as_the_full_load_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = state();
    let failed_id = state.failed.keys().next().unwrap().clone();
    state.failed.get_mut(&failed_id).unwrap().retry_count = None;
    let text = String::from_utf8(to_python_json(&state)).unwrap();
    let plain = dir.path().join("plain.json");
    std::fs::write(&plain, &text).unwrap();
    // The same entry with a retry count Python reads but mamfast cannot use: kept as it is,
    // shown without it, and named on stderr.
    let key = format!("\n    {}: {{", serde_json::to_string(&failed_id).unwrap());
    // (Its retry count is written as null: the key was read, and is kept.)
    let at = text.find(&key).unwrap();
    let bad = format!(
        "{}{}",
        &text[..at],
        replaced(
            &text[at..],
            "\"retry_count\": null",
            "\"retry_count\": \"3\""
        )
    );
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, bad).unwrap();
    let (ok, kept) = (
        list(&plain, &["--limit", "all"]),
        list(&bad_path, &["--limit", "all"]),
    );
    kept.expect_code(0, "an unusable entry is listed");
    assert_eq!(ok.stdout, kept.stdout);
    assert!(kept.stderr.contains(&failed_id), "{kept:#?}");
    assert!(kept.stderr.contains("retry_count"), "{kept:#?}");
}

#[test]
fn a_corrupt_main_file_is_listed_from_its_backup() {
    let dir = tempfile::tempdir().unwrap();
    let text = to_python_json(&state());
    let plain = dir.path().join("plain.json");
    std::fs::write(&plain, &text).unwrap();
    let main = dir.path().join("processed.json");
    std::fs::write(&main, &text[..text.len() / 2]).unwrap();
    std::fs::write(dir.path().join("processed.json.bak"), &text).unwrap();
    let recovered = list(&main, &["--limit", "all"]);
    recovered.expect_code(0, "recovered from .bak");
    assert_eq!(recovered.stdout, list(&plain, &["--limit", "all"]).stdout);
    assert!(recovered.stderr.contains(".bak"), "{recovered:#?}");
    // Repaired on disk (the corrupt file kept aside), as before.
    assert_eq!(std::fs::read(&main).unwrap(), text);
    let kept_aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("corrupt")
        })
        .count();
    assert_eq!(kept_aside, 1);
}
