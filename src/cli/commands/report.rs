//! What a write command reports with `--json`, so that a program calling it never parses
//! English: the entry a command recorded and which of its keys changed, and an error as
//! fields (a refused transition with its current, requested and allowed statuses).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::Ctx;
use mamfast::error::{Error, Result};
use mamfast::state::{State, Status};
use mamfast::store::Outcome;

/// What `mark-processed`, `mark-failed` and `checkpoint` did to one entry.
#[derive(Debug, Serialize)]
pub struct EntryReport {
    pub command: &'static str,
    pub id: String,
    pub dry_run: bool,
    /// The entry did not exist before.
    pub created: bool,
    /// The entry's keys whose value changed (added, removed or different), sorted.
    pub changed: Vec<String>,
    /// The entry as it is now (in a dry run: as it would be).
    pub entry: Value,
}

impl EntryReport {
    pub fn new(
        ctx: &Ctx,
        command: &'static str,
        id: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> EntryReport {
        let object = |v: &Option<Value>| match v {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        let (old, new) = (object(&before), object(&after));
        let mut changed: Vec<String> = old
            .keys()
            .chain(new.keys())
            .filter(|key| old.get(*key) != new.get(*key))
            .cloned()
            .collect();
        changed.sort();
        changed.dedup();
        EntryReport {
            command,
            id: id.to_string(),
            dry_run: ctx.dry_run(),
            created: before.is_none(),
            changed,
            entry: after.unwrap_or(Value::Null),
        }
    }

    /// The entry's `status` (a missing one is `COMPLETE`).
    pub fn status(&self) -> Option<String> {
        match self.entry.get("status") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => Some(Status::Complete.to_string()),
        }
    }

    pub fn retry_count(&self) -> Option<u64> {
        self.entry.get("retry_count").and_then(Value::as_u64)
    }
}

/// Changes one entry in one update (`change`) and reports it: its value, read by `value_of`,
/// before and after. The one shape of `mark-processed`, `mark-failed` and `checkpoint`.
pub fn update_entry(
    ctx: &Ctx,
    command: &'static str,
    id: &str,
    value_of: fn(&State, &str) -> Option<Value>,
    change: impl FnOnce(&mut State) -> Result<()>,
) -> Result<EntryReport> {
    ctx.store().update(|state| {
        let before = value_of(state, id);
        change(state)?;
        let after = value_of(state, id);
        Ok(Outcome::Changed(EntryReport::new(
            ctx, command, id, before, after,
        )))
    })
}

/// The processed entry `id` as JSON, if there is one.
pub fn processed_value(state: &State, id: &str) -> Option<Value> {
    state
        .processed
        .get(id)
        .map(|e| serde_json::to_value(e).expect("an entry is JSON"))
}

/// The failed entry `id` as JSON, if there is one.
pub fn failed_value(state: &State, id: &str) -> Option<Value> {
    state
        .failed
        .get(id)
        .map(|e| serde_json::to_value(e).expect("an entry is JSON"))
}

/// An error as `--json` reports it on stdout (the message still goes to stderr, the exit code
/// is the error's): `{"error": {"kind", "exit_code", "message", …}}`.
#[derive(Debug, Serialize)]
struct ErrorReport<'a> {
    error: ErrorFields<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorFields<'a> {
    kind: &'static str,
    exit_code: i32,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    /// A refused transition: the status the entry has, the one asked for, the allowed ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed: Option<Vec<String>>,
    /// A conflict (`state import --if-token`): the token given and the state's token now.
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

fn kind(err: &Error) -> &'static str {
    match err {
        Error::Usage(_) => "usage",
        Error::Conflict { .. } => "conflict",
        Error::IllegalTransition { .. } => "illegal_transition",
        Error::Corrupt { .. } => "corrupt",
        Error::NewerVersion { .. } => "newer_version",
        Error::Data(_) => "data",
        Error::CannotCreate { .. } => "cannot_create",
        Error::Io { .. } | Error::Stdout(_) => "io",
        Error::LockTimeout { .. } => "lock_timeout",
        Error::LockStuck { .. } => "lock_stuck",
        Error::Config(_) => "config",
        Error::PluginExec(_) => "plugin",
    }
}

/// The statuses allowed from `current`, as a list (itself first).
fn allowed_from(current: &str) -> Vec<String> {
    let status = Status::parse(current);
    let mut names = vec![status.to_string()];
    if let Some(next) = status.successors() {
        names.extend(next.iter().map(Status::to_string));
    }
    names
}

fn error_report(err: &Error) -> ErrorReport<'_> {
    let mut fields = ErrorFields {
        kind: kind(err),
        exit_code: err.exit_code(),
        message: err.to_string(),
        id: None,
        current: None,
        requested: None,
        allowed: None,
        expected_token: None,
        token: None,
    };
    match err {
        Error::IllegalTransition { id, from, to, .. } => {
            fields.id = Some(id);
            fields.current = Some(from);
            fields.requested = Some(to);
            fields.allowed = Some(allowed_from(from));
        }
        Error::Conflict {
            expected, found, ..
        } => {
            fields.expected_token = Some(expected);
            fields.token = Some(found);
        }
        _ => {}
    }
    ErrorReport { error: fields }
}

/// Prints a report on stdout with its keys sorted at every level, as Python's
/// `json.dump(…, sort_keys=True)` writes them (and the state file has them).
pub fn print(ctx: &Ctx, report: &impl Serialize) -> Result<()> {
    let value = serde_json::to_value(report).expect("a report is JSON");
    ctx.console.json(&value)
}

/// Runs `body`; with `--json`, an error is also reported as JSON on stdout before it goes the
/// usual way (its message on stderr, its exit code).
pub fn json_on_error<T>(ctx: &Ctx, json: bool, body: impl FnOnce() -> Result<T>) -> Result<T> {
    let result = body();
    if let (Err(err), true) = (&result, json) {
        // The error is what the caller must hear about; a failed write of the report is not.
        let _ = print(ctx, &error_report(err));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_transition_is_reported_as_fields() {
        let err = Error::IllegalTransition {
            id: "B1".into(),
            from: "STAGED".into(),
            to: "COMPLETE".into(),
            allowed: "STAGED, METADATA_FETCHED".into(),
        };
        let json = serde_json::to_value(error_report(&err)).unwrap();
        assert_eq!(json["error"]["kind"], "illegal_transition");
        assert_eq!(json["error"]["exit_code"], 65);
        assert_eq!(json["error"]["current"], "STAGED");
        assert_eq!(json["error"]["requested"], "COMPLETE");
        assert_eq!(
            json["error"]["allowed"],
            serde_json::json!(["STAGED", "METADATA_FETCHED"])
        );
    }
}
