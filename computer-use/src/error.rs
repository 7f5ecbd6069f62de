//! The agent's one error type, rendered as the daemon's 0.226 JSON envelope.
//!
//! The daemon relays the agent's answers unchanged, so the agent speaks the same envelope:
//! `{"statusCode", "message", "code"?, "source": "DAYTONA_DAEMON", "timestamp", "path", "method"}`.
//! It comes from the crate both share (`toolbox-envelope`); path and method are filled in by
//! [`envelope_layer`].

pub use toolbox_envelope::extract::{Json, Path, Query, Ws};
pub use toolbox_envelope::layer as envelope_layer;

/// The agent's error: the shared [`toolbox_envelope::ApiError`] over the agent's [`Code`]s.
pub type ApiError = toolbox_envelope::ApiError<Code>;

toolbox_envelope::error_codes! {
    /// The `DaemonErrorCode` values this agent emits: the generic kinds and these.
    pub enum Code {
        A11yUnavailable => "A11Y_UNAVAILABLE",
        // Extensions (not in Daytona's daemon): `a11y/wait` and element-targeted input.
        /// 408: the wait's condition did not hold before its timeout.
        A11yWaitTimeout => "A11Y_WAIT_TIMEOUT",
        /// 404: the node an input names no longer exists (its object or application is gone).
        A11yNodeGone => "A11Y_NODE_GONE",
        /// 409: the node an input names is not on screen (not showing, or empty bounds).
        A11yNodeNotVisible => "A11Y_NODE_NOT_VISIBLE",
    }
}

/// The agent's own kinds of error, beside the shared generic ones.
pub trait AgentErrors {
    /// 503 without a code: start/stop/status failures and "not available" answers.
    fn unavailable(message: impl Into<String>) -> Self;
    /// 503 `A11Y_UNAVAILABLE`: the accessibility bus cannot be reached.
    fn a11y_unavailable(message: impl Into<String>) -> Self;
}

impl AgentErrors for ApiError {
    fn unavailable(message: impl Into<String>) -> Self {
        ApiError::uncoded(axum::http::StatusCode::SERVICE_UNAVAILABLE, message)
    }

    fn a11y_unavailable(message: impl Into<String>) -> Self {
        ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, Code::A11yUnavailable, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
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
            .route("/b", post(|Json(_b): Json<B>| async { "ok" }))
            .layer(axum::middleware::from_fn(envelope_layer));
        let req = Request::post("/b").body(Body::from("{\"x\":\"no\"}")).unwrap();
        let (status, v) = call(app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["code"], "INVALID_REQUEST_BODY");
        assert!(v["message"].as_str().unwrap().starts_with("invalid body request: "));
    }
}
