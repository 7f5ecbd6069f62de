//! The daemon's one error type and its single mapping to HTTP.
//!
//! Handlers return [`ApiError`]; nothing else builds an error body. The JSON envelope is the one
//! the 0.226 clients parse:
//! `{"statusCode", "message", "code"?, "source": "DAYTONA_DAEMON", "timestamp", "path", "method"}`.
//! The request's path and method are not known where an error is raised, so the error travels
//! out of the handler as a response extension and [`envelope_layer`] renders the body with them.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::timefmt;

/// Error codes of the clients' `DaemonErrorCode` enum that this daemon emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    InvalidRequestBody,
    NotFound,
    Conflict,
    Forbidden,
    Gone,
    RequestTimeout,
    UnprocessableEntity,
    InternalServerError,
    ProcessExecutionTimeout,
    ProcessNotFound,
    SessionEnded,
    CommandAlreadyCompleted,
    FileNotFound,
    FileAccessDenied,
    InvalidFilePath,
    GitAuthFailed,
    GitRepoNotFound,
    GitBranchNotFound,
    GitBranchExists,
    GitPushRejected,
    GitDirtyWorktree,
    GitMergeConflict,
    GitTransportFailed,
    GitRemoteRejected,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "BAD_REQUEST",
            Code::InvalidRequestBody => "INVALID_REQUEST_BODY",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::Forbidden => "FORBIDDEN",
            Code::Gone => "GONE",
            Code::RequestTimeout => "REQUEST_TIMEOUT",
            Code::UnprocessableEntity => "UNPROCESSABLE_ENTITY",
            Code::InternalServerError => "INTERNAL_SERVER_ERROR",
            Code::ProcessExecutionTimeout => "PROCESS_EXECUTION_TIMEOUT",
            Code::ProcessNotFound => "PROCESS_NOT_FOUND",
            Code::SessionEnded => "SESSION_ENDED",
            Code::CommandAlreadyCompleted => "COMMAND_ALREADY_COMPLETED",
            Code::FileNotFound => "FILE_NOT_FOUND",
            Code::FileAccessDenied => "FILE_ACCESS_DENIED",
            Code::InvalidFilePath => "INVALID_FILE_PATH",
            Code::GitAuthFailed => "GIT_AUTH_FAILED",
            Code::GitRepoNotFound => "GIT_REPO_NOT_FOUND",
            Code::GitBranchNotFound => "GIT_BRANCH_NOT_FOUND",
            Code::GitBranchExists => "GIT_BRANCH_EXISTS",
            Code::GitPushRejected => "GIT_PUSH_REJECTED",
            Code::GitDirtyWorktree => "GIT_DIRTY_WORKTREE",
            Code::GitMergeConflict => "GIT_MERGE_CONFLICT",
            Code::GitTransportFailed => "GIT_TRANSPORT_FAILED",
            Code::GitRemoteRejected => "GIT_REMOTE_REJECTED",
        }
    }
}

/// An error answer: status, optional code, and the message the SDK shows to its user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Option<Code>,
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status, code and message, used verbatim.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        ApiError { status, code: Some(code), message: message.into() }
    }

    // The generic kinds keep the reference's message prefixes ("bad request: …"), which users
    // already see in SDK exceptions and may match on.
    pub fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::BadRequest, format!("bad request: {detail}"))
    }

    pub fn invalid_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidRequestBody,
            format!("invalid body request: {detail}"),
        )
    }

    pub fn not_found(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, format!("not found: {detail}"))
    }

    pub fn conflict(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::CONFLICT, Code::Conflict, format!("conflict: {detail}"))
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::InternalServerError,
            format!("internal server error: {detail}"),
        )
    }
}

/// Marker carried by a response whose body the envelope layer must render.
#[derive(Debug, Clone)]
struct PendingError(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self.status;
        res.extensions_mut().insert(PendingError(self));
        res
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    status_code: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    source: &'static str,
    timestamp: String,
    path: &'a str,
    method: &'a str,
}

/// Renders the JSON body of an error for one request.
pub fn render(err: &ApiError, method: &str, path: &str) -> Response {
    let body = serde_json::to_vec(&Envelope {
        status_code: err.status.as_u16(),
        message: &err.message,
        code: err.code.map(Code::as_str),
        source: "DAYTONA_DAEMON",
        timestamp: timefmt::now_rfc3339(),
        path,
        method,
    })
    .expect("envelope serialises");
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = err.status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    res
}

/// Middleware that turns every [`ApiError`] leaving a handler into the JSON envelope, with the
/// request's path and method filled in.
pub async fn envelope_layer(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    match res.extensions_mut().remove::<PendingError>() {
        Some(PendingError(err)) => render(&err, &method, &path),
        None => res,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn body_json(res: Response) -> serde_json::Value {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn handler_errors_become_the_envelope() {
        let app = Router::new()
            .route("/boom", get(|| async { Err::<(), _>(ApiError::not_found("session abc")) }))
            .layer(axum::middleware::from_fn(envelope_layer));
        let res = app.oneshot(Request::get("/boom?x=1").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json; charset=utf-8");
        let v = body_json(res).await;
        assert_eq!(v["statusCode"], 404);
        assert_eq!(v["message"], "not found: session abc");
        assert_eq!(v["code"], "NOT_FOUND");
        assert_eq!(v["source"], "DAYTONA_DAEMON");
        assert_eq!(v["path"], "/boom");
        assert_eq!(v["method"], "GET");
        assert!(
            jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.f%:z", v["timestamp"].as_str().unwrap()).is_ok()
                || v["timestamp"].as_str().unwrap().ends_with('Z')
        );
    }

    #[test]
    fn prefixes_and_codes() {
        let e = ApiError::bad_request("x");
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (StatusCode::BAD_REQUEST, Some(Code::BadRequest), "bad request: x")
        );
        assert_eq!(ApiError::invalid_body("eof").message, "invalid body request: eof");
        assert_eq!(ApiError::conflict("dup").status, StatusCode::CONFLICT);
        assert_eq!(ApiError::internal("io").code, Some(Code::InternalServerError));
        assert_eq!(Code::ProcessExecutionTimeout.as_str(), "PROCESS_EXECUTION_TIMEOUT");
    }

    #[test]
    fn code_without_value_is_omitted() {
        let err = ApiError { status: StatusCode::SERVICE_UNAVAILABLE, code: None, message: "m".into() };
        let res = render(&err, "POST", "/p");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let v = rt.block_on(body_json(res));
        assert!(v.get("code").is_none());
        assert_eq!(v["method"], "POST");
    }
}
