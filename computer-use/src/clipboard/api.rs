//! `GET /computeruse/clipboard` and `POST /computeruse/clipboard` (an extension: not in Daytona's
//! daemon). The X work runs on a blocking thread; failures reach clients as envelopes: 503 when
//! the display cannot be reached (as on every X route), 413 over the size limit, 409 when the
//! owner holds no text, 504 when it does not answer.

use std::sync::Arc;

use axum::Router;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::routing::{get, post};
use computer_use_api::Empty;
use computer_use_api::clipboard::{ClipboardResponse, SetClipboardRequest};

use super::read::{ANSWER_TIMEOUT, Late, TOTAL_TIMEOUT};
use super::service::{Clipboard, ClipboardError};
use super::text::MAX_TEXT_BYTES;
use crate::desktop_env::SharedDesktopEnv;
use crate::error::{ApiError, Json};
use crate::state::AppState;
use crate::x11::error::XError;

/// The routes, with the clipboard service they share (one selection owner per display, for
/// the agent's lifetime).
pub fn routes(desktop_env: SharedDesktopEnv) -> Router<AppState> {
    Router::new()
        .route("/computeruse/clipboard", get(get_clipboard))
        .route("/computeruse/clipboard", post(set_clipboard))
        .layer(Extension(Arc::new(Clipboard::new(desktop_env))))
}

impl From<ClipboardError> for ApiError {
    fn from(e: ClipboardError) -> ApiError {
        match e {
            ClipboardError::X(e) => e.into(),
            ClipboardError::NoAnswer(late) => {
                ApiError::uncoded(StatusCode::GATEWAY_TIMEOUT, late_message(late))
            }
            ClipboardError::NotText => ApiError::conflict(
                "the clipboard holds no text: its owner offers neither UTF8_STRING nor STRING",
            ),
            ClipboardError::TooLarge => {
                ApiError::payload_too_large(format!("clipboard text is limited to {MAX_TEXT_BYTES} bytes"))
            }
        }
    }
}

/// Says which deadline the owner missed, so a client can tell a dead owner from a slow one.
fn late_message(late: Late) -> String {
    match late {
        Late::Answer => format!("the clipboard owner did not answer within {}s", ANSWER_TIMEOUT.as_secs()),
        Late::Piece => format!(
            "the clipboard owner stopped sending its incremental (INCR) transfer: no piece for {}s",
            ANSWER_TIMEOUT.as_secs()
        ),
        Late::Total => format!(
            "the clipboard owner's incremental (INCR) transfer did not finish within {}s in total",
            TOTAL_TIMEOUT.as_secs()
        ),
    }
}

/// Runs a blocking clipboard step off the async runtime.
async fn blocking<R: Send + 'static>(
    clipboard: Arc<Clipboard>,
    f: impl FnOnce(&Clipboard) -> Result<R, ClipboardError> + Send + 'static,
) -> Result<R, ApiError> {
    match tokio::task::spawn_blocking(move || f(&clipboard)).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(XError::internal(format!("clipboard task failed: {e}")).into()),
    }
}

async fn get_clipboard(Extension(c): Extension<Arc<Clipboard>>) -> Result<Json<ClipboardResponse>, ApiError> {
    let text = blocking(c, |c| c.get()).await?;
    Ok(Json(ClipboardResponse { text }))
}

async fn set_clipboard(
    Extension(c): Extension<Arc<Clipboard>>,
    Json(body): Json<SetClipboardRequest>,
) -> Result<Json<Empty>, ApiError> {
    // Checked before any X work: an oversized value is the request's fault even without a desktop.
    if body.text.len() > MAX_TEXT_BYTES {
        return Err(ClipboardError::TooLarge.into());
    }
    blocking(c, move |c| c.set(body.text)).await?;
    Ok(Json(Empty {}))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;

    /// The routes over a state whose display does not exist.
    fn app() -> Router {
        let config = Config::from_lookup(|k| (k == "DISPLAY").then(|| ":4093".to_string())).unwrap();
        let state = AppState::new(config);
        routes(state.desktop_env.clone())
            .layer(axum::middleware::from_fn(crate::error::envelope_layer))
            .with_state(state)
    }

    async fn call(req: Request) -> (StatusCode, serde_json::Value) {
        let res = app().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn post(body: impl Into<Body>) -> Request {
        Request::post("/computeruse/clipboard")
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_without_text_is_invalid() {
        let (status, v) = call(post("{}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["code"], "INVALID_REQUEST_BODY");
        assert!(v["message"].as_str().unwrap().contains("text"), "{v}");
        let (status, _) = call(post("{\"text\": 5}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn oversized_text_is_413_before_any_x_work() {
        let body = serde_json::to_vec(&serde_json::json!({"text": "x".repeat(MAX_TEXT_BYTES + 1)})).unwrap();
        let (status, v) = call(post(body)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(v["code"], "PAYLOAD_TOO_LARGE");
        assert!(v["message"].as_str().unwrap().contains("16777216 bytes"), "{v}");
    }

    #[tokio::test]
    async fn no_display_is_503_like_every_x_route() {
        let (status, v) = call(Request::get("/computeruse/clipboard").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert!(
            v["message"].as_str().unwrap().starts_with("X display not available: cannot open display :4093"),
            "{v}"
        );
        let (status, v) = call(post("{\"text\": \"hi\"}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    }

    #[test]
    fn each_missed_deadline_is_a_504_naming_it() {
        for (late, says) in [
            (Late::Answer, "did not answer within 5s"),
            (Late::Piece, "no piece for 5s"),
            (Late::Total, "did not finish within 30s in total"),
        ] {
            let e = ApiError::from(ClipboardError::NoAnswer(late));
            assert_eq!(e.status, StatusCode::GATEWAY_TIMEOUT);
            assert!(e.message.contains(says), "{late:?}: {}", e.message);
        }
    }
}
