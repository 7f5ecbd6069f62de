//! `/computeruse/screenshot*`. The query is read with the reference's lenient rules (first
//! occurrence wins, `show_cursor` beside `showCursor`, its exact messages and order; see
//! `query`), so these routes take the raw query rather than the typed extractor; every refusal
//! is still the 400 envelope.
//!
//! Every frame carries an `ETag`; a request whose `If-None-Match` (or `ifNoneMatch` parameter)
//! names the current frame gets 304 without a body and without any encoding (our extension).

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use computer_use_api::screenshot::{Position, ScreenshotResponse};

use super::etag::Known;
use super::query::{self, Query};
use super::service::{self, Answer, Shot, ShotError, ShotRequest};
use crate::error::{ApiError, Json};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/screenshot", get(full))
        .route("/computeruse/screenshot/region", get(region))
        .route("/computeruse/screenshot/compressed", get(compressed))
        .route("/computeruse/screenshot/region/compressed", get(region_compressed))
}

impl From<ShotError> for ApiError {
    fn from(e: ShotError) -> ApiError {
        match e {
            ShotError::X(e) => e.into(),
            ShotError::Encode(e) => ApiError::internal(format!("cannot encode the screenshot: {e}")),
        }
    }
}

fn bad(e: String) -> ApiError {
    ApiError::bad_request(e)
}

/// Region parameters are checked before `showCursor`, and both before compression's, as the
/// reference does.
fn parse(raw: Option<&str>, region: bool, compressed: bool) -> Result<ShotRequest, ApiError> {
    let q = Query::parse(raw);
    let region = if region { Some(query::region(&q).map_err(bad)?) } else { None };
    let cursor = query::show_cursor(&q).map_err(bad)?;
    let compression = if compressed { Some(query::compression(&q).map_err(bad)?) } else { None };
    Ok(ShotRequest { region, cursor, compression })
}

/// The tags the client has: every `If-None-Match` header and the `ifNoneMatch` parameter.
fn known(headers: &HeaderMap, raw: Option<&str>) -> Known {
    let q = Query::parse(raw);
    let values = headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok());
    Known::parse(values, query::if_none_match(&q))
}

fn response(shot: Shot) -> ScreenshotResponse {
    ScreenshotResponse {
        screenshot: shot.image,
        cursor_position: shot.cursor.map(|(x, y)| Position { x, y }),
        size_bytes: shot.size,
    }
}

/// 200 with the frame, or 304 without a body; both carry the frame's `ETag`. `no-cache`: a
/// cache in between must ask again each time (the screen changes without the URL changing).
fn answer(a: Answer) -> Response {
    let (status, tag, body) = match a {
        Answer::Frame(shot, tag) => (StatusCode::OK, tag, Some(response(shot))),
        Answer::Unchanged(tag) => (StatusCode::NOT_MODIFIED, tag, None),
    };
    let etag = HeaderValue::from_str(&tag.render()).expect("a tag is ASCII");
    let headers = [(header::ETAG, etag), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))];
    match body {
        Some(b) => (status, headers, Json(b)).into_response(),
        None => (status, headers).into_response(),
    }
}

async fn run(
    s: AppState,
    headers: HeaderMap,
    raw: Option<String>,
    region: bool,
    compressed: bool,
) -> Result<Response, ApiError> {
    let req = parse(raw.as_deref(), region, compressed)?;
    let known = known(&headers, raw.as_deref());
    let a = s.x11.run(move |x| service::shoot(x, req, &known)).await?;
    Ok(answer(a))
}

async fn full(State(s): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    run(s, h, q, false, false).await
}

async fn region(
    State(s): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    run(s, h, q, true, false).await
}

async fn compressed(
    State(s): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    run(s, h, q, false, true).await
}

async fn region_compressed(
    State(s): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    run(s, h, q, true, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_params_come_before_show_cursor_and_compression() {
        let e = parse(Some("showCursor=bad&quality=0"), true, true).unwrap_err();
        assert_eq!(e.message, "bad request: missing required query parameter: x");
        let e = parse(Some("x=0&y=0&width=1&height=1&showCursor=bad&quality=0"), true, true).unwrap_err();
        assert_eq!(e.message, "bad request: invalid query parameter showCursor: must be a boolean");
        let e = parse(Some("showCursor=1&quality=0&scale=5"), false, true).unwrap_err();
        assert_eq!(e.message, "bad request: invalid query parameter quality: must be between 1 and 100");
        // Compression parameters are ignored by the uncompressed routes.
        assert!(parse(Some("quality=0"), false, false).is_ok());
    }

    #[test]
    fn shots_become_the_clients_body() {
        let plain = response(Shot { image: "iVBO".into(), cursor: Some((3, 4)), size: None });
        assert_eq!(
            serde_json::to_value(plain).unwrap(),
            serde_json::json!({"screenshot": "iVBO", "cursorPosition": {"x": 3, "y": 4}})
        );
        let compressed = response(Shot { image: "/9j/".into(), cursor: None, size: Some(9) });
        assert_eq!(
            serde_json::to_value(compressed).unwrap(),
            serde_json::json!({"screenshot": "/9j/", "sizeBytes": 9})
        );
    }
}
