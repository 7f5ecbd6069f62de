//! The web terminal on port 22222 (misc.md §5): a page with xterm.js, and a websocket that runs
//! a fresh shell on its own pseudo-terminal for each connection.
//!
//! Deviations, all compatible: a closed page hangs up its shell (SIGHUP to the group, then
//! SIGKILL of the whole tree if it is still there after a grace period) instead of leaking it;
//! a text frame counts as a resize only when it is a JSON object with numeric `rows` and `cols`
//! (the reference also treats `{}` or `null` as a resize to 0×0).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use crate::error::envelope_layer;
use crate::extract::Ws;
use crate::process::pty::{Launch, Pty};
use crate::state::AppState;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/xterm_bundled.rs"));
    pub static XTERM_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xterm.js"));
    pub static XTERM_CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xterm.css"));
    pub static FIT_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xterm-addon-fit.js"));
    pub static PAGE: &str = include_str!("index.html");
}

/// Whether this build embeds xterm.js (see `daemon/build.rs`).
pub const XTERM_BUNDLED: bool = assets::BUNDLED;

/// How long a hung-up shell may take to exit before its tree is killed.
const HANGUP_GRACE: Duration = Duration::from_secs(2);

pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let file = |body: &'static [u8], mime: &'static str| {
        move || async move { ([(header::CONTENT_TYPE, mime)], body) }
    };
    let router = Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], assets::PAGE) }))
        .route("/xterm.js", get(file(assets::XTERM_JS, "text/javascript; charset=utf-8")))
        .route("/xterm.css", get(file(assets::XTERM_CSS, "text/css; charset=utf-8")))
        .route("/xterm-addon-fit.js", get(file(assets::FIT_JS, "text/javascript; charset=utf-8")))
        .route("/ws", get(ws))
        .with_state(state)
        // A plain request to /ws is refused in the same JSON envelope as on the API port.
        .layer(axum::middleware::from_fn(envelope_layer));
    // With a token, the page and everything it loads ask for it too (the page passes its own
    // `DAYTONA_SANDBOX_AUTH_KEY` parameter on).
    crate::auth::protect_side(router, &config)
}

/// Serves the web terminal for the daemon's lifetime. A port that cannot be bound is logged and
/// leaves the toolbox API running.
pub async fn run(state: AppState) {
    crate::server::serve_side(state.config.terminal_port, "web terminal", router(state)).await;
}

async fn ws(State(state): State<AppState>, headers: HeaderMap, Ws(mut ws): Ws) -> Response {
    if let Some(t) = crate::client::protocol_token(&headers).and_then(|t| HeaderValue::from_str(&t).ok()) {
        ws.set_selected_protocol(t);
    }
    ws.on_upgrade(move |socket| serve(socket, state)).into_response()
}

#[derive(Deserialize)]
struct Resize {
    rows: u16,
    cols: u16,
}

/// Turns a byte stream into text without splitting characters: an incomplete sequence at the
/// end is kept for the next chunk; invalid bytes become U+FFFD.
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, chunk: &[u8]) -> String {
        self.pending.extend_from_slice(chunk);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    text.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // SAFETY-free: `valid` was just checked.
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            text.push('\u{FFFD}');
                            rest = &after[n..];
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }
}

async fn serve(mut socket: WebSocket, state: AppState) {
    let shell = crate::shell::select(&state.env);
    let mut extra: Vec<(&str, &str)> = vec![("SHELL", shell.as_str())];
    if state.env.get("TERM").is_none() {
        extra.push(("TERM", "xterm-256color"));
    }
    let env = state.env.snapshot_with(extra);
    let pty = Pty::new("web-terminal".into(), "/".into(), BTreeMap::new(), 80, 24, false, 0);
    let launch = Launch { program: shell.clone(), args: Vec::new(), cwd: "/".into(), env };
    if let Err(e) = pty.start(state.reaper, launch, || {}) {
        tracing::warn!(error = %e, "web terminal: cannot start the shell");
        return;
    }
    let Some(mut client) = pty.attach() else { return };
    let mut utf8 = Utf8Stream::default();
    loop {
        tokio::select! {
            biased;
            // The shell is gone: drop the connection (no close frame, as the reference does).
            _ = &mut client.end => return,
            Some(chunk) = client.out.recv() => {
                let text = utf8.push(&chunk);
                if !text.is_empty() && socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => {
                let data: Bytes = match msg {
                    Some(Ok(Message::Text(t))) => {
                        if let Ok(r) = serde_json::from_str::<Resize>(t.as_str()) {
                            let _ = pty.resize(r.cols, r.rows);
                            continue;
                        }
                        Bytes::from(t)
                    }
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) => {
                        crate::ws::answer_close(&mut socket).await;
                        break;
                    }
                    _ => break,
                };
                match pty.input() {
                    Some(tx) if tx.send(data).await.is_ok() => {}
                    _ => return,
                }
            }
        }
    }
    drop(client);
    hang_up(pty).await;
}

/// What closing a real terminal does: SIGHUP to the shell's group; a shell that ignores it has
/// its whole tree killed after a grace period.
async fn hang_up(pty: Arc<Pty>) {
    pty.hangup();
    tokio::time::sleep(HANGUP_GRACE).await;
    if pty.is_active() {
        let _ = tokio::task::spawn_blocking(move || pty.kill_blocking()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Stream;

    #[tokio::test]
    async fn a_plain_request_to_the_websocket_is_a_400_envelope() {
        use axum::http::{Request, StatusCode};
        use tower::ServiceExt;
        let app = crate::testing::TestApp::new(utoipa_axum::router::OpenApiRouter::new());
        let res = super::router(app.state.clone())
            .oneshot(Request::get("/ws").body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((v["code"].as_str(), v["path"].as_str()), (Some("BAD_REQUEST"), Some("/ws")));
    }

    #[tokio::test]
    async fn with_a_token_the_page_assets_and_websocket_ask_for_it() {
        use axum::http::{Request, StatusCode};
        use tower::ServiceExt;
        const TOKEN: &str = "tok-0123456789abcdef";
        let app = crate::testing::TestApp::with(
            utoipa_axum::router::OpenApiRouter::new(),
            &[("DAYTONA_AUTH_TOKEN", TOKEN)],
            |_| {},
        );
        let router = super::router(app.state.clone());
        let get = |uri: String| {
            let router = router.clone();
            async move {
                router.oneshot(Request::get(uri).body(axum::body::Body::empty()).unwrap()).await.unwrap()
            }
        };
        for path in ["/", "/xterm.js", "/xterm.css", "/ws", "/nope"] {
            let res = get(path.to_string()).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["code"], "UNAUTHORIZED");
        }
        for path in ["/", "/xterm.js", "/xterm.css"] {
            let res = get(format!("{path}?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
        }
        // Past the check, a plain request to the websocket is the usual 400.
        let res = get(format!("/ws?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn utf8_is_never_split() {
        let mut s = Utf8Stream::default();
        let e = "é".as_bytes();
        assert_eq!(s.push(&[b'a', e[0]]), "a");
        assert_eq!(s.push(&[e[1], b'b']), "éb");
        assert_eq!(s.push(&[0xff, b'c']), "\u{FFFD}c");
        let euro = "€".as_bytes();
        assert_eq!(s.push(&euro[..1]), "");
        assert_eq!(s.push(&euro[1..2]), "");
        assert_eq!(s.push(&euro[2..]), "€");
    }
}
