//! HTTP edge of interpreter contexts: the REST routes and the execute websocket
//! (process.md §6.2–6.5). The only place where the service's errors become HTTP answers.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use crate::openapi::routes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use toolbox_envelope::Envelope;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::context::{Job, SubmitError};
use super::exec::{CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_POLICY};
use super::language::Language;
use super::launcher::StartError;
use super::worker::Out;
use super::{ContextInfo, CreateError, DeleteError, Interpreters};
use crate::error::{ApiError, Code};
use crate::extract::{Json, Path, Ws};
use crate::fspath::{self, FilePath};
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
    /// Working directory of the context, absolute or relative to the daemon's; the daemon's
    /// working directory when absent or empty. It must exist and be a directory.
    #[serde(default)]
    cwd: Option<String>,
    /// `python` (the default) or `javascript`.
    #[serde(default)]
    language: Option<String>,
}

/// What the clients see of a context.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterpreterContext {
    pub id: String,
    pub cwd: String,
    pub created_at: String,
    pub active: bool,
    pub language: String,
}

impl From<ContextInfo> for InterpreterContext {
    fn from(c: ContextInfo) -> Self {
        InterpreterContext {
            id: c.id,
            cwd: fspath::display(c.cwd.as_os_str().as_bytes()),
            created_at: c.created_at,
            active: c.active,
            language: c.language.as_str().to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ListContextsResponse {
    contexts: Vec<InterpreterContext>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    message: String,
}

fn create_error(e: CreateError) -> ApiError {
    match e {
        CreateError::Cwd { cwd, error } => fspath::dir_error("cwd", &cwd, &error),
        CreateError::Limit { max } => ApiError::too_many_requests(format!(
            "the limit of {max} interpreter contexts is reached; delete contexts you no longer need \
             (DELETE /process/interpreter/context/{{id}}) before creating more"
        )),
        CreateError::Start(StartError::Spawn(e)) => {
            match crate::exhaust::Exhausted::of("failed to create interpreter context", &e) {
                Some(x) => x.into(),
                None => ApiError::internal(format!("failed to create interpreter context: {e}")),
            }
        }
        CreateError::Start(e) => ApiError::internal(format!("failed to create interpreter context: {e}")),
    }
}

fn delete_error(e: DeleteError) -> ApiError {
    match e {
        DeleteError::MissingId | DeleteError::Default => ApiError::bad_request(e),
        DeleteError::NotFound => ApiError::new(StatusCode::NOT_FOUND, Code::ProcessNotFound, e.to_string()),
    }
}

/// Creates a context and starts its worker.
#[utoipa::path(post, path = "/process/interpreter/context", tag = "interpreter",
    request_body = CreateContextRequest,
    responses((status = 200, body = InterpreterContext),
        (status = 400, description = "not a JSON object, an unsupported language, or a cwd that \
            is malformed or not a directory", body = Envelope),
        (status = 403, description = "the cwd cannot be entered (FILE_ACCESS_DENIED)", body = Envelope),
        (status = 404, description = "the cwd does not exist (FILE_NOT_FOUND)", body = Envelope),
        (status = 413, description = "the body is larger than the JSON limit", body = Envelope),
        (status = 429, description = "the limit of contexts is reached: delete some first", body = Envelope),
        (status = 500, description = "the worker could not be started", body = Envelope)))]
async fn create_context(
    State(state): State<AppState>,
    Json(req): Json<CreateContextRequest>,
) -> Result<Json<InterpreterContext>, ApiError> {
    let language = Language::parse(req.language.as_deref()).map_err(ApiError::bad_request)?;
    let cwd = match req.cwd.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(FilePath::parse_str(c, &state.work_dir, "cwd is required")?.abs),
        None => None,
    };
    let info = state.interpreters.create(cwd, language).await.map_err(create_error)?;
    Ok(Json(info.into()))
}

/// The contexts clients created (never the default one), oldest first.
#[utoipa::path(get, path = "/process/interpreter/context", tag = "interpreter",
    responses((status = 200, body = ListContextsResponse)))]
async fn list_contexts(State(state): State<AppState>) -> Json<ListContextsResponse> {
    Json(ListContextsResponse { contexts: state.interpreters.list().into_iter().map(Into::into).collect() })
}

/// Stops a context's worker and forgets the context.
#[utoipa::path(delete, path = "/process/interpreter/context/{id}", tag = "interpreter",
    params(("id" = String, Path, description = "the context id")),
    responses((status = 200, body = MessageResponse),
        (status = 400, description = "the default context, or an undecodable id", body = Envelope),
        (status = 404, description = "no such context (PROCESS_NOT_FOUND)", body = Envelope)))]
async fn delete_context(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    state.interpreters.delete(&id).await.map_err(delete_error)?;
    Ok(Json(MessageResponse { message: "Context deleted successfully".into() }))
}

/// Runs code in a context over a WebSocket: the first client message is the request, then
/// output frames, then a close (1000 done, 4008 timed out, 1001/1008/1011 failures).
#[utoipa::path(get, path = "/process/interpreter/execute", tag = "interpreter",
    responses((status = 101, description = "Switching Protocols: the execution runs on the WebSocket"),
        (status = 400, description = "not a WebSocket upgrade request", body = Envelope)))]
async fn execute(State(state): State<AppState>, Ws(ws): Ws) -> Response {
    let interpreters = state.interpreters.clone();
    ws.on_upgrade(move |socket| serve(socket, interpreters))
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
    // An object, as every request body: serde alone would fill the struct from an array too
    // (`["print(1)"]` would run).
    let req: ExecuteRequest = crate::extract::decode(raw).map_err(|_| (PROTOCOL, "invalid JSON payload"))?;
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

async fn serve(mut socket: WebSocket, interpreters: Arc<Interpreters>) {
    let raw = first_message(&mut socket).await;
    let (req, timeout) = match parse_request(raw.as_deref()) {
        Ok(r) => r,
        Err((code, reason)) => {
            let _ = send(&mut socket, close(code, reason)).await;
            return;
        }
    };
    let ctx = match req.context_id.as_deref().filter(|id| !id.is_empty()) {
        None => match interpreters.default_context().await {
            Ok(c) => c,
            Err(e) => {
                let _ =
                    send(&mut socket, close(CLOSE_INTERNAL, &format!("failed to get default context: {e}")))
                        .await;
                return;
            }
        },
        Some(id) => match interpreters.get(id) {
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
                Some(Ok(Message::Close(_))) => {
                    crate::ws::answer_close(&mut socket).await;
                    return;
                }
                Some(Err(_)) | None => return,
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
        for not_an_object in [r#"["print(1)"]"#, "[]", "null", r#""print(1)""#, ""] {
            assert_eq!(parse(not_an_object).unwrap_err(), (1002, "invalid JSON payload"), "{not_an_object}");
        }
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

/// The routes in-process, through the daemon's whole router (envelope layer included).
#[cfg(test)]
mod router_tests {
    use super::*;
    use crate::env::ChildEnv;
    use crate::reaper::Reaper;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    /// A router whose interpreter service allows `max` contexts; `dir` is HOME and work dir.
    fn app(max: usize, dir: &std::path::Path) -> (axum::Router, Arc<Interpreters>) {
        let vars = [("DAYTONA_SANDBOX_ID".to_string(), "t".to_string())].into_iter().collect();
        let cfg = crate::config::from_env(&vars).unwrap();
        let env = ChildEnv::new([
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into())),
            ("HOME".into(), dir.as_os_str().to_owned()),
        ]);
        let mut state = AppState::new(cfg, env, dir.to_path_buf());
        let svc = Arc::new(Interpreters::with_max_contexts(
            state.env.clone(),
            Reaper::global(),
            dir.to_path_buf(),
            max,
        ));
        state.interpreters = svc.clone();
        (crate::server::router(state).0, svc)
    }

    async fn call(app: &axum::Router, method: Method, uri: &str, body: &str) -> (StatusCode, Value) {
        let req = Request::builder().method(method).uri(uri).body(Body::from(body.to_string())).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn create(app: &axum::Router, body: &str) -> (StatusCode, Value) {
        call(app, Method::POST, "/process/interpreter/context", body).await
    }

    async fn listed(app: &axum::Router) -> usize {
        let (status, body) = call(app, Method::GET, "/process/interpreter/context", "").await;
        assert_eq!(status, StatusCode::OK);
        body["contexts"].as_array().unwrap().len()
    }

    #[tokio::test]
    async fn bodies_that_are_not_objects_create_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (app, _) = app(4, tmp.path());
        for body in ["[null,null]", "[]", "[1]", "null", "\"x\"", ""] {
            let (status, v) = create(&app, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(v["code"], "INVALID_REQUEST_BODY", "{body}");
            assert_eq!(v["path"], "/process/interpreter/context");
        }
        assert_eq!(listed(&app).await, 0);
    }

    #[tokio::test]
    async fn a_bad_cwd_is_a_4xx_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        std::fs::write(&file, "").unwrap();
        let (app, _) = app(4, tmp.path());
        let work = tmp.path().display();
        let file = file.display();
        let long = "x".repeat(300);
        for (cwd, status, code, named) in [
            (
                "/nonexistent".to_string(),
                404,
                "FILE_NOT_FOUND",
                "cwd /nonexistent: no such file or directory".to_string(),
            ),
            ("missing/sub".into(), 404, "FILE_NOT_FOUND", format!("cwd {work}/missing/sub: no such file")),
            (file.to_string(), 400, "BAD_REQUEST", format!("cwd {file}: not a directory")),
            (format!("{file}/below"), 400, "BAD_REQUEST", format!("cwd {file}/below: not a directory")),
            ("/tmp/a\u{0}b".into(), 400, "INVALID_FILE_PATH", "NUL".into()),
            (format!("/tmp/{long}"), 400, "INVALID_FILE_PATH", "longer than 255".into()),
        ] {
            let (got, v) = create(&app, &serde_json::json!({ "cwd": cwd }).to_string()).await;
            assert_eq!((got.as_u16(), v["code"].as_str()), (status, Some(code)), "{cwd:?}: {v}");
            assert!(v["message"].as_str().unwrap().contains(&named), "{cwd:?}: {v}");
        }
        assert_eq!(listed(&app).await, 0);
    }

    #[tokio::test]
    async fn a_zero_limit_refuses_every_context() {
        let tmp = tempfile::tempdir().unwrap();
        let (app, _) = app(0, tmp.path());
        let (status, v) = create(&app, "{}").await;
        assert_eq!((status, v["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("TOO_MANY_REQUESTS")));
        // A bad request stays a bad request: the input is checked before the limit.
        let (status, _) = create(&app, r#"{"language":"ruby"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = create(&app, r#"{"cwd":"/nonexistent"}"#).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_limit_is_a_429_until_a_context_is_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let (app, svc) = app(2, tmp.path());
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (status, v) = create(&app, "{}").await;
            assert_eq!(status, StatusCode::OK, "{v}");
            ids.push(v["id"].as_str().unwrap().to_string());
        }
        let (status, v) = create(&app, "{}").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
        assert_eq!(v["code"], "TOO_MANY_REQUESTS");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("limit of 2 interpreter contexts"), "{message}");
        assert!(message.contains("delete contexts"), "{message}");
        // The default context is not one of them.
        svc.default_context().await.unwrap();
        assert_eq!(listed(&app).await, 2);
        let (status, _) =
            call(&app, Method::DELETE, &format!("/process/interpreter/context/{}", ids[0]), "").await;
        assert_eq!(status, StatusCode::OK);
        let (status, v) = create(&app, &serde_json::json!({ "cwd": tmp.path() }).to_string()).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["cwd"], tmp.path().display().to_string());
        assert_eq!(create(&app, "{}").await.0, StatusCode::TOO_MANY_REQUESTS);
        svc.shutdown().await;
    }

    #[tokio::test]
    async fn delete_errors_are_envelopes() {
        let tmp = tempfile::tempdir().unwrap();
        let (app, _) = app(4, tmp.path());
        for (uri, status, code) in [
            ("/process/interpreter/context/%FF%FE", 400, "BAD_REQUEST"),
            ("/process/interpreter/context/default", 400, "BAD_REQUEST"),
            ("/process/interpreter/context/no-such-context", 404, "PROCESS_NOT_FOUND"),
        ] {
            let (got, v) = call(&app, Method::DELETE, uri, "").await;
            assert_eq!((got.as_u16(), v["code"].as_str()), (status, Some(code)), "{uri}: {v}");
            assert_eq!(v["source"], "DAYTONA_DAEMON");
        }
    }

    #[tokio::test]
    async fn execute_without_an_upgrade_is_a_400_envelope() {
        let tmp = tempfile::tempdir().unwrap();
        let (app, _) = app(4, tmp.path());
        let (status, v) = call(&app, Method::GET, "/process/interpreter/execute", "").await;
        assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")));
        assert!(v["message"].as_str().unwrap().contains("WebSocket upgrade"), "{v}");
    }

    #[tokio::test]
    async fn a_body_declared_over_the_limit_is_413_unread() {
        let tmp = tempfile::tempdir().unwrap();
        let (app, _) = app(4, tmp.path());
        let req = Request::post("/process/interpreter/context")
            .header("content-length", (crate::extract::MAX_JSON_BODY + 1).to_string())
            .body(Body::from_stream(futures_util::stream::pending::<Result<bytes::Bytes, std::io::Error>>()))
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn the_document_lists_every_status_and_required_field() {
        let doc = routes().split_for_parts().1;
        let doc = serde_json::to_value(&doc).unwrap();
        let statuses = |path: &str, method: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"].as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(
            statuses("/process/interpreter/context", "post"),
            ["200", "400", "403", "404", "413", "429", "500"]
        );
        assert_eq!(statuses("/process/interpreter/context", "get"), ["200"]);
        assert_eq!(statuses("/process/interpreter/context/{id}", "delete"), ["200", "400", "404"]);
        assert_eq!(statuses("/process/interpreter/execute", "get"), ["101", "400"]);
        let schemas = &doc["components"]["schemas"];
        let required = |name: &str| schemas[name]["required"].clone();
        assert_eq!(required("CreateContextRequest"), Value::Null);
        assert_eq!(
            required("InterpreterContext"),
            serde_json::json!(["id", "cwd", "createdAt", "active", "language"])
        );
        assert_eq!(required("ListContextsResponse"), serde_json::json!(["contexts"]));
        assert_eq!(required("MessageResponse"), serde_json::json!(["message"]));
        let error = &doc["paths"]["/process/interpreter/context"]["post"]["responses"]["429"];
        assert_eq!(
            error["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorResponse"
        );
    }
}
