//! The HTTP client the OTLP exporters send through: hyper over plain TCP, on the daemon's runtime.
//!
//! Why not the exporter's own clients: reqwest would bring a second TLS stack into the static
//! binary next to libgit2's OpenSSL, and the collector inside a cluster is reached over plain
//! http. Why its own runtime hop: the SDK's batch processors export from their own threads,
//! where no Tokio reactor runs, so each request is spawned onto the daemon's runtime and only
//! its result travels back (a `JoinHandle` can be awaited from any executor).
//!
//! Every request carries the `sandbox-auth-token` header with the token of the latest `/init`,
//! read at send time, so a new token needs no new exporters.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// The header the collector authenticates sandboxes by.
pub const TOKEN_HEADER: &str = "sandbox-auth-token";
/// A collector answers with a small status message; anything larger is not a collector.
const MAX_RESPONSE: usize = 64 * 1024;

/// The token of the latest `/init`, shared by every exporter.
pub type Token = Arc<RwLock<Option<HeaderValue>>>;

#[derive(Clone)]
pub struct HyperClient {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    token: Token,
    timeout: Duration,
}

impl std::fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("HyperClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl HyperClient {
    /// A client whose requests run on `runtime` and give up after `timeout` (connect, send and
    /// the whole answer).
    pub fn new(runtime: tokio::runtime::Handle, token: Token, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        // Building the pool needs no runtime; its timers are created on first use, inside it.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        HyperClient { client, runtime, token, timeout }
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (mut parts, body) = request.into_parts();
        if parts.uri.scheme_str() != Some("http") {
            return Err(format!("{}: only http:// collector endpoints are supported", parts.uri).into());
        }
        if let Some(token) = toolbox_envelope::sync::read(&self.token).clone() {
            parts.headers.insert(TOKEN_HEADER, token);
        }
        let request = hyper::Request::from_parts(parts, Full::new(body));
        let (client, timeout) = (self.client.clone(), self.timeout);
        let exchange = async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        let task = self.runtime.spawn(async move {
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}").into()))
        });
        task.await.map_err(|e| -> HttpError { format!("the export task ended: {e}").into() })?
    }
}

impl HttpClient for HyperClient {
    // The trait is declared with `async_trait`; this is its expanded form.
    fn send_bytes<'a, 'f>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'f>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.send(request))
    }
}
