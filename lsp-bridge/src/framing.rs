//! `Content-Length` framing of the server's output, with bounded memory.
//!
//! A frame is a block of `Name: value` header lines ended by an empty line, then exactly
//! `Content-Length` bytes of JSON. Header names are matched case-insensitively and every header
//! other than `Content-Length` (in practice `Content-Type`) is ignored. Anything else — a line
//! without a colon, a length that is not a number, a header block that never ends — is a
//! protocol failure: the stream can no longer be trusted to be in sync, so the caller ends the
//! transport.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The most header bytes one frame may carry. Real servers send one or two short lines; the
/// bound keeps a server that writes garbage without newlines from growing a buffer forever.
pub(crate) const MAX_HEADER_BYTES: usize = 8 * 1024;

/// How much of an oversized body is kept to look for its `"id"`: servers write the id before
/// the (large) result, so the first few KiB are enough when it is there at all.
pub(crate) const ID_SCAN_BYTES: usize = 4 * 1024;

/// One frame read off the wire.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A body within the size limit.
    Body(Vec<u8>),
    /// A body over the size limit: it was read and thrown away; `prefix` is its beginning.
    TooLarge { size: usize, prefix: Vec<u8> },
}

/// Why no frame could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream ended (between frames or inside one): the server is gone.
    Eof,
    /// The bytes on the wire are not LSP framing.
    Protocol(String),
    /// Reading failed.
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof { ReadError::Eof } else { ReadError::Io(e) }
    }
}

/// Reads the next frame. A body longer than `max_body` is discarded in bounded chunks instead of
/// being buffered.
pub(crate) async fn read_frame<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max_body: usize,
) -> Result<Frame, ReadError> {
    let size = read_head(r).await?;
    if size <= max_body {
        let mut body = vec![0; size];
        r.read_exact(&mut body).await?;
        return Ok(Frame::Body(body));
    }
    let mut prefix = vec![0; size.min(ID_SCAN_BYTES)];
    r.read_exact(&mut prefix).await?;
    let rest = (size - prefix.len()) as u64;
    // `copy_buf` moves the reader's own buffer into the sink, so discarding needs no allocation.
    let skipped = tokio::io::copy_buf(&mut (&mut *r).take(rest), &mut tokio::io::sink()).await?;
    if skipped < rest {
        return Err(ReadError::Eof);
    }
    Ok(Frame::TooLarge { size, prefix })
}

/// Reads one header block and returns its `Content-Length`.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<usize, ReadError> {
    let mut head = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(ReadError::Eof);
        }
        let mut used = 0;
        let mut complete = false;
        for &b in buf {
            used += 1;
            // Stray line ends between frames are skipped rather than treated as an empty block.
            if head.is_empty() && (b == b'\r' || b == b'\n') {
                continue;
            }
            head.push(b);
            if head.ends_with(b"\n\r\n") || head.ends_with(b"\n\n") {
                complete = true;
                break;
            }
            if head.len() > MAX_HEADER_BYTES {
                return Err(ReadError::Protocol(format!(
                    "header block longer than {MAX_HEADER_BYTES} bytes"
                )));
            }
        }
        r.consume(used);
        if complete {
            return parse_head(&head).map_err(ReadError::Protocol);
        }
    }
}

/// Finds `Content-Length` in a complete header block.
pub(crate) fn parse_head(head: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(head).map_err(|_| "header block is not UTF-8".to_owned())?;
    let mut length = None;
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line {:?}", clip(line)));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n: usize =
                value.trim().parse().map_err(|_| format!("malformed Content-Length {:?}", clip(value)))?;
            if length.is_some_and(|m| m != n) {
                return Err("conflicting Content-Length headers".to_owned());
            }
            length = Some(n);
        }
    }
    length.ok_or_else(|| "header block without Content-Length".to_owned())
}

/// Keeps log lines short when a server writes garbage.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// What the beginning of a discarded body says about it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// A request or notification from the server (its `"method"` comes before any result).
    NotResponse,
    /// A response, with its numeric id when the id came before the result.
    Response(Option<i64>),
}

/// Classifies a truncated JSON-RPC body by looking for its top-level keys.
///
/// This is a heuristic on purpose: the body was too large to parse. Keys are only trusted when
/// they come before `"result"`/`"error"`, because everything after those may be nested data
/// (a completion item can well have an `"id"` of its own).
pub(crate) fn scan_prefix(prefix: &[u8]) -> Scanned {
    let outcome = [find_key(prefix, b"result"), find_key(prefix, b"error")].into_iter().flatten().min();
    let before_outcome = |at: Option<usize>| at.filter(|&i| outcome.is_none_or(|o| i < o));
    if before_outcome(find_key(prefix, b"method")).is_some() {
        return Scanned::NotResponse;
    }
    let id = before_outcome(find_key(prefix, b"id")).and_then(|at| parse_int(&prefix[at..]));
    Scanned::Response(id)
}

/// The offset just past `"key"` and its colon, for the first occurrence used as a key.
fn find_key(hay: &[u8], key: &[u8]) -> Option<usize> {
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key);
    quoted.push(b'"');
    let mut from = 0;
    while let Some(pos) = hay.get(from..)?.windows(quoted.len()).position(|w| w == quoted.as_slice()) {
        let after = from + pos + quoted.len();
        let colon = after + hay[after..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        if hay.get(colon) == Some(&b':') {
            return Some(colon + 1);
        }
        from = after;
    }
    None
}

/// Parses an optionally negative integer after optional whitespace; `None` for anything else
/// (a string id, or digits cut off by the end of the prefix).
fn parse_int(s: &[u8]) -> Option<i64> {
    let s = &s[s.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let sign = usize::from(s.first() == Some(&b'-'));
    let digits = s[sign..].iter().take_while(|b| b.is_ascii_digit()).count();
    let end = sign + digits;
    if digits == 0 || end == s.len() {
        return None;
    }
    std::str::from_utf8(&s[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], max: usize) -> Vec<Result<Frame, ReadError>> {
        let mut r = tokio::io::BufReader::with_capacity(16, input);
        let mut out = Vec::new();
        loop {
            let f = read_frame(&mut r, max).await;
            let stop = f.is_err();
            out.push(f);
            if stop {
                return out;
            }
        }
    }

    fn body(f: &Result<Frame, ReadError>) -> &[u8] {
        match f {
            Ok(Frame::Body(b)) => b,
            other => panic!("expected a body, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn frames_with_any_header_case_and_content_type() {
        let wire = b"Content-Length: 2\r\n\r\n{}\r\ncontent-length:3\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n[1]CONTENT-LENGTH: 1\n\n7";
        let frames = read_all(wire, 100).await;
        assert_eq!(frames.len(), 4);
        assert_eq!(body(&frames[0]), b"{}");
        assert_eq!(body(&frames[1]), b"[1]");
        assert_eq!(body(&frames[2]), b"7");
        assert!(matches!(frames[3], Err(ReadError::Eof)));
    }

    #[tokio::test]
    async fn malformed_heads_are_protocol_errors() {
        for wire in [
            &b"Content-Length: ten\r\n\r\n{}"[..],
            b"Content-Type: x\r\n\r\n{}",
            b"hello world\r\n\r\n",
            b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            b"Content-Length: 99999999999999999999999999\r\n\r\n",
        ] {
            let frames = read_all(wire, 100).await;
            assert!(
                matches!(frames[0], Err(ReadError::Protocol(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(wire),
                frames[0]
            );
        }
        let endless = vec![b'x'; MAX_HEADER_BYTES * 4];
        assert!(matches!(read_all(&endless, 100).await[0], Err(ReadError::Protocol(_))));
    }

    #[tokio::test]
    async fn truncated_frames_are_eof() {
        assert!(matches!(read_all(b"Content-Length: 5\r\n\r\n{}", 100).await[0], Err(ReadError::Eof)));
        assert!(matches!(read_all(b"Content-Len", 100).await[0], Err(ReadError::Eof)));
        assert!(matches!(read_all(b"Content-Length: 5000\r\n\r\n{}", 100).await[0], Err(ReadError::Eof)));
    }

    #[tokio::test]
    async fn oversized_bodies_are_skipped_and_the_stream_stays_in_sync() {
        let big = format!(r#"{{"jsonrpc":"2.0","id":12,"result":"{}"}}"#, "a".repeat(20_000));
        let wire = format!("Content-Length: {}\r\n\r\n{big}Content-Length: 2\r\n\r\n{{}}", big.len());
        let frames = read_all(wire.as_bytes(), 1000).await;
        match &frames[0] {
            Ok(Frame::TooLarge { size, prefix }) => {
                assert_eq!(*size, big.len());
                assert_eq!(prefix.len(), ID_SCAN_BYTES);
                assert_eq!(scan_prefix(prefix), Scanned::Response(Some(12)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(body(&frames[1]), b"{}");
    }

    #[test]
    fn prefix_scan_trusts_only_keys_before_the_result() {
        assert_eq!(
            scan_prefix(br#"{"jsonrpc":"2.0","id" : -3,"result":[{"id":9}]"#),
            Scanned::Response(Some(-3))
        );
        assert_eq!(scan_prefix(br#"{"jsonrpc":"2.0","result":[{"id":9}],"id":4}"#), Scanned::Response(None));
        assert_eq!(scan_prefix(br#"{"jsonrpc":"2.0","error":{"code":1},"id":4}"#), Scanned::Response(None));
        assert_eq!(scan_prefix(br#"{"id":"abc","result":1}"#), Scanned::Response(None));
        assert_eq!(scan_prefix(br#"{"id":12"#), Scanned::Response(None), "digits cut by the prefix end");
        assert_eq!(
            scan_prefix(br#"{"method":"textDocument/publishDiagnostics","params":{"#),
            Scanned::NotResponse
        );
        assert_eq!(scan_prefix(br#"{"id":1,"method":"workspace/configuration"}"#), Scanned::NotResponse);
        assert_eq!(scan_prefix(br#"{"result":{"method":"x"},"id":1}"#), Scanned::Response(None));
        assert_eq!(scan_prefix(br#"{"x":"\"id\": 5","id":6,"result":1}"#), Scanned::Response(Some(6)));
        assert_eq!(scan_prefix(b""), Scanned::Response(None));
    }
}
