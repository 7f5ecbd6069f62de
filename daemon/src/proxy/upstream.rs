//! The client side of the proxy: a keep-alive pool of connections to `localhost:<port>`
//! (hyper-util's pooled client over our own loopback connector), the one retry on a stale
//! pooled connection, and the tunnel for upgraded connections.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::http::{HeaderMap, Method, Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Cause, ProxyError};

/// Errors of request bodies on their way to the target.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request body as the client sends it: boxed, so any body type can be relayed.
pub type Outgoing = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Bodies up to this size are buffered so that a request can be sent again when its pooled
/// connection turns out to be stale; larger ones stream through and are not retried.
pub const REPLAY_LIMIT: u64 = 256 * 1024;

/// Pool and connection settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Kept-alive connections unused this long are closed.
    pub idle_timeout: Duration,
    /// At most this many idle connections are kept per port.
    pub max_idle: usize,
    /// Bound on establishing a connection (both addresses together).
    pub connect_timeout: Duration,
    /// How long the address that answered on a port is tried first.
    pub family_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            idle_timeout: Duration::from_secs(30),
            max_idle: 100,
            connect_timeout: Duration::from_secs(30),
            family_ttl: Duration::from_secs(30),
        }
    }
}

/// A request body, sorted by whether it can be sent twice.
pub enum RequestBody {
    /// No body: always replayable.
    Empty,
    /// A small body read whole: replayable.
    Buffered(Bytes),
    /// A large or unsized body: streamed through once.
    Streamed(Outgoing),
}

impl RequestBody {
    /// Sorts `body`: empty, small enough to buffer (its declared length at most
    /// [`REPLAY_LIMIT`]), or to be streamed. Bodies of unknown length always stream: waiting
    /// for 256 KiB of a slow chunked upload would hold the whole request back.
    pub async fn prepare<B>(body: B) -> Result<RequestBody, ProxyError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let declared_len = body.size_hint().exact();
        if body.is_end_stream() || declared_len == Some(0) {
            return Ok(RequestBody::Empty);
        }
        match declared_len {
            Some(n) if n <= REPLAY_LIMIT => {
                let whole = body.collect().await.map_err(|e| ProxyError::ClientBody(e.into().to_string()))?;
                Ok(RequestBody::Buffered(whole.to_bytes()))
            }
            _ => Ok(RequestBody::Streamed(body.map_err(Into::into).boxed_unsync())),
        }
    }

    fn replay(&self) -> Option<RequestBody> {
        match self {
            RequestBody::Empty => Some(RequestBody::Empty),
            RequestBody::Buffered(b) => Some(RequestBody::Buffered(b.clone())),
            RequestBody::Streamed(_) => None,
        }
    }

    fn into_outgoing(self) -> Outgoing {
        match self {
            RequestBody::Empty => http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync(),
            RequestBody::Buffered(b) => http_body_util::Full::new(b).map_err(|e| match e {}).boxed_unsync(),
            RequestBody::Streamed(body) => body,
        }
    }
}

/// The request head to send: method, origin-form path and query, rewritten headers.
pub struct Head {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
}

/// The pooled client for every proxied port.
#[derive(Clone)]
pub struct Upstream {
    client: Client<Loopback, Outgoing>,
    /// The connector's memory of which address answered on each port (for the tests).
    #[cfg(test)]
    families: Arc<Families>,
}

impl Upstream {
    pub fn new(settings: Settings) -> Self {
        let families = Arc::new(Families { ttl: settings.family_ttl, by_port: Mutex::new(HashMap::new()) });
        let connector =
            Loopback { connect_timeout: settings.connect_timeout, families: Arc::clone(&families) };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.idle_timeout)
            .pool_max_idle_per_host(settings.max_idle)
            // Without a timer the idle timeout is only noticed at the next checkout.
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            // The Host header is ours (`localhost:<port>`), set with the others.
            .set_host(false)
            // Development servers are not always strict about their response heads.
            .http1_allow_obsolete_multiline_headers_in_responses(true)
            .http1_allow_spaces_after_header_name_in_responses(true)
            .build(connector);
        Upstream {
            client,
            #[cfg(test)]
            families,
        }
    }

    /// Sends one request to `localhost:<port>` and returns the target's response head (its body
    /// streams). A replayable request whose pooled connection proves stale — closed or reset by
    /// the target before any response — is sent once more, on another connection.
    pub async fn send(
        &self,
        port: u16,
        head: Head,
        body: RequestBody,
    ) -> Result<Response<Incoming>, ProxyError> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(format!("localhost:{port}"))
            .path_and_query(head.path_and_query.as_str())
            .build()
            .map_err(|e| ProxyError::BadTarget(e.to_string()))?;
        let replay = body.replay().map(|b| (b, head.headers.clone()));
        let build = |headers: HeaderMap, body: RequestBody| {
            let mut req = Request::new(body.into_outgoing());
            *req.method_mut() = head.method.clone();
            *req.uri_mut() = uri.clone();
            *req.headers_mut() = headers;
            req
        };
        let first = self.client.request(build(head.headers, body)).await;
        let err = match first {
            Ok(res) => return Ok(counted(res)),
            Err(e) => e,
        };
        match replay {
            Some((body, headers)) if stale(&err) => {
                tracing::debug!(port, error = ?err, "pooled connection was stale; sending again");
                self.client.request(build(headers, body)).await.map(counted).map_err(|e| failure(port, &e))
            }
            _ => Err(failure(port, &err)),
        }
    }
}

/// Counts the response against the connection it came on, so a later failure on the same
/// connection is known to be a stale reuse.
fn counted(res: Response<Incoming>) -> Response<Incoming> {
    if let Some(served) = res.extensions().get::<Served>() {
        served.0.fetch_add(1, Ordering::Relaxed);
    }
    res
}

/// Whether a request failed on a kept-alive connection that had already served a response:
/// the target closed it while it sat in the pool (or closes after every response), so the
/// request most likely never reached the app.
fn stale(err: &hyper_util::client::legacy::Error) -> bool {
    if err.is_connect() {
        return false;
    }
    let Some(info) = err.connect_info() else { return false };
    let mut extras = hyper::http::Extensions::new();
    info.get_extras(&mut extras);
    extras.get::<Served>().is_some_and(|s| s.0.load(Ordering::Relaxed) > 0)
}

/// The domain error for a failed exchange with the target.
fn failure(port: u16, err: &hyper_util::client::legacy::Error) -> ProxyError {
    ProxyError::Upstream { port, cause: cause(err, err.is_connect()) }
}

fn cause(err: &(dyn std::error::Error + 'static), connecting: bool) -> Cause {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionRefused => Cause::Refused,
                io::ErrorKind::TimedOut => Cause::TimedOut,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => Cause::Reset,
                _ => Cause::Other(io.to_string()),
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return Cause::Closed;
            }
            if h.is_parse() {
                return Cause::Other(format!("the target's response could not be parsed: {h}"));
            }
        }
        source = e.source();
    }
    if connecting { Cause::Other(format!("cannot connect: {err}")) } else { Cause::Other(err.to_string()) }
}

/// Relays bytes both ways between the two sides of an upgraded connection until both are done.
/// Runs on its own task: the 101 response has to go out before the client's side exists.
pub fn tunnel(client: hyper::upgrade::OnUpgrade, target: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (client, target) = match tokio::try_join!(client, target) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "proxied upgrade did not complete");
                return;
            }
        };
        let (mut client, mut target) = (TokioIo::new(client), TokioIo::new(target));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut target).await {
            tracing::debug!(error = %e, "proxied upgraded connection ended with an error");
        }
    });
}

/// Which loopback address answered on each port lately: a target listening only on `::1` (or
/// only on 127.0.0.1) is found at once on the next connection instead of after a refusal.
struct Families {
    ttl: Duration,
    by_port: Mutex<HashMap<u16, (IpAddr, Instant)>>,
}

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

impl Families {
    fn order(&self, port: u16) -> [IpAddr; 2] {
        let map = toolbox_envelope::sync::lock(&self.by_port);
        match map.get(&port) {
            Some((ip, at)) if *ip == V6 && at.elapsed() < self.ttl => [V6, V4],
            _ => [V4, V6],
        }
    }

    fn worked(&self, port: u16, ip: IpAddr) {
        let mut map = toolbox_envelope::sync::lock(&self.by_port);
        // Bounded: stale entries go whenever the map grows past a few hundred ports.
        if map.len() >= 512 {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        map.insert(port, (ip, Instant::now()));
    }
}

/// The connector: `localhost` means the loopback addresses, tried in order (IPv4 first unless
/// IPv6 answered lately). Resolving the name is skipped: `/etc/hosts` in an image may lack the
/// IPv6 entry, and a lookup per connection costs time for nothing.
#[derive(Clone)]
struct Loopback {
    connect_timeout: Duration,
    families: Arc<Families>,
}

impl tower::Service<Uri> for Loopback {
    type Response = TokioIo<Link>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Link>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let port = uri.port_u16().ok_or_else(|| io::Error::other("no port in the target address"))?;
            let deadline = tokio::time::Instant::now() + this.connect_timeout;
            let mut first_err: Option<io::Error> = None;
            for ip in this.families.order(port) {
                let attempt =
                    tokio::time::timeout_at(deadline, TcpStream::connect(SocketAddr::new(ip, port))).await;
                match attempt {
                    Ok(Ok(tcp)) => {
                        // Small requests and responses go out at once; Nagle would hold them.
                        let _ = tcp.set_nodelay(true);
                        this.families.worked(port, ip);
                        return Ok(TokioIo::new(Link { tcp, served: Arc::new(AtomicU64::new(0)) }));
                    }
                    Ok(Err(e)) => {
                        // Keep the more telling error: "refused" on IPv4 beats "address not
                        // available" on a host without IPv6, anything beats "refused".
                        let better = match &first_err {
                            None => true,
                            Some(prev) => {
                                prev.kind() == io::ErrorKind::ConnectionRefused
                                    && !matches!(
                                        e.kind(),
                                        io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable
                                    )
                            }
                        };
                        if better {
                            first_err = Some(e);
                        }
                    }
                    Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connecting timed out")),
                }
            }
            Err(first_err.unwrap_or_else(|| io::Error::other("no loopback address to connect to")))
        })
    }
}

/// How many responses a connection has carried; attached to the connection's metadata, which
/// hyper-util copies into each response and error.
#[derive(Clone)]
struct Served(Arc<AtomicU64>);

/// A connection to a target.
struct Link {
    tcp: TcpStream,
    served: Arc<AtomicU64>,
}

impl Connection for Link {
    fn connected(&self) -> Connected {
        Connected::new().extra(Served(self.served.clone()))
    }
}

impl AsyncRead for Link {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Link {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn head(path: &str) -> Head {
        let mut headers = HeaderMap::new();
        headers.insert("host", "localhost".parse().unwrap());
        Head { method: Method::GET, path_and_query: path.into(), headers }
    }

    async fn body_of(res: Response<Incoming>) -> String {
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    /// Reads one request head (these tests send no bodies).
    async fn read_head(s: &mut TcpStream) -> Option<String> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut byte).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&byte[..n]);
        }
        Some(String::from_utf8_lossy(&buf).into_owned())
    }

    #[tokio::test]
    async fn a_target_on_ipv6_loopback_only_is_reached_and_remembered() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            panic!("this host has no IPv6 loopback; the proxy's IPv6 fallback cannot be tested");
        };
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    while read_head(&mut s).await.is_some() {
                        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nv6").await.unwrap();
                    }
                });
            }
        });
        let up = Upstream::new(Settings::default());
        let res = up.send(port, head("/"), RequestBody::Empty).await.unwrap();
        assert_eq!(body_of(res).await, "v6");
        assert_eq!(up.families.order(port), [V6, V4]);
    }

    #[tokio::test]
    async fn a_stale_pooled_connection_is_retried_once_for_a_replayable_request() {
        // Each connection answers its first request and then closes on reading the second,
        // without answering: what a target that drops kept-alive connections looks like.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    read_head(&mut s).await;
                    let body = format!("conn{n}");
                    let res = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                    s.write_all(res.as_bytes()).await.unwrap();
                    read_head(&mut s).await;
                });
            }
        });
        let up = Upstream::new(Settings::default());
        assert_eq!(body_of(up.send(port, head("/a"), RequestBody::Empty).await.unwrap()).await, "conn0");
        let buffered = RequestBody::Buffered(Bytes::from_static(b"small"));
        assert_eq!(body_of(up.send(port, head("/b"), buffered).await.unwrap()).await, "conn1");
        assert_eq!(accepted.load(Ordering::Relaxed), 2);
        // A streamed body cannot be sent twice: the stale connection's failure is the answer.
        let streamed = RequestBody::Streamed(
            http_body_util::Full::new(Bytes::from_static(b"x")).map_err(|e| match e {}).boxed_unsync(),
        );
        match up.send(port, head("/c"), streamed).await {
            Err(ProxyError::Upstream { port: p, cause }) => {
                assert_eq!(p, port);
                assert!(matches!(cause, Cause::Closed | Cause::Reset), "{cause:?}");
            }
            other => panic!("{:?}", other.map(|r| r.status())),
        }
    }

    #[tokio::test]
    async fn a_dead_port_is_refused_by_name() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let up = Upstream::new(Settings::default());
        match up.send(port, head("/"), RequestBody::Empty).await {
            Err(ProxyError::Upstream { port: p, cause: Cause::Refused }) => assert_eq!(p, port),
            other => panic!("{:?}", other.map(|r| r.status())),
        }
    }
}
