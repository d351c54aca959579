//! Timestamps as the state file stores them: ISO 8601, read with or without fraction and
//! offset (a naive time is local, as the Python tool wrote it), written as local time with
//! offset and microseconds.

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone};

/// Reads a stored timestamp. `None` when it is not ISO 8601.
pub fn parse_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
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
            return Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.fixed_offset());
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
    fn writes_offset_and_microseconds() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T10:15:30.1234567+01:00").unwrap();
        assert_eq!(format_timestamp(at), "2026-11-26T10:15:30.123456+01:00");
        let round = parse_timestamp(&format_timestamp(at)).unwrap();
        assert_eq!(round.timestamp_micros(), at.timestamp_micros());
    }
}
