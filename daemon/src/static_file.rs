//! Serving one file with static-file semantics, as Go's `http.ServeContent` does: `Range`
//! (single and multiple ranges), the conditional headers, `HEAD`, `Last-Modified`. Used by
//! `GET /files/download`, the recording downloads and the recording dashboard's videos.
//!
//! Files are read on a blocking thread in large chunks and handed to the response body through
//! a small pool of reusable buffers: the pool is the backpressure (the reader waits until hyper
//! has written a buffer out and dropped it), so a transfer of any size holds at most [`DEPTH`] ×
//! [`CHUNK`] bytes, and reusing buffers avoids faulting fresh pages in for every chunk.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver as PoolReceiver, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tokio::sync::mpsc;

/// Bytes per read and per body chunk. Large chunks keep syscalls and per-chunk overhead low; see
/// the measurements in the commit that introduced this module.
pub const CHUNK: usize = 1024 * 1024;
/// Buffers in flight per transfer (being filled, queued, or being written by hyper).
pub const DEPTH: usize = 4;

// ------------------------------------------------------------------------- buffer pipeline

/// What a response body is fed with: byte chunks, or an error that aborts the connection.
type Chunk = Result<Bytes, io::Error>;

/// A pooled buffer on its way through the body; dropping it (hyper wrote it) returns it.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    home: SyncSender<Vec<u8>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // The pool is gone once the reader finished; the buffer is then simply freed.
        let _ = self.home.try_send(std::mem::take(&mut self.buf));
    }
}

/// The client went away (the body was dropped); the reader stops.
#[derive(Debug, PartialEq, Eq)]
pub struct Gone;

/// The reader side of a response body, used on a blocking thread.
pub struct Sink {
    tx: mpsc::Sender<Chunk>,
    pool_tx: SyncSender<Vec<u8>>,
    pool_rx: PoolReceiver<Vec<u8>>,
    allocated: usize,
    chunk: usize,
}

/// A body fed by a [`Sink`], plus that sink.
pub fn channel_body(chunk: usize) -> (Body, Sink) {
    // Room for every pooled buffer plus the small header chunks between them.
    let (tx, mut rx) = mpsc::channel::<Chunk>(DEPTH + 4);
    let (pool_tx, pool_rx) = sync_channel(DEPTH);
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    (body, Sink { tx, pool_tx, pool_rx, allocated: 0, chunk })
}

impl Sink {
    pub fn send(&self, bytes: impl Into<Bytes>) -> Result<(), Gone> {
        self.tx.blocking_send(Ok(bytes.into())).map_err(|_| Gone)
    }

    /// Aborts the response: hyper closes the connection without finishing the body.
    pub fn abort(&self, err: io::Error) {
        let _ = self.tx.blocking_send(Err(err));
    }

    fn buffer(&mut self) -> Vec<u8> {
        match self.pool_rx.try_recv() {
            Ok(buf) => buf,
            Err(TryRecvError::Empty) if self.allocated < DEPTH => {
                self.allocated += 1;
                vec![0; self.chunk]
            }
            // Every buffer is in flight: wait until hyper has written one. Cannot disconnect,
            // as this sink holds a sender itself.
            Err(_) => self.pool_rx.recv().expect("pool sender held by the sink"),
        }
    }

    /// Reads with `read` into a pooled buffer of at most `max` bytes and sends what was read.
    /// Returns the number of bytes read (0 = EOF, nothing sent).
    pub fn pump(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> Result<io::Result<usize>, Gone> {
        let mut buf = self.buffer();
        let want = max.min(buf.len());
        let n = match read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) => {
                let _ = self.pool_tx.try_send(buf);
                return Ok(Err(e));
            }
        };
        if n == 0 {
            let _ = self.pool_tx.try_send(buf);
            return Ok(Ok(0));
        }
        self.send(Bytes::from_owner(Pooled { buf, len: n, home: self.pool_tx.clone() }))?;
        Ok(Ok(n))
    }

    /// Copies `file` from its current position until EOF.
    pub fn copy_to_eof(&mut self, file: &mut File) -> Result<io::Result<u64>, Gone> {
        let mut total = 0u64;
        loop {
            match self.pump(usize::MAX, |b| retry(|| file.read(b)))? {
                Ok(0) => return Ok(Ok(total)),
                Ok(n) => total += n as u64,
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    /// Copies exactly `len` bytes at `offset`; a file that ends early is an error.
    pub fn copy_range(&mut self, file: &File, offset: u64, len: u64) -> Result<io::Result<()>, Gone> {
        let mut done = 0u64;
        while done < len {
            let max = usize::try_from(len - done).unwrap_or(usize::MAX);
            match self.pump(max, |b| retry(|| file.read_at(b, offset + done)))? {
                Ok(0) => {
                    return Ok(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being sent",
                    )));
                }
                Ok(n) => done += n as u64,
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(()))
    }
}

pub fn retry(mut f: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Tells the kernel the file is read front to back, for deeper read-ahead.
pub fn advise_sequential(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a descriptor we own; failure only loses a hint.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }
}

// ------------------------------------------------------------------------------ ranges

/// One satisfiable byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.start, self.start + self.len - 1)
    }
}

/// Why a `Range` header cannot be served (416).
#[derive(Debug, PartialEq, Eq)]
pub enum RangeError {
    Invalid,
    NoOverlap,
}

impl RangeError {
    fn text(&self) -> &'static str {
        match self {
            RangeError::Invalid => "invalid range",
            RangeError::NoOverlap => "invalid range: failed to overlap",
        }
    }
}

/// Parses a `Range` header against a file of `size` bytes, as Go's `http.ServeContent` does:
/// ranges starting past the end are skipped (only all of them skipped is an error), ends are
/// clamped, a suffix longer than the file means the whole file. Malformed headers are errors.
pub fn parse_ranges(value: &str, size: u64) -> Result<Vec<ByteRange>, RangeError> {
    let specs = value.strip_prefix("bytes=").ok_or(RangeError::Invalid)?;
    let mut ranges = Vec::new();
    let mut no_overlap = false;
    for spec in specs.split(',') {
        let spec = spec.trim_matches([' ', '\t']);
        if spec.is_empty() {
            continue;
        }
        let (start, end) = spec.split_once('-').ok_or(RangeError::Invalid)?;
        let (start, end) = (start.trim_matches([' ', '\t']), end.trim_matches([' ', '\t']));
        if start.is_empty() {
            // Suffix form "-N": the last N bytes. A zero-length suffix selects nothing.
            let n = parse_u64(end)?;
            if n == 0 || size == 0 {
                no_overlap = true;
                continue;
            }
            let n = n.min(size);
            ranges.push(ByteRange { start: size - n, len: n });
            continue;
        }
        let first = parse_u64(start)?;
        if first >= size {
            no_overlap = true;
            continue;
        }
        let last = if end.is_empty() {
            size - 1
        } else {
            let last = parse_u64(end)?;
            if last < first {
                return Err(RangeError::Invalid);
            }
            last.min(size - 1)
        };
        ranges.push(ByteRange { start: first, len: last - first + 1 });
    }
    if ranges.is_empty() && no_overlap {
        return Err(RangeError::NoOverlap);
    }
    Ok(ranges)
}

fn parse_u64(s: &str) -> Result<u64, RangeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Invalid);
    }
    s.parse().map_err(|_| RangeError::Invalid)
}

// ------------------------------------------------------------------------ conditionals

/// Outcome of the conditional headers, in the order RFC 9110 §13.2.2 (and Go) evaluate them.
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Serve; `use_range` is false when `If-Range` did not match.
    Proceed {
        use_range: bool,
    },
    NotModified,
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since` and
/// `If-Range` for a file with modification time `mtime` (`None` when unknown or the epoch). No
/// ETag is generated, so entity-tag conditions only ever match `*`.
pub fn preconditions(headers: &HeaderMap, mtime: Option<SystemTime>) -> Precondition {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let date = |name| text(name).and_then(|v| httpdate::parse_http_date(v).ok());
    let secs = mtime.map(truncate_to_second);

    let if_match = match text(header::IF_MATCH) {
        Some(v) if !v.is_empty() => Some(lists_star(v)),
        _ => None,
    };
    let unmodified = if_match.or_else(|| match (secs, date(header::IF_UNMODIFIED_SINCE)) {
        (Some(m), Some(t)) => Some(m <= t),
        _ => None,
    });
    if unmodified == Some(false) {
        return Precondition::Failed;
    }
    match text(header::IF_NONE_MATCH) {
        Some(v) if !v.is_empty() => {
            if lists_star(v) {
                return Precondition::NotModified;
            }
        }
        _ => {
            if let (Some(m), Some(t)) = (secs, date(header::IF_MODIFIED_SINCE))
                && m <= t
            {
                return Precondition::NotModified;
            }
        }
    }
    let use_range = match text(header::IF_RANGE) {
        None | Some("") => true,
        // An entity tag never matches: there are none.
        Some(v) if v.starts_with('"') || v.starts_with("W/") => false,
        Some(v) => match (secs, httpdate::parse_http_date(v).ok()) {
            (Some(m), Some(t)) => m == t,
            _ => false,
        },
    };
    Precondition::Proceed { use_range }
}

fn lists_star(list: &str) -> bool {
    list.split(',').any(|t| t.trim() == "*")
}

fn truncate_to_second(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Modification time for `Last-Modified` and conditionals; the epoch counts as unknown.
pub fn mtime_of(meta: &std::fs::Metadata) -> Option<SystemTime> {
    meta.modified().ok().filter(|t| t.duration_since(UNIX_EPOCH).is_ok_and(|d| !d.is_zero()))
}

// ---------------------------------------------------------------------------- the answer

/// The answer serving `file` (whose metadata is `meta`) as `content_type`, with `extra` headers,
/// for `method` and the request's conditional and `Range` headers.
pub fn respond(
    file: File,
    meta: &std::fs::Metadata,
    content_type: &'static str,
    extra: HeaderMap,
    method: &Method,
    req: &HeaderMap,
) -> Response {
    let size = meta.len();
    let mtime = mtime_of(meta);
    let mut res = Response::new(Body::empty());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.extend(extra);
    if let Some(t) = mtime {
        h.insert(header::LAST_MODIFIED, HeaderValue::from_str(&httpdate::fmt_http_date(t)).expect("ascii"));
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    let use_range = match preconditions(req, mtime) {
        Precondition::Proceed { use_range } => use_range,
        Precondition::NotModified => {
            res.headers_mut().remove(header::CONTENT_TYPE);
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
        Precondition::Failed => {
            *res.status_mut() = StatusCode::PRECONDITION_FAILED;
            return res;
        }
    };
    let range_header =
        req.get(header::RANGE).filter(|_| use_range).map(|v| String::from_utf8_lossy(v.as_bytes()));
    let mut ranges = match range_header {
        Some(v) if !v.is_empty() => match parse_ranges(&v, size) {
            Ok(r) => r,
            Err(e) => {
                let h = res.headers_mut();
                h.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                );
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
                *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                *res.body_mut() = Body::from(format!("{}\n", e.text()));
                return res;
            }
        },
        _ => Vec::new(),
    };
    // Ranges adding up to more than the file (overlaps, repeats) are answered with the whole file
    // rather than amplified, as Go does.
    if ranges.iter().map(|r| r.len).sum::<u64>() > size {
        ranges.clear();
    }
    let head = *method == Method::HEAD;

    let (length, plan) = match ranges.len() {
        0 => (size, Plan::Whole(size)),
        1 => {
            let r = ranges[0];
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&r.content_range(size)).expect("ascii"));
            (r.len, Plan::Range(r))
        }
        _ => {
            let boundary = random_boundary();
            let parts = byterange_parts(&ranges, size, &boundary, content_type);
            let length = parts.iter().map(|(head, r)| head.len() as u64 + r.len).sum::<u64>()
                + closing_delimiter(&boundary).len() as u64;
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")).expect("ascii"),
            );
            (length, Plan::Multi(parts, closing_delimiter(&boundary)))
        }
    };
    res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if head || length == 0 {
        return res;
    }
    let (body, sink) = channel_body(CHUNK);
    *res.body_mut() = body;
    tokio::task::spawn_blocking(move || send_plan(sink, &file, plan));
    res
}

/// What the single-file body carries.
enum Plan {
    Whole(u64),
    Range(ByteRange),
    /// Part heads with their ranges, then the closing delimiter.
    Multi(Vec<(String, ByteRange)>, String),
}

fn send_plan(mut sink: Sink, file: &File, plan: Plan) {
    let result = match plan {
        Plan::Whole(size) => {
            advise_sequential(file);
            sink.copy_range(file, 0, size)
        }
        Plan::Range(r) => sink.copy_range(file, r.start, r.len),
        Plan::Multi(parts, close) => (|| {
            for (head, r) in parts {
                sink.send(head)?;
                if let Err(e) = sink.copy_range(file, r.start, r.len)? {
                    return Ok(Err(e));
                }
            }
            sink.send(close).map(Ok)
        })(),
    };
    // Headers are out with a Content-Length; a failed read can only cut the connection, so the
    // client sees a short body instead of a silently wrong one.
    if let Ok(Err(e)) = result {
        tracing::warn!(error = %e, "file download failed while streaming");
        sink.abort(e);
    }
}

/// `multipart/byteranges` part heads, as Go's multipart writer frames them.
fn byterange_parts(
    ranges: &[ByteRange],
    size: u64,
    boundary: &str,
    content_type: &str,
) -> Vec<(String, ByteRange)> {
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let lead = if i == 0 { "" } else { "\r\n" };
            let head = format!(
                "{lead}--{boundary}\r\nContent-Range: {}\r\nContent-Type: {content_type}\r\n\r\n",
                r.content_range(size)
            );
            (head, *r)
        })
        .collect()
}

fn closing_delimiter(boundary: &str) -> String {
    format!("\r\n--{boundary}--\r\n")
}

/// 30 random hex digits (std's per-process random hash keys; no extra dependency).
fn random_boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(i);
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(30);
    out
}

pub fn clear_nonblock(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::Write;

    // ------------------------------------------------------------------------- ranges

    fn r(start: u64, len: u64) -> ByteRange {
        ByteRange { start, len }
    }

    #[test]
    fn range_parsing() {
        assert_eq!(parse_ranges("bytes=0-9", 100), Ok(vec![r(0, 10)]));
        assert_eq!(parse_ranges("bytes=90-", 100), Ok(vec![r(90, 10)]));
        assert_eq!(parse_ranges("bytes=-10", 100), Ok(vec![r(90, 10)]));
        assert_eq!(parse_ranges("bytes=-1000", 100), Ok(vec![r(0, 100)]));
        assert_eq!(parse_ranges("bytes=95-200", 100), Ok(vec![r(95, 5)]));
        assert_eq!(parse_ranges("bytes= 0-1 , 5-6,", 100), Ok(vec![r(0, 2), r(5, 2)]));
        // Ranges past the end are skipped unless nothing remains.
        assert_eq!(parse_ranges("bytes=0-1,200-300", 100), Ok(vec![r(0, 2)]));
        assert_eq!(parse_ranges("bytes=100-", 100), Err(RangeError::NoOverlap));
        assert_eq!(parse_ranges("bytes=0-", 0), Err(RangeError::NoOverlap));
        assert_eq!(parse_ranges("bytes=-0", 100), Err(RangeError::NoOverlap));
        assert_eq!(parse_ranges("bytes=-5", 0), Err(RangeError::NoOverlap));
        for bad in ["items=0-1", "bytes=5-1", "bytes=a-b", "bytes=1", "bytes=-", "bytes=--1", "bytes=+1-2"] {
            assert_eq!(parse_ranges(bad, 100), Err(RangeError::Invalid), "{bad}");
        }
        assert_eq!(r(90, 10).content_range(100), "bytes 90-99/100");
    }

    fn hdrs(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn conditionals() {
        let m = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(500);
        let at = |s: u64| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s));
        let go = Precondition::Proceed { use_range: true };
        assert_eq!(preconditions(&HeaderMap::new(), Some(m)), go);
        let ims = |t: &str| preconditions(&hdrs(&[(header::IF_MODIFIED_SINCE, t)]), Some(m));
        assert_eq!(ims(&at(1_700_000_000)), Precondition::NotModified);
        assert_eq!(ims(&at(1_699_999_999)), go);
        assert_eq!(ims("garbage"), go);
        let ius = |t: &str| preconditions(&hdrs(&[(header::IF_UNMODIFIED_SINCE, t)]), Some(m));
        assert_eq!(ius(&at(1_700_000_000)), go);
        assert_eq!(ius(&at(1_699_999_999)), Precondition::Failed);
        assert_eq!(preconditions(&hdrs(&[(header::IF_MATCH, "\"x\"")]), Some(m)), Precondition::Failed);
        assert_eq!(preconditions(&hdrs(&[(header::IF_MATCH, "*")]), Some(m)), go);
        assert_eq!(preconditions(&hdrs(&[(header::IF_NONE_MATCH, "*")]), Some(m)), Precondition::NotModified);
        // A non-matching If-None-Match overrides If-Modified-Since.
        let both = hdrs(&[(header::IF_NONE_MATCH, "\"x\""), (header::IF_MODIFIED_SINCE, &at(1_800_000_000))]);
        assert_eq!(preconditions(&both, Some(m)), go);
        let ir = |t: &str| preconditions(&hdrs(&[(header::IF_RANGE, t)]), Some(m));
        assert_eq!(ir(&at(1_700_000_000)), go);
        assert_eq!(ir(&at(1_700_000_001)), Precondition::Proceed { use_range: false });
        assert_eq!(ir("\"etag\""), Precondition::Proceed { use_range: false });
        // Unknown modification time: date conditions do not apply.
        assert_eq!(preconditions(&hdrs(&[(header::IF_MODIFIED_SINCE, &at(1))]), None), go);
    }

    #[test]
    fn single_range_copy_reports_a_shrunk_file() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        rt.block_on(async move {
            let (body, sink) = channel_body(4);
            // Promise 20 bytes of a 10-byte file: the body must end in an error, not cleanly.
            tokio::task::spawn_blocking(move || send_plan(sink, &f, Plan::Whole(20)));
            let mut stream = body.into_data_stream();
            let mut got = Vec::new();
            let mut failed = false;
            while let Some(c) = stream.next().await {
                match c {
                    Ok(b) => got.extend_from_slice(&b),
                    Err(_) => failed = true,
                }
            }
            assert_eq!(got, b"0123456789");
            assert!(failed);
        });
    }

    #[test]
    fn buffers_are_reused_and_bounded() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), vec![7u8; 64 * 1024]).unwrap();
        let path = dir.path().join("f");
        rt.block_on(async move {
            let (body, mut sink) = channel_body(1024);
            let t = tokio::task::spawn_blocking(move || {
                let mut f = File::open(path).unwrap();
                let n = sink.copy_to_eof(&mut f).unwrap().unwrap();
                (n, sink.allocated)
            });
            let mut stream = body.into_data_stream();
            let mut total = 0;
            while let Some(c) = stream.next().await {
                total += c.unwrap().len();
            }
            let (n, allocated) = t.await.unwrap();
            assert_eq!((n, total), (64 * 1024, 64 * 1024));
            assert!(allocated <= DEPTH, "{allocated}");
        });
    }

    #[test]
    fn byteranges_framing() {
        let parts = byterange_parts(&[r(0, 2), r(5, 3)], 10, "BND", "application/octet-stream");
        assert_eq!(
            parts[0].0,
            "--BND\r\nContent-Range: bytes 0-1/10\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        assert!(parts[1].0.starts_with("\r\n--BND\r\nContent-Range: bytes 5-7/10\r\n"));
        assert_eq!(closing_delimiter("BND"), "\r\n--BND--\r\n");
        let b = random_boundary();
        assert_eq!(b.len(), 30);
        assert_ne!(b, random_boundary());
    }
}
