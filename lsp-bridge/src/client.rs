//! The client: a writer queue, a reader that routes responses, and a stderr ring.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, trace, warn};

use crate::framing::{self, Frame, ReadError, Scanned};
use crate::{Error, Options};

/// How much stderr an [`Error::Closed`] carries.
const CLOSED_STDERR_BYTES: usize = 4 * 1024;

/// How long the end of the transport waits for the stderr pipe to drain, so that the last words
/// of a dying server (usually written just before it exits) make it into [`Error::Closed`].
const STDERR_GRACE: Duration = Duration::from_millis(250);

/// How many oversized responses without a readable id are remembered (see [`Client`]).
const MAX_UNCLAIMED: usize = 32;

/// How many abandoned request ids are remembered (see [`Client`]).
const MAX_ABANDONED: usize = 32;

/// A handle on one language server connection. Cloning is cheap; the connection's tasks end
/// when the last clone is dropped (the server then sees its stdin close).
///
/// # Oversized responses
/// A response longer than [`Options::max_message_bytes`] is never buffered: its body is read
/// and thrown away in small chunks. Its id is looked for in the first 4 KiB (servers usually
/// write `"id"` before the result). When found, that request fails at once with
/// [`Error::ResponseTooLarge`]. When not, and exactly one request is in flight and no request
/// that was given up on (timed out or dropped) may still be answered, that one fails at once.
/// Otherwise the response is remembered, and the oldest request that was in flight at the time
/// and then times out reports [`Error::ResponseTooLarge`] instead of [`Error::Timeout`].
/// (Up to 32 given-up ids are remembered until their late answer arrives; servers answer a
/// cancelled request with an error, which clears it.)
#[derive(Clone)]
pub struct Client {
    inner: Arc<Handle>,
}

/// What the `Client` clones share. Dropping it drops the queue's only strong sender and the stop
/// signal, which ends all three tasks.
struct Handle {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    _stop: watch::Sender<()>,
    next_id: AtomicI64,
    opts: Options,
}

/// State the tasks and the handle both use.
struct Shared {
    state: Mutex<State>,
    closed: watch::Sender<bool>,
    stderr: Mutex<Ring>,
    stderr_done: watch::Sender<bool>,
    /// Bytes waiting in the writer queue, and the most allowed.
    queued: AtomicUsize,
    queue_limit: usize,
}

#[derive(Default)]
struct State {
    closed: bool,
    pending: HashMap<i64, Pending>,
    /// Oversized responses whose id was not seen, oldest first.
    unclaimed: VecDeque<Unclaimed>,
    /// Requests given up on (timed out or dropped) whose answer may still come, newest last.
    abandoned: VecDeque<i64>,
}

struct Pending {
    method: String,
    tx: oneshot::Sender<Result<Value, Error>>,
}

struct Unclaimed {
    size: usize,
    /// The newest request id in flight when the response was discarded: it answered one of the
    /// requests up to this id.
    newest_id: i64,
}

impl Client {
    /// Starts the reader, writer and stderr-drain tasks on the current tokio runtime (so it must
    /// be called from within one) and returns at once; nothing is sent until the first
    /// [`request`](Self::request) or [`notify`](Self::notify), which is normally `initialize`.
    ///
    /// # Panics
    /// When called outside a tokio runtime (the tasks are spawned with `tokio::spawn`).
    pub fn new<R, W, E>(from_server: R, to_server: W, stderr: Option<E>, opts: Options) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
        E: AsyncRead + Unpin + Send + 'static,
    {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            closed: watch::Sender::new(false),
            stderr: Mutex::new(Ring::new(opts.stderr_bytes)),
            stderr_done: watch::Sender::new(stderr.is_none()),
            queued: AtomicUsize::new(0),
            queue_limit: opts.max_message_bytes.saturating_mul(4).max(1 << 20),
        });
        tokio::spawn(read_loop(
            from_server,
            shared.clone(),
            out.downgrade(),
            opts.max_message_bytes,
            stop_rx.clone(),
        ));
        tokio::spawn(write_loop(to_server, out_rx, shared.clone(), stop_rx.clone()));
        if let Some(stderr) = stderr {
            tokio::spawn(drain_stderr(stderr, shared.clone(), stop_rx));
        }
        Client { inner: Arc::new(Handle { shared, out, _stop: stop, next_id: AtomicI64::new(1), opts }) }
    }

    /// Sends a typed request and waits for its answer, at most [`Options::request_timeout`].
    pub async fn request<T: lsp_types::request::Request>(
        &self,
        params: T::Params,
    ) -> Result<T::Result, Error> {
        self.request_with_timeout::<T>(params, self.inner.opts.request_timeout).await
    }

    /// Sends a typed request and waits for its answer, at most `timeout`.
    pub async fn request_with_timeout<T: lsp_types::request::Request>(
        &self,
        params: T::Params,
        timeout: Duration,
    ) -> Result<T::Result, Error> {
        let params = serde_json::to_value(params)
            .map_err(|e| Error::Decode { method: T::METHOD.to_owned(), detail: format!("params: {e}") })?;
        let result = self.request_raw(T::METHOD, params, timeout).await?;
        serde_json::from_value(result)
            .map_err(|e| Error::Decode { method: T::METHOD.to_owned(), detail: e.to_string() })
    }

    /// Sends a request with untyped params (`null` sends none) and waits for its `result`, at
    /// most `timeout`. Like every async fn it does nothing until polled: the request joins the
    /// writer queue on the first poll, after everything queued before that. On timeout (or when the returned future is dropped) the request is
    /// forgotten, `$/cancelRequest` is sent, and a late answer is dropped.
    pub async fn request_raw(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, Error> {
        let h = &*self.inner;
        let id = h.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = oneshot::channel();
        {
            let mut st = lock(&h.shared.state);
            if st.closed {
                drop(st);
                return Err(h.shared.closed_error());
            }
            st.pending.insert(id, Pending { method: method.to_owned(), tx });
        }
        let mut guard = InFlight { handle: h, id, armed: true };
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            msg["params"] = params;
        }
        h.enqueue(&msg)?;
        match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(answer)) => {
                guard.armed = false;
                answer
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(h.shared.closed_error())
            }
            Err(_) => {
                guard.armed = false;
                if !h.forget(id) {
                    // The answer arrived as the timer fired: the reader holds the sender only
                    // for the instant between taking the entry and sending, so this is immediate.
                    return rx.await.unwrap_or_else(|_| Err(h.shared.closed_error()));
                }
                match h.shared.claim_unclaimed(id) {
                    Some(size) => Err(Error::ResponseTooLarge {
                        method: method.to_owned(),
                        size,
                        limit: h.opts.max_message_bytes,
                    }),
                    None => Err(Error::Timeout { method: method.to_owned(), after: timeout }),
                }
            }
        }
    }

    /// Queues a typed notification. Queued messages reach the server in call order, requests
    /// included, so a `didChange` sent before a request is seen before it. Fails with
    /// [`Error::Closed`] once the transport ended.
    pub fn notify<T: lsp_types::notification::Notification>(&self, params: T::Params) -> Result<(), Error> {
        let params = serde_json::to_value(params)
            .map_err(|e| Error::Decode { method: T::METHOD.to_owned(), detail: format!("params: {e}") })?;
        self.notify_raw(T::METHOD, params)
    }

    /// Queues a notification with untyped params (`null` sends none).
    pub fn notify_raw(&self, method: &str, params: Value) -> Result<(), Error> {
        let mut msg = json!({"jsonrpc": "2.0", "method": method});
        if !params.is_null() {
            msg["params"] = params;
        }
        self.inner.enqueue(&msg)
    }

    /// Whether the transport ended (the server's output reached EOF, was not LSP, or writing to
    /// it failed).
    pub fn is_closed(&self) -> bool {
        *self.inner.shared.closed.borrow()
    }

    /// Resolves once the transport ended; at once if it already has.
    pub async fn closed(&self) {
        let mut rx = self.inner.shared.closed.subscribe();
        // The sender lives in `Shared`, which `self` keeps alive, so this only returns when set.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// The last (at most) `max_bytes` of what the server wrote to stderr, as lossy UTF-8 with
    /// surrounding whitespace trimmed. Empty when no stderr was given.
    pub fn stderr_tail(&self, max_bytes: usize) -> String {
        self.inner.shared.stderr_tail(max_bytes)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = lock(&self.inner.shared.state).pending.len();
        f.debug_struct("Client").field("closed", &self.is_closed()).field("pending", &pending).finish()
    }
}

impl Handle {
    fn enqueue(&self, msg: &Value) -> Result<(), Error> {
        self.shared.enqueue(&self.out, msg)
    }

    /// Drops a pending request and tells the server; false when it was no longer pending.
    fn forget(&self, id: i64) -> bool {
        let was_pending = {
            let mut st = lock(&self.shared.state);
            let was_pending = st.pending.remove(&id).is_some();
            if was_pending {
                if st.abandoned.len() == MAX_ABANDONED {
                    st.abandoned.pop_front();
                }
                st.abandoned.push_back(id);
            }
            was_pending
        };
        if was_pending {
            let _ =
                self.enqueue(&json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": id}}));
        }
        was_pending
    }
}

/// Forgets (and cancels) a request whose future is dropped before it finished.
struct InFlight<'a> {
    handle: &'a Handle,
    id: i64,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.handle.forget(self.id);
        }
    }
}

impl Shared {
    fn closed_error(&self) -> Error {
        Error::Closed { stderr: self.stderr_tail(CLOSED_STDERR_BYTES) }
    }

    fn stderr_tail(&self, max_bytes: usize) -> String {
        lock(&self.stderr).tail(max_bytes)
    }

    /// Puts one message on the writer queue, refusing it once the transport ended or when the
    /// server has stopped reading and the queue is full.
    fn enqueue(&self, out: &mpsc::UnboundedSender<Vec<u8>>, msg: &Value) -> Result<(), Error> {
        if *self.closed.borrow() {
            return Err(self.closed_error());
        }
        let bytes =
            serde_json::to_vec(msg).map_err(|e| Error::Io(format!("cannot serialise a message: {e}")))?;
        let len = bytes.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.queue_limit {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Error::Io(format!(
                "the language server is not reading its input ({before} bytes already wait to be sent)"
            )));
        }
        if out.send(bytes).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// Ends the transport: fails every pending request with `Closed` and wakes `closed()`.
    async fn finish(&self, why: &str) {
        let mut done = self.stderr_done.subscribe();
        let _ = tokio::time::timeout(STDERR_GRACE, done.wait_for(|d| *d)).await;
        let pending = {
            let mut st = lock(&self.state);
            if st.closed {
                return;
            }
            st.closed = true;
            st.unclaimed.clear();
            st.abandoned.clear();
            std::mem::take(&mut st.pending)
        };
        self.closed.send_replace(true);
        debug!(reason = why, failed = pending.len(), "language server transport ended");
        let stderr = self.stderr_tail(CLOSED_STDERR_BYTES);
        for (_, p) in pending {
            let _ = p.tx.send(Err(Error::Closed { stderr: stderr.clone() }));
        }
    }

    /// Routes one message from the server. An error means the body was not JSON.
    fn dispatch(&self, body: &[u8], out: &mpsc::WeakUnboundedSender<Vec<u8>>) -> Result<(), String> {
        let msg: Value =
            serde_json::from_slice(body).map_err(|e| format!("message body is not JSON: {e}"))?;
        let Value::Object(mut obj) = msg else {
            warn!("ignoring a message from the language server that is not a JSON object");
            return Ok(());
        };
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        match (method, obj.remove("id")) {
            (Some(method), Some(id)) => {
                let params = obj.remove("params").unwrap_or(Value::Null);
                let reply = answer_server_request(&method, &id, &params);
                trace!(%method, %id, "answered a request from the language server");
                if let Some(out) = out.upgrade() {
                    let _ = self.enqueue(&out, &reply);
                }
            }
            (Some(method), None) => trace!(%method, "ignored a notification from the language server"),
            (None, Some(id)) => self.complete(&id, obj),
            (None, None) => warn!("ignoring a message from the language server with neither method nor id"),
        }
        Ok(())
    }

    fn complete(&self, id: &Value, mut obj: serde_json::Map<String, Value>) {
        let Some(num) = id.as_i64().or_else(|| id.as_str().and_then(|s| s.parse().ok())) else {
            warn!(%id, "ignoring a response with an id this client never uses");
            return;
        };
        let Some(p) = self.take_pending(num) else {
            debug!(id = num, "dropped a response to a request that is no longer waiting");
            return;
        };
        let answer = match obj.remove("error") {
            Some(err) => Err(Error::Server {
                method: p.method,
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
            }),
            None => Ok(obj.remove("result").unwrap_or(Value::Null)),
        };
        let _ = p.tx.send(answer);
    }

    /// Handles a response body that was discarded for its size (see [`Client`]).
    fn oversized(&self, size: usize, prefix: &[u8], limit: usize) {
        let id = match framing::scan_prefix(prefix) {
            Scanned::NotResponse => {
                warn!(size, limit, "dropped an oversized message from the language server");
                return;
            }
            Scanned::Response(id) => id,
        };
        let target = match id {
            Some(id) => self.take_pending(id),
            None => {
                let mut st = lock(&self.state);
                // Without an id it can only be pinned on a request when no other one, including
                // one given up on whose late answer this may be, could have been answered.
                if st.pending.len() == 1 && st.abandoned.is_empty() {
                    let only = st.pending.keys().next().copied();
                    only.and_then(|id| st.pending.remove(&id))
                } else {
                    if let Some(&newest_id) = st.pending.keys().max() {
                        if st.unclaimed.len() == MAX_UNCLAIMED {
                            st.unclaimed.pop_front();
                        }
                        st.unclaimed.push_back(Unclaimed { size, newest_id });
                    }
                    None
                }
            }
        };
        match target {
            Some(p) => {
                warn!(method = %p.method, size, limit, "discarded an oversized response");
                let _ = p.tx.send(Err(Error::ResponseTooLarge { method: p.method, size, limit }));
            }
            None => warn!(
                ?id,
                size, limit, "discarded an oversized response that no waiting request can be sure to own"
            ),
        }
    }

    /// Takes a pending request for its answer; an answer to an abandoned one just clears that.
    fn take_pending(&self, id: i64) -> Option<Pending> {
        let mut st = lock(&self.state);
        let p = st.pending.remove(&id);
        if p.is_none() {
            st.abandoned.retain(|&a| a != id);
        }
        p
    }

    /// On a timeout of request `id` (already removed from pending): the size of a discarded
    /// response that may have been its answer.
    fn claim_unclaimed(&self, id: i64) -> Option<usize> {
        let mut st = lock(&self.state);
        let claimed =
            st.unclaimed.iter().position(|u| id <= u.newest_id).and_then(|i| st.unclaimed.remove(i));
        // An entry none of whose candidates is still waiting can never be claimed.
        let oldest = st.pending.keys().min().copied();
        st.unclaimed.retain(|u| oldest.is_some_and(|o| o <= u.newest_id));
        claimed.map(|u| u.size)
    }
}

/// The answer this client gives to a request from the server: it declares no capabilities that
/// need more, so each known method gets the neutral answer and anything else MethodNotFound.
fn answer_server_request(method: &str, id: &Value, params: &Value) -> Value {
    let result = match method {
        // One `null` per item: "no configuration, use your defaults".
        "workspace/configuration" => {
            let n = params.get("items").and_then(Value::as_array).map_or(0, Vec::len);
            Value::Array(vec![Value::Null; n])
        }
        "client/registerCapability"
        | "client/unregisterCapability"
        | "window/workDoneProgress/create"
        | "window/showMessageRequest"
        | "workspace/workspaceFolders" => Value::Null,
        "workspace/applyEdit" => json!({"applied": false}),
        _ => {
            return json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": -32601, "message": format!("method not supported by this client: {method}")},
            });
        }
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

async fn read_loop<R: AsyncRead + Unpin>(
    from_server: R,
    shared: Arc<Shared>,
    out: mpsc::WeakUnboundedSender<Vec<u8>>,
    max_body: usize,
    mut stop: watch::Receiver<()>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, from_server);
    let why = loop {
        let frame = tokio::select! {
            frame = framing::read_frame(&mut reader, max_body) => frame,
            _ = stop.changed() => return,
        };
        match frame {
            Ok(Frame::Body(body)) => {
                if let Err(e) = shared.dispatch(&body, &out) {
                    warn!(error = %e, "language server broke the protocol; closing the connection");
                    break "protocol error";
                }
            }
            Ok(Frame::TooLarge { size, prefix }) => shared.oversized(size, &prefix, max_body),
            Err(ReadError::Eof) => break "end of output",
            Err(ReadError::Protocol(e)) => {
                warn!(error = %e, "language server broke the protocol; closing the connection");
                break "protocol error";
            }
            Err(ReadError::Io(e)) => {
                warn!(error = %e, "reading from the language server failed");
                break "read error";
            }
        }
    };
    shared.finish(why).await;
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut to_server: W,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
) {
    let mut closed = shared.closed.subscribe();
    loop {
        let body = tokio::select! {
            body = queue.recv() => match body {
                Some(body) => body,
                None => break,
            },
            _ = closed.wait_for(|c| *c) => break,
        };
        shared.queued.fetch_sub(body.len(), Ordering::AcqRel);
        let head = format!("Content-Length: {}\r\n\r\n", body.len());
        let write = async {
            to_server.write_all(head.as_bytes()).await?;
            to_server.write_all(&body).await?;
            to_server.flush().await
        };
        let result = tokio::select! {
            r = write => r,
            // A server that stopped reading must not pin this task after the client is gone.
            _ = stop.changed() => return,
            _ = closed.wait_for(|c| *c) => break,
        };
        if let Err(e) = result {
            warn!(error = %e, "writing to the language server failed");
            shared.finish("write error").await;
            return;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), to_server.shutdown()).await;
}

async fn drain_stderr<E: AsyncRead + Unpin>(
    mut stderr: E,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
) {
    let mut buf = vec![0; 8 * 1024];
    loop {
        let n = tokio::select! {
            n = stderr.read(&mut buf) => n,
            _ = stop.changed() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                trace!(bytes = n, "language server stderr");
                lock(&shared.stderr).push(&buf[..n]);
            }
        }
    }
    shared.stderr_done.send_replace(true);
}

/// A mutex whose holder panicked still guards consistent data here (every critical section is a
/// plain map or buffer update), so a poisoned lock is used rather than propagated as a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last `cap` bytes written to it.
pub(crate) struct Ring {
    buf: VecDeque<u8>,
    cap: usize,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Ring {
        Ring { buf: VecDeque::new(), cap }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn tail(&self, max_bytes: usize) -> String {
        // Trailing line ends do not count against `max_bytes`: they are trimmed anyway.
        let end = self.buf.len() - self.buf.iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
        let start = end.saturating_sub(max_bytes);
        let bytes: Vec<u8> = self.buf.range(start..end).copied().collect();
        // A cut through a multi-byte character would show as U+FFFD: skip its continuation bytes.
        let skip = bytes.iter().take(3).take_while(|&&b| b & 0xC0 == 0x80).count();
        String::from_utf8_lossy(&bytes[skip..]).trim().to_owned()
    }
}
