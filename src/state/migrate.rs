//! Schema migrations: a chain of one-step functions, v(n) → v(n+1) (docs/FORMAT.md, *Versions*).
//!
//! To add version 3: write `v2_to_v3`, append it to `STEPS`, and bump
//! [`CURRENT_VERSION`]. Nothing else changes.

use super::model::{Checkpoints, FailedKey, ProcessedKey, State, CURRENT_VERSION};

/// `STEPS[i]` migrates a version `i + 1` state to version `i + 2`.
const STEPS: &[fn(&mut State)] = &[v1_to_v2];

// A step per version gap, or the chain would skip one.
const _: () = assert!(STEPS.len() as u64 == CURRENT_VERSION - 1);

/// Why a state cannot be brought to the current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooNew {
    pub found: u64,
    pub supported: u64,
}

/// Brings `state` to [`CURRENT_VERSION`], one step at a time. Returns whether anything ran.
/// A version newer than this build knows is refused and the state left as it is.
pub fn migrate(state: &mut State) -> Result<bool, TooNew> {
    if state.version > CURRENT_VERSION {
        return Err(TooNew {
            found: state.version,
            supported: CURRENT_VERSION,
        });
    }
    let start = state.version;
    while state.version < CURRENT_VERSION {
        STEPS[(state.version - 1) as usize](state);
        state.version += 1;
    }
    Ok(state.version != start)
}

/// Version 2 added checkpoints and infohash to processed entries, and `first_failed_at`,
/// `error_type` and `author` to failed entries.
fn v1_to_v2(state: &mut State) {
    for entry in state.processed.values_mut() {
        if !entry.has_key(ProcessedKey::Checkpoints) {
            entry.checkpoints = Some(Checkpoints::default());
        }
        entry.mark_present(ProcessedKey::Checkpoints);
        entry.mark_present(ProcessedKey::Infohash);
    }
    for entry in state.failed.values_mut() {
        if !entry.has_key(FailedKey::FirstFailedAt) {
            entry.first_failed_at = entry.failed_at.clone();
        }
        for key in [
            FailedKey::FirstFailedAt,
            FailedKey::ErrorType,
            FailedKey::Author,
        ] {
            entry.mark_present(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_gains_the_v2_fields() {
        let text = r#"{"version": 1,
            "processed": {"A": {"title": "t", "status": "STAGED"}},
            "failed": {"F": {"failed_at": "2025-01-01T00:00:00", "retry_count": 2}}}"#;
        let mut state: State = serde_json::from_str(text).unwrap();
        assert_eq!(migrate(&mut state), Ok(true));
        assert_eq!(state.version, 2);
        let a = &state.processed["A"];
        assert_eq!(a.checkpoints, Some(Checkpoints::default()));
        assert!(a.has_key(ProcessedKey::Infohash) && a.infohash.is_none());
        let f = &state.failed["F"];
        assert_eq!(f.first_failed_at.as_deref(), Some("2025-01-01T00:00:00"));
        assert!(f.has_key(FailedKey::ErrorType) && f.has_key(FailedKey::Author));
        assert_eq!(f.retry_count, Some(2));
    }

    #[test]
    fn a_current_file_is_left_alone() {
        let mut state = State::default();
        assert_eq!(migrate(&mut state), Ok(false));
    }

    #[test]
    fn a_newer_version_is_refused_and_left_as_it_is() {
        let mut state = State {
            version: 3,
            ..State::default()
        };
        let before = state.clone();
        assert_eq!(
            migrate(&mut state),
            Err(TooNew {
                found: 3,
                supported: 2
            })
        );
        assert_eq!(state, before);
    }

    #[test]
    fn existing_v2_values_survive_a_v1_label() {
        let text = r#"{"version": 1, "processed": {"A": {"checkpoints": {"staged_at": "x"}, "infohash": "h"}},
                       "failed": {"F": {"first_failed_at": "early", "failed_at": "late"}}}"#;
        let mut state: State = serde_json::from_str(text).unwrap();
        migrate(&mut state).unwrap();
        assert_eq!(state.processed["A"].infohash.as_deref(), Some("h"));
        assert_eq!(
            state.processed["A"].checkpoint(crate::state::Stage::Staged),
            Some("x")
        );
        assert_eq!(state.failed["F"].first_failed_at.as_deref(), Some("early"));
    }
}
