//! Runs the transcripts in `cmd-tests/`: every command's output as an operator sees it.
//!
//! Hermetic: the variables a developer's shell may carry (`MAMFAST_*`, `XDG_*`, `NO_COLOR`,
//! `CLICOLOR*`, `COLUMNS`) are removed before any case runs, `HOME` points at a directory that does not
//! exist, the clock is fixed (`MAMFAST_NOW`, `TZ=UTC`) and so is the width (`COLUMNS`).
//! Each case with a `.in/` directory runs in a sandboxed copy of it (`.out/` holds the files
//! expected afterwards). Besides `mamfast`, a case may run the helpers of `cmd-tests/bin/`
//! registered below: `hold-lock` (runs mamfast while the lock is held), `list-files` and
//! `checksum` (SHA-256 of files, for bytes that trycmd would compare loosely), `set-mtime`
//! (`touch -d`: when a backup generation counts as written).
//!
//! `CMD_TESTS_BIN=PATH` runs them against another build of mamfast (CI runs them against the
//! static-pie build the README offers), else against the one cargo just built.
//!
//! A test binary of its own, apart from `tests/integration/`: it removes variables from its
//! own process environment, which would race with every other test of a shared binary.

#[test]
fn cli_transcripts() {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let colour = [
            "NO_COLOR",
            "CLICOLOR",
            "CLICOLOR_FORCE",
            "_MAMFAST_COMPLETE",
        ];
        if key.starts_with("MAMFAST_") || key.starts_with("XDG_") || colour.contains(&key.as_str())
        {
            std::env::remove_var(&key);
        }
    }
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cmd-tests/bin");
    let path = format!("{}:/usr/bin:/bin", plugins.display());
    // Helpers a case may run besides mamfast (trycmd silently skips a command it cannot
    // resolve, so each one is registered by path).
    let helpers =
        ["checksum", "hold-lock", "list-files", "set-mtime"].map(|name| (name, plugins.join(name)));
    let mamfast = std::env::var_os("CMD_TESTS_BIN").map_or_else(
        || env!("CARGO_BIN_EXE_mamfast").into(),
        std::path::PathBuf::from,
    );
    let mamfast = std::fs::canonicalize(&mamfast)
        .unwrap_or_else(|e| panic!("CMD_TESTS_BIN {}: {e}", mamfast.display()));
    trycmd::TestCases::new()
        .register_bin("mamfast", &mamfast)
        .register_bins(helpers)
        .env("CMD_TESTS_MAMFAST", mamfast.display().to_string())
        .env("HOME", "/nonexistent/home")
        .env("TZ", "UTC")
        .env("COLUMNS", "100")
        .env("MAMFAST_NOW", "2026-11-26T10:00:00+00:00")
        .env("PATH", path)
        .case("cmd-tests/*.trycmd")
        .case("cmd-tests/*.toml");
}
