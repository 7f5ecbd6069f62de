//! HTTP edge of PTY sessions: thin handlers over [`super::PtyRegistry`] and [`super::Pty`].

use std::collections::BTreeMap;

use crate::openapi::routes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::{NewPty, Pty, PtyError, ws};
use crate::error::{ApiError, Code};
use crate::extract::{Json, Path, Query, Ws};
use crate::openapi::ErrorResponse;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    // The static create-connect route takes precedence over `/process/pty/{sessionId}`.
    OpenApiRouter::new()
        .routes(routes!(create_connect))
        .routes(routes!(create_pty, list_ptys))
        .routes(routes!(get_pty, delete_pty))
        .routes(routes!(resize_pty))
        .routes(routes!(connect_pty))
}

const MAX_DIM: u16 = 1000;
pub const EXIT_CONTROL_PROTOCOL: &str = "X-Daytona-Pty-Exit-Control";
const ENVS_PROTOCOL_PREFIX: &str = "X-Daytona-Pty-Envs~";

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PtyCreateRequest {
    /// One path component of at most 255 bytes: not `.` or `..`, no `/` or NUL.
    // Absent is a validation failure like empty, not a decoding one.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    id: String,
    /// The shell's working directory; the daemon's work dir when absent or empty.
    #[serde(default)]
    cwd: Option<String>,
    /// Variables added to the shell's environment; `TERM` defaults to `xterm-256color`.
    #[serde(default)]
    envs: Option<BTreeMap<String, String>>,
    /// 80 when absent.
    #[serde(default)]
    #[schema(maximum = 1000)]
    cols: Option<u16>,
    /// 24 when absent.
    #[serde(default)]
    #[schema(maximum = 1000)]
    rows: Option<u16>,
    /// Start the shell only when the first client connects.
    #[serde(default)]
    lazy_start: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PtyCreateResponse {
    session_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PtySessionInfo {
    id: String,
    cwd: String,
    envs: BTreeMap<String, String>,
    cols: u16,
    rows: u16,
    created_at: String,
    active: bool,
    lazy_start: bool,
}

impl PtySessionInfo {
    fn of(p: &Pty) -> Self {
        let (cols, rows) = p.size();
        PtySessionInfo {
            id: p.id.clone(),
            cwd: p.cwd.clone(),
            envs: p.envs.clone(),
            cols,
            rows,
            created_at: p.created_at.clone(),
            active: p.is_active(),
            lazy_start: p.lazy_start,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PtyListResponse {
    sessions: Vec<PtySessionInfo>,
}

#[derive(Deserialize, ToSchema)]
pub struct PtyResizeRequest {
    #[schema(maximum = 1000)]
    cols: u16,
    #[schema(maximum = 1000)]
    rows: u16,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    message: String,
}

/// `create-connect`'s query. The sizes stay text: a value that is not a 16-bit unsigned number
/// means the default, silently (a quirk of the reference kept for compatibility).
#[derive(Deserialize)]
pub struct CreateConnectQuery {
    #[serde(default)]
    id: String,
    cols: Option<String>,
    rows: Option<String>,
    cwd: Option<String>,
}

/// The error of a route that names the terminal in its path: unknown and ended terminals are
/// both "not found" there (only resize tells them apart).
fn lookup_error(e: PtyError) -> ApiError {
    match e {
        PtyError::NotFound(_) | PtyError::Ended(_) => {
            ApiError::new(StatusCode::NOT_FOUND, Code::ProcessNotFound, "PTY session not found")
        }
        other => other.into(),
    }
}

impl From<PtyError> for ApiError {
    fn from(e: PtyError) -> Self {
        let message = e.to_string();
        match e {
            // Ids in paths and queries; an id in a body is mapped by `create_pty`.
            PtyError::InvalidId(_) => ApiError::new(StatusCode::BAD_REQUEST, Code::BadRequest, message),
            PtyError::Exists(_) => ApiError::conflict(message),
            PtyError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, Code::ProcessNotFound, message),
            PtyError::Ended(_) => ApiError::new(StatusCode::GONE, Code::SessionEnded, message),
            // The reference answers 500 here, and the clients' tests expect it.
            PtyError::NotStarted(_) => ApiError::internal("cannot resize inactive PTY session"),
            PtyError::Start(_) | PtyError::Resize(_) | PtyError::Internal(_) => ApiError::internal(message),
        }
    }
}

/// A requested working directory must be one a shell can start in, checked when the PTY is
/// made: a lazily started PTY would otherwise fail only on its first connect.
async fn check_cwd(state: &AppState, cwd: Option<&str>) -> Result<(), ApiError> {
    let Some(cwd) = cwd.filter(|c| !c.is_empty()) else { return Ok(()) };
    let dir = crate::fspath::FilePath::parse_str(cwd, &state.work_dir, "cwd is required")?.abs;
    let checked = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || crate::fspath::usable_dir(&dir))
            .await
            .map_err(ApiError::internal)?
    };
    checked.map_err(|e| crate::fspath::dir_error("cwd", &dir, &e))
}

fn check_dims(cols: u16, rows: u16, what: impl Fn(&str) -> String) -> Result<(), ApiError> {
    if cols > MAX_DIM {
        return Err(ApiError::bad_request(what("cols")));
    }
    if rows > MAX_DIM {
        return Err(ApiError::bad_request(what("rows")));
    }
    Ok(())
}

/// Create a PTY session.
#[utoipa::path(post, path = "/process/pty", tag = "process", request_body = PtyCreateRequest,
    responses((status = 201, body = PtyCreateResponse),
        (status = 400, description = "no id, an invalid id, a size over 1000, or a cwd that is not a directory", body = ErrorResponse),
        (status = 403, description = "the cwd cannot be entered (FILE_ACCESS_DENIED)", body = ErrorResponse),
        (status = 404, description = "the cwd does not exist (FILE_NOT_FOUND)", body = ErrorResponse),
        (status = 409, description = "a PTY session with this id exists", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse),
        (status = 500, description = "the shell could not be started", body = ErrorResponse)))]
async fn create_pty(
    State(state): State<AppState>,
    Json(req): Json<PtyCreateRequest>,
) -> Result<(StatusCode, Json<PtyCreateResponse>), ApiError> {
    if req.id.is_empty() {
        return Err(ApiError::bad_request("session ID is required"));
    }
    let (cols, rows) = (req.cols.unwrap_or(80), req.rows.unwrap_or(24));
    check_dims(cols, rows, |w| format!("invalid value for {w} - must be less than 1000"))?;
    check_cwd(&state, req.cwd.as_deref()).await?;
    let new = NewPty {
        id: req.id.clone(),
        cwd: req.cwd,
        envs: req.envs.unwrap_or_default(),
        cols,
        rows,
        lazy_start: req.lazy_start,
    };
    match state.ptys.create(new) {
        Ok(_) => Ok((StatusCode::CREATED, Json(PtyCreateResponse { session_id: req.id }))),
        Err(e @ PtyError::InvalidId(_)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, Code::InvalidRequestBody, e.to_string()))
        }
        Err(PtyError::Start(e)) => {
            tracing::warn!(error = %e, id = %req.id, "failed to start PTY session");
            match crate::exhaust::Exhausted::of("failed to start PTY session", &e) {
                Some(x) => Err(x.into()),
                None => Err(ApiError::internal("failed to start PTY session")),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// List PTY sessions.
#[utoipa::path(get, path = "/process/pty", tag = "process", responses((status = 200, body = PtyListResponse)))]
async fn list_ptys(State(state): State<AppState>) -> Json<PtyListResponse> {
    Json(PtyListResponse { sessions: state.ptys.list().iter().map(|p| PtySessionInfo::of(p)).collect() })
}

/// Get a PTY session.
#[utoipa::path(get, path = "/process/pty/{sessionId}", tag = "process", params(("sessionId" = String, Path)),
    responses((status = 200, body = PtySessionInfo),
        (status = 400, description = "an invalid or undecodable id", body = ErrorResponse),
        (status = 404, description = "no such PTY session", body = ErrorResponse)))]
async fn get_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PtySessionInfo>, ApiError> {
    let pty = state.ptys.get(&id).map_err(lookup_error)?;
    Ok(Json(PtySessionInfo::of(&pty)))
}

/// Kill a PTY session and its whole process tree.
#[utoipa::path(delete, path = "/process/pty/{sessionId}", tag = "process", params(("sessionId" = String, Path)),
    responses((status = 200, body = MessageResponse),
        (status = 400, description = "an invalid or undecodable id", body = ErrorResponse),
        (status = 404, description = "no such PTY session", body = ErrorResponse)))]
async fn delete_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    state.ptys.delete(&id).await.map_err(lookup_error)?;
    Ok(Json(MessageResponse { message: "PTY session deleted".into() }))
}

/// Resize a PTY session.
#[utoipa::path(post, path = "/process/pty/{sessionId}/resize", tag = "process", params(("sessionId" = String, Path)),
    request_body = PtyResizeRequest,
    responses((status = 200, body = PtySessionInfo),
        (status = 400, description = "an invalid or undecodable id, or a size over 1000", body = ErrorResponse),
        (status = 404, description = "no such PTY session", body = ErrorResponse),
        (status = 410, description = "the PTY session has ended", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse),
        (status = 500, description = "a lazy session not started yet, or the terminal refused the size", body = ErrorResponse)))]
async fn resize_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(req): Json<PtyResizeRequest>,
) -> Result<Json<PtySessionInfo>, ApiError> {
    check_dims(req.cols, req.rows, |w| format!("{w} must be less than 1000"))?;
    match state.ptys.resize(&id, req.cols, req.rows) {
        Ok(pty) => Ok(Json(PtySessionInfo::of(&pty))),
        Err(PtyError::Ended(id)) => Err(ApiError::new(
            StatusCode::GONE,
            Code::SessionEnded,
            format!("PTY session '{id}' has terminated and cannot be resized"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The offered sub-protocol tokens, over every header line.
fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The token to select: the SDK version token if offered (README §8.6), else the exit-control
/// token so that browsers, which reject a handshake selecting nothing, can connect. Never the
/// envs token.
fn selected(tokens: &[String]) -> Option<&str> {
    tokens
        .iter()
        .find(|t| t.starts_with(crate::client::VERSION_PROTOCOL_PREFIX))
        .or_else(|| tokens.iter().find(|t| *t == EXIT_CONTROL_PROTOCOL))
        .map(String::as_str)
}

/// The envs map of an `X-Daytona-Pty-Envs~<base64url JSON>` token, if one was offered.
fn envs_from(tokens: &[String]) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(tok) = tokens.iter().find_map(|t| t.strip_prefix(ENVS_PROTOCOL_PREFIX)) else {
        return Ok(BTreeMap::new());
    };
    let raw = crate::text::base64_decode(tok)
        .ok_or_else(|| ApiError::bad_request("invalid envs subprotocol: bad base64url"))?;
    serde_json::from_slice(&raw).map_err(|e| ApiError::bad_request(format!("invalid envs subprotocol: {e}")))
}

/// Takes the upgrade (a plain request is refused with 400) with the PTY's frame limit and the
/// sub-protocol to select.
async fn upgrade(
    parts: &mut axum::http::request::Parts,
    state: &AppState,
    tokens: &[String],
) -> Result<Ws, ApiError> {
    let ws = Ws::from_request_parts(parts, state).await?;
    Ok(configure(ws, tokens))
}

fn configure(Ws(ws): Ws, tokens: &[String]) -> Ws {
    // Larger input messages break the connection (process.md §5.7 item 5).
    let mut ws = ws.max_message_size(64 * 1024).max_frame_size(64 * 1024);
    if let Some(t) = selected(tokens).and_then(|t| HeaderValue::from_str(t).ok()) {
        ws.set_selected_protocol(t);
    }
    Ws(ws)
}

/// Create a PTY session and attach to it in one websocket.
#[utoipa::path(get, path = "/process/pty/create-connect", tag = "process",
    params(("id" = String, Query, description = "the new session's id, as in `POST /process/pty`"),
        ("cols" = Option<String>, Query, description = "80 unless a number up to 1000"),
        ("rows" = Option<String>, Query, description = "24 unless a number up to 1000"),
        ("cwd" = Option<String>, Query)),
    responses((status = 101, description = "Upgraded: the terminal streams as websocket frames"),
        (status = 400, description = "not a websocket upgrade, no id or an invalid one, a size over 1000, a repeated parameter, a bad envs token, or a cwd that is not a directory", body = ErrorResponse),
        (status = 403, description = "the cwd cannot be entered (FILE_ACCESS_DENIED)", body = ErrorResponse),
        (status = 404, description = "the cwd does not exist (FILE_NOT_FOUND)", body = ErrorResponse),
        (status = 409, description = "a PTY session with this id exists", body = ErrorResponse)))]
async fn create_connect(
    State(state): State<AppState>,
    Query(q): Query<CreateConnectQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = q.id;
    if id.is_empty() {
        return Err(ApiError::bad_request("session ID is required"));
    }
    state.ptys.check_new(&id)?;
    let dim = |v: Option<String>, d: u16| v.and_then(|v| v.parse::<u16>().ok()).unwrap_or(d);
    let (cols, rows) = (dim(q.cols, 80), dim(q.rows, 24));
    if cols > MAX_DIM || rows > MAX_DIM {
        return Err(ApiError::bad_request("cols and rows must be less than 1000"));
    }
    check_cwd(&state, q.cwd.as_deref()).await?;
    let tokens = offered(req.headers());
    let envs = envs_from(&tokens)?;
    let exit_control = tokens.iter().any(|t| t == EXIT_CONTROL_PROTOCOL);
    // The upgrade is taken last, so a plain request learns about the problems above first.
    let (mut parts, _) = req.into_parts();
    let Ws(ws) = upgrade(&mut parts, &state, &tokens).await?;
    let new = NewPty { id, cwd: q.cwd, envs, cols, rows, lazy_start: false };
    Ok(ws.on_upgrade(move |mut socket| async move {
        match state.ptys.create(new) {
            Ok(pty) => ws::serve(socket, pty, exit_control).await,
            Err(e) => {
                let reason = match e {
                    PtyError::Start(e) => e.to_string(),
                    other => other.to_string(),
                };
                ws::fail(&mut socket, &format!("Failed to start PTY session: {reason}")).await
            }
        }
    }))
}

/// Attach to a PTY session (starting a lazy one). The upgrade is taken for any id; a session
/// that cannot be attached is reported in an error frame.
#[utoipa::path(get, path = "/process/pty/{sessionId}/connect", tag = "process", params(("sessionId" = String, Path)),
    responses((status = 101, description = "Upgraded: the terminal streams as websocket frames"),
        (status = 400, description = "not a websocket upgrade, or an undecodable id", body = ErrorResponse)))]
async fn connect_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: Ws,
) -> Response {
    let tokens = offered(&headers);
    let exit_control = tokens.iter().any(|t| t == EXIT_CONTROL_PROTOCOL);
    let Ws(ws) = configure(ws, &tokens);
    ws.on_upgrade(move |mut socket| async move {
        let fail = |reason: String| format!("Failed to connect to PTY session: {reason}");
        let started = state.ptys.get(&id).and_then(|pty| {
            if !pty.is_started() {
                state.ptys.start(&pty)?;
            }
            Ok(pty)
        });
        match started {
            Ok(pty) => ws::serve(socket, pty, exit_control).await,
            Err(PtyError::Ended(id)) => {
                let reason = format!("PTY session '{id}' has terminated and is no longer available");
                ws::fail(&mut socket, &fail(reason)).await
            }
            Err(e) => ws::fail(&mut socket, &fail(e.to_string())).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envs_token_with_and_without_padding() {
        // base64url of {"A": "1", "B": "\u00e9"} as python json.dumps writes it.
        let json = br#"{"A": "1", "B": "\u00e9"}"#;
        let enc = |pad: bool| {
            const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut s = String::new();
            for c in json.chunks(3) {
                let mut b = [0u8; 3];
                b[..c.len()].copy_from_slice(c);
                let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
                for i in 0..=c.len() {
                    s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
                if pad {
                    s.push_str(&"=".repeat(3 - c.len()));
                }
            }
            s
        };
        for pad in [false, true] {
            let tokens =
                vec![EXIT_CONTROL_PROTOCOL.to_string(), format!("{ENVS_PROTOCOL_PREFIX}{}", enc(pad))];
            let envs = envs_from(&tokens).unwrap();
            assert_eq!(envs["A"], "1");
            assert_eq!(envs["B"], "é");
        }
        assert!(envs_from(&[format!("{ENVS_PROTOCOL_PREFIX}!!!")]).is_err());
        assert!(envs_from(&[format!("{ENVS_PROTOCOL_PREFIX}e30")]).unwrap().is_empty()); // {}
        assert!(envs_from(&[]).unwrap().is_empty());
    }

    #[test]
    fn protocol_selection_never_echoes_envs() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            selected(&t(&["X-Daytona-Pty-Envs~e30", EXIT_CONTROL_PROTOCOL])),
            Some(EXIT_CONTROL_PROTOCOL)
        );
        assert_eq!(
            selected(&t(&[EXIT_CONTROL_PROTOCOL, "X-Daytona-SDK-Version~0.226.1"])),
            Some("X-Daytona-SDK-Version~0.226.1")
        );
        assert_eq!(selected(&t(&["X-Daytona-Pty-Envs~e30", "chat"])), None);
    }

    mod router {
        use axum::http::StatusCode;

        use super::super::routes;
        use crate::testing::TestApp;

        fn bad_ids() -> Vec<String> {
            vec![
                "a/b".into(),
                "..".into(),
                ".".into(),
                "a\u{0}b".into(),
                "x".repeat(300),
                "y".repeat(1 << 20),
            ]
        }

        async fn assert_no_ptys(app: &TestApp) {
            let a = app.get("/process/pty").await;
            assert_eq!(a.json(), serde_json::json!({ "sessions": [] }));
        }

        #[tokio::test]
        async fn invalid_ids_are_400_and_create_nothing() {
            let app = TestApp::new(routes());
            for bad in bad_ids() {
                let body = serde_json::json!({ "id": bad, "lazyStart": true }).to_string();
                let msg = app
                    .send("POST", "/process/pty", body)
                    .await
                    .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
                assert!(msg.starts_with("invalid PTY ID") && msg.len() < 200, "{msg:.200}");
                // Not lazy: no shell may start either.
                let body = serde_json::json!({ "id": bad }).to_string();
                app.send("POST", "/process/pty", body)
                    .await
                    .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
            }
            for query in ["a%2Fb", "..", "a%00b", &"x".repeat(300)] {
                let a = app.get(&format!("/process/pty/create-connect?id={query}")).await;
                assert!(
                    a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").starts_with("invalid PTY ID"),
                    "{query:.20}"
                );
            }
            for uri in ["/process/pty/..", "/process/pty/a%00b", "/process/pty/a%2Fb"] {
                app.get(uri).await.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
                app.send("DELETE", uri, "").await.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
            }
            assert_no_ptys(&app).await;
        }

        #[tokio::test]
        async fn undecodable_ids_repeated_keys_and_plain_websocket_requests_are_400() {
            let app = TestApp::new(routes());
            for (method, uri) in [
                ("GET", "/process/pty/%FF%FE"),
                ("DELETE", "/process/pty/%FF%FE"),
                ("POST", "/process/pty/%FF%FE/resize"),
                ("GET", "/process/pty/%FF%FE/connect"),
            ] {
                let msg = app
                    .send(method, uri, r#"{"cols":10,"rows":10}"#)
                    .await
                    .envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
                assert!(msg.contains("invalid path parameter"), "{method} {uri}: {msg}");
            }
            let a = app.get("/process/pty/create-connect?id=a&id=b").await;
            assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("duplicate field"));
            // Valid requests that only lack the upgrade.
            let a = app.get("/process/pty/create-connect?id=fresh").await;
            assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("WebSocket upgrade"));
            let a = app.get("/process/pty/any/connect").await;
            assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("WebSocket upgrade"));
            assert_no_ptys(&app).await;
        }

        #[tokio::test]
        async fn a_cwd_no_shell_can_start_in_is_a_4xx_naming_it() {
            let app = TestApp::new(routes());
            let file = app.home.path().join("f");
            std::fs::write(&file, "").unwrap();
            let file = file.to_string_lossy().into_owned();
            for (cwd, status, code) in [
                ("/nonexistent".to_string(), StatusCode::NOT_FOUND, "FILE_NOT_FOUND"),
                ("missing/sub".to_string(), StatusCode::NOT_FOUND, "FILE_NOT_FOUND"),
                (file.clone(), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
                (r"/tmp/a\u0000b".to_string(), StatusCode::BAD_REQUEST, "INVALID_FILE_PATH"),
            ] {
                for lazy in [false, true] {
                    let body = format!(r#"{{"id":"p","cwd":"{cwd}","lazyStart":{lazy}}}"#);
                    let msg = app.send("POST", "/process/pty", body).await.envelope(status, code);
                    assert!(msg.contains("cwd") || code == "INVALID_FILE_PATH", "{cwd}: {msg}");
                }
            }
            let q = format!("/process/pty/create-connect?id=p&cwd={}", "/nonexistent");
            app.get(&q).await.envelope(StatusCode::NOT_FOUND, "FILE_NOT_FOUND");
            assert_no_ptys(&app).await;
        }

        #[tokio::test]
        async fn bodies_must_be_objects_of_the_schema() {
            let app = TestApp::new(routes());
            for body in [
                "",
                "[]",
                "[null]",
                r#"{"id": 1}"#,
                r#"{"id":"p","cols":-1}"#,
                r#"{"id":"p","envs":{"A":1}}"#,
            ] {
                app.send("POST", "/process/pty", body)
                    .await
                    .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
            }
            for body in ["[]", "{}", r#"{"cols": 10}"#, r#"{"cols":"10","rows":10}"#] {
                app.send("POST", "/process/pty/p/resize", body)
                    .await
                    .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
            }
            let req = axum::http::Request::post("/process/pty")
                .header("content-length", (crate::extract::MAX_JSON_BODY + 1).to_string())
                .body(axum::body::Body::empty())
                .unwrap();
            app.request(req).await.envelope(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
            assert_no_ptys(&app).await;
        }

        #[tokio::test]
        async fn unknown_ids_are_404_and_ended_ones_410() {
            let app = TestApp::new(routes());
            let resize = |id: &str| format!("/process/pty/{id}/resize");
            let size = r#"{"cols":100,"rows":30}"#;
            let a = app.send("POST", &resize("nosuch"), size).await;
            assert_eq!(
                a.envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND"),
                "PTY session nosuch not found"
            );
            app.get("/process/pty/nosuch").await.envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND");

            let a = app.send("POST", "/process/pty", r#"{"id":"p","lazyStart":true}"#).await;
            assert_eq!((a.status, a.json()), (StatusCode::CREATED, serde_json::json!({ "sessionId": "p" })));
            let a = app.send("POST", "/process/pty", r#"{"id":"p","lazyStart":true}"#).await;
            assert_eq!(
                a.envelope(StatusCode::CONFLICT, "CONFLICT"),
                "conflict: PTY session with ID 'p' already exists"
            );
            app.get("/process/pty/create-connect?id=p").await.envelope(StatusCode::CONFLICT, "CONFLICT");
            // Not started yet: the reference's 500, which the clients expect.
            app.send("POST", &resize("p"), size)
                .await
                .envelope(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR");
            let a = app.send("POST", &resize("p"), r#"{"cols":1001,"rows":30}"#).await;
            assert_eq!(
                a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST"),
                "bad request: cols must be less than 1000"
            );

            let a = app.send("DELETE", "/process/pty/p", "").await;
            assert_eq!(
                (a.status, a.json()),
                (StatusCode::OK, serde_json::json!({ "message": "PTY session deleted" }))
            );
            let a = app.send("POST", &resize("p"), size).await;
            assert_eq!(
                a.envelope(StatusCode::GONE, "SESSION_ENDED"),
                "PTY session 'p' has terminated and cannot be resized"
            );
            app.get("/process/pty/p").await.envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND");
            app.send("DELETE", "/process/pty/p", "")
                .await
                .envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND");
            assert_no_ptys(&app).await;
        }

        #[test]
        fn the_document_tells_the_statuses() {
            let doc = serde_json::to_value(routes().split_for_parts().1).unwrap();
            let expect = [
                ("/process/pty", "post", &["201", "400", "403", "404", "409", "413", "500"][..]),
                ("/process/pty/{sessionId}", "get", &["200", "400", "404"]),
                ("/process/pty/{sessionId}", "delete", &["200", "400", "404"]),
                ("/process/pty/{sessionId}/resize", "post", &["200", "400", "404", "410", "413", "500"]),
                ("/process/pty/{sessionId}/connect", "get", &["101", "400"]),
                ("/process/pty/create-connect", "get", &["101", "400", "403", "404", "409"]),
            ];
            for (path, method, codes) in expect {
                let responses = &doc["paths"][path][method]["responses"];
                let listed: Vec<&String> = responses.as_object().unwrap().keys().collect();
                assert_eq!(listed, codes.iter().collect::<Vec<_>>(), "{method} {path}");
            }
            assert_eq!(
                doc["components"]["schemas"]["PtyCreateRequest"]["required"],
                serde_json::json!(["id"])
            );
            assert_eq!(
                doc["components"]["schemas"]["PtyResizeRequest"]["required"],
                serde_json::json!(["cols", "rows"])
            );
        }
    }
}
