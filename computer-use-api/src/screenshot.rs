//! Screenshot bodies (`/computeruse/screenshot*`). The query parameters are described on the
//! routes; the agent reads them leniently, as the reference does (the first occurrence of a
//! name counts, `show_cursor` is accepted beside `showCursor`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A point in root-window coordinates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Position {
    pub x: i64,
    pub y: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScreenshotResponse {
    /// The image, base64 (PNG, or JPEG when the compressed routes were asked for it).
    pub screenshot: String,
    /// The pointer: always on the plain routes, only with `showCursor` on the compressed ones
    /// (scaled with the image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_position: Option<Position>,
    /// The encoded image's size; compressed routes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<usize>,
}
