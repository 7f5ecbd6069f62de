//! Token authentication of the daemon's HTTP ports, and signed file URLs.
//!
//! Off unless configured (`DAYTONA_AUTH_TOKEN`, `DAYTONA_SIGNING_KEY`): behind Daytona's proxy,
//! which authenticates by itself, the daemon stays a drop-in. When a token is configured, every
//! request must carry it, as `Authorization: Bearer <token>` (what the SDKs send as their API
//! key) or as the `DAYTONA_SANDBOX_AUTH_KEY` query parameter (what browsers and the SDKs put on
//! websocket URLs); otherwise the answer is a 401 envelope saying whether it was missing or
//! wrong. When a signing key is configured, `GET`/`HEAD /files/download` and
//! `POST /files/upload-v2` with `expires` and `signature` are accepted by their signature
//! instead ([`signed_url`]); a bad one is a 403 saying why.
//!
//! The check wraps the whole router as a service ([`protect_toolbox`], [`protect_side`]), so it
//! runs before routing and before every other layer: no route, fallback or websocket upgrade is
//! reached without it. A request let through loses our `Authorization` header and has its
//! query parameter marked as ours ([`strip`], [`OwnQueryKey`]), so the preview proxy never hands
//! the token on to the user's app.

pub mod signed_url;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{Config, Secret};
use crate::error::{ApiError, Code};
use crate::fspath::RawQuery;

/// The query parameter that carries the token where no header can (browsers' websockets).
pub const QUERY_KEY: &str = "DAYTONA_SANDBOX_AUTH_KEY";

/// Query parameters whose values never reach a log.
const SECRET_PARAMS: &[&str] = &[QUERY_KEY, "signature"];

/// What the ports ask for.
#[derive(Clone, Default)]
pub struct Auth {
    token: Option<Secret>,
    signing_key: Option<Secret>,
}

impl Auth {
    pub fn from_config(config: &Config) -> Arc<Auth> {
        Arc::new(Auth { token: config.auth_token.clone(), signing_key: config.signing_key.clone() })
    }

    /// Nothing to check: the router is served as it is.
    pub fn is_off(&self) -> bool {
        self.token.is_none() && self.signing_key.is_none()
    }
}

/// The toolbox router behind the token check and, with a signing key, signed file URLs.
pub fn protect_toolbox(app: Router, auth: Arc<Auth>) -> Router {
    wrap(app, auth, true)
}

/// A side server's router (web terminal, recording dashboard) behind the token check.
pub fn protect_side(app: Router, config: &Config) -> Router {
    wrap(app, Auth::from_config(config), false)
}

fn wrap(app: Router, auth: Arc<Auth>, signed_urls: bool) -> Router {
    if auth.is_off() {
        return app;
    }
    // A service around the router, not `Router::layer` (which runs after routing, per route):
    // the check comes first whatever the path.
    let guarded = tower::Layer::layer(&axum::middleware::from_fn_with_state((auth, signed_urls), check), app);
    Router::new().fallback_service(guarded)
}

async fn check(
    State((auth, signed_urls)): State<(Arc<Auth>, bool)>,
    mut req: Request,
    next: Next,
) -> Response {
    if signed_urls
        && let Some(key) = &auth.signing_key
        && let Some(method) = signable(req.method(), req.uri().path())
        && carries_signature(req.uri().query())
        // A request that carries the token needs no signature: parameters a proxy forwarded
        // unstripped must not turn a good token into a refusal.
        && !auth.token.as_ref().is_some_and(|t| check_token(t, req.headers(), req.uri().query()).is_ok())
    {
        if let Err(e) = check_signed(key, method, req.uri().query().unwrap_or("")) {
            tracing::info!(method = %req.method(), path = req.uri().path(), "signed URL refused: {}", e.message);
            return answer(e, &req);
        }
        strip(&mut req, auth.token.as_ref());
        return next.run(req).await;
    }
    if let Some(token) = &auth.token {
        if let Err(e) = check_token(token, req.headers(), req.uri().query()) {
            // The path and what was wrong; never a header or the query (they hold the guess).
            tracing::info!(method = %req.method(), path = req.uri().path(), "request refused: {}", e.message);
            let mut res = answer(e, &req);
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
        strip(&mut req, Some(token));
    }
    next.run(req).await
}

/// The method a signed URL for this request is signed with, when it is one of the two routes.
fn signable(method: &Method, path: &str) -> Option<&'static str> {
    match (path, method) {
        ("/files/download", &Method::GET | &Method::HEAD) => Some("GET"),
        ("/files/upload-v2", &Method::POST) => Some("POST"),
        _ => None,
    }
}

fn carries_signature(query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    ["expires", "signature"].iter().any(|k| query_values(query, k).next().is_some())
}

fn check_signed(key: &Secret, method: &str, query: &str) -> Result<(), ApiError> {
    // The strict parse the file routes use, so `path` is decoded exactly as the handler will
    // decode it: the signature covers the file that is served.
    // Its own message, not the parser's: that one quotes the offending pair, which may be the
    // signature, and this message is logged.
    let q = RawQuery::parse(query).map_err(|_| {
        ApiError::bad_request("invalid query in a signed URL: a malformed %-escape or a repeated parameter")
    })?;
    let (expires, signature) = match (q.get("expires"), q.get("signature")) {
        (Some(e), Some(s)) => (e, s),
        (Some(_), None) => {
            return Err(ApiError::bad_request("a signed URL needs `signature` as well as `expires`"));
        }
        _ => return Err(ApiError::bad_request("a signed URL needs `expires` as well as `signature`")),
    };
    let expires = std::str::from_utf8(expires)
        .ok()
        .filter(|e| (1..=20).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::bad_request("`expires` must be unix seconds (digits only; 0 = no expiry)")
        })?;
    let path =
        q.get("path").filter(|p| !p.is_empty()).ok_or_else(|| ApiError::bad_request("path is required"))?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // Not UTF-8 cannot be base64url either.
    let signature = std::str::from_utf8(signature).unwrap_or("\u{FFFD}");
    signed_url::verify(key.0.as_bytes(), method, path, expires, signature, now)
        .map_err(|r| ApiError::new(StatusCode::FORBIDDEN, Code::Forbidden, r.to_string()))
}

/// Why a request has no valid token.
fn check_token(token: &Secret, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
    let expected = token.0.as_bytes();
    let mut sent = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        if let Some(given) = bearer(value) {
            if crate::secret::matches(expected, given.as_bytes()) {
                return Ok(());
            }
            sent.push("the bearer token");
        }
    }
    for given in query.map(|q| query_values(q, QUERY_KEY).collect::<Vec<_>>()).unwrap_or_default() {
        if crate::secret::matches(expected, &given) {
            return Ok(());
        }
        sent.push("the DAYTONA_SANDBOX_AUTH_KEY query parameter");
    }
    sent.dedup();
    let message = if sent.is_empty() {
        format!(
            "authentication required: send the daemon's token as `Authorization: Bearer <token>` \
             or in the {QUERY_KEY} query parameter"
        )
    } else {
        format!("wrong token: {} does not match the daemon's token", sent.join(" and "))
    };
    Err(ApiError::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, message))
}

/// The credentials of `Authorization: Bearer <credentials>` (the scheme in any case).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let (scheme, rest) = value.to_str().ok()?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Every decoded value of `key` in a raw query. Pair by pair, so a query the file routes would
/// refuse (a repeated key, a bad escape elsewhere) still has its token found: the preview
/// proxy relays such queries unchanged.
fn query_values<'a>(query: &'a str, key: &'a str) -> impl Iterator<Item = Vec<u8>> + 'a {
    query.split('&').filter_map(move |pair| {
        let q = RawQuery::parse(pair).ok()?;
        q.get(key).map(<[u8]>::to_vec)
    })
}

fn pair_key_is(pair: &str, keys: &[&str]) -> bool {
    let raw = pair.split_once('=').map_or(pair, |(k, _)| k);
    RawQuery::parse(raw).ok().is_some_and(|q| keys.iter().any(|k| q.get(k).is_some()))
}

/// Marks a request whose `DAYTONA_SANDBOX_AUTH_KEY` parameter is the daemon's own credential (a
/// token is configured): the preview proxy drops it before relaying ([`without_key`]). It stays
/// in the request's own URI, so a redirect the daemon answers with keeps it and a browser that
/// follows it is still let in.
#[derive(Debug, Clone, Copy)]
pub struct OwnQueryKey;

/// Takes our credentials off a request that passed: `Authorization` headers that carry our
/// token (another `Authorization`, the user's app's own, stays), and marks the query parameter
/// as ours ([`OwnQueryKey`]).
fn strip(req: &mut Request, token: Option<&Secret>) {
    let Some(token) = token else { return };
    req.extensions_mut().insert(OwnQueryKey);
    let headers = req.headers_mut();
    let kept: Vec<HeaderValue> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter(|v| !bearer(v).is_some_and(|t| crate::secret::matches(token.0.as_bytes(), t.as_bytes())))
        .cloned()
        .collect();
    headers.remove(header::AUTHORIZATION);
    for v in kept {
        headers.append(header::AUTHORIZATION, v);
    }
}

/// An origin-form target (`/path?query`) without the `DAYTONA_SANDBOX_AUTH_KEY` parameter; the
/// other parameters stay byte for byte, in order.
pub fn without_key(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else { return target.to_string() };
    let kept: Vec<&str> = query.split('&').filter(|p| !pair_key_is(p, &[QUERY_KEY])).collect();
    if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) }
}

/// `uri` for a log line: the values of the token and signature parameters replaced.
pub fn redact(uri: &Uri) -> String {
    let Some(query) = uri.query() else { return uri.to_string() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|p| {
            if pair_key_is(p, SECRET_PARAMS) {
                format!("{}=REDACTED", p.split_once('=').map_or(p, |(k, _)| k))
            } else {
                p.to_string()
            }
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

fn answer(err: ApiError, req: &Request) -> Response {
    let pending = toolbox_envelope::Pending {
        status: err.status,
        code: err.code.map(Code::as_str),
        message: err.message,
    };
    toolbox_envelope::render(&pending, req.method().as_str(), req.uri().path())
}

#[cfg(test)]
mod tests;
