//! The options that select entries, one definition each, shared by every command that selects
//! entries: `state list` flattens all of them ([`FilterArgs`]); `state retry`, which acts on
//! failed entries, flattens [`FailedFilters`] and [`CommonFilters`]; `state clear`, which acts
//! on processed ones, [`ProcessedFilters`] and [`CommonFilters`]. The selection itself is
//! [`mamfast::state::select::Filter`].

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use clap::Args;

use super::checkpoint::parse_stage;
use super::mark::parse_status;
use mamfast::config::parse_duration;
use mamfast::error::{Error, Result};
use mamfast::state::select::Filter;
use mamfast::state::{Stage, Status};

/// The heading every filter option is listed under in `--help`.
const HEADING: &str = "Filters (all given must match)";

/// The filters of processed entries only.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = HEADING)]
pub struct ProcessedFilters {
    /// Processed entries with this status (repeatable: any of them)
    #[arg(long, value_name = "S", value_parser = parse_status)]
    pub status: Vec<Status>,
    /// Processed entries whose last checkpoint reached is this stage
    #[arg(long, value_name = "STAGE", value_parser = parse_stage)]
    pub stage: Option<Stage>,
    /// Processed entries with this torrent infohash
    #[arg(long, value_name = "H")]
    pub infohash: Option<String>,
}

/// The filters of failed entries only.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = HEADING)]
pub struct FailedFilters {
    /// Failed entries with this error type
    #[arg(long, value_name = "T")]
    pub error_type: Option<String>,
}

/// The filters both kinds share: text and age.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = HEADING)]
pub struct CommonFilters {
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

/// Every filter, for a command that selects both kinds (`state list`).
#[derive(Debug, Default, Args)]
pub struct FilterArgs {
    #[command(flatten)]
    pub processed: ProcessedFilters,
    #[command(flatten)]
    pub failed: FailedFilters,
    #[command(flatten)]
    pub common: CommonFilters,
}

/// A duration on the command line: as the configuration reads one, a bare number in days.
pub fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    parse_duration(text, true)
}

impl ProcessedFilters {
    fn apply(&self, filter: &mut Filter) {
        filter.statuses = self.status.clone();
        filter.stage = self.stage;
        filter.infohash = self.infohash.clone();
    }
}

impl FailedFilters {
    fn apply(&self, filter: &mut Filter) {
        filter.error_type = self.error_type.clone();
    }
}

impl CommonFilters {
    /// Sets the text and age filters; `now` is asked for only when an age is given (so that
    /// a command given IDs alone never reads the clock).
    fn apply(
        &self,
        filter: &mut Filter,
        now: impl FnOnce() -> Result<DateTime<FixedOffset>>,
    ) -> Result<()> {
        filter.grep = self.grep.clone();
        if self.older_than.is_some() || self.newer_than.is_some() {
            let now = now()?;
            filter.before = self.older_than.map(|d| back(now, d));
            filter.since = self.newer_than.map(|d| back(now, d));
        }
        Ok(())
    }
}

/// The filter of `state retry`: failed entries only.
pub fn failed_filter(
    failed: &FailedFilters,
    common: &CommonFilters,
    now: impl FnOnce() -> Result<DateTime<FixedOffset>>,
) -> Result<Filter> {
    let mut filter = Filter::default();
    failed.apply(&mut filter);
    common.apply(&mut filter, now)?;
    Ok(filter)
}

/// The filter of `state clear`: processed entries only.
pub fn processed_filter(
    processed: &ProcessedFilters,
    common: &CommonFilters,
    now: impl FnOnce() -> Result<DateTime<FixedOffset>>,
) -> Result<Filter> {
    let mut filter = Filter::default();
    processed.apply(&mut filter);
    common.apply(&mut filter, now)?;
    Ok(filter)
}

impl FilterArgs {
    /// The filter these options select, times measured back from `now`. Options that select
    /// processed entries and options that select failed ones cannot be combined (no entry
    /// could match): that is a usage error.
    pub fn to_filter(&self, now: DateTime<FixedOffset>) -> Result<Filter> {
        let mut filter = Filter::default();
        self.processed.apply(&mut filter);
        self.failed.apply(&mut filter);
        self.common.apply(&mut filter, || Ok(now))?;
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
            common: CommonFilters {
                older_than: Some(Duration::from_secs(86400)),
                newer_than: Some(Duration::from_secs(u64::MAX)),
                ..CommonFilters::default()
            },
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
            processed: ProcessedFilters {
                stage: Some(Stage::Staged),
                ..ProcessedFilters::default()
            },
            failed: FailedFilters {
                error_type: Some("X".into()),
            },
            ..FilterArgs::default()
        };
        let err = args.to_filter(now).unwrap_err().to_string();
        assert!(
            err.contains("--stage") && err.contains("--error-type"),
            "{err}"
        );
    }

    #[test]
    fn each_kind_takes_its_own_filters_and_the_shared_ones() {
        let no_clock = || Err(Error::Config("the clock was read".into()));
        let common = CommonFilters {
            grep: Some("dune".into()),
            ..CommonFilters::default()
        };
        let failed = FailedFilters {
            error_type: Some("AudnexError".into()),
        };
        let filter = failed_filter(&failed, &common, no_clock).unwrap();
        assert_eq!(filter.option_names(), ["--error-type", "--grep"]);
        let processed = ProcessedFilters {
            status: vec![Status::Staged],
            ..ProcessedFilters::default()
        };
        let filter = processed_filter(&processed, &common, no_clock).unwrap();
        assert_eq!(filter.option_names(), ["--status", "--grep"]);
        assert_eq!(filter.statuses, [Status::Staged]);
    }

    #[test]
    fn the_clock_is_read_only_for_an_age() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T10:00:00+00:00").unwrap();
        let aged = CommonFilters {
            newer_than: Some(Duration::from_secs(3600)),
            ..CommonFilters::default()
        };
        let filter = failed_filter(&FailedFilters::default(), &aged, || Ok(now)).unwrap();
        assert_eq!(
            filter.since,
            Some(DateTime::parse_from_rfc3339("2026-11-26T09:00:00+00:00").unwrap())
        );
        let broken = || Err(Error::Config("MAMFAST_NOW is bad".into()));
        assert!(failed_filter(&FailedFilters::default(), &aged, broken).is_err());
        let filter =
            failed_filter(&FailedFilters::default(), &CommonFilters::default(), broken).unwrap();
        assert!(filter.is_empty());
    }
}
