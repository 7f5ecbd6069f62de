//! The recording dashboard on `DAYTONA_RECORDING_DASHBOARD_PORT` (33333): one page that lists,
//! plays and deletes recordings, and the small JSON API it calls. Errors are the daemon's
//! envelope, like on the toolbox port.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code, envelope_layer};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// Ids one bulk delete may name.
const MAX_BULK_IDS: usize = 1000;

/// Serves the dashboard until the process ends.
pub async fn run(state: AppState) {
    crate::server::serve_side(state.config.recording_dashboard_port, "recording dashboard", router(state))
        .await;
}

pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let router = Router::new()
        .route("/", get(page))
        .route("/api/recordings", get(list).delete(delete_many))
        .route("/videos/{name}", get(video))
        .fallback(toolbox_envelope::no_route)
        .method_not_allowed_fallback(toolbox_envelope::no_route)
        .with_state(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|p| {
            tracing::error!("recording dashboard handler panicked");
            toolbox_envelope::panic_answer(p)
        }))
        .layer(axum::middleware::from_fn(envelope_layer));
    // With a token, the page, its API and the videos ask for it (the page passes its own
    // `DAYTONA_SANDBOX_AUTH_KEY` parameter on to each).
    crate::auth::protect_side(router, &config)
}

async fn page() -> Response {
    let mut res = axum::response::Html(recorder::DASHBOARD_HTML).into_response();
    let h = res.headers_mut();
    // The page is self-contained: nothing may load from elsewhere, and no other site may frame it.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[derive(Serialize)]
struct Listing {
    recordings: Vec<recorder::Recording>,
}

async fn list(State(state): State<AppState>) -> Result<Json<Listing>, ApiError> {
    Ok(Json(Listing { recordings: state.recordings.list().await.map_err(super::api_error)? }))
}

#[derive(Deserialize)]
struct DeleteMany {
    ids: Vec<String>,
}

#[derive(Serialize)]
struct Deleted {
    deleted: Vec<String>,
    failed: Vec<String>,
}

async fn delete_many(
    State(state): State<AppState>,
    Json(body): Json<DeleteMany>,
) -> Result<Json<Deleted>, ApiError> {
    if body.ids.len() > MAX_BULK_IDS {
        return Err(ApiError::bad_request(format!("at most {MAX_BULK_IDS} ids per request")));
    }
    let (deleted, failed) = state.recordings.delete_many(body.ids).await;
    let out = Deleted { deleted, failed };
    Ok(Json(out))
}

/// A video of the recordings directory, by file name (what the page links).
async fn video(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // One path component: only separators and the `.`/`..` names could leave the directory
    // (`v1..2` is a fine label).
    if name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err(ApiError::new(StatusCode::FORBIDDEN, Code::Forbidden, "access denied"));
    }
    if !name.ends_with(".mp4") || name.starts_with('.') {
        return Err(ApiError::not_found("file not found"));
    }
    let path = state.recordings.dir().join(&name);
    super::serve_video(path, &method, &headers).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn call(app: &Router, method: Method, uri: &str, body: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, res.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    fn app(dir: &std::path::Path) -> Router {
        let app = crate::testing::TestApp::with(
            crate::recordings::api::routes(),
            &[("DAYTONA_RECORDINGS_DIR", dir.to_str().unwrap())],
            |_| {},
        );
        router(app.state.clone())
    }

    #[tokio::test]
    async fn page_listing_videos_and_bulk_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let name = "0a0b0c0d-1111-4222-8333-444455556666_demo_20260101_000000.mp4";
        std::fs::write(tmp.path().join(name), b"0123456789").unwrap();
        let app = app(tmp.path());

        let (status, headers, body) = call(&app, Method::GET, "/", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'none'"));
        assert_eq!(body, recorder::DASHBOARD_HTML.as_bytes());

        let (status, _, body) = call(&app, Method::GET, "/api/recordings", "").await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["recordings"][0]["fileName"], name);
        assert_eq!(v["recordings"][0]["id"], "0a0b0c0d-1111-4222-8333-444455556666");

        let req = Request::builder()
            .uri(format!("/videos/{name}"))
            .header(header::RANGE, "bytes=2-4")
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "video/mp4");
        assert_eq!(res.headers()[header::CONTENT_RANGE], "bytes 2-4/10");
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes().as_ref(), b"234");

        for (uri, want) in [
            ("/videos/..%2Fescape.mp4", StatusCode::FORBIDDEN),
            ("/videos/..", StatusCode::FORBIDDEN),
            ("/videos/a%5Cb.mp4", StatusCode::FORBIDDEN),
            ("/videos/missing.mp4", StatusCode::NOT_FOUND),
            ("/videos/notes.txt", StatusCode::NOT_FOUND),
        ] {
            let (status, _, body) = call(&app, Method::GET, uri, "").await;
            assert_eq!(status, want, "{uri}");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["statusCode"], want.as_u16(), "{uri}: {v}");
        }
        // A link out of the directory is not followed.
        std::os::unix::fs::symlink("/etc/hostname", tmp.path().join("link.mp4")).unwrap();
        let (status, _, _) = call(&app, Method::GET, "/videos/link.mp4", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, _, body) = call(&app, Method::DELETE, "/api/recordings", "{\"ids\": 3}").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
        let body = r#"{"ids": ["0a0b0c0d-1111-4222-8333-444455556666", "nope"]}"#;
        let (status, _, body) = call(&app, Method::DELETE, "/api/recordings", body).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"deleted": ["0a0b0c0d-1111-4222-8333-444455556666"], "failed": ["nope"]})
        );
        assert!(!tmp.path().join(name).exists());

        let (status, _, _) = call(&app, Method::GET, "/elsewhere", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn with_a_token_the_page_api_and_videos_ask_for_it() {
        const TOKEN: &str = "tok-0123456789abcdef";
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("v.mp4"), b"0123").unwrap();
        let test = crate::testing::TestApp::with(
            crate::recordings::api::routes(),
            &[("DAYTONA_RECORDINGS_DIR", tmp.path().to_str().unwrap()), ("DAYTONA_AUTH_TOKEN", TOKEN)],
            |_| {},
        );
        let app = router(test.state.clone());
        for uri in ["/", "/api/recordings", "/videos/v.mp4", "/elsewhere"] {
            let (status, headers, body) = call(&app, Method::GET, uri, "").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["code"], "UNAUTHORIZED");
        }
        for uri in ["/", "/api/recordings", "/videos/v.mp4"] {
            let (status, _, _) =
                call(&app, Method::GET, &format!("{uri}?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"), "").await;
            assert_eq!(status, StatusCode::OK, "{uri}");
        }
        let req = Request::builder()
            .method(Method::DELETE)
            .uri("/api/recordings")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"ids":[]}"#))
            .unwrap();
        assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
    }
}
