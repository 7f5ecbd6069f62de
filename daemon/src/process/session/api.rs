//! HTTP routes of the sessions API (process.md §4, sdk-0.226.md §2.6).

use std::path::PathBuf;
use std::sync::Arc;

use crate::openapi::routes;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::log::{demux_all, strip_all};
use super::{
    Command, ENTRYPOINT_COMMAND, ENTRYPOINT_SESSION, Session, SessionError, State as CmdState, follow,
};
use crate::client::{ClientVersion, OutputMode, protocol_token};
use crate::error::{ApiError, Code};
use crate::extract::{Json, Path, Query, Ws};
use crate::openapi::ErrorResponse;
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
    /// One path component of at most 255 bytes: not `.`, `..` or `entrypoint`, no `/` or NUL.
    // Absent is a validation failure like empty, not a decoding one.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
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
    /// Shell text run in the session's shell; not blank.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
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
    #[schema(required = true)]
    output: Option<String>,
    #[schema(required = true)]
    stdout: Option<String>,
    #[schema(required = true)]
    stderr: Option<String>,
    #[schema(required = true)]
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
    /// Written to the command's stdin; a newline is added when missing.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    data: String,
}

#[derive(Deserialize)]
pub struct LogsQuery {
    follow: Option<String>,
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        let message = e.to_string();
        match e {
            SessionError::NotFound | SessionError::CommandNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, Code::ProcessNotFound, message)
            }
            SessionError::Exists | SessionError::CommandExists => ApiError::conflict(message),
            SessionError::Ended(_) => ApiError::new(StatusCode::GONE, Code::SessionEnded, message),
            SessionError::CommandCompleted(_) => {
                ApiError::new(StatusCode::GONE, Code::CommandAlreadyCompleted, message)
            }
            SessionError::InputClosed => ApiError::gone(message),
            // Ids in paths; an id in a body is mapped by `create_session`.
            SessionError::InvalidId(_) => ApiError::new(StatusCode::BAD_REQUEST, Code::BadRequest, message),
            SessionError::Log { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ApiError::not_found(message),
                std::io::ErrorKind::PermissionDenied => {
                    ApiError::new(StatusCode::FORBIDDEN, Code::Forbidden, format!("forbidden: {message}"))
                }
                _ => ApiError::bad_request(message),
            },
            SessionError::Io(_) => ApiError::internal(message),
            SessionError::Exhausted(x) => x.into(),
        }
    }
}

/// Create a session: a shell whose state persists across its commands.
#[utoipa::path(post, path = "/process/session", tag = "process", request_body = CreateSessionRequest,
    responses((status = 201, description = "Created"),
        (status = 400, description = "no sessionId, an invalid one, or the reserved `entrypoint`", body = ErrorResponse),
        (status = 409, description = "a session with this id exists", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse),
        (status = 500, description = "the session shell could not be started", body = ErrorResponse)))]
async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<CreateSessionRequest>,
) -> Result<StatusCode, ApiError> {
    if req.session_id.is_empty() {
        return Err(ApiError::invalid_body("sessionId is required"));
    }
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
    match state.sessions.create(&req.session_id, &cwd).await {
        Ok(_) => Ok(StatusCode::CREATED),
        // The id came in the body.
        Err(e @ SessionError::InvalidId(_)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, Code::InvalidRequestBody, e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// List sessions (the entrypoint session is not listed).
#[utoipa::path(get, path = "/process/session", tag = "process",
    responses((status = 200, body = Vec<SessionDto>)))]
async fn list_sessions(State(state): State<AppState>) -> Json<Vec<SessionDto>> {
    Json(state.sessions.list().iter().map(|s| SessionDto::of(s)).collect())
}

/// Get a session and its commands (`entrypoint` included).
#[utoipa::path(get, path = "/process/session/{sessionId}", tag = "process",
    params(("sessionId" = String, Path)),
    responses((status = 200, body = SessionDto),
        (status = 400, description = "an invalid or undecodable session id", body = ErrorResponse),
        (status = 404, description = "no such session", body = ErrorResponse)))]
async fn get_session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Json<SessionDto>, ApiError> {
    let session = state.sessions.get(&session_id)?;
    Ok(Json(SessionDto::of(&session)))
}

/// Delete a session: its whole process tree is terminated (SIGTERM, SIGKILL after the grace
/// period, in the background).
#[utoipa::path(delete, path = "/process/session/{sessionId}", tag = "process",
    params(("sessionId" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "an invalid or undecodable session id, or `entrypoint`", body = ErrorResponse),
        (status = 404, description = "no such session", body = ErrorResponse)))]
async fn delete_session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if session_id == ENTRYPOINT_SESSION {
        return Err(ApiError::bad_request("can't delete entrypoint session"));
    }
    drop(state.sessions.delete(&session_id).await?);
    Ok(StatusCode::NO_CONTENT)
}

/// Run a command in a session, synchronously (200 with output and exit code) or with
/// `runAsync` (202 with the command id).
#[utoipa::path(post, path = "/process/session/{sessionId}/exec", tag = "process",
    params(("sessionId" = String, Path)), request_body = SessionExecuteRequest,
    responses((status = 200, body = SessionExecuteResponse), (status = 202, body = SessionExecuteResponse),
        (status = 400, description = "no command, an invalid session id, or `entrypoint`", body = ErrorResponse),
        (status = 404, description = "no such session", body = ErrorResponse),
        (status = 410, description = "the session's shell has ended", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse)))]
async fn exec(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<SessionExecuteRequest>,
) -> Result<Response, ApiError> {
    if session_id == ENTRYPOINT_SESSION {
        return Err(ApiError::bad_request("can't execute command in entrypoint session"));
    }
    if req.command.is_empty() {
        return Err(ApiError::invalid_body("command is required"));
    }
    if req.command.trim().is_empty() {
        return Err(ApiError::bad_request("command cannot be empty"));
    }
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
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    // No server-side limit, as the reference: the client's timeout bounds the call.
    let done = cmd.progress().wait_for(|p| p.state.is_done()).await.map(|p| p.state);
    let code = match done {
        Ok(CmdState::Exited(c)) => c,
        _ => return Err(session.end_error().into()),
    };
    let log = cmd.read_log().await?;
    let mode = OutputMode::for_request(&headers);
    let (output, stdout, stderr) = shape(mode, &log);
    let body = SessionExecuteResponse {
        cmd_id: cmd.id.clone(),
        output: Some(output),
        stdout,
        stderr,
        exit_code: Some(code),
    };
    Ok(Json(body).into_response())
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

/// A command of a session; its `exitCode` is absent while it runs.
#[utoipa::path(get, path = "/process/session/{sessionId}/command/{commandId}", tag = "process",
    params(("sessionId" = String, Path), ("commandId" = String, Path)),
    responses((status = 200, body = CommandDto),
        (status = 400, description = "an invalid or undecodable id", body = ErrorResponse),
        (status = 404, description = "no such session or command", body = ErrorResponse)))]
async fn get_command(
    State(state): State<AppState>,
    Path((session_id, command_id)): Path<(String, String)>,
) -> Result<Json<CommandDto>, ApiError> {
    let cmd = state.sessions.get(&session_id)?.find_command(&command_id)?;
    Ok(Json(CommandDto::of(&cmd)))
}

/// A command's output: the whole log now, or over a websocket (`Upgrade: websocket`), streamed
/// and with `follow=true` followed until the command ends. Plain HTTP answers JSON with the
/// streams apart for clients from 0.167.0 (and dev builds), text otherwise: the combined output,
/// or for clients before 0.161.0 the raw log with its stream markers.
#[utoipa::path(get, path = "/process/session/{sessionId}/command/{commandId}/logs", tag = "process",
    params(("sessionId" = String, Path), ("commandId" = String, Path),
        ("follow" = Option<bool>, Query, description = "over a websocket: keep streaming until the command ends")),
    responses(
        (status = 101, description = "Upgraded: the log streams as websocket frames"),
        (status = 200, content(
            (SessionCommandLogsResponse = "application/json"),
            (String = "text/plain"))),
        (status = 400, description = "an invalid or undecodable id, or a bad or repeated query parameter", body = ErrorResponse),
        (status = 403, description = "the log cannot be read", body = ErrorResponse),
        (status = 404, description = "no such session or command", body = ErrorResponse)))]
async fn command_logs(
    State(state): State<AppState>,
    Path((session_id, command_id)): Path<(String, String)>,
    Query(q): Query<LogsQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let cmd = state.sessions.get(&session_id)?.find_command(&command_id)?;
    let mode = OutputMode::for_request(req.headers());
    serve_logs(state, cmd, mode, is_follow(&q), req).await
}

/// The entrypoint's output, like a command's logs but never in the combined form.
#[utoipa::path(get, path = "/process/session/entrypoint/logs", tag = "process",
    params(("follow" = Option<bool>, Query, description = "over a websocket: keep streaming until the entrypoint ends")),
    responses(
        (status = 101, description = "Upgraded: the log streams as websocket frames"),
        (status = 200, content(
            (SessionCommandLogsResponse = "application/json"),
            (String = "text/plain"))),
        (status = 400, description = "a bad or repeated query parameter", body = ErrorResponse),
        (status = 403, description = "the log cannot be read", body = ErrorResponse),
        (status = 404, description = "the daemon runs no entrypoint", body = ErrorResponse)))]
async fn entrypoint_logs(
    State(state): State<AppState>,
    Query(q): Query<LogsQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let cmd = state.sessions.get(ENTRYPOINT_SESSION)?.find_command(ENTRYPOINT_COMMAND)?;
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
        let log = cmd.read_log().await?;
        return Ok(match mode {
            OutputMode::Demuxed => {
                let (output, stdout, stderr) = shape(mode, &log);
                Json(SessionCommandLogsResponse {
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
    let file = cmd.open_log().await?;
    let token = protocol_token(req.headers());
    let (mut parts, _) = req.into_parts();
    let Ws(mut ws) = Ws::from_request_parts(&mut parts, &state).await?;
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
    responses((status = 204, description = "Sent"),
        (status = 400, description = "no data, an invalid or undecodable id, or `entrypoint`", body = ErrorResponse),
        (status = 404, description = "no such session or command", body = ErrorResponse),
        (status = 410, description = "the command has completed, its input is closed, or the session ended", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse)))]
async fn send_input(
    State(state): State<AppState>,
    Path((session_id, command_id)): Path<(String, String)>,
    Json(req): Json<SessionSendInputRequest>,
) -> Result<StatusCode, ApiError> {
    if session_id == ENTRYPOINT_SESSION {
        return Err(ApiError::bad_request("can't send input to entrypoint session"));
    }
    if req.data.is_empty() {
        return Err(ApiError::invalid_body("data is required"));
    }
    let session = state.sessions.get(&session_id)?;
    let cmd = session.find_command(&command_id)?;
    if cmd.state().exit_code().is_none() && session.end().is_some() {
        return Err(session.end_error().into());
    }
    cmd.send_input(&req.data).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::routes;
    use crate::testing::TestApp;

    #[tokio::test]
    async fn undecodable_ids_and_repeated_query_keys_are_400_envelopes() {
        let app = TestApp::new(routes());
        for (method, uri) in [
            ("GET", "/process/session/%FF%FE"),
            ("DELETE", "/process/session/%FF%FE"),
            ("GET", "/process/session/s/command/%FF%FE"),
            ("GET", "/process/session/%FF/command/c"),
            ("GET", "/process/session/s/command/%FF%FE/logs"),
            ("POST", "/process/session/%FF%FE/exec"),
        ] {
            let msg = app
                .send(method, uri, r#"{"command":"true"}"#)
                .await
                .envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
            assert!(msg.contains("invalid path parameter"), "{method} {uri}: {msg}");
        }
        let a = app.get("/process/session/s/command/c/logs?follow=1&follow=1").await;
        assert!(a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST").contains("duplicate field"));
        let a = app.get("/process/session/entrypoint/logs?follow=true&follow=true").await;
        a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }

    #[tokio::test]
    async fn invalid_ids_are_400_and_nothing_is_created() {
        let app = TestApp::new(routes());
        let long = "x".repeat(300);
        for bad in ["a/b", "..", ".", "a\u{0}b", long.as_str()] {
            let body = serde_json::json!({ "sessionId": bad }).to_string();
            let msg = app
                .send("POST", "/process/session", body)
                .await
                .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
            assert!(msg.starts_with("invalid session ID"), "{msg}");
        }
        for uri in ["/process/session/..", "/process/session/..%2Fescape", "/process/session/a%00b/command/c"]
        {
            app.get(uri).await.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        }
        app.get(&format!("/process/session/{long}")).await.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        assert_eq!(app.get("/process/session").await.json(), serde_json::json!([]));
        assert!(!app.home.path().join(".daytona/sessions").exists());
    }

    #[tokio::test]
    async fn bodies_must_be_objects_of_the_schema() {
        let app = TestApp::new(routes());
        for body in ["", "[]", "[null]", "null", "\"s\"", r#"{"sessionId": 1}"#] {
            app.send("POST", "/process/session", body)
                .await
                .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
        }
        app.send("POST", "/process/session", "{}")
            .await
            .envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
        for body in ["[]", "[null]", r#"{"command": ["ls"]}"#, "{}"] {
            let a = app.send("POST", "/process/session/nope/exec", body).await;
            a.envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
        }
        for body in ["[]", r#"{"data": 5}"#, "{}"] {
            let a = app.send("POST", "/process/session/nope/command/c/input", body).await;
            a.envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
        }
        let req = axum::http::Request::post("/process/session/nope/exec")
            .header("content-length", (crate::extract::MAX_JSON_BODY + 1).to_string())
            .body(axum::body::Body::empty())
            .unwrap();
        app.request(req).await.envelope(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn domain_errors_keep_their_statuses_and_codes() {
        let app = TestApp::new(routes());
        let a = app.send("POST", "/process/session/nope/exec", r#"{"command":"true"}"#).await;
        assert_eq!(a.envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND"), "session not found");
        app.get("/process/session/nope").await.envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND");
        app.send("DELETE", "/process/session/nope", "")
            .await
            .envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND");
        app.get("/process/session/entrypoint/logs")
            .await
            .envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND");

        assert_eq!(
            app.send("POST", "/process/session", r#"{"sessionId":"s"}"#).await.status,
            StatusCode::CREATED
        );
        let a = app.send("POST", "/process/session", r#"{"sessionId":"s"}"#).await;
        assert_eq!(a.envelope(StatusCode::CONFLICT, "CONFLICT"), "conflict: session already exists");
        let a = app.send("POST", "/process/session", r#"{"sessionId":"entrypoint"}"#).await;
        a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");

        let a = app.send("POST", "/process/session/s/exec", r#"{"command":"echo hi"}"#).await;
        assert_eq!(a.status, StatusCode::OK);
        let v = a.json();
        assert_eq!((v["output"].as_str(), v["exitCode"].as_i64()), (Some("hi\n"), Some(0)));
        let cmd = v["cmdId"].as_str().unwrap().to_string();
        app.get("/process/session/s/command/nope").await.envelope(StatusCode::NOT_FOUND, "PROCESS_NOT_FOUND");
        // Without a client version: the combined output, as text.
        let a = app.get(&format!("/process/session/s/command/{cmd}/logs?follow=false")).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(&a.body[..], b"hi\n");
        let a = app.send("POST", &format!("/process/session/s/command/{cmd}/input"), r#"{"data":"x"}"#).await;
        assert_eq!(
            a.envelope(StatusCode::GONE, "COMMAND_ALREADY_COMPLETED"),
            "command has already completed with exit code 0"
        );

        let a = app.send("POST", "/process/session/s/exec", r#"{"command":"exit 3"}"#).await;
        assert!(
            a.envelope(StatusCode::GONE, "SESSION_ENDED")
                .starts_with("session ended: its shell exited with status 3")
        );
        let a = app.send("POST", "/process/session/s/exec", r#"{"command":"true"}"#).await;
        a.envelope(StatusCode::GONE, "SESSION_ENDED");
        assert_eq!(app.send("DELETE", "/process/session/s", "").await.status, StatusCode::NO_CONTENT);
    }

    #[test]
    fn the_document_tells_the_statuses_and_content_types() {
        let doc = serde_json::to_value(routes().split_for_parts().1).unwrap();
        let logs = &doc["paths"]["/process/session/{sessionId}/command/{commandId}/logs"]["get"]["responses"];
        let ok = &logs["200"]["content"];
        assert!(ok.get("text/plain").is_some() && ok.get("application/json").is_some(), "{ok}");
        for code in ["101", "400", "404"] {
            assert!(logs.get(code).is_some(), "logs: {code}");
        }
        let input =
            &doc["paths"]["/process/session/{sessionId}/command/{commandId}/input"]["post"]["responses"];
        for code in ["400", "404", "410", "413"] {
            assert!(input.get(code).is_some(), "input: {code}");
        }
        let create = &doc["components"]["schemas"]["CreateSessionRequest"];
        assert_eq!(create["required"], serde_json::json!(["sessionId"]));
        assert_eq!(
            doc["components"]["schemas"]["SessionExecuteRequest"]["required"],
            serde_json::json!(["command"])
        );
    }
}
