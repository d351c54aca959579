//! Which backup generations are kept: the retention policy, a pure function of the
//! generations' write times (their mtimes), as `borg prune` / `restic forget` decide it.
//!
//! Rules are applied in order, each over every generation, newest first: `last` keeps the N
//! newest; `hourly` keeps the newest generation of each of the H newest hours that have one;
//! `daily` the same per calendar day. A generation already kept by an earlier rule does not
//! count towards a later rule's number, but its hour (day) is still taken, so at most
//! `last + hourly + daily` generations are ever kept. Hours and days are those of the local
//! clock. Buckets are counted among the generations that exist, not back from now: a machine
//! that was off for a month still keeps D days of history.
//!
//! The policy is stable: applied again to what it kept (with or without some of what it
//! dropped), it keeps the same generations for the same reasons. That is what makes a rotation
//! killed half-way safe to redo (see `backups::rotate`).

use std::fmt;

use chrono::{DateTime, Datelike, TimeZone, Timelike};

/// How many generations each rule keeps (`state.backup_depth`, `state.backup_hourly`,
/// `state.backup_daily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// The newest N generations (`state.backup_depth`).
    pub last: usize,
    /// The newest generation of each of the H newest hours that have one.
    pub hourly: usize,
    /// The newest generation of each of the D newest days that have one.
    pub daily: usize,
}

impl Retention {
    /// Whether any generation at all is kept.
    pub fn keeps_any(&self) -> bool {
        self.last + self.hourly + self.daily > 0
    }

    /// The most generations the policy can keep: the disk it may take is this many times the
    /// state file's size.
    pub fn most(&self) -> usize {
        self.last + self.hourly + self.daily
    }
}

/// Why a generation is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// One of the newest `n` (`n` is the rule's number, `state.backup_depth`).
    Last(usize),
    /// The newest of its hour (`2026-11-28 14:00`).
    Hourly(String),
    /// The newest of its day (`2026-11-28`).
    Daily(String),
}

impl Kept {
    /// The rule alone (`last 3`, `hourly`, `daily`), for where the time is shown beside it.
    pub fn rule(&self) -> String {
        match self {
            Kept::Last(n) => format!("last {n}"),
            Kept::Hourly(_) => "hourly".into(),
            Kept::Daily(_) => "daily".into(),
        }
    }
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::Last(n) => write!(f, "last {n}"),
            Kept::Hourly(hour) => write!(f, "hourly {hour}"),
            Kept::Daily(day) => write!(f, "daily {day}"),
        }
    }
}

/// For each generation (write times, newest first, in generation order), why it is kept, or
/// `None` if it is not.
pub(crate) fn keep<Tz: TimeZone>(times: &[DateTime<Tz>], retention: &Retention) -> Vec<Option<Kept>>
where
    Tz::Offset: fmt::Display,
{
    let mut kept: Vec<Option<Kept>> = vec![None; times.len()];
    for slot in kept.iter_mut().take(retention.last) {
        *slot = Some(Kept::Last(retention.last));
    }
    let hour = |t: &DateTime<Tz>| (t.year(), t.ordinal(), t.hour());
    let day = |t: &DateTime<Tz>| (t.year(), t.ordinal(), 0);
    by_period(times, retention.hourly, &mut kept, hour, &|t| {
        Kept::Hourly(t.format("%Y-%m-%d %H:00").to_string())
    });
    by_period(times, retention.daily, &mut kept, day, &|t| {
        Kept::Daily(t.format("%Y-%m-%d").to_string())
    });
    kept
}

/// One periodic rule: the newest generation of each of the `n` newest periods, skipping (and
/// not counting) a period whose newest generation an earlier rule keeps.
fn by_period<Tz: TimeZone>(
    times: &[DateTime<Tz>],
    n: usize,
    kept: &mut [Option<Kept>],
    period: impl Fn(&DateTime<Tz>) -> (i32, u32, u32),
    why: &dyn Fn(&DateTime<Tz>) -> Kept,
) {
    let mut taken = 0;
    let mut last = None;
    for (t, slot) in times.iter().zip(kept.iter_mut()) {
        if taken == n {
            break;
        }
        let p = period(t);
        if last == Some(p) {
            continue;
        }
        last = Some(p);
        if slot.is_none() {
            *slot = Some(why(t));
            taken += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn policy(last: usize, hourly: usize, daily: usize) -> Retention {
        Retention {
            last,
            hourly,
            daily,
        }
    }

    /// The reasons as text, `-` for a generation that goes.
    fn reasons(times: &[DateTime<Utc>], r: &Retention) -> Vec<String> {
        keep(times, r)
            .into_iter()
            .map(|k| k.map_or("-".into(), |k| k.to_string()))
            .collect()
    }

    #[test]
    fn last_keeps_the_newest_n_and_nothing_else() {
        let t = at("2026-11-28T10:00:00Z");
        let times: Vec<_> = (0..5).map(|i| t - Duration::seconds(i)).collect();
        assert_eq!(
            reasons(&times, &policy(3, 0, 0)),
            ["last 3", "last 3", "last 3", "-", "-"]
        );
        assert_eq!(reasons(&times, &policy(0, 0, 0)), ["-"; 5]);
        assert_eq!(reasons(&times, &policy(9, 0, 0)), ["last 9"; 5]);
    }

    #[test]
    fn a_busy_afternoon_keeps_yesterday_and_the_days_before() {
        // 50 writes today, a minute apart; before them one write an evening for 9 days.
        let now = at("2026-11-28T17:00:00Z");
        let mut times: Vec<_> = (0..50).map(|i| now - Duration::minutes(i)).collect();
        times.extend((1..10).map(|d| at("2026-11-27T20:00:00Z") - Duration::days(d - 1)));
        let got = reasons(&times, &policy(3, 0, 7));
        assert_eq!(&got[..4], ["last 3", "last 3", "last 3", "-"]);
        assert!(got[4..50].iter().all(|r| r == "-"));
        // Today is taken by the last 3 (not counted): the 7 newest days before it are kept.
        let days: Vec<&str> = got[50..].iter().map(String::as_str).collect();
        assert_eq!(
            days,
            [
                "daily 2026-11-27",
                "daily 2026-11-26",
                "daily 2026-11-25",
                "daily 2026-11-24",
                "daily 2026-11-23",
                "daily 2026-11-22",
                "daily 2026-11-21",
                "-",
                "-"
            ]
        );
    }

    #[test]
    fn a_period_counts_its_newest_generation_only() {
        let times = [
            at("2026-11-28T14:50:00Z"),
            at("2026-11-28T14:10:00Z"),
            at("2026-11-28T13:59:59Z"),
            at("2026-11-28T13:00:00Z"),
            at("2026-11-28T11:30:00Z"),
            at("2026-11-27T23:59:00Z"),
            at("2026-11-27T08:00:00Z"),
        ];
        assert_eq!(
            reasons(&times, &policy(1, 2, 1)),
            [
                "last 1",
                "-",
                "hourly 2026-11-28 13:00",
                "-",
                "hourly 2026-11-28 11:00",
                "daily 2026-11-27",
                "-"
            ]
        );
        // Without `last`, the newest is the newest of its hour and of its day.
        assert_eq!(
            reasons(&times, &policy(0, 1, 2)),
            [
                "hourly 2026-11-28 14:00",
                "-",
                "-",
                "-",
                "-",
                "daily 2026-11-27",
                "-"
            ]
        );
    }

    #[test]
    fn days_are_those_of_the_given_time_zone() {
        let east = chrono::FixedOffset::east_opt(3 * 3600).unwrap();
        // 22:30 UTC on the 27th is 01:30 on the 28th three hours east.
        let times = [at("2026-11-28T10:00:00Z"), at("2026-11-27T22:30:00Z")];
        let local: Vec<_> = times.iter().map(|t| t.with_timezone(&east)).collect();
        let kept = keep(&local, &policy(0, 0, 2));
        assert_eq!(kept[0], Some(Kept::Daily("2026-11-28".into())));
        assert_eq!(kept[1], None, "the same day there");
        assert_eq!(
            reasons(&times, &policy(0, 0, 2))[1],
            "daily 2026-11-27",
            "another day in UTC"
        );
    }

    #[test]
    fn never_more_than_the_sum_of_the_rules() {
        let start = at("2026-01-01T00:00:00Z");
        for (last, hourly, daily) in [(3, 0, 7), (0, 24, 0), (2, 5, 3), (1, 1, 1), (0, 0, 0)] {
            let r = policy(last, hourly, daily);
            // Two writes an hour for 20 days, newest first.
            let times: Vec<_> = (0..960)
                .rev()
                .map(|i| start + Duration::minutes(30 * i))
                .collect();
            let kept = keep(&times, &r).iter().filter(|k| k.is_some()).count();
            assert_eq!(kept, r.most(), "{r:?}");
        }
    }

    #[test]
    fn the_policy_is_stable_under_its_own_pruning() {
        // What a rotation killed half-way relies on: applied again to what it kept, with any
        // of what it dropped still there, the policy keeps the same generations, for the same
        // reasons.
        let start = at("2026-11-20T00:00:00Z");
        // An uneven history: bursts and gaps, newest first.
        let mut times: Vec<DateTime<Utc>> = Vec::new();
        let mut t = start;
        for i in 0..200i64 {
            t += Duration::minutes((i * 37) % 300 + 1);
            times.push(t);
        }
        times.reverse();
        for r in [
            policy(3, 0, 7),
            policy(2, 6, 3),
            policy(0, 4, 4),
            policy(5, 0, 0),
        ] {
            let kept = keep(&times, &r);
            for drop_every in [1, 2, 3, 7] {
                // Keep every generation the policy keeps, and some of the others.
                let mut n = 0;
                let subset: Vec<(DateTime<Utc>, Option<Kept>)> = times
                    .iter()
                    .zip(&kept)
                    .filter(|(_, k)| {
                        n += 1;
                        k.is_some() || n % drop_every == 0
                    })
                    .map(|(t, k)| (*t, k.clone()))
                    .collect();
                let (sub_times, before): (Vec<_>, Vec<_>) = subset.into_iter().unzip();
                assert_eq!(keep(&sub_times, &r), before, "{r:?} 1/{drop_every}");
            }
        }
    }

    #[test]
    fn times_out_of_order_are_taken_in_generation_order() {
        // A restored or copied file may carry an older time than a later generation.
        let times = [
            at("2026-11-28T10:00:00Z"),
            at("2026-11-26T10:00:00Z"),
            at("2026-11-28T09:00:00Z"),
            at("2026-11-27T10:00:00Z"),
        ];
        assert_eq!(
            reasons(&times, &policy(1, 0, 3)),
            [
                "last 1",
                "daily 2026-11-26",
                "daily 2026-11-28",
                "daily 2026-11-27"
            ]
        );
    }
}
