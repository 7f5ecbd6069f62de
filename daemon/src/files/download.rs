//! File downloads: `GET`/`HEAD /files/download` (one file, static-file semantics) and
//! `POST /files/bulk-download` (many files as one streamed `multipart/form-data` answer, which is
//! how the SDKs download anything).
//!
//! Both routes read files on a blocking thread in large chunks and hand them to the response body
//! through a small pool of reusable buffers: the pool is the backpressure (the reader waits until
//! hyper has written a buffer out and dropped it), so a transfer of any size holds at most
//! [`DEPTH`] × [`CHUNK`] bytes, and reusing buffers avoids faulting fresh pages in for every chunk.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver as PoolReceiver, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Bytes per read and per body chunk. Large chunks keep syscalls and per-chunk overhead low; see
/// the measurements in the commit that introduced this module.
pub const CHUNK: usize = 1024 * 1024;
/// Buffers in flight per transfer (being filled, queued, or being written by hyper).
pub const DEPTH: usize = 4;
/// Fixed boundary of bulk-download answers; clients read it from the `Content-Type`.
pub const BULK_BOUNDARY: &str = "DAYTONA-FILE-BOUNDARY";

const BULK_BODY_ERROR: &str = r#"request body must be {"paths": [ ... ]} and non-empty"#;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download)).routes(routes!(bulk_download))
}

// ------------------------------------------------------------------------ filename encodings

/// The `filename="…"` value: quotes and backslashes escaped, CR/LF/NUL dropped, then one byte
/// per character, `_` for anything outside printable Latin-1. Not UTF-8: `é` is the byte 0xE9.
pub fn latin1_filename(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '"' => out.extend_from_slice(b"\\\""),
            '\r' | '\n' | '\0' => {}
            c if (c as u32) > 0xFF => out.push(b'_'),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => out.push(b'_'),
            c => out.push(c as u32 as u8),
        }
    }
    out
}

/// The RFC 5987 value after `utf-8''`: UTF-8 bytes, attr-chars kept, the rest `%XX` upper-case.
/// Clients match bulk-download parts to their requests by the decoded value, so it must be exact.
pub fn rfc5987_filename(name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// `<disposition>; filename="<latin-1>"; filename*=utf-8''<rfc5987>` as raw header bytes.
pub fn content_disposition(disposition: &str, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(disposition.len() + name.len() * 4 + 32);
    out.extend_from_slice(disposition.as_bytes());
    out.extend_from_slice(b"; filename=\"");
    out.extend_from_slice(&latin1_filename(name));
    out.extend_from_slice(b"\"; filename*=utf-8''");
    out.extend_from_slice(rfc5987_filename(name).as_bytes());
    out
}

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
    fn pump(
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

fn retry(mut f: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Tells the kernel the file is read front to back, for deeper read-ahead.
fn advise_sequential(file: &File) {
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
fn mtime_of(meta: &std::fs::Metadata) -> Option<SystemTime> {
    meta.modified().ok().filter(|t| t.duration_since(UNIX_EPOCH).is_ok_and(|d| !d.is_zero()))
}

// --------------------------------------------------------------------- GET /files/download

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// File to download; relative paths resolve against the daemon's working directory.
    path: Option<String>,
}

/// Downloads one file with static-file semantics (ranges, conditionals, `HEAD`).
#[utoipa::path(get, path = "/files/download", tag = "files", params(DownloadQuery),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range(s)"),
        (status = 304, description = "not modified since `If-Modified-Since`"),
        (status = 400, body = crate::openapi::ErrorResponse),
        (status = 403, body = crate::openapi::ErrorResponse),
        (status = 404, body = crate::openapi::ErrorResponse),
        (status = 412, description = "`If-Unmodified-Since`/`If-Match` failed"),
        (status = 416, description = "no requested range overlaps the file")))]
async fn download(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    query: Result<Query<DownloadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let path = super::required(&query.path, "path is required")?;
    let abs = clean_absolute(&state.work_dir, path);
    let name = base_name(&abs);
    let opened = tokio::task::spawn_blocking(move || open_single(&abs))
        .await
        .map_err(|e| ApiError::internal(format!("open task failed: {e}")))??;
    Ok(single_response(opened, &name, &method, &headers))
}

/// Stats (following links) and opens a file for the single-file route.
fn open_single(path: &Path) -> Result<(File, std::fs::Metadata), ApiError> {
    let meta = std::fs::metadata(path).map_err(|e| super::fs_error(&e, path))?;
    if meta.is_dir() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, Code::InvalidFilePath, "path must be a file"));
    }
    if !meta.is_file() && !meta.file_type().is_char_device() && !meta.file_type().is_block_device() {
        // FIFOs would block the open, sockets cannot be opened.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidFilePath,
            format!("path must be a regular file: {}", path.display()),
        ));
    }
    // O_NONBLOCK: should the path be swapped for a FIFO after the stat, the open cannot hang.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| super::fs_error(&e, path))?;
    clear_nonblock(&file);
    // Size and time of what was opened, even if the path was replaced in between.
    let meta = file.metadata().map_err(|e| super::fs_error(&e, path))?;
    Ok((file, meta))
}

/// `path` made absolute against `work_dir` and cleaned lexically (`.`/`..` resolved without
/// looking at the disk), as Go's `filepath.Abs` does before the reference opens it.
pub fn clean_absolute(work_dir: &Path, path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in work_dir.join(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The last element of a cleaned absolute path; `/` for the root.
pub fn base_name(abs: &Path) -> String {
    abs.file_name().map_or_else(|| "/".to_string(), |n| n.to_string_lossy().into_owned())
}

fn single_response(
    (file, meta): (File, std::fs::Metadata),
    name: &str,
    method: &Method,
    req: &HeaderMap,
) -> Response {
    let size = meta.len();
    let mtime = mtime_of(&meta);
    let mut res = Response::new(Body::empty());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_bytes(&content_disposition("attachment", name)).expect("no control bytes"),
    );
    h.insert("content-description", HeaderValue::from_static("File Transfer"));
    h.insert("content-transfer-encoding", HeaderValue::from_static("binary"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("must-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("public"));
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
            let parts = byterange_parts(&ranges, size, &boundary);
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
fn byterange_parts(ranges: &[ByteRange], size: u64, boundary: &str) -> Vec<(String, ByteRange)> {
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let lead = if i == 0 { "" } else { "\r\n" };
            let head = format!(
                "{lead}--{boundary}\r\nContent-Range: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
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

// ---------------------------------------------------------------- POST /files/bulk-download

#[derive(Deserialize, ToSchema)]
pub struct FilesDownloadRequest {
    /// Files to download, in answer order; each path is echoed as its part's filename.
    paths: Option<Vec<String>>,
}

/// Downloads many files as one `multipart/form-data` stream, one part per requested path.
#[utoipa::path(post, path = "/files/bulk-download", tag = "files", request_body = FilesDownloadRequest,
    responses(
        (status = 200, description = "one `file` or `error` part per path, in request order",
            content_type = "multipart/form-data"),
        (status = 400, body = crate::openapi::ErrorResponse)))]
async fn bulk_download(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), crate::extract::MAX_JSON_BODY)
        .await
        .map_err(|_| ApiError::bad_request(BULK_BODY_ERROR))?;
    let paths = parse_bulk_request(&bytes)?;
    let (body, sink) = channel_body(CHUNK);
    let work_dir = state.work_dir.clone();
    tokio::task::spawn_blocking(move || stream_bulk(sink, &work_dir, &paths));
    let mut res = Response::new(body);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/form-data; boundary={BULK_BOUNDARY}")).expect("ascii"),
    );
    Ok(res)
}

/// The `paths` of a bulk-download body; anything but a non-empty list of strings is refused.
pub fn parse_bulk_request(bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    match serde_json::from_slice::<FilesDownloadRequest>(bytes) {
        Ok(FilesDownloadRequest { paths: Some(paths) }) if !paths.is_empty() => Ok(paths),
        _ => Err(ApiError::bad_request(BULK_BODY_ERROR)),
    }
}

/// Writes every part, then the closing delimiter. Stops early, *without* the closing delimiter,
/// when a file cannot be read to its end, so clients see the answer as truncated.
pub fn stream_bulk(mut sink: Sink, work_dir: &Path, paths: &[String]) {
    for (i, path) in paths.iter().enumerate() {
        let first = i == 0;
        let sent = match open_bulk(work_dir, path) {
            Ok((mut file, size)) => {
                let head = part_head(first, "file", path, guess_mime(path), Some(size));
                if sink.send(head).is_err() {
                    return;
                }
                advise_sequential(&file);
                match sink.copy_to_eof(&mut file) {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => {
                        tracing::warn!(path, error = %e, "bulk download stopped: read failed");
                        return;
                    }
                    Err(Gone) => Err(Gone),
                }
            }
            Err(err) => {
                let mut part = part_head(first, "error", path, "application/json; charset=utf-8", None);
                part.extend_from_slice(&err.to_json(path));
                sink.send(part)
            }
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = sink.send(format!("\r\n--{BULK_BOUNDARY}--\r\n"));
}

/// Delimiter and headers of one part, with headers in Go's (sorted) order.
pub fn part_head(first: bool, name: &str, path: &str, content_type: &str, length: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + path.len() * 4);
    if !first {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BULK_BOUNDARY}\r\nContent-Disposition: ").as_bytes());
    out.extend_from_slice(&content_disposition(&format!("form-data; name=\"{name}\""), path));
    out.extend_from_slice(b"\r\n");
    if let Some(n) = length {
        out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Type: {content_type}\r\n\r\n").as_bytes());
    out
}

fn guess_mime(path: &str) -> &'static str {
    mime_guess::from_path(path).first_raw().unwrap_or("application/octet-stream")
}

/// A per-file failure, sent as an `error` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartErrorBody<'a> {
    status_code: u16,
    message: &'a str,
    code: &'a str,
    source: &'static str,
    timestamp: String,
    path: &'a str,
    method: &'static str,
}

impl PartError {
    fn new(status: u16, code: &'static str, message: String) -> Self {
        PartError { status, code, message }
    }

    /// The part body: the daemon's error envelope, with the *file* path and a UTC timestamp.
    pub fn to_json(&self, path: &str) -> Vec<u8> {
        serde_json::to_vec(&PartErrorBody {
            status_code: self.status,
            message: &self.message,
            code: self.code,
            source: "DAYTONA_DAEMON",
            timestamp: crate::timefmt::format_rfc3339(jiff::Timestamp::now(), &jiff::tz::TimeZone::UTC),
            path,
            method: "POST",
        })
        .expect("error part serialises")
    }

    /// Classifies an OS error from opening or stat-ing `path`; `what` names the step for the
    /// catch-all 500 (`failed to open file` / `failed to access file`).
    pub fn from_io(err: &io::Error, path: &str, what: &str, op: &str) -> Self {
        match err.raw_os_error() {
            Some(libc::ENOENT) => Self::new(404, "FILE_NOT_FOUND", format!("file not found: {path}")),
            Some(libc::EACCES | libc::EPERM) => {
                Self::new(403, "FILE_ACCESS_DENIED", format!("permission denied: {path}"))
            }
            Some(libc::EINVAL) => Self::invalid_path(path),
            // A path with a NUL byte never reaches the OS.
            None if err.kind() == io::ErrorKind::InvalidInput => Self::invalid_path(path),
            _ => Self::new(
                500,
                "FILE_READ_FAILED",
                format!("{what}: {op} {path}: {}", crate::process::execute::os_error_text(err)),
            ),
        }
    }

    fn invalid_path(path: &str) -> Self {
        Self::new(400, "INVALID_FILE_PATH", format!("invalid file path: {path}"))
    }
}

/// Opens one requested file (following links) and takes its size from the open descriptor, so
/// size and content belong to the same inode even if the path is replaced meanwhile.
pub fn open_bulk(work_dir: &Path, path: &str) -> Result<(File, u64), PartError> {
    if path.is_empty() {
        return Err(PartError::new(400, "INVALID_FILE_PATH", "invalid file path: path is empty".into()));
    }
    let full: PathBuf = work_dir.join(path);
    // O_NONBLOCK so that a FIFO cannot hang the open; it is cleared again for what is kept.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&full)
        .map_err(|e| PartError::from_io(&e, path, "failed to open file", "open"))?;
    let meta = file.metadata().map_err(|e| PartError::from_io(&e, path, "failed to access file", "stat"))?;
    if meta.is_dir() {
        return Err(PartError::new(
            400,
            "INVALID_FILE_PATH",
            format!("invalid file path: path points to a directory: {path}"),
        ));
    }
    if meta.file_type().is_fifo() || meta.file_type().is_socket() {
        return Err(PartError::new(
            400,
            "INVALID_FILE_PATH",
            format!("invalid file path: not a regular file: {path}"),
        ));
    }
    clear_nonblock(&file);
    Ok((file, meta.size()))
}

fn clear_nonblock(file: &File) {
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

    // ---------------------------------------------------------------- encodings (§4.1)

    fn cd(name: &str) -> Vec<u8> {
        content_disposition("attachment", name)
    }

    #[test]
    fn encodings_of_every_spec_example() {
        assert_eq!(cd("hello.txt"), b"attachment; filename=\"hello.txt\"; filename*=utf-8''hello.txt");
        assert_eq!(
            cd("日本語.txt"),
            b"attachment; filename=\"___.txt\"; filename*=utf-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt"
        );
        assert_eq!(
            cd("file (1).txt"),
            b"attachment; filename=\"file (1).txt\"; filename*=utf-8''file%20%281%29.txt"
        );
        assert_eq!(cd(r#"a"b\c"#), br#"attachment; filename="a\"b\\c"; filename*=utf-8''a%22b%5Cc"#);
        assert_eq!(latin1_filename("hello\tworld.txt"), b"hello_world.txt");
        assert_eq!(rfc5987_filename("hello\tworld.txt"), "hello%09world.txt");
    }

    #[test]
    fn latin1_is_one_raw_byte_per_character() {
        assert_eq!(latin1_filename("é"), vec![0xE9]);
        assert_eq!(latin1_filename("ÿ€"), vec![0xFF, b'_']);
        assert_eq!(latin1_filename("a\r\nb\0c"), b"abc");
        assert_eq!(latin1_filename("\x7f\x01"), b"__");
        assert_eq!(rfc5987_filename("a\0b"), "a%00b");
        assert_eq!(rfc5987_filename("é"), "%C3%A9");
        assert_eq!(rfc5987_filename("!#$&+-.^_`|~azAZ09"), "!#$&+-.^_`|~azAZ09");
        assert_eq!(rfc5987_filename("/tmp/a b;c=d'e*%"), "%2Ftmp%2Fa%20b%3Bc%3Dd%27e%2A%25");
        // Raw bytes >= 0x80 are legal header bytes (obs-text).
        assert!(HeaderValue::from_bytes(&cd("café \"x\"")).is_ok());
    }

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
    fn absolute_paths_and_base_names() {
        let wd = Path::new("/work/dir");
        assert_eq!(clean_absolute(wd, "/a/b/c.txt"), Path::new("/a/b/c.txt"));
        assert_eq!(clean_absolute(wd, "x/../y.txt"), Path::new("/work/dir/y.txt"));
        assert_eq!(clean_absolute(wd, "./a/./b/"), Path::new("/work/dir/a/b"));
        assert_eq!(clean_absolute(wd, "../../../.."), Path::new("/"));
        assert_eq!(base_name(&clean_absolute(wd, "/a/b/..")), "a");
        assert_eq!(base_name(&clean_absolute(wd, "/")), "/");
        assert_eq!(base_name(&clean_absolute(wd, "日本.txt")), "日本.txt");
    }

    // --------------------------------------------------------------- bulk framing

    /// Runs the bulk writer on a blocking thread and collects the whole body.
    fn bulk(dir: &Path, paths: &[&str]) -> Vec<u8> {
        bulk_with_chunk(dir, paths, CHUNK)
    }

    fn bulk_with_chunk(dir: &Path, paths: &[&str], chunk: usize) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
        let dir = dir.to_path_buf();
        rt.block_on(async move {
            let (body, sink) = channel_body(chunk);
            tokio::task::spawn_blocking(move || stream_bulk(sink, &dir, &paths));
            let mut stream = body.into_data_stream();
            let mut out = Vec::new();
            while let Some(c) = stream.next().await {
                out.extend_from_slice(&c.unwrap());
            }
            out
        })
    }

    fn error_json(body: &[u8], after: &str) -> serde_json::Value {
        let text = String::from_utf8_lossy(body);
        let start = text.find(after).unwrap() + after.len();
        let rest = &text[start..];
        let end = rest.find("\r\n--").unwrap();
        serde_json::from_str(&rest[..end]).unwrap()
    }

    #[test]
    fn bulk_framing_files_empty_files_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"hello").unwrap();
        std::fs::write(dir.path().join("empty.bin"), b"").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let body = bulk(dir.path(), &["a.txt", "empty.bin", "missing", "", "sub", "a.txt"]);
        let b = BULK_BOUNDARY;
        let text = String::from_utf8_lossy(&body).into_owned();
        let expected_start = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"; filename*=utf-8''a.txt\r\n\
             Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello\
             \r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"empty.bin\"; filename*=utf-8''empty.bin\r\n\
             Content-Length: 0\r\nContent-Type: application/octet-stream\r\n\r\n\
             \r\n--{b}\r\nContent-Disposition: form-data; name=\"error\"; filename=\"missing\"; filename*=utf-8''missing\r\n\
             Content-Type: application/json; charset=utf-8\r\n\r\n{{"
        );
        assert!(text.starts_with(&expected_start), "{text}");
        assert!(text.ends_with(&format!("\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"; filename*=utf-8''a.txt\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{b}--\r\n")), "{text}");
        assert_eq!(text.matches(&format!("--{b}\r\n")).count(), 6);

        let v = error_json(
            &body,
            "filename*=utf-8''missing\r\nContent-Type: application/json; charset=utf-8\r\n\r\n",
        );
        assert_eq!(v["statusCode"], 404);
        assert_eq!(v["code"], "FILE_NOT_FOUND");
        assert_eq!(v["message"], "file not found: missing");
        assert_eq!(v["source"], "DAYTONA_DAEMON");
        assert_eq!(v["path"], "missing");
        assert_eq!(v["method"], "POST");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
        assert!(v["timestamp"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());

        let v = error_json(
            &body,
            "filename=\"\"; filename*=utf-8''\r\nContent-Type: application/json; charset=utf-8\r\n\r\n",
        );
        assert_eq!((v["statusCode"].as_u64(), v["code"].as_str()), (Some(400), Some("INVALID_FILE_PATH")));
        assert_eq!(v["message"], "invalid file path: path is empty");
        let v = error_json(
            &body,
            "filename*=utf-8''sub\r\nContent-Type: application/json; charset=utf-8\r\n\r\n",
        );
        assert_eq!(v["message"], "invalid file path: path points to a directory: sub");
        assert_eq!(v["code"], "INVALID_FILE_PATH");
    }

    #[test]
    fn bulk_large_file_spans_many_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &data).unwrap();
        let body = bulk_with_chunk(dir.path(), &["big"], 4096);
        let head = part_head(true, "file", "big", "application/octet-stream", Some(300_000));
        assert!(body.starts_with(&head));
        let rest = &body[head.len()..];
        assert_eq!(&rest[..data.len()], &data[..]);
        assert_eq!(&rest[data.len()..], format!("\r\n--{BULK_BOUNDARY}--\r\n").as_bytes());
    }

    #[test]
    fn error_classification() {
        let e = |errno| {
            PartError::from_io(&io::Error::from_raw_os_error(errno), "/p", "failed to open file", "open")
        };
        assert_eq!(e(libc::ENOENT), PartError::new(404, "FILE_NOT_FOUND", "file not found: /p".into()));
        assert_eq!(
            e(libc::EACCES),
            PartError::new(403, "FILE_ACCESS_DENIED", "permission denied: /p".into())
        );
        assert_eq!(e(libc::EINVAL), PartError::new(400, "INVALID_FILE_PATH", "invalid file path: /p".into()));
        assert_eq!(
            e(libc::ELOOP),
            PartError::new(
                500,
                "FILE_READ_FAILED",
                "failed to open file: open /p: too many levels of symbolic links".into()
            )
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open_bulk(dir.path(), "a\0b").unwrap_err().code, "INVALID_FILE_PATH");
    }

    #[test]
    fn bulk_request_validation() {
        assert_eq!(parse_bulk_request(br#"{"paths":["a","b"]}"#).unwrap(), vec!["a", "b"]);
        for bad in
            [&b""[..], b"{}", br#"{"paths":[]}"#, br#"{"paths":null}"#, br#"{"paths":[1]}"#, b"[", b"[]"]
        {
            let e = parse_bulk_request(bad).unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, Some(Code::BadRequest)));
            assert_eq!(e.message, r#"bad request: request body must be {"paths": [ ... ]} and non-empty"#);
        }
    }

    #[test]
    fn fifo_is_refused_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = open_bulk(dir.path(), "fifo").unwrap_err();
        assert_eq!((e.status, e.code), (400, "INVALID_FILE_PATH"));
    }

    // ------------------------------------------------------------------ truncation

    /// A sink whose reads fail after the first chunk must end the stream without the closing
    /// delimiter (clients detect the truncation) and without an error frame.
    #[test]
    fn read_failure_ends_the_bulk_stream_without_closing_boundary() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        rt.block_on(async {
            let (body, mut sink) = channel_body(8);
            tokio::task::spawn_blocking(move || {
                sink.send(part_head(true, "file", "x", "text/plain", Some(100))).unwrap();
                let mut calls = 0;
                let r = sink
                    .pump(usize::MAX, |b| {
                        calls += 1;
                        b[..3].copy_from_slice(b"abc");
                        Ok(3)
                    })
                    .unwrap();
                assert_eq!(r.unwrap(), 3);
                let r = sink.pump(usize::MAX, |_| Err(io::Error::from_raw_os_error(libc::EIO))).unwrap();
                assert!(r.is_err());
                // stream_bulk returns here, dropping the sink.
            });
            let mut out = Vec::new();
            let mut stream = body.into_data_stream();
            while let Some(c) = stream.next().await {
                out.extend_from_slice(&c.expect("clean end, no error frame"));
            }
            let text = String::from_utf8(out).unwrap();
            assert!(text.ends_with("\r\n\r\nabc"), "{text}");
            assert!(!text.contains(&format!("--{BULK_BOUNDARY}--")));
        });
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
        let parts = byterange_parts(&[r(0, 2), r(5, 3)], 10, "BND");
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
