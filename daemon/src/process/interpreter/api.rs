//! HTTP edge of interpreter contexts: the REST routes and the execute websocket
//! (process.md §6.2–6.5).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{FromRequestParts, Path, Request, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::exec::{CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_POLICY, Job};
use super::worker::Out;
use super::{DEFAULT_CONTEXT, InterpreterContext, Language, SubmitError};
use crate::error::{ApiError, Code};
use crate::extract::Json as JsonBody;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_context, list_contexts))
        .routes(routes!(delete_context))
        .routes(routes!(execute))
}

/// Frames queued per client. Output frames are at most [`super::worker::CHUNK`] of text, so
/// this bounds what a context holds for a slow client.
const CLIENT_QUEUE: usize = 64;
/// A client that does not take a frame for this long is dropped as a slow consumer (its
/// execution goes on, its further output is dropped). Until then a slow client slows the
/// worker down: the worker blocks on its full output pipe.
const SLOW_CONSUMER: Duration = Duration::from_secs(30);
/// How long the first message may take.
const FIRST_MESSAGE: Duration = Duration::from_secs(60);
/// Default execution time-out (process.md §6.5 item 4).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Deserialize, ToSchema, Default)]
pub struct CreateContextRequest {
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ListContextsResponse {
    contexts: Vec<InterpreterContext>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    message: String,
}

#[utoipa::path(post, path = "/process/interpreter/context", tag = "interpreter",
    request_body = CreateContextRequest,
    responses((status = 200, body = InterpreterContext), (status = 400), (status = 500)))]
async fn create_context(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateContextRequest>,
) -> Result<axum::Json<InterpreterContext>, ApiError> {
    let language = Language::parse(req.language.as_deref()).map_err(ApiError::bad_request)?;
    let info = state
        .interpreters
        .create(req.cwd.as_deref(), language)
        .await
        .map_err(|e| ApiError::internal(format!("failed to create interpreter context: {e}")))?;
    Ok(axum::Json(info))
}

#[utoipa::path(get, path = "/process/interpreter/context", tag = "interpreter",
    responses((status = 200, body = ListContextsResponse)))]
async fn list_contexts(State(state): State<AppState>) -> axum::Json<ListContextsResponse> {
    axum::Json(ListContextsResponse { contexts: state.interpreters.list() })
}

#[utoipa::path(delete, path = "/process/interpreter/context/{id}", tag = "interpreter",
    params(("id" = String, Path)),
    responses((status = 200, body = MessageResponse), (status = 400), (status = 404)))]
async fn delete_context(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<MessageResponse>, ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad_request("context id is required"));
    }
    if id == DEFAULT_CONTEXT {
        return Err(ApiError::bad_request("cannot delete default context"));
    }
    if !state.interpreters.delete(&id).await {
        return Err(ApiError::new(StatusCode::NOT_FOUND, Code::ProcessNotFound, "context not found"));
    }
    Ok(axum::Json(MessageResponse { message: "Context deleted successfully".into() }))
}

#[utoipa::path(get, path = "/process/interpreter/execute", tag = "interpreter",
    responses((status = 101)))]
async fn execute(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    let ws = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|e| ApiError::bad_request(format!("websocket upgrade failed: {e}")))?;
    Ok(ws.on_upgrade(move |socket| serve(socket, state)))
}

/// The first message of an execution.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ExecuteRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    envs: Option<BTreeMap<String, Option<String>>>,
}

/// A close frame; reasons are cut to the 123 bytes a close frame can carry.
fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code, reason: reason[..end].into() }))
}

async fn send(socket: &mut WebSocket, msg: Message) -> bool {
    matches!(tokio::time::timeout(SLOW_CONSUMER, socket.send(msg)).await, Ok(Ok(())))
}

/// Reads the first message: its bytes, or `None` when there is none to read.
async fn first_message(socket: &mut WebSocket) -> Option<bytes::Bytes> {
    let deadline = tokio::time::Instant::now() + FIRST_MESSAGE;
    loop {
        match tokio::time::timeout_at(deadline, socket.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.into()),
            Ok(Some(Ok(Message::Binary(b)))) => return Some(b),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// What the first message asks for, or the close that rejects it.
fn parse_request(raw: Option<&[u8]>) -> Result<(ExecuteRequest, Option<Duration>), (u16, &'static str)> {
    const PROTOCOL: u16 = 1002;
    let raw = raw.ok_or((PROTOCOL, "failed to read first message"))?;
    let req: ExecuteRequest = serde_json::from_slice(raw).map_err(|_| (PROTOCOL, "invalid JSON payload"))?;
    if req.code.as_deref().is_none_or(str::is_empty) {
        return Err((CLOSE_POLICY, "code is required"));
    }
    let timeout = match req.timeout {
        Some(t) if t < 0 => return Err((CLOSE_POLICY, "timeout must be greater than or equal to 0")),
        Some(0) => None,
        Some(t) => Some(Duration::from_secs(t as u64)),
        None => Some(DEFAULT_TIMEOUT),
    };
    Ok((req, timeout))
}

async fn serve(mut socket: WebSocket, state: AppState) {
    let raw = first_message(&mut socket).await;
    let (req, timeout) = match parse_request(raw.as_deref()) {
        Ok(r) => r,
        Err((code, reason)) => {
            let _ = send(&mut socket, close(code, reason)).await;
            return;
        }
    };
    let ctx = match req.context_id.as_deref().filter(|id| !id.is_empty()) {
        None => match state.interpreters.default_context().await {
            Ok(c) => c,
            Err(e) => {
                let _ =
                    send(&mut socket, close(CLOSE_INTERNAL, &format!("failed to get default context: {e}")))
                        .await;
                return;
            }
        },
        Some(id) => match state.interpreters.get(id) {
            Some(c) => c,
            None => {
                let _ = send(&mut socket, close(CLOSE_POLICY, &format!("context not found: {id}"))).await;
                return;
            }
        },
    };
    if ctx.is_deleting() {
        let _ = send(&mut socket, close(CLOSE_POLICY, "context is not active")).await;
        return;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(CLIENT_QUEUE);
    let job = Job { code: req.code.unwrap_or_default(), envs: req.envs, timeout, out: tx };
    if let Err((_, why)) = ctx.submit(job) {
        let msg = match why {
            SubmitError::Inactive => close(CLOSE_POLICY, "context is not active"),
            SubmitError::Full => close(CLOSE_POLICY, "context queue is full"),
        };
        let _ = send(&mut socket, msg).await;
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Frame(f)) => {
                    if !send(&mut socket, Message::Text(f.into())).await {
                        // Too slow (or gone): detach; the execution goes on without it.
                        let _ = tokio::time::timeout(Duration::from_secs(1),
                            socket.send(close(CLOSE_POLICY, "slow consumer"))).await;
                        return;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let _ = send(&mut socket, close(code, &reason)).await;
                    return;
                }
                None => {
                    let _ = send(&mut socket, close(CLOSE_GOING_AWAY, "worker process ended")).await;
                    return;
                }
            },
            // Later client frames are read and dropped, which keeps pings answered (pitfalls §30).
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Duration>, (u16, &'static str)> {
        parse_request(Some(s.as_bytes())).map(|(_, t)| t)
    }

    #[test]
    fn first_message_rules() {
        assert_eq!(parse_request(None).unwrap_err(), (1002, "failed to read first message"));
        assert_eq!(parse("nope").unwrap_err(), (1002, "invalid JSON payload"));
        assert_eq!(parse(r#"{"code": 5}"#).unwrap_err(), (1002, "invalid JSON payload"));
        assert_eq!(parse(r#"{"timeout": 1.5, "code": "x"}"#).unwrap_err(), (1002, "invalid JSON payload"));
        assert_eq!(parse("{}").unwrap_err(), (1008, "code is required"));
        assert_eq!(parse(r#"{"code": ""}"#).unwrap_err(), (1008, "code is required"));
        assert_eq!(
            parse(r#"{"code": "x", "timeout": -1}"#).unwrap_err(),
            (1008, "timeout must be greater than or equal to 0")
        );
        assert_eq!(parse(r#"{"code": "x"}"#), Ok(Some(Duration::from_secs(600))));
        assert_eq!(parse(r#"{"code": "x", "timeout": 0}"#), Ok(None));
        assert_eq!(
            parse(r#"{"code": "x", "timeout": 3, "envs": {"A": null}}"#),
            Ok(Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn close_reasons_fit_a_frame() {
        let long = "é".repeat(100);
        let Message::Close(Some(f)) = close(1008, &long) else { panic!() };
        assert!(f.reason.len() <= 123);
    }
}
