//! The agent's one error type, rendered as the daemon's 0.226 JSON envelope.
//!
//! The daemon relays the agent's answers unchanged, so the agent speaks the same envelope:
//! `{"statusCode", "message", "code"?, "source": "DAYTONA_DAEMON", "timestamp", "path", "method"}`.
//! It comes from the crate both share (`toolbox-envelope`); path and method are filled in by
//! [`envelope_layer`].

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use toolbox_envelope::Pending;
pub use toolbox_envelope::layer as envelope_layer;

/// The `DaemonErrorCode` values this agent emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    InvalidRequestBody,
    NotFound,
    InternalServerError,
    A11yUnavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "BAD_REQUEST",
            Code::InvalidRequestBody => "INVALID_REQUEST_BODY",
            Code::NotFound => "NOT_FOUND",
            Code::InternalServerError => "INTERNAL_SERVER_ERROR",
            Code::A11yUnavailable => "A11Y_UNAVAILABLE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Option<Code>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Option<Code>, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    /// Validation failures of the automation layer: `bad request: <text>` (spec sdk-0.226 §2.6).
    pub fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(Code::BadRequest), format!("bad request: {detail}"))
    }

    pub fn invalid_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Some(Code::InvalidRequestBody),
            format!("invalid body request: {detail}"),
        )
    }

    pub fn not_found(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, Some(Code::NotFound), format!("not found: {detail}"))
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(Code::InternalServerError),
            format!("internal server error: {detail}"),
        )
    }

    /// 503 without a code: start/stop/status failures and "not available" answers.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, None, message)
    }

    /// 503 `A11Y_UNAVAILABLE`: the accessibility bus cannot be reached.
    pub fn a11y_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, Some(Code::A11yUnavailable), message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Pending { status: self.status, code: self.code.map(Code::as_str), message: self.message }
            .into_response()
    }
}

/// A JSON body, whatever the Content-Type says (the clients always send JSON); any failure is a
/// 400 `INVALID_REQUEST_BODY` naming the problem.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid_body(format!("reading body: {e}")))?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(ApiError::invalid_body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(app: Router, req: Request) -> (StatusCode, serde_json::Value) {
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn errors_carry_path_method_and_code() {
        let app = Router::new()
            .route("/computeruse/x", get(|| async { Err::<(), _>(ApiError::a11y_unavailable("no bus")) }))
            .layer(axum::middleware::from_fn(envelope_layer));
        let req = Request::get("/computeruse/x").body(Body::empty()).unwrap();
        let (status, v) = call(app, req).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(v["message"], "no bus");
        assert_eq!(v["code"], "A11Y_UNAVAILABLE");
        assert_eq!(v["path"], "/computeruse/x");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["source"], "DAYTONA_DAEMON");
    }

    #[tokio::test]
    async fn bad_json_is_invalid_request_body() {
        #[derive(serde::Deserialize)]
        struct B {
            #[allow(dead_code)]
            x: i32,
        }
        let app = Router::new()
            .route("/b", post(|JsonBody(_b): JsonBody<B>| async { "ok" }))
            .layer(axum::middleware::from_fn(envelope_layer));
        let req = Request::post("/b").body(Body::from("{\"x\":\"no\"}")).unwrap();
        let (status, v) = call(app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["code"], "INVALID_REQUEST_BODY");
        assert!(v["message"].as_str().unwrap().starts_with("invalid body request: "));
    }
}
