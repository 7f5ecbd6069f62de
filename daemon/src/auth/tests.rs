//! Unit tests of the credential stripping and log redaction. The router-level tests (401s,
//! signed URLs, the prefix, the log) are with the router, in `server.rs`.

use axum::body::Body;
use axum::http::{Request, header};

use super::*;

const TOKEN: &str = "tok-0123456789abcdef";

#[test]
fn our_credentials_are_taken_off_a_request_that_passed() {
    let token = Secret(TOKEN.into());
    let mut req = Request::get(format!("/proxy/3000/x?a=1&DAYTONA_SANDBOX_AUTH_KEY={TOKEN}&b=%20"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::AUTHORIZATION, "Bearer theirs")
        .body(Body::empty())
        .unwrap();
    strip(&mut req, Some(&token));
    let left: Vec<_> = req.headers().get_all(header::AUTHORIZATION).iter().collect();
    assert_eq!(left, ["Bearer theirs"]);
    assert!(req.extensions().get::<OwnQueryKey>().is_some());
    // Without a token nothing is ours: the parameter (Daytona's preview token) is left alone.
    let mut req = Request::get("/x?DAYTONA_SANDBOX_AUTH_KEY=t").body(Body::empty()).unwrap();
    strip(&mut req, None);
    assert!(req.extensions().get::<OwnQueryKey>().is_none());

    assert_eq!(without_key(&format!("/x?a=1&DAYTONA_SANDBOX_AUTH_KEY={TOKEN}&b=%20")), "/x?a=1&b=%20");
    assert_eq!(without_key(&format!("/x?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")), "/x");
    assert_eq!(without_key("/x?a=1&a=2"), "/x?a=1&a=2");
    assert_eq!(without_key("/x"), "/x");
}

#[test]
fn redaction() {
    let uri: Uri =
        "/files/download?path=/a&expires=9&signature=v1_abc&DAYTONA_SANDBOX_AUTH_KEY=tok".parse().unwrap();
    assert_eq!(
        redact(&uri),
        "/files/download?path=/a&expires=9&signature=REDACTED&DAYTONA_SANDBOX_AUTH_KEY=REDACTED"
    );
    assert_eq!(redact(&"/version".parse().unwrap()), "/version");
}
