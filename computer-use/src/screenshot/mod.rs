//! Screenshots (spec computer-use.md §3): full, region, compressed; PNG or JPEG; cursor overlay.
//!
//! Capture happens under the X connection lock; drawing, scaling and encoding after it, all on
//! a blocking thread.

pub mod image;
pub mod query;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::x11::capture::{Rect, RgbImage};
use crate::x11::{X11, XError};
use query::{Compression, Format, Query};

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub x: i64,
    pub y: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shot {
    screenshot: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor_position: Option<Position>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_bytes: Option<usize>,
}

/// What was asked for: the area (None = screen 0), overlay, and compression (None = plain PNG).
#[derive(Debug, Clone, Copy)]
struct Request {
    region: Option<query::Region>,
    cursor: bool,
    compression: Option<Compression>,
}

fn bad(e: String) -> ApiError {
    ApiError::bad_request(e)
}

/// The captured pixels, the area they cover, and the pointer when it was asked for.
type Grabbed = (RgbImage, Rect, Option<(i64, i64)>);

/// Grabs the pixels and, when asked, the pointer (absolute root coordinates).
fn grab(x11: &X11, area: Option<Rect>, cursor: bool) -> Result<Grabbed, XError> {
    x11.with(|c| {
        let area = match area {
            Some(a) => a,
            None => c.screens()?.into_iter().next().ok_or_else(|| XError::new("no screen"))?,
        };
        let img = c.capture(area)?;
        let pointer = if cursor { Some(c.pointer()?) } else { None };
        Ok((img, area, pointer.map(|(x, y)| (x as i64, y as i64))))
    })
}

/// The whole pipeline for one request; pure apart from `grab`.
fn shoot(x11: &X11, req: Request) -> Result<Shot, ApiError> {
    let area = req.region.map(|r| Rect { x: r.x, y: r.y, width: r.width, height: r.height });
    let (mut img, area, pointer) = grab(x11, area, req.cursor)?;
    let (ox, oy) = (area.x as i64, area.y as i64);
    if let Some((px, py)) = pointer {
        image::draw_cursor(&mut img, px - ox, py - oy);
    }
    let Some(comp) = req.compression else {
        let png = image::encode_png(&img).map_err(ApiError::internal)?;
        let cursor_position = match (pointer, req.region) {
            (Some((x, y)), _) => Position { x, y },
            (None, Some(r)) => Position { x: r.x as i64, y: r.y as i64 },
            (None, None) => Position { x: 0, y: 0 },
        };
        return Ok(Shot {
            screenshot: image::base64(&png),
            cursor_position: Some(cursor_position),
            size_bytes: None,
        });
    };
    // Scale 1 (the default) encodes the capture itself instead of a copy.
    let scaled = (comp.format != Format::Other && comp.scale < 1.0).then(|| image::scale(&img, comp.scale));
    let target = scaled.as_ref().unwrap_or(&img);
    let encoded = match comp.format {
        Format::Jpeg => image::encode_jpeg(target, comp.quality),
        Format::Png | Format::Other => image::encode_png(target),
    }
    .map_err(ApiError::internal)?;
    let origin = req.region.map(|_| (ox, oy));
    let cursor_position = pointer.map(|p| scaled_cursor(p, origin, comp.scale));
    let size = encoded.len();
    Ok(Shot { screenshot: image::base64(&encoded), cursor_position, size_bytes: (size > 0).then_some(size) })
}

/// `cursorPosition` of the compressed routes: the scaled pointer for the full screen; for a
/// region the reference mixes the absolute origin with a scaled offset, kept as it is.
fn scaled_cursor((px, py): (i64, i64), region_origin: Option<(i64, i64)>, s: f64) -> Position {
    let f = |v: i64| (v as f64 * s).floor() as i64;
    match region_origin {
        None => Position { x: f(px), y: f(py) },
        Some((ox, oy)) => Position { x: ox + f(px - ox), y: oy + f(py - oy) },
    }
}

fn parse(raw: Option<String>, region: bool, compressed: bool) -> Result<Request, ApiError> {
    let q = Query::parse(raw.as_deref());
    let region = if region { Some(query::region(&q).map_err(bad)?) } else { None };
    let cursor = query::show_cursor(&q).map_err(bad)?;
    let compression = if compressed { Some(query::compression(&q).map_err(bad)?) } else { None };
    Ok(Request { region, cursor, compression })
}

async fn run(
    s: AppState,
    raw: Option<String>,
    region: bool,
    compressed: bool,
) -> Result<Json<Shot>, ApiError> {
    let req = parse(raw, region, compressed)?;
    s.x11.run(move |x| shoot(x, req)).await.map(Json)
}

async fn full(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Shot>, ApiError> {
    run(s, q, false, false).await
}

async fn region(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Shot>, ApiError> {
    run(s, q, true, false).await
}

async fn compressed(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Shot>, ApiError> {
    run(s, q, false, true).await
}

async fn region_compressed(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Shot>, ApiError> {
    run(s, q, true, true).await
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/screenshot", get(full))
        .route("/computeruse/screenshot/region", get(region))
        .route("/computeruse/screenshot/compressed", get(compressed))
        .route("/computeruse/screenshot/region/compressed", get(region_compressed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_cursor_positions() {
        assert_eq!(scaled_cursor((301, 201), None, 0.5), Position { x: 150, y: 100 });
        assert_eq!(scaled_cursor((301, 201), Some((100, 100)), 0.5), Position { x: 200, y: 150 });
        assert_eq!(scaled_cursor((50, 50), Some((100, 100)), 0.5), Position { x: 75, y: 75 });
        assert_eq!(scaled_cursor((7, 9), None, 1.0), Position { x: 7, y: 9 });
    }

    #[test]
    fn region_params_come_before_show_cursor_and_compression() {
        let e = parse(Some("showCursor=bad&quality=0".into()), true, true).unwrap_err();
        assert_eq!(e.message, "bad request: missing required query parameter: x");
        let e =
            parse(Some("x=0&y=0&width=1&height=1&showCursor=bad&quality=0".into()), true, true).unwrap_err();
        assert_eq!(e.message, "bad request: invalid query parameter showCursor: must be a boolean");
        let e = parse(Some("showCursor=1&quality=0&scale=5".into()), false, true).unwrap_err();
        assert_eq!(e.message, "bad request: invalid query parameter quality: must be between 1 and 100");
        // Compression parameters are ignored by the uncompressed routes.
        assert!(parse(Some("quality=0".into()), false, false).is_ok());
    }
}
