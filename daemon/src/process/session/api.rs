//! HTTP routes of the sessions API (process.md §4, sdk-0.226.md §2.6).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::log::{demux_all, strip_all};
use super::wrapper::validate_id;
use super::{Command, ENTRYPOINT_COMMAND, ENTRYPOINT_SESSION, Session, State as CmdState, follow};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, decode};
use crate::process::version::{ClientVersion, OutputMode, protocol_token};
use crate::state::AppState;
use crate::text::lossy_per_byte;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(get_session, delete_session))
        .routes(routes!(exec))
        .routes(routes!(get_command))
        .routes(routes!(command_logs))
        .routes(routes!(send_input))
        .routes(routes!(entrypoint_logs))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    #[serde(default)]
    session_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    session_id: String,
    commands: Vec<CommandDto>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandDto {
    id: String,
    command: String,
    /// Absent while the command runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
}

impl CommandDto {
    fn of(c: &Command) -> Self {
        CommandDto { id: c.id.clone(), command: c.text.clone(), exit_code: c.state().exit_code() }
    }
}

impl SessionDto {
    fn of(s: &Session) -> Self {
        SessionDto {
            session_id: s.id.clone(),
            commands: s.commands().iter().map(|c| CommandDto::of(c)).collect(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionExecuteRequest {
    #[serde(default)]
    command: String,
    run_async: Option<bool>,
    /// Deprecated alias of `runAsync`.
    #[serde(rename = "async")]
    var_async: Option<bool>,
    suppress_input_echo: Option<bool>,
}

/// Keys are always present; `null` while unknown (async) or in modes without them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionExecuteResponse {
    cmd_id: String,
    output: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    exit_code: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionCommandLogsResponse {
    output: String,
    stdout: String,
    stderr: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SessionSendInputRequest {
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
pub struct LogsQuery {
    follow: Option<String>,
}

fn not_found(what: &str) -> ApiError {
    super::not_found(what)
}

fn command_of(session: &Session, id: &str) -> Result<Arc<Command>, ApiError> {
    validate_id("command", id)?;
    session.command(id).ok_or_else(|| not_found("command not found"))
}

fn session_of(state: &AppState, id: &str) -> Result<Arc<Session>, ApiError> {
    validate_id("session", id)?;
    state.sessions.get(id)
}

/// Create a session: a shell whose state persists across its commands.
#[utoipa::path(post, path = "/process/session", tag = "process", request_body = CreateSessionRequest,
    responses((status = 201, description = "Created"), (status = 400), (status = 409)))]
async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CreateSessionRequest>,
) -> Result<StatusCode, ApiError> {
    if req.session_id.is_empty() {
        return Err(ApiError::invalid_body("sessionId is required"));
    }
    validate_id("session", &req.session_id)?;
    if req.session_id == ENTRYPOINT_SESSION {
        return Err(ApiError::bad_request(
            "provided session ID is reserved and cannot be created/overridden",
        ));
    }
    // SDKs before 0.103.0 expect their sessions to start in $HOME.
    let cwd = if ClientVersion::from_headers(&headers).wants_home_cwd() {
        state.env.get("HOME").map(PathBuf::from).unwrap_or_else(|| (*state.work_dir).clone())
    } else {
        (*state.work_dir).clone()
    };
    state.sessions.create(&req.session_id, &cwd).await?;
    Ok(StatusCode::CREATED)
}

/// List sessions (the entrypoint session is not listed).
#[utoipa::path(get, path = "/process/session", tag = "process",
    responses((status = 200, body = Vec<SessionDto>)))]
async fn list_sessions(State(state): State<AppState>) -> axum::Json<Vec<SessionDto>> {
    axum::Json(state.sessions.list().iter().map(|s| SessionDto::of(s)).collect())
}

/// Get a session and its commands (`entrypoint` included).
#[utoipa::path(get, path = "/process/session/{sessionId}", tag = "process",
    params(("sessionId" = String, Path)), responses((status = 200, body = SessionDto), (status = 404)))]
async fn get_session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<axum::Json<SessionDto>, ApiError> {
    let session = session_of(&state, &session_id)?;
    Ok(axum::Json(SessionDto::of(&session)))
}

/// Delete a session: its whole process tree is terminated (SIGTERM, SIGKILL after the grace
/// period, in the background).
#[utoipa::path(delete, path = "/process/session/{sessionId}", tag = "process",
    params(("sessionId" = String, Path)), responses((status = 204), (status = 400), (status = 404)))]
async fn delete_session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if session_id == ENTRYPOINT_SESSION {
        return Err(ApiError::bad_request("can't delete entrypoint session"));
    }
    validate_id("session", &session_id)?;
    drop(state.sessions.delete(&session_id).await?);
    Ok(StatusCode::NO_CONTENT)
}

/// Run a command in a session, synchronously (200 with output and exit code) or with
/// `runAsync` (202 with the command id).
#[utoipa::path(post, path = "/process/session/{sessionId}/exec", tag = "process",
    params(("sessionId" = String, Path)), request_body = SessionExecuteRequest,
    responses((status = 200, body = SessionExecuteResponse), (status = 202, body = SessionExecuteResponse),
        (status = 400), (status = 404), (status = 410)))]
async fn exec(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if session_id == ENTRYPOINT_SESSION {
        return Err(ApiError::bad_request("can't execute command in entrypoint session"));
    }
    let req: SessionExecuteRequest = decode(&body)?;
    if req.command.is_empty() {
        return Err(ApiError::invalid_body("command is required"));
    }
    if req.command.trim().is_empty() {
        return Err(ApiError::bad_request("command cannot be empty"));
    }
    validate_id("session", &session_id)?;
    let is_async = req.run_async.unwrap_or(false) || req.var_async.unwrap_or(false);
    let (session, cmd) = state
        .sessions
        .exec(&session_id, req.command, is_async, req.suppress_input_echo.unwrap_or(false))
        .await?;
    if is_async {
        let body = SessionExecuteResponse {
            cmd_id: cmd.id.clone(),
            output: None,
            stdout: None,
            stderr: None,
            exit_code: None,
        };
        return Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response());
    }
    // No server-side limit, as the reference: the client's timeout bounds the call.
    let done = cmd.progress().wait_for(|p| p.state.is_done()).await.map(|p| p.state);
    let code = match done {
        Ok(CmdState::Exited(c)) => c,
        _ => return Err(session.end_error()),
    };
    let log = read_log(&cmd).await?;
    let mode = OutputMode::for_request(&headers);
    let (output, stdout, stderr) = shape(mode, &log);
    let body = SessionExecuteResponse {
        cmd_id: cmd.id.clone(),
        output: Some(output),
        stdout,
        stderr,
        exit_code: Some(code),
    };
    Ok(axum::Json(body).into_response())
}

/// (output, stdout, stderr) of a whole log for a client's output mode.
fn shape(mode: OutputMode, log: &[u8]) -> (String, Option<String>, Option<String>) {
    match mode {
        OutputMode::Combined => (lossy_per_byte(&strip_all(log)), None, None),
        OutputMode::Raw => (lossy_per_byte(log), None, None),
        OutputMode::Demuxed => {
            let (o, e) = demux_all(log);
            (lossy_per_byte(log), Some(lossy_per_byte(&o)), Some(lossy_per_byte(&e)))
        }
    }
}

async fn read_log(cmd: &Command) -> Result<Vec<u8>, ApiError> {
    let path = cmd.log_path();
    let p2 = path.clone();
    tokio::task::spawn_blocking(move || std::fs::read(p2))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| log_open_error(&path, &e))
}

fn log_open_error(path: &std::path::Path, e: &std::io::Error) -> ApiError {
    let detail = format!("open {}: {}", path.display(), crate::process::execute::os_error_text(e));
    match e.kind() {
        std::io::ErrorKind::NotFound => ApiError::not_found(detail),
        std::io::ErrorKind::PermissionDenied => ApiError::new(
            StatusCode::FORBIDDEN,
            crate::error::Code::Forbidden,
            format!("forbidden: {detail}"),
        ),
        _ => ApiError::bad_request(detail),
    }
}

/// A command of a session; its `exitCode` is absent while it runs.
#[utoipa::path(get, path = "/process/session/{sessionId}/command/{commandId}", tag = "process",
    params(("sessionId" = String, Path), ("commandId" = String, Path)),
    responses((status = 200, body = CommandDto), (status = 404)))]
async fn get_command(
    State(state): State<AppState>,
    Path((session_id, command_id)): Path<(String, String)>,
) -> Result<axum::Json<CommandDto>, ApiError> {
    let session = session_of(&state, &session_id)?;
    let cmd = command_of(&session, &command_id)?;
    Ok(axum::Json(CommandDto::of(&cmd)))
}

/// A command's output: the whole log now, or over a websocket (`Upgrade: websocket`), streamed
/// and with `follow=true` followed until the command ends.
#[utoipa::path(get, path = "/process/session/{sessionId}/command/{commandId}/logs", tag = "process",
    params(("sessionId" = String, Path), ("commandId" = String, Path), ("follow" = Option<bool>, Query)),
    responses((status = 200, body = SessionCommandLogsResponse), (status = 404)))]
async fn command_logs(
    State(state): State<AppState>,
    Path((session_id, command_id)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let session = session_of(&state, &session_id)?;
    let cmd = command_of(&session, &command_id)?;
    let mode = OutputMode::for_request(req.headers());
    serve_logs(state, cmd, mode, is_follow(&q), req).await
}

/// The entrypoint's output, like a command's logs but never in the combined form.
#[utoipa::path(get, path = "/process/session/entrypoint/logs", tag = "process",
    params(("follow" = Option<bool>, Query)),
    responses((status = 200, body = SessionCommandLogsResponse), (status = 404)))]
async fn entrypoint_logs(
    State(state): State<AppState>,
    Query(q): Query<LogsQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let session = state.sessions.get(ENTRYPOINT_SESSION)?;
    let cmd = command_of(&session, ENTRYPOINT_COMMAND)?;
    let mode = OutputMode::never_combined(&ClientVersion::from_headers(req.headers()));
    serve_logs(state, cmd, mode, is_follow(&q), req).await
}

fn is_follow(q: &LogsQuery) -> bool {
    q.follow.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("true"))
}

async fn serve_logs(
    state: AppState,
    cmd: Arc<Command>,
    mode: OutputMode,
    follow: bool,
    req: Request,
) -> Result<Response, ApiError> {
    let wants_ws = req.headers().get(header::UPGRADE).is_some_and(|v| v.as_bytes() == b"websocket");
    if !wants_ws {
        let log = read_log(&cmd).await?;
        return Ok(match mode {
            OutputMode::Demuxed => {
                let (output, stdout, stderr) = shape(mode, &log);
                axum::Json(SessionCommandLogsResponse {
                    output,
                    stdout: stdout.unwrap_or_default(),
                    stderr: stderr.unwrap_or_default(),
                })
                .into_response()
            }
            OutputMode::Combined | OutputMode::Raw => {
                let bytes = if mode == OutputMode::Combined { strip_all(&log) } else { log };
                ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(bytes)).into_response()
            }
        });
    }
    // The log must be readable before the upgrade, so a missing log is an HTTP error.
    let file =
        tokio::fs::File::open(cmd.log_path()).await.map_err(|e| log_open_error(&cmd.log_path(), &e))?;
    let token = protocol_token(req.headers());
    let (mut parts, _) = req.into_parts();
    let mut ws = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| ApiError::bad_request(format!("websocket upgrade failed: {e}")))?;
    if let Some(token) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        // Browsers abort unless the version token they offered is selected (README §8.6).
        ws.set_selected_protocol(token);
    }
    let strip = mode == OutputMode::Combined;
    Ok(ws.on_upgrade(move |socket| follow::stream(socket, file, cmd, strip, follow)))
}

/// Send a line of input to a running command's stdin.
#[utoipa::path(post, path = "/process/session/{sessionId}/command/{commandId}/input", tag = "process",
    params(("sessionId" = String, Path), ("commandId" = String, Path)), request_body = SessionSendInputRequest,
    responses((status = 204), (status = 400), (status = 404), (status = 410)))]
async fn send_input(
    State(state): State<AppState>,
    Path((session_id, command_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    if session_id == ENTRYPOINT_SESSION {
        return Err(ApiError::bad_request("can't send input to entrypoint session"));
    }
    let req: SessionSendInputRequest = decode(&body)?;
    if req.data.is_empty() {
        return Err(ApiError::invalid_body("data is required"));
    }
    let session = session_of(&state, &session_id)?;
    let cmd = command_of(&session, &command_id)?;
    if cmd.state().exit_code().is_none() && session.end().is_some() {
        return Err(session.end_error());
    }
    cmd.send_input(&req.data).await?;
    Ok(StatusCode::NO_CONTENT)
}
