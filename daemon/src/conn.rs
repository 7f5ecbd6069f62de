//! Guards around each accepted connection, below HTTP: a cap on live connections that keeps
//! file descriptors in reserve, a first-byte deadline, eviction of idle kept-alive connections
//! when the cap is reached, a rate-limited warning when `accept` fails, and the JSON envelope
//! for the few errors hyper answers by itself (400/414/431 for requests it cannot parse).
//!
//! Why: a client that opens as many idle connections as the descriptor limit allows used to
//! starve the daemon for a minute (every accept, file open and process spawn failed with
//! EMFILE). Now such connections are closed after [`FIRST_BYTE_TIMEOUT`], at most
//! [`Limits::max_connections`] are served at once, and kept-alive connections that sit idle are
//! closed first when a new one needs the room.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A new connection must send its first byte within this time.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(5);
/// ... and the whole head of its first request within this time.
pub const FIRST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections may be served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
}

impl Limits {
    /// From the descriptor limit: a quarter of it (at least 256) stays in reserve for the
    /// files, pipes and processes the requests themselves need.
    pub fn from_nofile(nofile: u64) -> Self {
        let reserve = (nofile / 4).max(256);
        let max = nofile.saturating_sub(reserve).clamp(16, 16_384);
        Limits { max_connections: max as usize }
    }

    /// From this process's soft `RLIMIT_NOFILE`.
    pub fn from_process() -> Self {
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        Self::from_nofile(lim.current.unwrap_or(1 << 20))
    }
}

/// Milliseconds since the table was made, for cheap atomic timestamps.
fn now_ms(origin: Instant) -> u64 {
    origin.elapsed().as_millis() as u64
}

struct Entry {
    /// Last time bytes moved, in ms since `Table::origin`.
    last_active: Arc<AtomicU64>,
    /// Requests being answered on the connection right now.
    busy: Arc<AtomicU64>,
    /// Asks the connection to close.
    close: Arc<tokio::sync::Notify>,
    /// Already asked to close: not picked again, but counted until its socket is gone.
    closing: bool,
}

/// The live connections.
pub struct Table {
    limits: Limits,
    origin: Instant,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Entry>>,
}

/// A connection's place in the [`Table`], held by its stream ([`Guarded`]), so the place is
/// freed only when the socket is closed: after an eviction, and after a WebSocket upgrade (the
/// upgraded stream is the same `Guarded`), not before.
pub struct Slot {
    table: Arc<Table>,
    id: u64,
    pub activity: Activity,
    /// Requests in progress, from their head until their response body is done or dropped
    /// (see [`Busy`]); an upgraded connection stays busy for good.
    pub busy: Arc<AtomicU64>,
    /// Requests whose head arrived on this connection.
    pub requests: Arc<AtomicU64>,
    pub close: Arc<tokio::sync::Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        toolbox_envelope::sync::lock(&self.table.live).remove(&self.id);
    }
}

/// Records when bytes last moved on a connection.
#[derive(Clone)]
pub struct Activity {
    origin: Instant,
    last: Arc<AtomicU64>,
}

impl Activity {
    fn touch(&self) {
        self.last.store(now_ms(self.origin), Ordering::Relaxed);
    }
}

impl Table {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Table {
            limits,
            origin: Instant::now(),
            next_id: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn len(&self) -> usize {
        toolbox_envelope::sync::lock(&self.live).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A place for a new connection. At the cap, the connection idle longest (no request in
    /// progress on it) is asked to close, which it does at once, and the new one is admitted
    /// meanwhile; `None` when every connection is in the middle of a request, or when too many
    /// asked to close have not gone yet (an eighth of the cap above it: the bound on open
    /// sockets). Closing an idle kept-alive connection costs its client a reconnect; refusing
    /// a new one would let a flood of silent connections keep every real client out.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut live = toolbox_envelope::sync::lock(&self.live);
        let max = self.limits.max_connections;
        if live.len() >= max {
            if live.len() >= max + (max / 8).max(1) {
                return None;
            }
            let now = now_ms(self.origin);
            let oldest = live
                .iter_mut()
                .filter(|(_, e)| !e.closing && e.busy.load(Ordering::Relaxed) == 0)
                .max_by_key(|(_, e)| now.saturating_sub(e.last_active.load(Ordering::Relaxed)));
            match oldest {
                Some((_, e)) => {
                    e.closing = true;
                    e.close.notify_one();
                }
                None => return None,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let last = Arc::new(AtomicU64::new(now_ms(self.origin)));
        let busy = Arc::new(AtomicU64::new(0));
        let close = Arc::new(tokio::sync::Notify::new());
        live.insert(
            id,
            Entry { last_active: last.clone(), busy: busy.clone(), close: close.clone(), closing: false },
        );
        Some(Slot {
            table: self.clone(),
            id,
            activity: Activity { origin: self.origin, last },
            busy,
            requests: Arc::new(AtomicU64::new(0)),
            close,
        })
    }
}

/// One request in progress on a connection: made when its head arrives, dropped with its
/// response body (hyper drops the body once it is written, or when the connection fails), so
/// a download or a log stream keeps its connection from being taken for idle.
pub struct Busy(Arc<AtomicU64>);

impl Busy {
    pub fn start(slot_busy: &Arc<AtomicU64>, slot_requests: &AtomicU64) -> Busy {
        slot_busy.fetch_add(1, Ordering::Relaxed);
        slot_requests.fetch_add(1, Ordering::Relaxed);
        Busy(slot_busy.clone())
    }

    /// The connection is handed to a WebSocket for good: it stays busy until it is closed.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds its request's [`Busy`] until it is done.
pub struct TrackedBody {
    inner: axum::body::Body,
    _busy: Busy,
}

impl TrackedBody {
    pub fn new(inner: axum::body::Body, busy: Busy) -> Self {
        TrackedBody { inner, _busy: busy }
    }
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Logs accept failures at most once per interval, with how many were not logged.
pub struct AcceptWarnings {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl AcceptWarnings {
    pub fn new(interval: Duration) -> Self {
        AcceptWarnings { interval, last: None, suppressed: 0 }
    }

    /// The warning to log for this failure, if one is due.
    pub fn record(&mut self, err: &io::Error) -> Option<String> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < self.interval) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        let hint = if err.raw_os_error() == Some(libc::EMFILE) || err.raw_os_error() == Some(libc::ENFILE) {
            " (out of file descriptors: too many open connections or files)"
        } else {
            ""
        };
        let extra = std::mem::take(&mut self.suppressed);
        Some(if extra > 0 {
            format!("accept failed: {err}{hint}; {extra} more failures since the last warning")
        } else {
            format!("accept failed: {err}{hint}")
        })
    }
}

/// The stream under hyper: notes activity, and replaces hyper's own bodiless parse-error
/// answers (400, 414, 431) with the JSON envelope. Those are the only bodiless error answers on
/// the wire: every error the router produces already carries the envelope.
pub struct Guarded<S> {
    inner: S,
    slot: Slot,
    /// A replacement answer still to be written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, slot: Slot) -> Self {
        Guarded { inner, slot, pending: None }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The envelope answer for a head hyper wrote for a parse error, or `None` when `head` is not
/// one of those.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let (status, message): (u16, &str) = if head.starts_with(b"HTTP/1.1 400 Bad Request\r\n") {
        (400, "bad request: the HTTP request could not be parsed")
    } else if head.starts_with(b"HTTP/1.1 414 URI Too Long\r\n") {
        (414, "uri too long: the request target is longer than 65534 bytes")
    } else if head.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n") {
        (431, "request header fields too large: the request head is too long or has too many header lines")
    } else {
        return None;
    };
    let lower = head.to_ascii_lowercase();
    // Only hyper's own answers: no body, and the head is all there is.
    if !lower.windows(19).any(|w| w == b"content-length: 0\r\n") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let code = match status {
        400 => Some("BAD_REQUEST"),
        _ => None,
    };
    let status_code = axum::http::StatusCode::from_u16(status).ok()?;
    let body = toolbox_envelope::Envelope::new(status_code, code, message, "", "").to_json();
    let reason = std::str::from_utf8(&head[13..head.iter().position(|b| *b == b'\r')?]).ok()?;
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.slot.activity.touch();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> Guarded<S> {
    /// Whether what is written now can be hyper's own answer to a head it could not parse: only
    /// before the connection's first request. Later, the tail of a response may still be in
    /// flight after its body was dropped (which ends "busy"), and a body's bytes must never be
    /// rewritten, whatever they look like.
    fn hyper_may_answer(&self) -> bool {
        self.slot.requests.load(Ordering::Relaxed) == 0 && self.slot.busy.load(Ordering::Relaxed) == 0
    }

    /// Writes out what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done == bytes.len() {
                self.pending = None;
                break;
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        self.slot.activity.touch();
        let own_answer = self.hyper_may_answer();
        if let Some(out) = own_answer.then(|| replacement(buf)).flatten() {
            self.pending = Some((out, 0));
            // hyper's bytes count as written; ours go out now or on the next poll.
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Vectored, so hyper sends response bodies from their own buffers instead of copying each
    /// into its write buffer first (a proxied download would pay one extra copy per byte).
    /// hyper's own answers to unparsable heads have no body: their head is the first slice.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_pending(cx))?;
        self.slot.activity.touch();
        let own_answer = self.hyper_may_answer();
        if own_answer
            && let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && let Some(out) = replacement(first)
        {
            self.pending = Some((out, 0));
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn limits_keep_a_reserve() {
        assert_eq!(Limits::from_nofile(1024).max_connections, 768);
        assert_eq!(Limits::from_nofile(256).max_connections, 16);
        assert_eq!(Limits::from_nofile(1 << 20).max_connections, 16_384);
        assert_eq!(Limits::from_nofile(4096).max_connections, 3072);
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_makes_room_and_busy_ones_never() {
        let table = Table::new(Limits { max_connections: 2 });
        let a = table.admit().unwrap();
        let b = table.admit().unwrap();
        // `a` has been idle longest: it is asked to close and the newcomer is admitted.
        a.activity.last.store(0, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.activity.touch();
        let notified = a.close.clone();
        let waiter = tokio::spawn(async move { notified.notified().await });
        let c = table.admit().expect("room made");
        tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
        // `a` still counts until its socket is gone: the table says 3, one of them closing.
        assert_eq!(table.len(), 3);
        drop(a);
        assert_eq!(table.len(), 2);
        // With every connection in a request (a response body still being sent counts), nobody
        // is closed and the newcomer is refused.
        let busy_b = Busy::start(&b.busy, &b.requests);
        let busy_c = Busy::start(&c.busy, &c.requests);
        assert!(table.admit().is_none());
        assert_eq!(table.len(), 2);
        drop(busy_b);
        busy_c.keep(); // an upgraded connection stays busy until it is closed
        assert_eq!(c.busy.load(Ordering::Relaxed), 1);
        assert!(table.admit().is_some(), "b is idle again");
        drop((b, c));
    }

    #[tokio::test]
    async fn connections_asked_to_close_bound_the_open_sockets() {
        let table = Table::new(Limits { max_connections: 8 });
        let mut held = Vec::new();
        // Nobody closes when asked: past the cap plus an eighth, newcomers are refused.
        while let Some(slot) = table.admit() {
            held.push(slot);
            assert!(held.len() <= 9);
        }
        assert_eq!(held.len(), 9);
        held.remove(0);
        assert!(table.admit().is_some());
    }

    #[test]
    fn accept_warnings_are_rate_limited() {
        let mut w = AcceptWarnings::new(Duration::from_secs(60));
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        let first = w.record(&e).unwrap();
        assert!(first.contains("out of file descriptors"), "{first}");
        for _ in 0..1000 {
            assert!(w.record(&e).is_none());
        }
        w.last = Some(Instant::now() - Duration::from_secs(61));
        assert!(w.record(&e).unwrap().contains("1000 more failures"));
    }

    #[test]
    fn only_hyper_parse_errors_are_replaced() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(replacement(head).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{out}");
        let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["statusCode"], 431);
        assert_eq!(v["source"], "DAYTONA_DAEMON");
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        // Answers with a body (the router's) and other statuses pass untouched.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").is_some());
    }

    #[tokio::test]
    async fn inside_a_request_bytes_that_look_like_a_parse_error_pass_untouched() {
        let (client, server) = tokio::io::duplex(1024);
        let table = Table::new(Limits { max_connections: 4 });
        let slot = table.admit().unwrap();
        let busy = Busy::start(&slot.busy, &slot.requests);
        let mut g = Guarded::new(server, slot);
        let looks_like = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        g.write_all(looks_like).await.unwrap();
        g.shutdown().await.unwrap();
        drop((g, busy));
        let mut got = Vec::new();
        let mut client = client;
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, looks_like);
    }

    #[tokio::test]
    async fn vectored_writes_are_replaced_outside_requests_and_pass_inside() {
        let table = Table::new(Limits { max_connections: 4 });
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        // Before any request; inside one; and after one ended (the tail of a response may
        // still be written once its body is dropped: never rewritten, whatever it looks like).
        for (in_request, after_request) in [(false, false), (true, false), (false, true)] {
            let (client, server) = tokio::io::duplex(4096);
            let slot = table.admit().unwrap();
            if after_request {
                drop(Busy::start(&slot.busy, &slot.requests));
            }
            let busy = in_request.then(|| Busy::start(&slot.busy, &slot.requests));
            let mut g = Guarded::new(server, slot);
            let body = b"body bytes";
            let bufs = [io::IoSlice::new(head), io::IoSlice::new(body)];
            let n = std::future::poll_fn(|cx| Pin::new(&mut g).poll_write_vectored(cx, &bufs)).await.unwrap();
            assert!(n > 0);
            g.shutdown().await.unwrap();
            drop((g, busy));
            let mut got = Vec::new();
            let mut client = client;
            client.read_to_end(&mut got).await.unwrap();
            if in_request || after_request {
                assert!(got.starts_with(head), "{got:?}");
            } else {
                let text = String::from_utf8(got).unwrap();
                assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{text}");
                assert!(text.contains("application/json") && text.ends_with('}'), "{text}");
            }
        }
    }

    #[tokio::test]
    async fn the_replacement_reaches_the_peer_whole() {
        let (client, server) = tokio::io::duplex(16);
        let table = Table::new(Limits { max_connections: 4 });
        let slot = table.admit().unwrap();
        let mut g = Guarded::new(server, slot);
        let writer = tokio::spawn(async move {
            g.write_all(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            g.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        let mut client = client;
        client.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(text.ends_with('}'), "{text}");
    }
}
