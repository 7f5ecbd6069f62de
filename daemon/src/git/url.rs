//! Which remote locations are accepted, decided before any network or file-system attempt.
//!
//! The forms are git's own (`git help clone`, "GIT URLS"): `scheme://[user@]host[:port]/path`
//! for http, https, ssh and git; `file:///path`; the scp-like `[user@]host:path`; and a local
//! path. Anything else is refused here with a text naming the problem, instead of libgit2
//! answering "unsupported URL protocol" or failing to resolve a host. Control characters are
//! never part of a location, and whitespace is not part of a URL (a local path may contain
//! spaces: it is a file name).

use super::error::{GitError, GitResult, Kind};

/// What kind of location a remote URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `http(s)://` or `git://`.
    Network,
    /// `ssh://` or scp-like `[user@]host:path`.
    Ssh,
    /// `file://`.
    FileUrl,
    /// A plain path (absolute or relative).
    Path,
}

/// The schemes git speaks natively, by the kind of location they name.
const SCHEMES: [(&str, Location); 7] = [
    ("http", Location::Network),
    ("https", Location::Network),
    ("git", Location::Network),
    ("ssh", Location::Ssh),
    ("git+ssh", Location::Ssh),
    ("ssh+git", Location::Ssh),
    ("file", Location::FileUrl),
];

fn invalid(url: &str, why: impl std::fmt::Display) -> GitError {
    GitError::new(Kind::BadRequest, format!("invalid repository URL {:?}: {why}", without_userinfo(url)))
}

/// The URL as a message may show it: whatever stands before the `@` of the authority (a user
/// name may be a token, as `https://TOKEN@host/` is) replaced by `***`. A URL refused as
/// malformed still carries the credentials its sender put in it.
fn without_userinfo(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// Classifies `url` or says why it is not one. Syntax only: whether a path exists is for the
/// operation to find out.
pub fn parse(url: &str) -> GitResult<Location> {
    if url.is_empty() {
        return Err(invalid(url, "it is empty"));
    }
    if let Some(c) = url.chars().find(|c| c.is_control()) {
        return Err(invalid(url, format!("it contains the control character U+{:04X}", c as u32)));
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        return parse_scheme_url(url, scheme, rest);
    }
    if let Some((userhost, _path)) = scp_like(url) {
        no_whitespace(url)?;
        let host = userhost.rsplit_once('@').map_or(userhost, |(_, h)| h);
        check_host(url, host)?;
        return Ok(Location::Ssh);
    }
    Ok(Location::Path)
}

/// git's rule for `host:path`: a colon before the first slash (a bracketed IPv6 host may hold
/// colons of its own). `./a:b` and `/a:b` are paths.
fn scp_like(url: &str) -> Option<(&str, &str)> {
    let colon = if url.starts_with('[') || url.contains("@[") {
        let close = url.find(']')?;
        close + 1 + url[close + 1..].find(':')?
    } else {
        url.find(':')?
    };
    if url[..colon].contains('/') || colon == 0 {
        return None;
    }
    Some((&url[..colon], &url[colon + 1..]))
}

fn no_whitespace(url: &str) -> GitResult<()> {
    match url.chars().find(|c| c.is_whitespace()) {
        Some(c) => Err(invalid(url, format!("a URL cannot contain whitespace (U+{:04X})", c as u32))),
        None => Ok(()),
    }
}

fn parse_scheme_url(url: &str, scheme: &str, rest: &str) -> GitResult<Location> {
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_ok {
        return Err(invalid(url, format!("{scheme:?} is not a URL scheme")));
    }
    let lower = scheme.to_ascii_lowercase();
    let Some(&(_, location)) = SCHEMES.iter().find(|(s, _)| *s == lower) else {
        let known: Vec<&str> = SCHEMES.iter().map(|(s, _)| *s).collect();
        return Err(invalid(url, format!("unsupported scheme {scheme:?} (supported: {})", known.join(", "))));
    };
    no_whitespace(url)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if location == Location::FileUrl {
        // `file:///p` or `file://localhost/p`: a local path, never another machine.
        if !(authority.is_empty() || authority.eq_ignore_ascii_case("localhost")) {
            return Err(invalid(url, "a file:// URL names a local path (file:///path), not a host"));
        }
        if !rest[end..].starts_with('/') {
            return Err(invalid(url, "a file:// URL needs an absolute path (file:///path)"));
        }
        return Ok(location);
    }
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = split_port(url, hostport)?;
    check_host(url, host)?;
    if let Some(port) = port
        && !port.is_empty()
        && !(port.chars().all(|c| c.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(invalid(url, format!("{port:?} is not a port number (1-65535)")));
    }
    Ok(location)
}

/// `host:port`, `[v6]:port`, `host` → (host, port).
fn split_port<'a>(url: &str, hostport: &'a str) -> GitResult<(&'a str, Option<&'a str>)> {
    if let Some(inner) = hostport.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(invalid(url, "an IPv6 host must be closed with ']'"));
        };
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(invalid(url, format!("unexpected {after:?} after the IPv6 host"))),
        };
        return Ok((&hostport[..close + 2], port));
    }
    Ok(match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    })
}

/// A host name (RFC 3986 reg-name, ASCII) or a bracketed IPv6 address; never empty.
fn check_host(url: &str, host: &str) -> GitResult<()> {
    if host.is_empty() {
        return Err(invalid(url, "the host is missing"));
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || ":.%".contains(c)) {
            return Err(invalid(url, format!("{host:?} is not an IPv6 address")));
        }
        return Ok(());
    }
    match host.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(*c))) {
        Some(c) => Err(invalid(url, format!("the host {host:?} contains {c:?}, which no host name can"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_never_show_the_credentials() {
        for url in ["https://u:ghp_TOKEN@h:99999/r", "https://ghp_TOKEN@h:bad/r", "https://u:ghp_TOKEN@h/r x"]
        {
            let e = super::parse(url).unwrap_err();
            assert!(!e.to_string().contains("ghp_TOKEN"), "{e}");
            assert!(e.to_string().contains("https://***@h"), "{e}");
        }
    }

    use super::*;

    #[test]
    fn what_git_accepts() {
        for (url, want) in [
            ("https://github.com/daytonaio/daytona.git", Location::Network),
            ("http://user:pw@127.0.0.1:8080/r.git", Location::Network),
            ("HTTPS://example.com/r", Location::Network),
            ("http://[::1]:9418/r.git", Location::Network),
            ("git://example.com/r.git", Location::Network),
            ("ssh://git@example.com:22/r.git", Location::Ssh),
            ("git+ssh://example.com/r", Location::Ssh),
            ("git@github.com:daytonaio/daytona.git", Location::Ssh),
            ("example.com:r.git", Location::Ssh),
            ("git@[::1]:r.git", Location::Ssh),
            ("file:///srv/r.git", Location::FileUrl),
            ("file://localhost/srv/r.git", Location::FileUrl),
            ("/srv/r.git", Location::Path),
            ("../r", Location::Path),
            ("./a:b", Location::Path),
            ("my repo", Location::Path),
            ("5·^?", Location::Path),
        ] {
            assert_eq!(parse(url).unwrap_or_else(|e| panic!("{url}: {e}")), want, "{url}");
        }
    }

    #[test]
    fn what_is_refused_and_why() {
        for (url, why) in [
            ("5·^\r?", "control character U+000D"),
            ("https://h/a\0b", "control character U+0000"),
            ("https://h/a b", "whitespace"),
            ("git@host:my repo", "whitespace"),
            ("ftp://h/r", "unsupported scheme \"ftp\""),
            ("1http://h/r", "is not a URL scheme"),
            ("://h/r", "is not a URL scheme"),
            ("http://", "host is missing"),
            ("http:///r", "host is missing"),
            ("https://user@/r", "host is missing"),
            ("http://[::1/r", "closed with ']'"),
            ("http://[zz]/r", "is not an IPv6 address"),
            ("http://h:99999/r", "is not a port number"),
            ("http://h:0/r", "is not a port number"),
            ("http://h:x/r", "is not a port number"),
            ("http://h·st/r", "contains '·'"),
            ("file://otherhost/r", "not a host"),
            ("file://", "absolute path"),
            ("user@ho^st:r", "contains '^'"),
        ] {
            let e = parse(url).expect_err(url);
            assert_eq!(e.kind, Kind::BadRequest, "{url}");
            assert!(e.message.starts_with("invalid repository URL"), "{url}: {}", e.message);
            assert!(e.message.contains(why), "{url}: {}", e.message);
        }
    }
}
