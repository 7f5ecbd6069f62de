//! A generic Language Server Protocol client for the daemon's `/lsp/*` routes.
//!
//! This crate will spawn a language server per (language, project root), frame JSON-RPC with
//! `Content-Length` headers over the server's stdio, keep a map of pending requests keyed by id,
//! answer the server-to-client requests every server sends (`workspace/configuration`,
//! `window/workDoneProgress/create`, `client/registerCapability`) and expose typed requests for
//! completion and symbols. It knows nothing about HTTP; the daemon's `lsp` module is the thin
//! HTTP layer over it.
//!
//! What exists today is the framing codec, which every later part builds on.

use std::fmt;

/// A JSON-RPC message could not be framed or unframed.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The header block ended without a `Content-Length` header.
    MissingContentLength,
    /// A header line was not `Name: value`, or the length was not a number.
    BadHeader(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::MissingContentLength => write!(f, "missing Content-Length header"),
            FrameError::BadHeader(line) => write!(f, "malformed header line: {line:?}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Frames one JSON-RPC payload for the wire.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Splits one complete frame off the front of `buf`.
///
/// Returns `Ok(None)` while the frame is still incomplete, and otherwise the payload and the
/// number of bytes the frame used, so a reader can keep appending to one buffer.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, FrameError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| FrameError::BadHeader("<non-utf8>".into()))?;
    let mut length = None;
    for line in head.split("\r\n") {
        let (name, value) = line.split_once(':').ok_or_else(|| FrameError::BadHeader(line.into()))?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n = value.trim().parse::<usize>().map_err(|_| FrameError::BadHeader(line.into()))?;
            length = Some(n);
        }
    }
    let length = length.ok_or(FrameError::MissingContentLength)?;
    let start = end + 4;
    if buf.len() < start + length {
        return Ok(None);
    }
    Ok(Some((buf[start..start + length].to_vec(), start + length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_frames() {
        let frame = encode_frame(br#"{"jsonrpc":"2.0"}"#);
        assert_eq!(decode_frame(&frame[..frame.len() - 1]).unwrap(), None);
        let (payload, used) = decode_frame(&frame).unwrap().unwrap();
        assert_eq!(payload, br#"{"jsonrpc":"2.0"}"#);
        assert_eq!(used, frame.len());
    }

    #[test]
    fn header_errors_are_reported() {
        assert_eq!(decode_frame(b"Content-Type: x\r\n\r\n{}"), Err(FrameError::MissingContentLength));
        assert!(matches!(decode_frame(b"Content-Length: ten\r\n\r\n"), Err(FrameError::BadHeader(_))));
    }
}
