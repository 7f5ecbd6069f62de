//! `/port` routes over fixture tables and live sockets.

use std::sync::Arc;

use axum::http::StatusCode;

use super::routes;
use crate::port::Ports;
use crate::testing::TestApp;

fn app_over(proc_dir: &std::path::Path) -> TestApp {
    let ports = Arc::new(Ports::with_proc_dir(proc_dir));
    TestApp::with(routes(), &[], |s| s.ports = ports)
}

#[tokio::test]
async fn port_lists_ipv4_and_ipv6_listeners_once_ascending() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net")).unwrap();
    std::fs::write(dir.path().join("net/tcp"), include_str!("../testdata/tcp")).unwrap();
    std::fs::write(dir.path().join("net/tcp6"), include_str!("../testdata/tcp6")).unwrap();
    let a = app_over(dir.path()).get("/port").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), serde_json::json!({"ports": [2024, 2280, 3000, 5001, 8080]}));

    // Nothing listening is an empty list, never null.
    let empty = tempfile::tempdir().unwrap();
    let a = app_over(empty.path()).get("/port").await;
    assert_eq!(a.json(), serde_json::json!({"ports": []}));
}

#[tokio::test]
async fn port_sees_a_live_ipv6_only_listener() {
    let listener = std::net::TcpListener::bind("[::1]:0").expect("an IPv6 loopback address");
    let port = listener.local_addr().unwrap().port();
    let a = TestApp::new(routes()).get("/port").await;
    let listed = a.json()["ports"].as_array().unwrap().iter().any(|p| p.as_u64() == Some(port.into()));
    assert!(listed, "{port} missing from {}", a.json());
}

#[tokio::test]
async fn in_use_validates_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net")).unwrap();
    std::fs::write(dir.path().join("net/tcp"), include_str!("../testdata/tcp")).unwrap();
    let app = app_over(dir.path());
    for (port, listening) in [("3000", true), ("+3000", true), ("08080", true), ("9999", false)] {
        let a = app.get(&format!("/port/{port}/in-use")).await;
        assert_eq!(a.status, StatusCode::OK, "{port}");
        assert_eq!(a.json(), serde_json::json!({"isInUse": listening}), "{port}");
    }
    let not_a_number = "invalid port: must be a number between 3000 and 9999";
    let out_of_range = "port out of range: must be between 3000 and 9999";
    for (port, message) in [
        ("abc", not_a_number),
        ("3000abc", not_a_number),
        ("%20%203000", not_a_number),
        ("0x0BB8", not_a_number),
        ("%E2%82%AC", not_a_number),
        ("99999999999999999999", not_a_number),
        ("2999", out_of_range),
        ("10000", out_of_range),
        ("-3000", out_of_range),
        ("0", out_of_range),
        ("65536", out_of_range),
    ] {
        let a = app.get(&format!("/port/{port}/in-use")).await;
        assert_eq!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST"), message, "{port}");
    }
    // A parameter that is not UTF-8 once decoded is refused by the request layer, as a 400.
    let a = app.get("/port/%FF/in-use").await;
    a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
}
