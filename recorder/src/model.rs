//! What a recording looks like on the wire (and in its metadata file).

use serde::{Deserialize, Serialize};

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// ffmpeg is capturing.
    Recording,
    /// Stopped on request; the file is finished.
    Completed,
    /// ffmpeg died, could not start, or had to be killed; `error` says how.
    Failed,
    /// The daemon stopped or restarted while it was recording; `error` says which.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recording => "recording",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }
}

/// A recording as the clients model it, plus `error` for the ones that did not end well (absent
/// otherwise, so strict clients that know only the reference's fields see none of it on a
/// healthy recording).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub id: String,
    pub file_name: String,
    pub file_path: String,
    /// RFC 3339 in the daemon's local time zone.
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A time as the API writes it: RFC 3339 with the local offset (UTC in most sandboxes).
pub fn rfc3339(t: jiff::Timestamp) -> String {
    let zoned = t.to_zoned(jiff::tz::TimeZone::system());
    zoned.timestamp().display_with_offset(zoned.offset()).to_string()
}

/// Parses what [`rfc3339`] wrote.
pub fn parse_rfc3339(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Seconds between two times, as the clients get them (fractional).
pub fn seconds_between(start: jiff::Timestamp, end: jiff::Timestamp) -> f64 {
    let d = end.duration_since(start);
    (d.as_secs_f64() * 1000.0).round().max(0.0) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_are_omitted_and_status_is_lowercase() {
        let r = Recording {
            id: "x".into(),
            file_name: "x.mp4".into(),
            file_path: "/r/x.mp4".into(),
            start_time: "2026-01-01T00:00:00Z".into(),
            end_time: None,
            status: Status::Recording,
            duration_seconds: None,
            size_bytes: None,
            error: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": "x", "fileName": "x.mp4", "filePath": "/r/x.mp4",
                "startTime": "2026-01-01T00:00:00Z", "status": "recording"})
        );
    }

    #[test]
    fn times_round_trip_and_durations_are_fractional() {
        let t = jiff::Timestamp::from_millisecond(1_700_000_000_123).unwrap();
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        let later = jiff::Timestamp::from_millisecond(1_700_000_002_623).unwrap();
        assert_eq!(seconds_between(t, later), 2.5);
        assert_eq!(seconds_between(later, t), 0.0);
    }
}
