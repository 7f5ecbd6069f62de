//! Router tests of `/proxy` against small targets on loopback: the request head as the target
//! sees it, redirects, refusals, errors, streaming, and the target's own answers passing the
//! daemon's error layer untouched. Large transfers, WebSockets and IPv6-only targets are
//! exercised end to end in `tests/test_proxy.py`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Reads a request head and, when it declares one, its body.
async fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// A target that answers every request with `answer(head, body)` as raw response bytes.
async fn target(answer: fn(&str, &[u8]) -> Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                while let Some((head, body)) = read_request(&mut s).await {
                    if s.write_all(&answer(&head, &body)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Echoes the request head and body back as the response body.
fn echo(head: &str, body: &[u8]) -> Vec<u8> {
    let mut payload = head.as_bytes().to_vec();
    payload.extend_from_slice(body);
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-target: yes\r\nkeep-alive: timeout=5\r\n\
         connection: keep-alive, x-hop\r\nx-hop: 1\r\ncontent-length: {}\r\n\r\n",
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(&payload);
    out
}

fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn send(req: Request) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = super::routes().oneshot(req).await.unwrap_or_else(|e| match e {});
    let (parts, body) = res.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

fn req(method: &str, uri: &str, body: impl Into<Body>) -> Request {
    Request::builder().method(method).uri(uri).body(body.into()).unwrap()
}

fn envelope(status: StatusCode, body: &[u8]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["statusCode"], status.as_u16(), "{v}");
    assert_eq!(v["source"], "DAYTONA_DAEMON", "{v}");
    v
}

#[tokio::test]
async fn the_target_sees_the_raw_path_the_query_and_rewritten_headers() {
    let port = target(echo).await;
    let mut r = req("POST", &format!("/proxy/{port}/a%40b/c%2Fd/(e)%20f?x=%2F&y=a+b"), "hello");
    let h = r.headers_mut();
    h.insert("host", "outer.example:2280".parse().unwrap());
    h.insert("connection", "x-private".parse().unwrap());
    h.insert("x-private", "secret".parse().unwrap());
    h.insert("proxy-authorization", "Basic eA==".parse().unwrap());
    h.insert("x-custom", "kept".parse().unwrap());
    h.insert("content-length", "5".parse().unwrap());
    r.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([10, 1, 2, 3], 5555))));
    let (status, headers, body) = send(r).await;
    assert_eq!(status, StatusCode::OK);
    let seen = String::from_utf8(body).unwrap().to_ascii_lowercase();
    assert!(seen.starts_with("post /a%40b/c%2fd/(e)%20f?x=%2f&y=a+b http/1.1\r\n"), "{seen}");
    assert!(seen.contains(&format!("\r\nhost: localhost:{port}\r\n")), "{seen}");
    assert!(seen.contains("\r\nx-forwarded-for: 10.1.2.3\r\n"), "{seen}");
    assert!(seen.contains("\r\nx-forwarded-host: outer.example:2280\r\n"), "{seen}");
    assert!(seen.contains("\r\nx-forwarded-proto: http\r\n"), "{seen}");
    assert!(seen.contains("\r\nx-custom: kept\r\n"), "{seen}");
    assert!(!seen.contains("x-private") && !seen.contains("proxy-authorization"), "{seen}");
    assert!(seen.ends_with("\r\n\r\nhello"), "{seen}");
    // The answer's own hop-by-hop headers stay with the target's hop.
    assert_eq!(headers["x-target"], "yes");
    for gone in ["keep-alive", "connection", "x-hop"] {
        assert!(!headers.contains_key(gone), "{gone}: {headers:?}");
    }
}

#[tokio::test]
async fn the_bare_port_redirects_keeping_the_query() {
    for (method, status) in [
        ("GET", StatusCode::MOVED_PERMANENTLY),
        ("HEAD", StatusCode::MOVED_PERMANENTLY),
        ("POST", StatusCode::TEMPORARY_REDIRECT),
    ] {
        let (got, headers, _) = send(req(method, "/proxy/3000?a=1&b=%2F", Body::empty())).await;
        assert_eq!(got, status, "{method}");
        assert_eq!(headers["location"], "/proxy/3000/?a=1&b=%2F");
    }
}

#[tokio::test]
async fn a_bad_port_is_a_400_naming_it() {
    for bad in ["0", "65536", "abc", "80x"] {
        let (status, _, body) = send(req("GET", &format!("/proxy/{bad}/x"), Body::empty())).await;
        let v = envelope(StatusCode::BAD_REQUEST, &body);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["code"], "BAD_REQUEST");
        assert!(v["message"].as_str().unwrap().contains(&format!("\"{bad}\"")), "{v}");
        assert_eq!(v["path"], format!("/proxy/{bad}/x"));
    }
}

#[tokio::test]
async fn a_dead_port_is_a_502_naming_the_port_and_the_cause() {
    let port = dead_port();
    let (status, headers, body) = send(req("GET", &format!("/proxy/{port}/"), Body::empty())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let v = envelope(StatusCode::BAD_GATEWAY, &body);
    assert_eq!(v["code"], "PROXY_UPSTREAM_FAILED");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(&format!("localhost:{port}")) && msg.contains("refused"), "{msg}");
}

#[tokio::test]
async fn the_targets_bare_error_answers_pass_the_servers_error_layer_untouched() {
    let port = target(|_, _| b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()).await;
    let cfg = crate::config::from_env(&[("DAYTONA_SANDBOX_ID".to_string(), "t".to_string())].into()).unwrap();
    let state = crate::state::AppState::new(cfg, crate::env::ChildEnv::new([]), std::env::temp_dir());
    let (app, docs) = crate::server::router(state);
    let doc = docs.public();
    let r = req("GET", &format!("/proxy/{port}/missing"), Body::empty());
    let res = app.clone().oneshot(r).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(!res.headers().contains_key("content-type"), "{:?}", res.headers());
    assert!(res.into_body().collect().await.unwrap().to_bytes().is_empty());
    // The daemon's own routes still answer with envelopes, and the proxy stays out of the
    // OpenAPI document as in the reference.
    let res = app.oneshot(req("GET", "/proxy", Body::empty())).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(doc.paths.paths.keys().all(|p| !p.starts_with("/proxy")));
}

#[tokio::test]
async fn the_answer_streams_as_the_target_sends_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_request(&mut s).await.unwrap();
        s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
        s.write_all(b"d\r\ndata: first\n\n\r\n").await.unwrap();
        // The rest only once the client has seen the first event.
        let _ = release_rx.await;
        s.write_all(b"c\r\ndata: last\n\n\r\n0\r\n\r\n").await.unwrap();
    });
    let res =
        super::routes().oneshot(req("GET", &format!("/proxy/{port}/events"), Body::empty())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("transfer-encoding"));
    let mut body = res.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first event arrives while the target is still sending")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "data: first\n\n");
    release_tx.send(()).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "data: last\n\n");
}

#[tokio::test]
async fn a_target_switching_protocols_unasked_is_a_502() {
    let port = target(|_, _| {
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n".to_vec()
    })
    .await;
    let (status, _, body) = send(req("GET", &format!("/proxy/{port}/"), Body::empty())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let v = envelope(StatusCode::BAD_GATEWAY, &body);
    assert!(v["message"].as_str().unwrap().contains("switched protocols"), "{v}");
}
