//! Timestamps as the clients see them: RFC 3339 with nanoseconds, trailing zeros of the fraction
//! removed, in the daemon's local time zone (`Z` when that is UTC), as Go's `time.RFC3339Nano`
//! prints them.

use jiff::{Timestamp, Zoned, tz::TimeZone};

/// The current time in the daemon's local zone.
pub fn now_rfc3339() -> String {
    format_rfc3339(Timestamp::now(), &TimeZone::system())
}

/// Formats `ts` in `tz` the way Go's `RFC3339Nano` does.
pub fn format_rfc3339(ts: Timestamp, tz: &TimeZone) -> String {
    let zoned = Zoned::new(ts, tz.clone());
    let offset = zoned.offset();
    let mut out = zoned.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = zoned.subsec_nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    if offset.seconds() == 0 {
        out.push('Z');
    } else {
        let secs = offset.seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        let abs = secs.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_rfc3339nano_shape() {
        let ts: Timestamp = "2025-01-15T10:30:45.123456789Z".parse().unwrap();
        assert_eq!(format_rfc3339(ts, &TimeZone::UTC), "2025-01-15T10:30:45.123456789Z");
        let ts: Timestamp = "2025-01-15T10:30:45.120Z".parse().unwrap();
        assert_eq!(format_rfc3339(ts, &TimeZone::UTC), "2025-01-15T10:30:45.12Z");
        let ts: Timestamp = "2025-01-15T10:30:45Z".parse().unwrap();
        assert_eq!(format_rfc3339(ts, &TimeZone::UTC), "2025-01-15T10:30:45Z");
        let tz = TimeZone::fixed(jiff::tz::offset(-5));
        assert_eq!(format_rfc3339(ts, &tz), "2025-01-15T05:30:45-05:00");
        let tz = TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 1800).unwrap());
        assert_eq!(format_rfc3339(ts, &tz), "2025-01-15T16:00:45+05:30");
    }
}
