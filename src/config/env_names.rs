//! The `MAMFAST_*` names mamfast knows: a variable with that prefix and any other name is a
//! typo (`MAMFAST_FAILED_TLL`), an error as an unknown config key is, so that a timer's
//! mistyped setting does not silently fall back to the default.

use super::files::CONFIG_VAR;
use super::key::Key;
use crate::error::{Error, Result};
use crate::suggest;

const PREFIX: &str = "MAMFAST_";

/// Names that are not settings but that mamfast sets or reads: what it hands a plugin besides
/// the settings (README, *Plugins*), so that a nested mamfast accepts them, and the test-only
/// switches (CONTRIBUTING.md, *Switches for tests only*).
const OTHER_KNOWN: [&str; 7] = [
    "MAMFAST_BIN",
    "MAMFAST_PLUGIN_API",
    "MAMFAST_QUIET",
    "MAMFAST_VERBOSE",
    "MAMFAST_COLOR",
    "MAMFAST_NOW",
    "MAMFAST_INJECT_FAULT",
];

/// The variables that set something: every key's, and `MAMFAST_CONFIG`.
fn settings_vars() -> impl Iterator<Item = &'static str> {
    std::iter::once(CONFIG_VAR).chain(Key::ALL.into_iter().map(Key::env_var))
}

fn is_known(name: &str) -> bool {
    settings_vars()
        .chain(OTHER_KNOWN)
        .any(|known| known == name)
}

/// Refuses (exit 78) every variable in `names` that starts with `MAMFAST_` (in any case) and
/// is not one of mamfast's, naming the nearest known one.
pub(super) fn check<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let unknown: Vec<&str> = names
        .into_iter()
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            upper.starts_with(PREFIX) && !is_known(name)
        })
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "unknown environment variable{}:",
        if unknown.len() == 1 { "" } else { "s" }
    );
    for name in &unknown {
        msg.push_str(&format!("\n  {name}"));
        if let Some(best) = nearest(name) {
            msg.push_str(&format!(" (did you mean {best}?)"));
        }
    }
    msg.push_str(&format!(
        "\nknown variables: {}\nFix or unset {}: mamfast does not guess what a variable was \
         meant to be (the names starting with MAMFAST_ are mamfast's).",
        settings_vars().collect::<Vec<_>>().join(", "),
        if unknown.len() == 1 { "it" } else { "them" }
    ));
    Err(Error::Config(msg))
}

/// The known name nearest to `name`, compared without the prefix they all share (which
/// would make every pair look alike) and without regard to case.
fn nearest(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    let tail = upper.strip_prefix(PREFIX).unwrap_or(&upper);
    let score =
        |known: &str| suggest::similarity(tail, known.strip_prefix(PREFIX).unwrap_or(known));
    let exact_but_case = settings_vars()
        .chain(OTHER_KNOWN)
        .find(|known| *known == upper);
    exact_but_case.or_else(|| suggest::nearest(settings_vars().chain(OTHER_KNOWN), score))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_variable_is_refused_with_the_nearest_name() {
        let err = check(["PATH", "MAMFAST_FAILED_TLL"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MAMFAST_FAILED_TLL (did you mean MAMFAST_FAILED_TTL?)"),
            "{err}"
        );
        let err = check(["mamfast_state_file"]).unwrap_err().to_string();
        assert!(err.contains("(did you mean MAMFAST_STATE_FILE?)"), "{err}");
        assert!(nearest("MAMFAST_ZZZZZZZ").is_none());
    }

    #[test]
    fn every_name_mamfast_sets_or_reads_is_known() {
        let known: Vec<&str> = settings_vars().chain(OTHER_KNOWN).collect();
        assert!(check(known).is_ok());
        assert!(check(["HOME", "MAMFASTX", "XDG_STATE_HOME"]).is_ok());
    }
}
