//! Relaying one HTTP request to the agent over its Unix socket: method, path, query, headers
//! and body unchanged, both bodies streamed.

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, Uri, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Connecting to a live agent's socket is immediate; anything slower means it is wedged.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on waiting for the agent's response head (start may take its own 45 s deadline).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether the daemon relays this path to the agent. Recordings stay in the daemon (and are not
/// built yet, so they are not routed at all).
pub fn is_forwarded(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/computeruse") else { return false };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return false;
    }
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    first != "recordings"
}

/// Connection-scoped headers, which belong to each hop and are not relayed.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    )
}

/// Sends `req` to the agent at `socket`; `Err` says why no answer came.
pub async fn forward(socket: &Path, req: Request) -> Result<Response, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket))
        .await
        .map_err(|_| "connecting to the agent timed out".to_string())?
        .map_err(|e| format!("cannot connect to the agent: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("agent handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "agent connection ended with an error");
        }
    });
    let (mut parts, body) = req.into_parts();
    // Origin form: the agent sees exactly the path and query the client sent.
    let mut pq = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/").to_string();
    // Our token in the query (a browser's) is not the agent's business.
    if parts.extensions.get::<crate::auth::OwnQueryKey>().is_some() {
        pq = crate::auth::without_key(&pq);
    }
    parts.uri = pq.parse::<Uri>().map_err(|e| format!("bad request target: {e}"))?;
    let connection_named: Vec<HeaderName> = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for name in connection_named {
        parts.headers.remove(name);
    }
    let names: Vec<HeaderName> = parts.headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    for name in names {
        parts.headers.remove(name);
    }
    if !parts.headers.contains_key(header::HOST) {
        parts.headers.insert(header::HOST, header::HeaderValue::from_static("computer-use"));
    }
    let req = hyper::Request::from_parts(parts, body);
    let res = tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| format!("the agent did not answer within {}s", RESPONSE_TIMEOUT.as_secs()))?
        .map_err(|e| format!("the agent did not answer: {e}"))?;
    let (mut parts, body) = res.into_parts();
    let names: Vec<HeaderName> = parts.headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    for name in names {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// A small GET to the agent, read whole (bounded) and decoded: for the daemon's own questions.
pub async fn get_json<T: serde::de::DeserializeOwned>(socket: &Path, path: &str) -> Result<T, String> {
    let req = Request::get(path).body(Body::empty()).map_err(|e| e.to_string())?;
    let res = forward(socket, req).await?;
    if !res.status().is_success() {
        return Err(format!("{path} answered {}", res.status()));
    }
    let bytes =
        tokio::time::timeout(Duration::from_secs(10), axum::body::to_bytes(res.into_body(), 64 * 1024))
            .await
            .map_err(|_| format!("{path}: body timed out"))?
            .map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_filter() {
        for yes in [
            "/computeruse/start",
            "/computeruse/process/xvfb/status",
            "/computeruse/mouse/click",
            "/computeruse",
            "/computeruse/",
            "/computeruse/recordingsX",
        ] {
            assert!(is_forwarded(yes), "{yes}");
        }
        for no in [
            "/computeruse/recordings",
            "/computeruse/recordings/",
            "/computeruse/recordings/start",
            "/computeruse/recordings/abc/download",
            "/computeruseX/start",
            "/internal/desktop-env",
            "/process/execute",
        ] {
            assert!(!is_forwarded(no), "{no}");
        }
    }
}
