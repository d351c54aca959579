//! `MAMFAST_INJECT_FAULT`, the testing aid for end-to-end tests of the binary.
//!
//! A test binary of its own, apart from `tests/integration/`: it sets the variable in its own
//! process environment, where every `Store` of a shared binary would read it and fail.

use std::fs;

use mamfast::{Outcome, Store, StoreOptions};

#[test]
fn the_environment_variable_injects_a_fault_and_a_bad_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processed.json");
    fs::write(&path, br#"{"version": 2}"#).unwrap();

    std::env::set_var("MAMFAST_INJECT_FAULT", "fsync-dir");
    let store = Store::new(&path, StoreOptions::default());
    let err = store.update(|_| Ok(Outcome::Changed(()))).unwrap_err();
    assert_eq!(err.exit_code(), 74);
    assert!(
        err.to_string().contains("injected fault at fsync-dir"),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), br#"{"version": 2}"#);

    std::env::set_var("MAMFAST_INJECT_FAULT", "no-rename-exchange, Write");
    let store = Store::new(&path, StoreOptions::default());
    assert_eq!(
        store
            .update(|_| Ok(Outcome::Changed(())))
            .unwrap_err()
            .exit_code(),
        74
    );

    std::env::set_var("MAMFAST_INJECT_FAULT", "fsync-everything");
    let store = Store::new(&path, StoreOptions::default());
    let err = store.read().unwrap_err();
    assert_eq!(err.exit_code(), 78);
    assert!(err.to_string().contains("fsync-everything"), "{err}");

    std::env::remove_var("MAMFAST_INJECT_FAULT");
    let store = Store::new(&path, StoreOptions::default());
    store.update(|_| Ok(Outcome::Changed(()))).unwrap();
    assert!(fs::read(&path).unwrap().starts_with(b"{\n  \"failed\""));
}
