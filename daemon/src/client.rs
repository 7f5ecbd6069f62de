//! Behaviour that depends on which client is calling (`X-Daytona-SDK-Version`,
//! `X-Daytona-Split-Output`): how session output is shaped, and where legacy sessions start.

use axum::http::HeaderMap;

pub const VERSION_HEADER: &str = "x-daytona-sdk-version";
pub const SPLIT_OUTPUT_HEADER: &str = "x-daytona-split-output";
/// Sub-protocol token browsers use to send the version on websockets.
pub const VERSION_PROTOCOL_PREFIX: &str = "X-Daytona-SDK-Version~";

/// The calling client's version as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientVersion {
    Absent,
    /// Contains `dev`: always the newest behaviour.
    Dev,
    Unparsable,
    /// major, minor, patch, and whether a pre-release suffix follows.
    Release(u64, u64, u64, bool),
}

impl ClientVersion {
    /// Parses like Go's semver after normalising `1.2.3foo` to `1.2.3-foo` (an optional `v`
    /// prefix is accepted).
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw else { return ClientVersion::Absent };
        if raw.contains("dev") {
            return ClientVersion::Dev;
        }
        let v = raw.trim().strip_prefix('v').unwrap_or(raw.trim());
        let core_end = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
        let (core, rest) = v.split_at(core_end);
        let nums: Vec<&str> = core.split('.').collect();
        if nums.is_empty() || nums.len() > 3 || nums.iter().any(|n| n.is_empty()) {
            return ClientVersion::Unparsable;
        }
        let mut parts = [0u64; 3];
        for (slot, n) in parts.iter_mut().zip(&nums) {
            match n.parse() {
                Ok(x) => *slot = x,
                Err(_) => return ClientVersion::Unparsable,
            }
        }
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        let pre = !rest.split('+').next().unwrap_or("").is_empty();
        ClientVersion::Release(parts[0], parts[1], parts[2], pre)
    }

    /// From the header, else from the websocket sub-protocol token.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        if let Some(v) = headers.get(VERSION_HEADER) {
            return Self::parse(Some(v.to_str().unwrap_or("\u{0}")));
        }
        Self::parse(protocol_version(headers).as_deref())
    }

    /// `self < X.Y.Z-0`: the lowest pre-release of X.Y.Z, so only the numbers count.
    fn below_prerelease_zero(&self, x: (u64, u64, u64)) -> bool {
        matches!(self, ClientVersion::Release(a, b, c, _) if (*a, *b, *c) < x)
    }

    /// `self < X.Y.Z`: a pre-release of X.Y.Z is below it.
    fn below(&self, x: (u64, u64, u64)) -> bool {
        matches!(self, ClientVersion::Release(a, b, c, pre) if (*a, *b, *c) < x || ((*a, *b, *c) == x && *pre))
    }

    /// SDKs before 0.103.0 had their sessions started in `$HOME`.
    pub fn wants_home_cwd(&self) -> bool {
        self.below((0, 103, 0))
    }
}

/// Whether the caller is a Go SDK older than 0.188.0, which decodes responses strictly (an
/// unknown field is an error), so fields added since must be left out for it. Only the exact
/// source `sdk-go` with a parsable version below 0.188.0 counts; dev builds (`dev` anywhere, or
/// `0.0.0`), missing or unparsable versions are tolerant.
pub fn is_strict_go_client(headers: &HeaderMap) -> bool {
    headers.get("x-daytona-source").and_then(|v| v.to_str().ok()) == Some("sdk-go")
        && match ClientVersion::from_headers(headers) {
            ClientVersion::Release(0, 0, 0, _) => false,
            v => v.below((0, 188, 0)),
        }
}

/// The sub-protocol version token, if the client offered one.
pub fn protocol_version(headers: &HeaderMap) -> Option<String> {
    protocol_token(headers).map(|t| t[t.find('~').map_or(t.len(), |i| i + 1)..].to_string())
}

/// The whole `X-Daytona-SDK-Version~…` token, which a websocket answer must select.
pub fn protocol_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|t| t.starts_with(VERSION_PROTOCOL_PREFIX))
        .map(str::to_string)
}

/// How session output is shaped for a client (process.md §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Markers stripped; no separate stdout/stderr.
    Combined,
    /// The raw log with marker bytes; no separate stdout/stderr.
    Raw,
    /// The raw log plus demultiplexed stdout and stderr.
    Demuxed,
}

impl OutputMode {
    pub fn for_request(headers: &HeaderMap) -> Self {
        let split = headers.get(SPLIT_OUTPUT_HEADER).is_some_and(|v| v.as_bytes() == b"true");
        Self::decide(&ClientVersion::from_headers(headers), split)
    }

    pub fn decide(v: &ClientVersion, split_output: bool) -> Self {
        match v {
            ClientVersion::Absent if !split_output => OutputMode::Combined,
            v if v.below_prerelease_zero((0, 27, 0)) => OutputMode::Combined,
            v => Self::never_combined(v),
        }
    }

    /// The entrypoint logs are never combined.
    pub fn never_combined(v: &ClientVersion) -> Self {
        match v {
            ClientVersion::Dev => OutputMode::Demuxed,
            ClientVersion::Release(..) if !v.below_prerelease_zero((0, 167, 0)) => OutputMode::Demuxed,
            _ => OutputMode::Raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn strict_go_clients() {
        let go = |v: &str| {
            is_strict_go_client(&headers(&[("x-daytona-source", "sdk-go"), ("x-daytona-sdk-version", v)]))
        };
        assert!(go("0.187.9"));
        assert!(go("v0.100.0"));
        assert!(go("0.188.0-rc1"));
        assert!(go("0.187"));
        assert!(!go("0.188.0"));
        assert!(!go("0.226.1"));
        assert!(!go("1.0.0"));
        assert!(!go("0.0.0-dev"));
        assert!(!go("0.150.0-dev"));
        assert!(!go("unknown"));
        assert!(!go(""));
        assert!(!is_strict_go_client(&headers(&[("x-daytona-source", "sdk-go")])));
        assert!(!is_strict_go_client(&headers(&[
            ("x-daytona-source", "sdk-python"),
            ("x-daytona-sdk-version", "0.100.0")
        ])));
        assert!(is_strict_go_client(&headers(&[
            ("x-daytona-source", "sdk-go"),
            ("sec-websocket-protocol", "a, X-Daytona-SDK-Version~0.150.0")
        ])));
    }

    fn mode(v: Option<&str>, split: bool) -> OutputMode {
        OutputMode::decide(&ClientVersion::parse(v), split)
    }

    #[test]
    fn parsing() {
        assert_eq!(ClientVersion::parse(Some("0.226.1")), ClientVersion::Release(0, 226, 1, false));
        assert_eq!(ClientVersion::parse(Some("v1.2")), ClientVersion::Release(1, 2, 0, false));
        assert_eq!(ClientVersion::parse(Some("1.2.3foo")), ClientVersion::Release(1, 2, 3, true));
        assert_eq!(ClientVersion::parse(Some("0.0.0-dev")), ClientVersion::Dev);
        assert_eq!(ClientVersion::parse(Some("unknown")), ClientVersion::Unparsable);
        assert_eq!(ClientVersion::parse(None), ClientVersion::Absent);
    }

    #[test]
    fn output_mode_table() {
        assert_eq!(mode(None, false), OutputMode::Combined);
        assert_eq!(mode(None, true), OutputMode::Raw);
        assert_eq!(mode(Some("0.26.9"), true), OutputMode::Combined);
        assert_eq!(mode(Some("0.27.0-rc1"), false), OutputMode::Raw);
        assert_eq!(mode(Some("0.166.5"), false), OutputMode::Raw);
        assert_eq!(mode(Some("unknown"), false), OutputMode::Raw);
        assert_eq!(mode(Some("0.167.0-alpha"), false), OutputMode::Demuxed);
        assert_eq!(mode(Some("0.226.1"), false), OutputMode::Demuxed);
        assert_eq!(mode(Some("0.0.0-dev"), false), OutputMode::Demuxed);
        let nc = |v| OutputMode::never_combined(&ClientVersion::parse(v));
        assert_eq!(nc(Some("0.20.0")), OutputMode::Raw);
        assert_eq!(nc(None), OutputMode::Raw);
        assert_eq!(nc(Some("0.200.0")), OutputMode::Demuxed);
    }

    #[test]
    fn legacy_cwd_gate() {
        assert!(ClientVersion::parse(Some("0.102.9")).wants_home_cwd());
        assert!(ClientVersion::parse(Some("0.103.0-rc.1")).wants_home_cwd());
        assert!(!ClientVersion::parse(Some("0.103.0")).wants_home_cwd());
        assert!(!ClientVersion::parse(Some("0.0.0-dev")).wants_home_cwd());
        assert!(!ClientVersion::parse(None).wants_home_cwd());
    }

    #[test]
    fn version_from_subprotocol() {
        let mut h = HeaderMap::new();
        h.insert("sec-websocket-protocol", HeaderValue::from_static("foo, X-Daytona-SDK-Version~0.100.0"));
        assert_eq!(protocol_token(&h).as_deref(), Some("X-Daytona-SDK-Version~0.100.0"));
        assert_eq!(ClientVersion::from_headers(&h), ClientVersion::Release(0, 100, 0, false));
        h.insert("x-daytona-sdk-version", HeaderValue::from_static("0.226.1"));
        assert_eq!(ClientVersion::from_headers(&h), ClientVersion::Release(0, 226, 1, false));
    }
}
