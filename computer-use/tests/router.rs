//! The agent's router, in process (`oneshot`), with no desktop: a display nobody serves and a
//! session bus that does not exist. Everything that reaches X11 is 503, everything that reaches
//! the accessibility bus is 503 `A11Y_UNAVAILABLE`; what is checked before (routing, bodies,
//! queries, ids) answers on its own. Every answer that is not a success is the envelope.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use computer_use::config::Config;
use computer_use::server;
use computer_use::state::AppState;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn app() -> Router {
    let mut config = Config::from_lookup(|k| (k == "HOME").then(|| "/nonexistent-home".into())).unwrap();
    config.display = ":4242".into();
    let state = AppState::new(config);
    state.desktop_env.update(|e| e.dbus_session_bus_address = Some("unix:path=/nonexistent/bus".into()));
    server::router(state)
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn send(app: &Router, method: Method, uri: &str, body: Option<&str>) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body.map(|b| Body::from(b.to_owned())).unwrap_or_else(Body::empty))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let content_type =
        res.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    Answer { status, content_type, body }
}

/// Checks the envelope's shape and returns its code.
fn envelope(a: &Answer, method: &Method, path: &str) -> Option<String> {
    assert!(a.content_type.starts_with("application/json"), "{method} {path}: {}", a.content_type);
    let v = &a.body;
    assert_eq!(v["statusCode"], a.status.as_u16(), "{v}");
    assert_eq!(v["source"], "DAYTONA_DAEMON", "{v}");
    assert_eq!(v["method"], method.as_str(), "{v}");
    assert_eq!(v["path"], path, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v.get("code").map(|c| c.as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_wrong_method_is_a_404_envelope_not_a_bare_405() {
    let app = app();
    for (method, path) in [
        (Method::DELETE, "/computeruse/status"),
        (Method::POST, "/computeruse/status"),
        (Method::GET, "/computeruse/start"),
        (Method::PUT, "/computeruse/mouse/click"),
        (Method::GET, "/computeruse/a11y/find"),
        (Method::DELETE, "/computeruse/process/xvfb/status"),
    ] {
        let a = send(&app, method.clone(), path, None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(envelope(&a, &method, path).as_deref(), Some("NOT_FOUND"), "{method} {path}");
        assert_eq!(a.body["message"], format!("not found: no route for {method} {path}"));
    }
}

#[tokio::test]
async fn unknown_routes_are_404_with_the_not_found_code() {
    let app = app();
    for path in ["/computeruse/nope", "/computeruse", "/computeruse/status/", "/elsewhere"] {
        let a = send(&app, Method::GET, path, None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(envelope(&a, &Method::GET, path).as_deref(), Some("NOT_FOUND"), "{path}");
    }
}

#[tokio::test]
async fn bodies_queries_and_path_parameters_are_refused_with_the_envelope() {
    let app = app();
    let cases: [(Method, &str, Option<&str>, StatusCode, &str, &str); 12] = [
        // Not an object, not JSON, wrong types: the shared body extractor.
        (
            Method::POST,
            "/computeruse/mouse/click",
            Some("[]"),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_BODY",
            "must be a JSON object",
        ),
        (
            Method::POST,
            "/computeruse/keyboard/type",
            Some("{not json"),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_BODY",
            "invalid body request",
        ),
        (
            Method::POST,
            "/computeruse/mouse/move",
            Some(r#"{"x": "left"}"#),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_BODY",
            "invalid type",
        ),
        (
            Method::POST,
            "/computeruse/keyboard/down",
            Some("{}"),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_BODY",
            "missing field `key`",
        ),
        (
            Method::POST,
            "/computeruse/mouse/click",
            Some(r#"{"clicks": 0}"#),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "clicks must be between 1 and 10",
        ),
        (
            Method::POST,
            "/computeruse/mouse/scroll",
            Some(r#"{"direction": "up", "amount": -1}"#),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "scroll amount",
        ),
        // Repeated and bad query values.
        (
            Method::GET,
            "/computeruse/a11y/tree?scope=all&scope=pid",
            None,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "duplicate field",
        ),
        (
            Method::GET,
            "/computeruse/a11y/tree?maxDepth=deep",
            None,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "maxDepth must be an integer",
        ),
        (
            Method::GET,
            "/computeruse/screenshot/region?x=1&y=2&width=0&height=1",
            None,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "width: must be greater than zero",
        ),
        (
            Method::GET,
            "/computeruse/screenshot/compressed?scale=9",
            None,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "scale: must be between 0.1 and 1.0",
        ),
        // An undecodable path parameter.
        (
            Method::GET,
            "/computeruse/process/%FF%FE/logs",
            None,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "invalid path parameter",
        ),
        (
            Method::POST,
            "/computeruse/a11y/node/focus",
            Some("{}"),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "invalid node id \"\": missing object path",
        ),
    ];
    for (method, uri, body, status, code, words) in cases {
        let a = send(&app, method.clone(), uri, body).await;
        let path = uri.split('?').next().unwrap();
        assert_eq!(a.status, status, "{method} {uri}: {}", a.body);
        assert_eq!(envelope(&a, &method, path).as_deref(), Some(code), "{method} {uri}: {}", a.body);
        assert!(a.body["message"].as_str().unwrap().contains(words), "{method} {uri}: {}", a.body);
    }
}

#[tokio::test]
async fn a_body_declared_over_the_limit_is_413_before_it_is_read() {
    let req = Request::post("/computeruse/mouse/move")
        .header(header::CONTENT_LENGTH, (64u64 * 1024 * 1024 + 1).to_string())
        .body(Body::from_stream(futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>()))
        .unwrap();
    let res = app().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn without_a_desktop_x_routes_are_503_and_accessibility_routes_503_a11y_unavailable() {
    let app = app();
    let a = send(&app, Method::GET, "/computeruse/mouse/position", None).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(envelope(&a, &Method::GET, "/computeruse/mouse/position"), None, "no code: {}", a.body);
    let msg = a.body["message"].as_str().unwrap();
    assert!(msg.starts_with("X display not available: cannot open display :4242"), "{msg}");
    assert!(msg.ends_with("start the desktop with POST /computeruse/start"), "{msg}");

    for (method, path, body) in [
        (Method::GET, "/computeruse/a11y/tree", None),
        (Method::POST, "/computeruse/a11y/find", Some("{}")),
        (Method::POST, "/computeruse/a11y/node/value", Some(r#"{"id": ":1.2:/a", "value": "x"}"#)),
    ] {
        let a = send(&app, method.clone(), path, body).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(envelope(&a, &method, path).as_deref(), Some("A11Y_UNAVAILABLE"), "{path}");
        let msg = a.body["message"].as_str().unwrap();
        assert!(msg.starts_with("accessibility bus not reachable: session bus: "), "{msg}");
    }
}

/// The document's operations, with their documented statuses.
fn documented() -> Vec<(Method, String, BTreeSet<u16>)> {
    let doc = serde_json::to_value(computer_use_api::openapi()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let statuses = op["responses"].as_object().unwrap().keys().map(|s| s.parse().unwrap()).collect();
            ops.push((method.to_uppercase().parse().unwrap(), path.clone(), statuses));
        }
    }
    ops
}

/// Route templates with their parameter names dropped: `/a/{x}/b` and `/a/{y}/b` are one route.
fn shape(path: &str) -> String {
    path.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>().join("/")
}

#[test]
fn the_document_lists_exactly_the_routes_the_agent_serves() {
    // The routes as the areas declare them (`.route("/computeruse/…", get(…))`).
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut served = BTreeSet::new();
    for area in std::fs::read_dir(&src).unwrap() {
        let api = area.unwrap().path().join("api.rs");
        let Ok(text) = std::fs::read_to_string(&api) else { continue };
        for part in text.split(".route(\"").skip(1) {
            let path = &part[..part.find('"').unwrap()];
            let rest = &part[part.find('"').unwrap() + 2..];
            let method = rest.trim_start().split('(').next().unwrap().to_uppercase();
            if path.starts_with("/computeruse") {
                served.insert((method, shape(path)));
            }
        }
    }
    let listed: BTreeSet<(String, String)> =
        documented().into_iter().map(|(m, p, _)| (m.to_string(), shape(&p))).collect();
    assert_eq!(served, listed);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_a_documented_status() {
    let app = app();
    for (method, path, statuses) in documented() {
        // Starting would bring up a real desktop; its answers are covered end to end.
        if path == "/computeruse/start" {
            continue;
        }
        let uri = path.replace("{processName}", "nosuch");
        let uri =
            if uri.contains("/screenshot/region") { format!("{uri}?x=0&y=0&width=4&height=4") } else { uri };
        let body = (method == Method::POST).then_some("{}");
        let a = send(&app, method.clone(), &uri, body).await;
        assert!(
            statuses.contains(&a.status.as_u16()),
            "{method} {uri} answered {} ({}), documented {statuses:?}",
            a.status,
            a.body
        );
        if !a.status.is_success() {
            envelope(&a, &method, uri.split('?').next().unwrap());
            let msg = a.body["message"].as_str().unwrap();
            assert!(!msg.contains("no route for"), "{method} {uri} is not routed: {msg}");
        }
    }
}
