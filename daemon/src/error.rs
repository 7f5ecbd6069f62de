//! The daemon's one error type and its single mapping to HTTP.
//!
//! Handlers return [`ApiError`]; nothing else builds an error body. The JSON envelope is the one
//! the 0.226 clients parse:
//! `{"statusCode", "message", "code"?, "source": "DAYTONA_DAEMON", "timestamp", "path", "method"}`.
//! The request's path and method are not known where an error is raised, so the error travels
//! out of the handler as a response extension and [`envelope_layer`] (shared with the
//! computer-use agent, crate `toolbox-envelope`) renders the body with them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use toolbox_envelope::Pending;
pub use toolbox_envelope::layer as envelope_layer;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Pending { status: self.status, code: self.code.map(Code::as_str), message: self.message }
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::header;
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

    #[tokio::test]
    async fn code_without_value_is_omitted() {
        let err = ApiError { status: StatusCode::SERVICE_UNAVAILABLE, code: None, message: "m".into() };
        let app = Router::new()
            .route("/p", axum::routing::post(move || async move { Err::<(), _>(err) }))
            .layer(axum::middleware::from_fn(envelope_layer));
        let res = app.oneshot(Request::post("/p").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let v = body_json(res).await;
        assert!(v.get("code").is_none());
        assert_eq!(v["method"], "POST");
    }
}
