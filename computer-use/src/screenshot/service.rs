//! The screenshot pipeline: under the X connection lock, whether the screen changed since the
//! client's frame (`etag`) and else the capture; then draw the pointer, scale and encode outside
//! it, all on the caller's (blocking) thread.

use super::etag::{self, Known, Screen, Tag};
use super::image;
use super::query::{Compression, Format, Region};
use crate::x11::capture::{Rect, RgbImage};
use crate::x11::error::XError;
use crate::x11::service::X11;

/// What was asked for: the area (None = screen 0), overlay, and compression (None = plain PNG).
#[derive(Debug, Clone, Copy)]
pub struct ShotRequest {
    pub region: Option<Region>,
    pub cursor: bool,
    pub compression: Option<Compression>,
}

/// An encoded screenshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    /// Base64 of the encoded image.
    pub image: String,
    pub cursor: Option<(i64, i64)>,
    /// The encoded size; compressed shots only.
    pub size: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShotError {
    X(XError),
    /// The image could not be encoded.
    Encode(String),
}

impl From<XError> for ShotError {
    fn from(e: XError) -> ShotError {
        ShotError::X(e)
    }
}

/// The captured pixels, the area they cover, and the pointer when it was asked for.
type Grabbed = (RgbImage, Rect, Option<(i64, i64)>);

/// What a grab found: the screen unchanged since a frame the client has, or a new frame.
enum Grab {
    Same(Tag),
    New(Grabbed, Tag),
}

/// Under one hold of the connection: the screen's state (one round trip), the answer to the
/// client's `If-None-Match` when XDamage can give it without a capture, else the capture (and
/// without XDamage, the comparison of its hash; never an encoding for an unchanged screen).
fn grab(x11: &X11, req: &ShotRequest, known: &Known) -> Result<Grab, XError> {
    let area = req.region.map(|r| Rect { x: r.x, y: r.y, width: r.width, height: r.height });
    x11.with(|c| {
        let state = c.screen_state(req.cursor)?;
        // Screen 0's rectangle is part of the tag: a monitor layout change moves the full
        // screenshot's area without damaging a pixel.
        let area = match area {
            Some(a) => a,
            None => c.screens()?.into_iter().next().ok_or_else(|| XError::new("no screen"))?,
        };
        let params = (req, area);
        let damage_tag =
            state.generation.map(|g| Tag::new(c.instance, Screen::Generation(g), &params, state.pointer));
        if let Some(tag) = damage_tag
            && known.matches(&tag)
        {
            return Ok(Grab::Same(tag));
        }
        let img = c.capture(area)?;
        let tag = match damage_tag {
            Some(t) => t,
            None => {
                let t =
                    Tag::new(c.instance, Screen::Frame(etag::frame_hash(&img.data)), &params, state.pointer);
                if known.matches(&t) {
                    return Ok(Grab::Same(t));
                }
                t
            }
        };
        let pointer = state.pointer.map(|(x, y)| (x as i64, y as i64));
        Ok(Grab::New((img, area, pointer), tag))
    })
}

/// The answer to one request: a frame and its tag, or only the tag of the unchanged frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Frame(Shot, Tag),
    Unchanged(Tag),
}

/// The whole pipeline for one request: a 304 when the client's tag still names the screen,
/// else capture, overlay, scale and encode.
pub fn shoot(x11: &X11, req: ShotRequest, known: &Known) -> Result<Answer, ShotError> {
    let (grabbed, tag) = match grab(x11, &req, known)? {
        Grab::Same(tag) => return Ok(Answer::Unchanged(tag)),
        Grab::New(g, tag) => (g, tag),
    };
    Ok(Answer::Frame(encode(req, grabbed)?, tag))
}

/// Pointer overlay, scaling and encoding of a capture; pure.
fn encode(req: ShotRequest, (mut img, area, pointer): Grabbed) -> Result<Shot, ShotError> {
    let (ox, oy) = (area.x as i64, area.y as i64);
    if let Some((px, py)) = pointer {
        image::draw_cursor(&mut img, px - ox, py - oy);
    }
    let Some(comp) = req.compression else {
        let png = image::encode_png(&img).map_err(ShotError::Encode)?;
        let cursor = match (pointer, req.region) {
            (Some(p), _) => p,
            (None, Some(r)) => (r.x as i64, r.y as i64),
            (None, None) => (0, 0),
        };
        return Ok(Shot { image: image::base64(&png), cursor: Some(cursor), size: None });
    };
    // Scale 1 (the default) encodes the capture itself instead of a copy.
    let scaled = (comp.format != Format::Other && comp.scale < 1.0).then(|| image::scale(&img, comp.scale));
    let target = scaled.as_ref().unwrap_or(&img);
    let encoded = match comp.format {
        Format::Jpeg => image::encode_jpeg(target, comp.quality),
        Format::Png | Format::Other => image::encode_png(target),
    }
    .map_err(ShotError::Encode)?;
    let origin = req.region.map(|_| (ox, oy));
    let cursor = pointer.map(|p| scaled_cursor(p, origin, comp.scale));
    let size = encoded.len();
    Ok(Shot { image: image::base64(&encoded), cursor, size: (size > 0).then_some(size) })
}

/// `cursorPosition` of the compressed routes: the scaled pointer for the full screen; for a
/// region the reference mixes the absolute origin with a scaled offset, kept as it is.
fn scaled_cursor((px, py): (i64, i64), region_origin: Option<(i64, i64)>, s: f64) -> (i64, i64) {
    let f = |v: i64| (v as f64 * s).floor() as i64;
    match region_origin {
        None => (f(px), f(py)),
        Some((ox, oy)) => (ox + f(px - ox), oy + f(py - oy)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_cursor_positions() {
        assert_eq!(scaled_cursor((301, 201), None, 0.5), (150, 100));
        assert_eq!(scaled_cursor((301, 201), Some((100, 100)), 0.5), (200, 150));
        assert_eq!(scaled_cursor((50, 50), Some((100, 100)), 0.5), (75, 75));
        assert_eq!(scaled_cursor((7, 9), None, 1.0), (7, 9));
    }
}
