//! HTTP edge of PTY sessions: thin handlers over [`super::PtyRegistry`] and [`super::Pty`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::session::ResizeError;
use super::{Launch, Pty, ws};
use crate::error::{ApiError, Code};
use crate::extract::decode;
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
    #[serde(default)]
    id: String,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    envs: Option<BTreeMap<String, String>>,
    #[serde(default)]
    cols: Option<u16>,
    #[serde(default)]
    rows: Option<u16>,
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
    cols: u16,
    rows: u16,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    message: String,
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Code::ProcessNotFound, "PTY session not found")
}

/// The terminal record with the contract's defaults (process.md §5.1 step 4).
fn new_pty(
    state: &AppState,
    id: String,
    cwd: Option<String>,
    mut envs: BTreeMap<String, String>,
    cols: u16,
    rows: u16,
    lazy: bool,
) -> Arc<Pty> {
    if envs.get("TERM").is_none_or(String::is_empty) {
        envs.insert("TERM".into(), "xterm-256color".into());
    }
    let cwd = cwd.filter(|c| !c.is_empty()).unwrap_or_else(|| state.work_dir.to_string_lossy().into_owned());
    Pty::new(id, cwd, envs, cols, rows, lazy, state.ptys.replay_bytes)
}

/// Starts a registered terminal's login shell; it leaves the registry when it ends.
pub fn start(state: &AppState, pty: &Arc<Pty>) -> std::io::Result<()> {
    let launch = Launch {
        program: crate::shell::select(&state.env),
        args: vec!["-i".into(), "-l".into()],
        cwd: pty.cwd.clone().into(),
        env: state.env.snapshot_with(pty.envs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    };
    let (registry, me) = (state.ptys.clone(), pty.clone());
    pty.start(state.reaper, launch, move || registry.remove(&me))
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
    responses((status = 201, body = PtyCreateResponse), (status = 400), (status = 409), (status = 500)))]
async fn create_pty(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<PtyCreateResponse>), ApiError> {
    let req: PtyCreateRequest = decode(&body)?;
    if req.id.is_empty() {
        return Err(ApiError::bad_request("session ID is required"));
    }
    let (cols, rows) = (req.cols.unwrap_or(80), req.rows.unwrap_or(24));
    check_dims(cols, rows, |w| format!("invalid value for {w} - must be less than 1000"))?;
    let pty =
        new_pty(&state, req.id.clone(), req.cwd, req.envs.unwrap_or_default(), cols, rows, req.lazy_start);
    if !state.ptys.insert_if_absent(pty.clone()) {
        return Err(ApiError::conflict(format!("PTY session with ID '{}' already exists", req.id)));
    }
    if !req.lazy_start
        && let Err(e) = start(&state, &pty)
    {
        tracing::warn!(error = %e, id = %req.id, "failed to start PTY session");
        state.ptys.remove(&pty);
        return Err(ApiError::internal("failed to start PTY session"));
    }
    Ok((StatusCode::CREATED, axum::Json(PtyCreateResponse { session_id: req.id })))
}

/// List PTY sessions.
#[utoipa::path(get, path = "/process/pty", tag = "process", responses((status = 200, body = PtyListResponse)))]
async fn list_ptys(State(state): State<AppState>) -> axum::Json<PtyListResponse> {
    axum::Json(PtyListResponse {
        sessions: state.ptys.list().iter().map(|p| PtySessionInfo::of(p)).collect(),
    })
}

/// Get a PTY session.
#[utoipa::path(get, path = "/process/pty/{sessionId}", tag = "process", params(("sessionId" = String, Path)),
    responses((status = 200, body = PtySessionInfo), (status = 404)))]
async fn get_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<PtySessionInfo>, ApiError> {
    let pty = state.ptys.get(&id).ok_or_else(not_found)?;
    Ok(axum::Json(PtySessionInfo::of(&pty)))
}

/// Kill a PTY session and its whole process tree.
#[utoipa::path(delete, path = "/process/pty/{sessionId}", tag = "process", params(("sessionId" = String, Path)),
    responses((status = 200, body = MessageResponse), (status = 404)))]
async fn delete_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<MessageResponse>, ApiError> {
    let pty = state.ptys.get(&id).ok_or_else(not_found)?;
    state.ptys.remove(&pty);
    let p = pty.clone();
    tokio::task::spawn_blocking(move || p.kill_blocking()).await.map_err(ApiError::internal)?;
    Ok(axum::Json(MessageResponse { message: "PTY session deleted".into() }))
}

/// Resize a PTY session.
#[utoipa::path(post, path = "/process/pty/{sessionId}/resize", tag = "process", params(("sessionId" = String, Path)),
    request_body = PtyResizeRequest,
    responses((status = 200, body = PtySessionInfo), (status = 400), (status = 410), (status = 500)))]
async fn resize_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::Json<PtySessionInfo>, ApiError> {
    let req: PtyResizeRequest = decode(&body)?;
    check_dims(req.cols, req.rows, |w| format!("{w} must be less than 1000"))?;
    let gone = |m: String| ApiError::new(StatusCode::GONE, Code::SessionEnded, m);
    let pty = state.ptys.get(&id).ok_or_else(|| gone(format!("PTY session {id} not found")))?;
    match pty.resize(req.cols, req.rows) {
        Ok(()) => Ok(axum::Json(PtySessionInfo::of(&pty))),
        Err(ResizeError::Ended) => {
            Err(gone(format!("PTY session '{id}' has terminated and cannot be resized")))
        }
        Err(ResizeError::NotStarted) => Err(ApiError::internal("cannot resize inactive PTY session")),
        Err(ResizeError::Io(e)) => Err(ApiError::internal(format!("failed to resize PTY session: {e}"))),
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
        .find(|t| t.starts_with(crate::process::version::VERSION_PROTOCOL_PREFIX))
        .or_else(|| tokens.iter().find(|t| *t == EXIT_CONTROL_PROTOCOL))
        .map(String::as_str)
}

/// Decodes base64url, with or without `=` padding.
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The envs map of an `X-Daytona-Pty-Envs~<base64url JSON>` token, if one was offered.
fn envs_from(tokens: &[String]) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(tok) = tokens.iter().find_map(|t| t.strip_prefix(ENVS_PROTOCOL_PREFIX)) else {
        return Ok(BTreeMap::new());
    };
    let raw = base64url_decode(tok)
        .ok_or_else(|| ApiError::bad_request("invalid envs subprotocol: bad base64url"))?;
    serde_json::from_slice(&raw).map_err(|e| ApiError::bad_request(format!("invalid envs subprotocol: {e}")))
}

async fn upgrade(req: Request, state: &AppState, tokens: &[String]) -> Result<WebSocketUpgrade, ApiError> {
    let (mut parts, _) = req.into_parts();
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("websocket upgrade failed: {e}")))?;
    // Larger input messages break the connection (process.md §5.7 item 5).
    let mut ws = ws.max_message_size(64 * 1024).max_frame_size(64 * 1024);
    if let Some(t) = selected(tokens).and_then(|t| HeaderValue::from_str(t).ok()) {
        ws.set_selected_protocol(t);
    }
    Ok(ws)
}

/// Create a PTY session and attach to it in one websocket.
#[utoipa::path(get, path = "/process/pty/create-connect", tag = "process",
    params(("id" = String, Query), ("cols" = Option<String>, Query), ("rows" = Option<String>, Query), ("cwd" = Option<String>, Query)),
    responses((status = 101), (status = 400), (status = 409)))]
async fn create_connect(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = q.get("id").cloned().unwrap_or_default();
    if id.is_empty() {
        return Err(ApiError::bad_request("session ID is required"));
    }
    if state.ptys.contains(&id) {
        return Err(ApiError::conflict(format!("PTY session with ID '{id}' already exists")));
    }
    // Not an unsigned 16-bit decimal: the default, silently (Go quirk kept for compatibility).
    let dim = |k: &str, d: u16| q.get(k).and_then(|v| v.parse::<u16>().ok()).unwrap_or(d);
    let (cols, rows) = (dim("cols", 80), dim("rows", 24));
    if cols > MAX_DIM || rows > MAX_DIM {
        return Err(ApiError::bad_request("cols and rows must be less than 1000"));
    }
    let tokens = offered(req.headers());
    let envs = envs_from(&tokens)?;
    let exit_control = tokens.iter().any(|t| t == EXIT_CONTROL_PROTOCOL);
    let ws = upgrade(req, &state, &tokens).await?;
    let pty = new_pty(&state, id.clone(), q.get("cwd").cloned(), envs, cols, rows, false);
    Ok(ws.on_upgrade(move |mut socket| async move {
        if !state.ptys.insert_if_absent(pty.clone()) {
            let msg = format!("PTY session with ID '{id}' already exists");
            return ws::fail(&mut socket, &format!("Failed to start PTY session: {msg}")).await;
        }
        if let Err(e) = start(&state, &pty) {
            state.ptys.remove(&pty);
            return ws::fail(&mut socket, &format!("Failed to start PTY session: {e}")).await;
        }
        ws::serve(socket, pty, exit_control).await
    }))
}

/// Attach to a PTY session (starting a lazy one).
#[utoipa::path(get, path = "/process/pty/{sessionId}/connect", tag = "process", params(("sessionId" = String, Path)),
    responses((status = 101)))]
async fn connect_pty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let tokens = offered(req.headers());
    let exit_control = tokens.iter().any(|t| t == EXIT_CONTROL_PROTOCOL);
    let ws = upgrade(req, &state, &tokens).await?;
    Ok(ws.on_upgrade(move |mut socket| async move {
        let fail = |reason: String| format!("Failed to connect to PTY session: {reason}");
        let Some(pty) = state.ptys.get(&id) else {
            return ws::fail(&mut socket, &fail(format!("PTY session {id} not found"))).await;
        };
        if !pty.is_started() {
            if let Err(e) = start(&state, &pty) {
                return ws::fail(&mut socket, &fail(format!("failed to start PTY session: {e}"))).await;
            }
        } else if pty.is_ended() {
            return ws::fail(
                &mut socket,
                &fail(format!("PTY session '{id}' has terminated and is no longer available")),
            )
            .await;
        }
        ws::serve(socket, pty, exit_control).await
    }))
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
}
