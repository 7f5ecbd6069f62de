//! Router tests of the token check, signed URLs, the `/{sandboxId}` prefix and log redaction,
//! on the whole toolbox router as the server builds it.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::env::ChildEnv;
use crate::state::AppState;

const TOKEN: &str = "tok-0123456789abcdef";
const KEY: &str = "sign-0123456789abcdef";
const SANDBOX: &str = "sb-1";

struct App {
    router: Router,
    work: tempfile::TempDir,
}

fn app(vars: &[(&str, &str)]) -> App {
    let work = tempfile::tempdir().unwrap();
    let vars = [("DAYTONA_SANDBOX_ID", SANDBOX)]
        .iter()
        .chain(vars)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = crate::config::from_env(&vars).unwrap();
    let env = ChildEnv::new([("HOME".into(), work.path().into())]);
    let (router, _) = crate::server::router(AppState::new(config, env, work.path().to_path_buf()));
    App { router, work }
}

fn with_token() -> App {
    app(&[("DAYTONA_AUTH_TOKEN", TOKEN)])
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned();
    Answer { status: parts.status, headers: parts.headers, body }
}

async fn get(app: &Router, uri: &str) -> Answer {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn get_bearer(app: &Router, uri: &str, token: &str) -> Answer {
    let req = Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty());
    send(app, req.unwrap()).await
}

fn assert_401(a: &Answer, says: &str) {
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");
    let v = a.json();
    assert_eq!(v["code"], "UNAUTHORIZED");
    assert_eq!(v["statusCode"], 401);
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(says), "{msg}");
    assert!(!a.body.contains(TOKEN) && !a.body.contains("guess-"), "never echoes a value: {}", a.body);
}

#[tokio::test]
async fn without_a_token_nothing_is_asked() {
    let app = app(&[]);
    assert_eq!(get(&app.router, "/version").await.status, StatusCode::OK);
    // Stray credentials and signature parameters are ignored, as behind Daytona's proxy.
    let a = get_bearer(&app.router, "/version?DAYTONA_SANDBOX_AUTH_KEY=x&expires=1&signature=y", "k").await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn missing_or_wrong_token_is_a_401_on_every_route() {
    let app = with_token();
    for uri in [
        "/version",
        "/files?path=/",
        "/nope",
        "/swagger/doc.json",
        "/proxy/1/x",
        "/process/pty/x/connect",
        "/",
    ] {
        assert_401(&get(&app.router, uri).await, "authentication required");
        assert_401(
            &get_bearer(&app.router, uri, "guess-0123456789abcdef").await,
            "the bearer token does not match",
        );
        let wrong_query =
            format!("{uri}{}DAYTONA_SANDBOX_AUTH_KEY=guess-1", if uri.contains('?') { "&" } else { "?" });
        assert_401(
            &get(&app.router, &wrong_query).await,
            "DAYTONA_SANDBOX_AUTH_KEY query parameter does not match",
        );
    }
    // A websocket upgrade is refused before it is accepted.
    let req = Request::get("/process/interpreter/execute")
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Body::empty())
        .unwrap();
    assert_401(&send(&app.router, req).await, "authentication required");
    // Another scheme is not our credential.
    let req = Request::get("/version").header(header::AUTHORIZATION, format!("Basic {TOKEN}"));
    assert_401(&send(&app.router, req.body(Body::empty()).unwrap()).await, "authentication required");
}

#[tokio::test]
async fn the_right_token_in_a_header_or_the_query_passes() {
    let app = with_token();
    assert_eq!(get_bearer(&app.router, "/version", TOKEN).await.status, StatusCode::OK);
    let req = Request::get("/version").header(header::AUTHORIZATION, format!("bearer  {TOKEN} "));
    assert_eq!(send(&app.router, req.body(Body::empty()).unwrap()).await.status, StatusCode::OK);
    let a = get(&app.router, &format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
    assert_eq!(a.status, StatusCode::OK);
    // A wrong header beside the right parameter (a proxied app's own header): the parameter counts.
    let a = get_bearer(&app.router, &format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"), "theirs").await;
    assert_eq!(a.status, StatusCode::OK);
    // A redirect keeps the parameter, so a browser following it is let in again.
    let a = get(&app.router, &format!("/{SANDBOX}/proxy/1?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
    assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(a.headers[header::LOCATION], format!("/{SANDBOX}/proxy/1/?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"));
    let a = get(&app.router, &format!("/version/?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
    assert_eq!(a.headers[header::LOCATION], format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"));
    // Past the check, the usual answers: a 404 for an unknown route, the redirect.
    assert_eq!(get_bearer(&app.router, "/nope", TOKEN).await.status, StatusCode::NOT_FOUND);
    let a = get_bearer(&app.router, "/version/?a=1", TOKEN).await;
    assert_eq!(
        (a.status, &a.headers[header::LOCATION]),
        (StatusCode::MOVED_PERMANENTLY, &"/version?a=1".parse().unwrap())
    );
}

#[tokio::test]
async fn routes_are_served_under_the_sandbox_id_too() {
    let app = app(&[]);
    let a = get(&app.router, &format!("/{SANDBOX}/work-dir")).await;
    assert_eq!((a.status, a.json()["dir"].as_str()), (StatusCode::OK, app.work.path().to_str()));
    assert_eq!(get(&app.router, &format!("/{SANDBOX}/version")).await.status, StatusCode::OK);
    // Only that id.
    let a = get(&app.router, "/sb-2/version").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app.router, &format!("/{SANDBOX}x/version")).await.status, StatusCode::NOT_FOUND);
    // Redirects keep the prefix: the trailing-slash ones and the proxy's.
    let a = get(&app.router, &format!("/{SANDBOX}/version/?a=1")).await;
    assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(a.headers[header::LOCATION], format!("/{SANDBOX}/version?a=1"));
    let a = get(&app.router, &format!("/{SANDBOX}/proxy/1?q=2")).await;
    assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(a.headers[header::LOCATION], format!("/{SANDBOX}/proxy/1/?q=2"));
    // The proxy's relay runs on the stripped path (nothing listens on port 1: its own 502).
    let a = get(&app.router, &format!("/{SANDBOX}/proxy/1/x")).await;
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("PROXY_UPSTREAM_FAILED"))
    );
    // And with a token, the prefixed routes ask for it like the others.
    let app = with_token();
    assert_401(&get(&app.router, &format!("/{SANDBOX}/version")).await, "authentication required");
    assert_eq!(get_bearer(&app.router, &format!("/{SANDBOX}/version"), TOKEN).await.status, StatusCode::OK);
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn signed(route: &str, method: &str, path: &str, expires: u64) -> String {
    let sig = signed_url::sign(KEY.as_bytes(), method, path.as_bytes(), &expires.to_string());
    let query: String = form(&[("path", path), ("expires", &expires.to_string()), ("signature", &sig)]);
    format!("{route}?{query}")
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".into(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn assert_403(a: &Answer, says: &str) {
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let v = a.json();
    assert_eq!(v["code"], "FORBIDDEN");
    assert!(v["message"].as_str().unwrap().contains(says), "{v}");
}

fn upload(uri: &str, content: &str) -> Request<Body> {
    let body = format!(
        "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{content}\r\n--XX--\r\n"
    );
    Request::post(uri)
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XX")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn signed_urls_replace_the_token_on_the_two_file_routes() {
    let app = app(&[("DAYTONA_AUTH_TOKEN", TOKEN), ("DAYTONA_SIGNING_KEY", KEY)]);
    let dir = app.work.path();
    let file = dir.join("a b.txt");
    std::fs::write(&file, "hello").unwrap();
    let path = file.to_str().unwrap();
    let later = now() + 600;

    let a = get(&app.router, &signed("/files/download", "GET", path, later)).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "hello"));
    let a = get(&app.router, &format!("/{SANDBOX}{}", signed("/files/download", "GET", path, 0))).await;
    assert_eq!(a.status, StatusCode::OK, "never expires, under the prefix as the SDK builds it");
    let head = Request::head(signed("/files/download", "GET", path, later)).body(Body::empty()).unwrap();
    assert_eq!(send(&app.router, head).await.status, StatusCode::OK, "HEAD takes the GET signature");

    let target = dir.join("up.txt");
    let up = target.to_str().unwrap();
    let a = send(&app.router, upload(&signed("/files/upload-v2", "POST", up, later), "data")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "data");

    // Refusals, each saying why; nothing is written by a refused upload.
    let past = now() - 10;
    assert_403(&get(&app.router, &signed("/files/download", "GET", path, past)).await, "expired at");
    let tampered = signed("/files/download", "GET", "/etc/hostname", later)
        .replace("path=/etc/hostname", &form(&[("path", path)]));
    assert!(tampered.contains("a+b.txt"), "{tampered}");
    assert_403(&get(&app.router, &tampered).await, "signature does not match");
    let wrong_method = signed("/files/download", "POST", path, later);
    assert_403(&get(&app.router, &wrong_method).await, "signature does not match");
    let fresh = dir.join("never.txt");
    let download_sig = signed("/files/upload-v2", "GET", fresh.to_str().unwrap(), later);
    assert_403(&send(&app.router, upload(&download_sig, "x")).await, "signature does not match");
    assert!(!fresh.exists(), "a refused upload leaves no file");
    let sig = signed("/files/download", "GET", path, later);
    let bad_sig = sig.replace("signature=v1_", "signature=v1_A");
    assert_403(&get(&app.router, &bad_sig).await, "signature does not match");
    assert_403(&get(&app.router, &sig.replace("signature=v1_", "signature=v2_")).await, "scheme");
    assert_403(&get(&app.router, &sig.replace("signature=v1_", "signature=v1_*")).await, "base64url");
    // Half a signed URL, or a bad expiry, is the client's mistake.
    let only_expires = format!("/files/download?{}", form(&[("path", path), ("expires", "0")]));
    let a = get(&app.router, &only_expires).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["message"].as_str().unwrap().contains("`signature`"));
    let a = get(&app.router, &sig.replace(&format!("expires={later}"), "expires=soon")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Elsewhere a signature is no credential: the token rule applies.
    let elsewhere = signed("/files/info", "GET", path, later);
    assert_401(&get(&app.router, &elsewhere).await, "authentication required");
    // The token still works on the file routes.
    let plain = format!("/files/download?{}", form(&[("path", path)]));
    assert_eq!(get_bearer(&app.router, &plain, TOKEN).await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_signing_key_signatures_are_ignored() {
    let secured = with_token();
    let file = secured.work.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let uri = signed("/files/download", "GET", file.to_str().unwrap(), now() + 60);
    assert_401(&get(&secured.router, &uri).await, "authentication required");
    assert_eq!(get_bearer(&secured.router, &uri, TOKEN).await.status, StatusCode::OK);
    // Neither token nor key: the file is served whatever the parameters say.
    let plain = app(&[]);
    assert_eq!(
        get(&plain.router, &uri.replace("signature=v1_", "signature=v9_")).await.status,
        StatusCode::OK
    );
}

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

/// A writer into a shared buffer, for the log subscriber of one test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_or_signature_reaches_the_log() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = app(&[("DAYTONA_AUTH_TOKEN", TOKEN), ("DAYTONA_SIGNING_KEY", KEY)]);
    let file = app.work.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let uri = signed("/files/download", "GET", file.to_str().unwrap(), now() + 60);
    let sig = uri.split("signature=").nth(1).unwrap().to_string();
    assert_eq!(get(&app.router, &uri).await.status, StatusCode::OK);
    assert_eq!(
        get(&app.router, &format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await.status,
        StatusCode::OK
    );
    assert_eq!(get_bearer(&app.router, "/version", TOKEN).await.status, StatusCode::OK);
    assert_eq!(
        get(&app.router, "/version?DAYTONA_SANDBOX_AUTH_KEY=guess-0123456789").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&app.router, &uri.replace("signature=v1_", "signature=v1_A")).await.status,
        StatusCode::FORBIDDEN
    );

    let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("/files/download"), "the requests were logged: {log}");
    assert!(log.contains("REDACTED"), "{log}");
    for secret in [TOKEN, KEY, sig.as_str(), "guess-0123456789"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test]
async fn the_side_servers_ask_for_the_token_too() {
    let tmp = tempfile::tempdir().unwrap();
    let test = crate::testing::TestApp::with(
        crate::recordings::api::routes(),
        &[("DAYTONA_AUTH_TOKEN", TOKEN), ("DAYTONA_RECORDINGS_DIR", tmp.path().to_str().unwrap())],
        |_| {},
    );
    for router in [
        crate::terminal::api::router(test.state.clone()),
        crate::recordings::api::dashboard::router(test.state.clone()),
    ] {
        assert_401(&get(&router, "/").await, "authentication required");
        assert_401(&get(&router, "/ws").await, "authentication required");
        assert_eq!(get(&router, &format!("/?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await.status, StatusCode::OK);
    }
    let dashboard = crate::recordings::api::dashboard::router(test.state.clone());
    assert_401(&get(&dashboard, "/api/recordings").await, "authentication required");
    let a = get(&dashboard, &format!("/api/recordings?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
    assert_eq!(a.status, StatusCode::OK);
    let terminal = crate::terminal::api::router(test.state.clone());
    let a = get(&terminal, &format!("/xterm.js?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
    assert_eq!(a.status, StatusCode::OK);
}
