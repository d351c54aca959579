//! The options that select entries (`state list`; any command that selects entries can
//! `#[command(flatten)]` them). The selection itself is [`mamfast::state::select::Filter`].

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use clap::Args;

use super::checkpoint::parse_stage;
use super::mark::parse_status;
use mamfast::config::parse_duration;
use mamfast::error::{Error, Result};
use mamfast::state::select::Filter;
use mamfast::state::{Stage, Status};

#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Filters (all given must match)")]
pub struct FilterArgs {
    /// Processed entries with this status (repeatable: any of them)
    #[arg(long, value_name = "S", value_parser = parse_status)]
    pub status: Vec<Status>,
    /// Processed entries whose last checkpoint reached is this stage
    #[arg(long, value_name = "STAGE", value_parser = parse_stage)]
    pub stage: Option<Stage>,
    /// Failed entries with this error type
    #[arg(long, value_name = "T")]
    pub error_type: Option<String>,
    /// Processed entries with this torrent infohash
    #[arg(long, value_name = "H")]
    pub infohash: Option<String>,
    /// Entries whose ID, title or author contains TEXT (case-insensitive)
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Entries processed/failed longer ago than this (30d, 12h, 2w, or days)
    #[arg(long, value_name = "DUR", value_parser = parse_age)]
    pub older_than: Option<Duration>,
    /// Entries processed/failed within this (30d, 12h, 2w, or days)
    #[arg(long, value_name = "DUR", value_parser = parse_age)]
    pub newer_than: Option<Duration>,
}

/// A duration on the command line: as the configuration reads one, a bare number in days.
pub fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    parse_duration(text, true)
}

impl FilterArgs {
    /// The filter these options select, times measured back from `now`. Options that select
    /// processed entries and options that select failed ones cannot be combined (no entry
    /// could match): that is a usage error.
    pub fn to_filter(&self, now: DateTime<FixedOffset>) -> Result<Filter> {
        let filter = Filter {
            statuses: self.status.clone(),
            stage: self.stage,
            infohash: self.infohash.clone(),
            error_type: self.error_type.clone(),
            grep: self.grep.clone(),
            before: self.older_than.map(|d| back(now, d)),
            since: self.newer_than.map(|d| back(now, d)),
        };
        let (processed, failed) = (filter.processed_only(), filter.failed_only());
        if let (Some(p), Some(f)) = (processed.first(), failed.first()) {
            return Err(Error::Usage(format!(
                "{p} selects processed entries and {f} failed ones: no entry can match both; \
                 list each kind on its own"
            )));
        }
        Ok(filter)
    }
}

/// `now - d`, or the earliest time there is when that is before it.
fn back(now: DateTime<FixedOffset>, d: Duration) -> DateTime<FixedOffset> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or_else(|| {
            Utc.from_utc_datetime(&DateTime::<Utc>::MIN_UTC.naive_utc())
                .fixed_offset()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_units_or_days() {
        assert_eq!(parse_age("2"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert!(parse_age("soon").is_err());
    }

    #[test]
    fn times_count_back_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T10:00:00+00:00").unwrap();
        let args = FilterArgs {
            older_than: Some(Duration::from_secs(86400)),
            newer_than: Some(Duration::from_secs(u64::MAX)),
            ..FilterArgs::default()
        };
        let filter = args.to_filter(now).unwrap();
        assert_eq!(
            filter.before,
            Some(DateTime::parse_from_rfc3339("2026-11-25T10:00:00+00:00").unwrap())
        );
        assert!(filter.since.unwrap() < now);
    }

    #[test]
    fn kinds_that_cannot_both_match_are_refused() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T10:00:00+00:00").unwrap();
        let args = FilterArgs {
            stage: Some(Stage::Staged),
            error_type: Some("X".into()),
            ..FilterArgs::default()
        };
        let err = args.to_filter(now).unwrap_err().to_string();
        assert!(
            err.contains("--stage") && err.contains("--error-type"),
            "{err}"
        );
    }
}
