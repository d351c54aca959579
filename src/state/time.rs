//! Timestamps as the state file stores them: ISO 8601, read with or without fraction and
//! offset (a naive time is local, as the Python tool wrote it), written as local time with
//! offset and microseconds.

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// Reads a stored timestamp. `None` when it is not ISO 8601.
pub fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    match parse_usual(text) {
        Some((naive, Some(offset))) => return naive.and_local_timezone(offset).single(),
        Some((naive, None)) => return local(&naive),
        None => {}
    }
    parse_any(text)
}

/// The shapes both writers use, `2026-11-26T10:15:30[.123456][+01:00|Z]`, read by hand: the
/// formats below are interpreted anew on every call, which made sorting the 100 000 entries
/// of `state list` by time take over 100 ms. `None` for any other shape (then read by
/// [`parse_any`]), and for any value these would read otherwise (a leap second, a year
/// before 1000): for everything it accepts, the answer is that of [`parse_any`].
fn parse_usual(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let punctuated = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[0] != b'0';
    if !punctuated {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut at = 19;
    let mut nanos = 0;
    if b.get(at) == Some(&b'.') {
        let len = b[at + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if !(1..=9).contains(&len) {
            return None;
        }
        nanos = digits(at + 1..at + 1 + len)? * 10u32.pow(9 - len as u32);
        at += 1 + len;
    }
    if second > 59 {
        return None;
    }
    let naive = date.and_time(NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?);
    let offset = match &b[at..] {
        [] => return Some((naive, None)),
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = (h * 3600 + m * 60) as i32;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    Some((naive, Some(FixedOffset::east_opt(offset)?)))
}

/// A naive time, taken as local time (the earliest, when the clock was turned back).
fn local(naive: &NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    Local
        .from_local_datetime(naive)
        .earliest()
        .map(|t| t.fixed_offset())
}

/// Every shape [`parse_timestamp`] reads.
fn parse_any(text: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t);
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t);
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return local(&naive);
        }
    }
    None
}

/// Writes a timestamp the way mamfast stores it: `2026-11-26T10:15:30.123456+01:00`.
pub fn format_timestamp(at: DateTime<FixedOffset>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

/// Now, as local time with its offset.
pub fn local_now() -> DateTime<FixedOffset> {
    Local::now().fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape_the_python_tool_and_mamfast_write() {
        let with_offset = parse_timestamp("2026-11-26T10:15:30.123456+01:00").unwrap();
        assert_eq!(with_offset.offset().local_minus_utc(), 3600);
        assert!(parse_timestamp("2026-11-26T09:09:35.274036").is_some());
        assert!(parse_timestamp("2025-07-19T00:00:00").is_some());
        assert!(parse_timestamp("2025-07-19T00:00:00Z").is_some());
        assert!(parse_timestamp("2025-07-19 00:00:00").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn the_usual_shapes_read_by_hand_read_as_the_formats_read_them() {
        let mut texts = vec![
            "2026-11-26T10:15:30".to_string(),
            "2026-11-26T10:15:30Z".into(),
            "2026-11-26T10:15:30z".into(),
            "2026-11-26T10:15:30.1".into(),
            "2026-11-26T10:15:30.123456789".into(),
            "2026-11-26T10:15:30.1234567891".into(),
            "2026-11-26T10:15:30.".into(),
            "2026-11-26T10:15:30.5-00:00".into(),
            "2026-11-26T10:15:30+23:59".into(),
            "2026-11-26T10:15:30+24:00".into(),
            "2026-11-26T10:15:30-05:30".into(),
            "2026-11-26T10:15:30+0530".into(),
            "2026-11-26T10:15:30 ".into(),
            "2026-11-26 10:15:30+01:00".into(),
            "2026-11-26T10:15".into(),
            "2016-12-31T23:59:60Z".into(),
            "2026-02-29T10:15:30".into(),
            "2024-02-29T10:15:30".into(),
            "2026-13-01T10:15:30".into(),
            "2026-11-26T24:00:00".into(),
            "2026-11-26T10:60:00".into(),
            "0999-11-26T10:15:30".into(),
            "+2026-11-26T10:15:30".into(),
            "2026-11-26T10:15:3a".into(),
            "2026-1-26T10:15:30".into(),
            "2026-11-26T10:15:30.12é".into(),
            "".into(),
        ];
        // Every shape the sample states hold.
        #[cfg(feature = "sample")]
        {
            let state = crate::sample::realistic_state(300, 11);
            for e in state.processed.values() {
                texts.extend(e.processed_at.clone());
            }
            for e in state.failed.values() {
                texts.extend(e.failed_at.clone());
                texts.extend(e.first_failed_at.clone());
            }
        }
        let mut by_hand = 0;
        for text in &texts {
            let text = text.trim();
            let usual = parse_usual(text);
            by_hand += usize::from(usual.is_some());
            let ours = parse_timestamp(text);
            let theirs = parse_any(text);
            assert_eq!(ours, theirs, "{text:?}");
            // The same offset too, not only the same instant.
            assert_eq!(
                ours.map(|t| *t.offset()),
                theirs.map(|t| *t.offset()),
                "{text:?}"
            );
        }
        assert!(
            by_hand >= 10,
            "the usual shapes are read by hand ({by_hand})"
        );
    }

    #[test]
    fn writes_offset_and_microseconds() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T10:15:30.1234567+01:00").unwrap();
        assert_eq!(format_timestamp(at), "2026-11-26T10:15:30.123456+01:00");
        let round = parse_timestamp(&format_timestamp(at)).unwrap();
        assert_eq!(round.timestamp_micros(), at.timestamp_micros());
    }
}
