//! Durations as users write them (`"30s"`, `"5m"`, `"30d"`), as mamfast prints them, and the
//! check that one is not too long.

use std::time::Duration;

/// Parses a duration as users write it: `"30s"`, `"5m"`, `"12h"`, `"30d"`, `"2w"` (humantime).
/// A bare number is a number of days when `bare_days` (for `--failed-older-than`), otherwise it
/// is refused with a message asking for a unit. The error is the detail of a message, without
/// the key or flag it belongs to.
pub fn parse_duration(text: &str, bare_days: bool) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        if !bare_days {
            return Err(format!(
                "{t:?} has no unit; add one, e.g. \"{t}s\", \"{t}m\" or \"{t}d\""
            ));
        }
        return t
            .parse::<u64>()
            .ok()
            .and_then(|days| days.checked_mul(86_400))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{t:?} days is too long"));
    }
    humantime::parse_duration(t).map_err(|_| {
        if bare_days {
            format!(
                "{text:?} is not a duration; expected e.g. \"30d\", \"12h\", or a number of days"
            )
        } else {
            format!("{text:?} is not a duration; expected e.g. \"30s\", \"5m\"")
        }
    })
}

/// `d` if it is no longer than `max`, else why not (the detail of a message, as
/// [`parse_duration`] gives).
pub fn at_most(d: Duration, max: Duration) -> Result<Duration, String> {
    if d <= max {
        return Ok(d);
    }
    Err(format!(
        "{} is too long; the longest allowed is {}",
        format_duration(d),
        format_duration(max)
    ))
}

/// Formats a duration compactly in its largest exact unit (`"30s"`, `"90m"`, `"30d"`,
/// `"1500ms"`), so that [`parse_duration`] gives the same duration back.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        let secs = d.as_secs();
        if secs == 0 {
            return "0s".into();
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs.is_multiple_of(size) {
                return format!("{}{unit}", secs / size);
            }
        }
        return format!("{secs}s");
    }
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn durations_parse_as_users_write_them() {
        assert_eq!(parse_duration("30s", false), Ok(secs(30)));
        assert_eq!(parse_duration("90m", false), Ok(secs(5400)));
        assert_eq!(parse_duration("12h", false), Ok(secs(43200)));
        assert_eq!(parse_duration("30d", false), Ok(secs(30 * 86400)));
        assert_eq!(parse_duration("2w", false), Ok(secs(14 * 86400)));
        assert_eq!(parse_duration(" 0s ", false), Ok(secs(0)));
        assert_eq!(parse_duration("1h 30m", false), Ok(secs(5400)));
        assert_eq!(parse_duration("7", true), Ok(secs(7 * 86400)));
    }

    #[test]
    fn a_bare_number_needs_a_unit_unless_it_means_days() {
        let err = parse_duration("30", false).unwrap_err();
        assert_eq!(
            err,
            r#""30" has no unit; add one, e.g. "30s", "30m" or "30d""#
        );
        assert_eq!(
            parse_duration("soon", false).unwrap_err(),
            r#""soon" is not a duration; expected e.g. "30s", "5m""#
        );
        assert!(parse_duration("soon", true)
            .unwrap_err()
            .contains("or a number of days"));
        assert!(parse_duration("", false).is_err());
        assert!(parse_duration("-1d", false).is_err());
        assert!(parse_duration("99999999999999999999", true).is_err());
    }

    #[test]
    fn durations_format_compactly_and_round_trip() {
        let cases = [
            (secs(0), "0s"),
            (secs(30), "30s"),
            (secs(90), "90s"),
            (secs(5400), "90m"),
            (secs(43200), "12h"),
            (secs(30 * 86400), "30d"),
            (secs(14 * 86400), "14d"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(3), "3us"),
            (Duration::from_nanos(1_000_000_007), "1000000007ns"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text, false), Ok(d), "{text}");
        }
    }
}
