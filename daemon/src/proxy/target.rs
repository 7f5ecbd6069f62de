//! Where a proxied request goes and how its head is rewritten on the way: the port and path taken
//! from the raw request target, hop-by-hop headers removed, `Host` and `X-Forwarded-*` set.
//! Pure functions over `http` types, tested on their own.

use std::net::IpAddr;

use hyper::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::ProxyError;

/// The route's prefix; the port is the next segment.
pub const PREFIX: &str = "/proxy/";

/// What a request target under `/proxy/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Forward to `http://localhost:<port>` with this origin-form path and query.
    Forward { port: u16, path_and_query: String },
    /// `/proxy/<port>` without a trailing slash: send the client to the directory form, as the
    /// reference does (relative links of the proxied app would resolve wrongly otherwise).
    Redirect { location: String },
}

/// Reads the target from the request's path and query *as received*: the path is still
/// percent-encoded, and it is forwarded that way (`%2F` must not become a `/`, nor `(` a
/// `%28`): a decode/re-encode round trip would change what the app sees.
pub fn parse(raw_path: &str, raw_query: Option<&str>) -> Result<Target, ProxyError> {
    let rest = raw_path.strip_prefix(PREFIX).unwrap_or(raw_path);
    let (segment, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let port = parse_port(segment)?;
    let query = raw_query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok(match path {
        Some(path) => Target::Forward { port, path_and_query: format!("{path}{query}") },
        None => Target::Redirect { location: format!("{PREFIX}{segment}/{query}") },
    })
}

/// A TCP port as decimal digits, 1 to 65535.
fn parse_port(segment: &str) -> Result<u16, ProxyError> {
    let bad = || ProxyError::BadPort(segment.to_string());
    // The length bound keeps `000…0080` and overlong numbers out before parsing.
    if segment.is_empty() || segment.len() > 5 || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match segment.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(bad()),
    }
}

/// Headers that belong to one hop (RFC 9110 §7.6.1 plus the historical `Keep-Alive` and
/// `Proxy-*`): never relayed.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(name.as_str(), "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade")
        || name.as_str().starts_with("proxy-")
}

/// The lower-case tokens of every `Connection` header.
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The protocol a request asks to switch to (`Upgrade`, named in `Connection`), if any.
pub fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let named = connection_tokens(headers).iter().any(|t| t == "upgrade");
    named.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Removes the hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for token in connection_tokens(headers) {
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
            headers.remove(name);
        }
    }
    let names: Vec<HeaderName> = headers.keys().filter(|n| is_hop_by_hop(n)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// Rewrites a request head for the target on `port`. `client` is the address the request came
/// from; `upgrade` the protocol switch to pass on (WebSocket), which is the one hop-by-hop
/// request that must reach the target.
pub fn request_headers(
    headers: &mut HeaderMap,
    port: u16,
    client: Option<IpAddr>,
    upgrade: Option<HeaderValue>,
) {
    // `TE: trailers` says the client can take trailers (gRPC needs it); other TE values are the
    // hop's business.
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    let original_host = headers.get(header::HOST).cloned();
    strip_hop_by_hop(headers);
    // This hop answered any `Expect: 100-continue` itself (hyper sends the 100 once the body is
    // read); the target gets the body at once.
    headers.remove(header::EXPECT);
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let host = HeaderValue::from_str(&format!("localhost:{port}")).expect("a valid header value");
    headers.insert(header::HOST, host);

    // X-Forwarded-For: the chain so far, then this hop's client.
    if let Some(ip) = client {
        let ip = ip.to_canonical().to_string();
        let earlier: Vec<&str> =
            headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let chain = if earlier.is_empty() { ip } else { format!("{}, {ip}", earlier.join(", ")) };
        if let Ok(v) = HeaderValue::from_str(&chain) {
            headers.insert("x-forwarded-for", v);
        }
    }
    // Host and scheme as the client used them. Daytona's preview proxy in front of the daemon
    // terminates TLS and sets these already: its values are the ones the app needs for absolute
    // links, so they are kept and only filled in when absent.
    if !headers.contains_key("x-forwarded-host")
        && let Some(h) = original_host
    {
        headers.insert("x-forwarded-host", h);
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
}

/// Rewrites the target's response head for the client; a `101 Switching Protocols` keeps its
/// `Upgrade` and `Connection: upgrade`, which complete the switch.
pub fn response_headers(headers: &mut HeaderMap, switching: bool) {
    let upgrade = switching.then(|| headers.get(header::UPGRADE).cloned()).flatten();
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(port: u16, pq: &str) -> Target {
        Target::Forward { port, path_and_query: pq.to_string() }
    }

    #[test]
    fn the_path_keeps_its_encoding_and_the_query_is_untouched() {
        assert_eq!(parse("/proxy/3000/", None).unwrap(), fwd(3000, "/"));
        assert_eq!(
            parse("/proxy/3000/a%40b/c%2Fd/(x)%20y", Some("q=%2F&r=a+b")).unwrap(),
            fwd(3000, "/a%40b/c%2Fd/(x)%20y?q=%2F&r=a+b")
        );
        assert_eq!(parse("/proxy/80//double", Some("")).unwrap(), fwd(80, "//double?"));
        assert_eq!(parse("/proxy/65535/x", None).unwrap(), fwd(65535, "/x"));
    }

    #[test]
    fn the_bare_port_redirects_to_the_directory_form_with_the_query() {
        assert_eq!(
            parse("/proxy/3000", Some("a=1")).unwrap(),
            Target::Redirect { location: "/proxy/3000/?a=1".into() }
        );
        assert_eq!(parse("/proxy/3000", None).unwrap(), Target::Redirect { location: "/proxy/3000/".into() });
    }

    #[test]
    fn ports_outside_1_to_65535_or_not_numbers_are_refused_by_name() {
        for bad in ["0", "65536", "99999", "-1", "abc", "30a", "", "000080", "%33000", "+80", " 80"] {
            match parse(&format!("/proxy/{bad}/x"), None) {
                Err(ProxyError::BadPort(p)) => assert_eq!(p, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_go_and_forwarding_headers_come() {
        let mut h = map(&[
            ("host", "example.test:2280"),
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("expect", "100-continue"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-kept", "yes"),
        ]);
        request_headers(&mut h, 3000, Some("::ffff:127.0.0.1".parse().unwrap()), None);
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "proxy-authorization",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "expect",
        ] {
            assert!(!h.contains_key(gone), "{gone} was relayed: {h:?}");
        }
        assert_eq!(h["host"], "localhost:3000");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert_eq!(h["x-forwarded-host"], "example.test:2280");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn forwarding_headers_from_the_front_proxy_are_kept_and_te_trailers_passes() {
        let mut h = map(&[
            ("host", "h"),
            ("x-forwarded-host", "3000-abc.proxy.daytona.works"),
            ("x-forwarded-proto", "https"),
            ("te", "trailers, deflate"),
        ]);
        request_headers(&mut h, 8080, None, None);
        assert_eq!(h["x-forwarded-host"], "3000-abc.proxy.daytona.works");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["te"], "trailers");
        assert!(!h.contains_key("x-forwarded-for"));
    }

    #[test]
    fn an_upgrade_is_passed_on_and_kept_in_the_101() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")]);
        let protocol = requested_upgrade(&h);
        assert_eq!(protocol.as_ref().unwrap(), "websocket");
        request_headers(&mut h, 3000, None, protocol);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["sec-websocket-key"], "k");
        // An Upgrade header the Connection header does not name is no request to switch.
        assert!(requested_upgrade(&map(&[("upgrade", "websocket")])).is_none());

        let mut res = map(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("keep-alive", "x")]);
        response_headers(&mut res, true);
        assert_eq!(res["upgrade"], "websocket");
        assert_eq!(res["connection"], "upgrade");
        assert!(!res.contains_key("keep-alive"));
        let mut res = map(&[("connection", "close, x-a"), ("x-a", "1"), ("transfer-encoding", "chunked")]);
        response_headers(&mut res, false);
        assert!(res.is_empty(), "{res:?}");
    }
}
