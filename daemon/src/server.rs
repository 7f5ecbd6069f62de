//! Router assembly and the HTTP server loop.
//!
//! [`router`] is the one place where every API area is plugged in. Around the areas it adds what
//! every route shares: the JSON error envelope, JSON 404s for unknown routes and wrong methods,
//! the reference's trailing-slash redirects, a panic guard, and request tracing. Around all of
//! it, the token check ([`crate::auth`]) and the `/{sandboxId}` prefix ([`with_sandbox_prefix`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::conn;
use crate::error::envelope_layer;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections idle this long between requests are closed. The clients retry a request whose
/// kept-alive connection was closed under them, so this stays above the 60 s their proxies use.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(70);

/// The API areas' routes, documented or lean as [`crate::openapi::lean`] says.
fn areas() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::system::api::routes())
        .merge(crate::process::api::routes())
        .merge(crate::files::routes())
        .merge(crate::git::routes())
        .merge(crate::lsp::api::routes())
        .merge(crate::port::api::routes())
        .merge(crate::recordings::api::routes())
        .merge(crate::computeruse::api::routes())
}

/// The OpenAPI documents, built on first use: most sandboxes never ask for them, and building
/// them was most of the daemon's start-up.
pub struct ApiDocs {
    config: Arc<crate::config::Config>,
    tools: std::sync::OnceLock<Arc<utoipa::openapi::OpenApi>>,
    public: std::sync::OnceLock<Arc<utoipa::openapi::OpenApi>>,
}

impl ApiDocs {
    fn new(config: Arc<crate::config::Config>) -> Self {
        ApiDocs { config, tools: Default::default(), public: Default::default() }
    }

    /// The operations as a caller inside sees them (the MCP tools' schemas come from here):
    /// without the token and signed-URL parameters, which the MCP request itself has passed.
    pub fn tools(&self) -> Arc<utoipa::openapi::OpenApi> {
        self.tools
            .get_or_init(|| {
                let (_, mut doc) = areas().split_for_parts();
                crate::openapi::complete(&mut doc);
                Arc::new(doc)
            })
            .clone()
    }

    /// The document `/swagger/doc.json` serves. Without a token or key configured it is the
    /// same as [`ApiDocs::tools`], and one copy serves.
    pub fn public(&self) -> Arc<utoipa::openapi::OpenApi> {
        self.public
            .get_or_init(|| {
                let tools = self.tools();
                if documents_auth(&self.config) {
                    let mut doc = (*tools).clone();
                    document_auth(&mut doc, &self.config);
                    Arc::new(doc)
                } else {
                    tools
                }
            })
            .clone()
    }
}

/// Every route the daemon serves, and the OpenAPI documents describing them.
pub fn router(state: AppState) -> (Router, Arc<ApiDocs>) {
    // Lean: the routes with their paths and methods only; the documents wait for their first use.
    let (api, paths) = crate::openapi::lean(|| areas().split_for_parts());
    let docs = Arc::new(ApiDocs::new(state.config.clone()));
    let known = Arc::new(KnownPaths::from_doc(&paths));
    let telemetry = state.telemetry.clone();
    let auth = crate::auth::Auth::from_config(&state.config);
    let sandbox_id = state.config.sandbox_id.clone();
    let mut app = api;
    if !state.config.production {
        // Rendered on the first request: most sandboxes never ask, and the rendering is a
        // noticeable part of the start-up.
        let json: Arc<std::sync::OnceLock<String>> = Arc::default();
        let docs = docs.clone();
        app = app.route(
            "/swagger/doc.json",
            get(move || {
                let json = json.clone();
                let docs = docs.clone();
                async move {
                    let json = json
                        .get_or_init(|| docs.public().to_pretty_json().expect("OpenAPI document serialises"));
                    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], json.clone())
                }
            }),
        );
    }
    let app = app
        .fallback(unknown_route)
        .method_not_allowed_fallback(toolbox_envelope::no_route)
        .with_state(state)
        .layer(axum::Extension(known))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(envelope_layer))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span));
    // The MCP tools call the toolbox routes through this router, in process: the same request
    // layer and error envelope as over HTTP. `/mcp` itself stays outside the envelope layer:
    // the protocol answers its own errors (JSON-RPC), which the layer must not rewrite.
    let tools_docs = docs.clone();
    let app = app.clone().merge(crate::mcp::api::routes(app, move || tools_docs.tools()));
    // Outermost, so a span records the status the client gets.
    let app = crate::telemetry::http::layer(app, &telemetry);
    // After the layers, so outside them: the error layer would dress a proxied app's own bare
    // 404 as the daemon's envelope (the proxy renders its own errors), and telemetry has no
    // spans for the proxy.
    // A panic while relaying is still a 500 for that request, not a dropped connection.
    let proxy =
        crate::proxy::api::routes().layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response));
    let app = app.merge(proxy);
    (secure(app, auth, &sandbox_id), docs)
}

/// The outermost layers, around every route (the proxy's and any merged above included): the
/// `/{sandboxId}` prefix is taken off first, then the token or signature is checked.
fn secure(app: Router, auth: Arc<crate::auth::Auth>, sandbox_id: &str) -> Router {
    with_sandbox_prefix(crate::auth::protect_toolbox(app, auth), sandbox_id)
}

/// Whether [`document_auth`] changes anything under `config`.
fn documents_auth(config: &crate::config::Config) -> bool {
    config.auth_token.is_some() || config.signing_key.is_some()
}

/// With a token or signing key configured, the document says so: the two ways to send the token
/// (security schemes), a 401 on every operation, and the signed-URL parameters and their 403 on
/// the two file routes. Without, it is the reference's document, unchanged.
fn document_auth(doc: &mut utoipa::openapi::OpenApi, config: &crate::config::Config) {
    use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    use utoipa::openapi::{RefOr, Required};

    let error = crate::openapi::error_response;
    let each_operation = |doc: &mut utoipa::openapi::OpenApi,
                          f: &mut dyn FnMut(&str, &str, &mut Operation)| {
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                ("GET", &mut item.get),
                ("PUT", &mut item.put),
                ("POST", &mut item.post),
                ("DELETE", &mut item.delete),
                ("OPTIONS", &mut item.options),
                ("HEAD", &mut item.head),
                ("PATCH", &mut item.patch),
            ];
            for (method, op) in ops {
                if let Some(op) = op.as_mut() {
                    f(path, method, op);
                }
            }
        }
    };
    if config.auth_token.is_some() {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerToken",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "authKeyQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new(crate::auth::QUERY_KEY))),
        );
        doc.security = Some(vec![
            SecurityRequirement::new("bearerToken", Vec::<String>::new()),
            SecurityRequirement::new("authKeyQuery", Vec::<String>::new()),
        ]);
        each_operation(doc, &mut |_, _, op| {
            op.responses
                .responses
                .entry("401".into())
                .or_insert_with(|| error("the daemon's token is missing or wrong (code UNAUTHORIZED)"));
        });
    }
    if config.signing_key.is_some() {
        each_operation(doc, &mut |path, method, op| {
            let signed =
                matches!((path, method), ("/files/download", "GET" | "HEAD") | ("/files/upload-v2", "POST"));
            if !signed {
                return;
            }
            let params = op.parameters.get_or_insert_with(Vec::new);
            for (name, description) in [
                ("expires", "signed URL: unix seconds it is valid until (0 = no expiry); with `signature`"),
                ("signature", "signed URL: `v1_` + unpadded base64url HMAC-SHA256; replaces the token"),
            ] {
                params.push(RefOr::T(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(description))
                        .schema(Some(utoipa::openapi::schema::Object::with_type(
                            utoipa::openapi::schema::Type::String,
                        )))
                        .build(),
                ));
            }
            op.responses.responses.entry("403".into()).or_insert_with(|| {
                error("the signed URL is expired, or its signature does not match (code FORBIDDEN)")
            });
        });
    }
}

/// The request span of the trace layer: tower-http's default, with the query's secrets (the
/// token parameter, a signed URL's signature) redacted. Headers are never recorded.
fn request_span(req: &Request) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        uri = %crate::auth::redact(req.uri()),
        version = ?req.version(),
    )
}

/// Serves `app` under `/{sandbox_id}/…` as well as at the root: the SDK builds its signed URLs
/// (and every call, when pointed at the daemon directly) as `{toolboxProxyUrl}/{sandboxId}/…`,
/// and Daytona's proxy, which strips the prefix, may not be in front. Only that exact first
/// segment is taken off; any other is routed as it is (usually a 404). A redirect answering a
/// prefixed request points back under the prefix.
fn with_sandbox_prefix(app: Router, sandbox_id: &str) -> Router {
    let prefix: Arc<str> = format!("/{sandbox_id}").into();
    let layer = axum::middleware::from_fn_with_state(prefix, strip_sandbox_prefix);
    // A service around the router: `Router::layer` runs after routing, too late to change the
    // path that is routed.
    Router::new().fallback_service(tower::Layer::layer(&layer, app))
}

async fn strip_sandbox_prefix(
    axum::extract::State(prefix): axum::extract::State<Arc<str>>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let rest = match path.strip_prefix(&*prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => return next.run(req).await,
    };
    let rest = rest.to_string();
    let target = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.clone(),
    };
    let mut parts = req.uri().clone().into_parts();
    match target.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return next.run(req).await,
    }
    let Ok(uri) = axum::http::Uri::from_parts(parts) else { return next.run(req).await };
    *req.uri_mut() = uri;
    let mut res = next.run(req).await;
    if let Some(location) = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok())
        && keeps_prefix(&rest, location)
        && let Ok(v) = HeaderValue::from_str(&format!("{prefix}{location}"))
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Whether a `Location` answering `path` is the daemon's own and points into the daemon: an
/// absolute path (not `//host`). Under `/proxy/` only the proxy's trailing-slash redirect is
/// the daemon's; whatever else the user's app says is passed on as it said it.
fn keeps_prefix(path: &str, location: &str) -> bool {
    if !location.starts_with('/') || location.starts_with("//") {
        return false;
    }
    if crate::telemetry::http::is_proxy(path) {
        let target = location.split_once('?').map_or(location, |(p, _)| p);
        return target.strip_suffix('/') == Some(path);
    }
    true
}

/// Route templates, for deciding whether the other trailing-slash form of a path exists.
struct KnownPaths(matchit::Router<()>);

impl KnownPaths {
    fn from_doc(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut m = matchit::Router::new();
        for path in doc.paths.paths.keys().map(String::as_str).chain(["/swagger/doc.json"]) {
            // Both axum and matchit write parameters as `{name}`; a duplicate is harmless.
            let _ = m.insert(path, ());
        }
        KnownPaths(m)
    }

    fn contains(&self, path: &str) -> bool {
        self.0.at(path).is_ok()
    }
}

async fn unknown_route(axum::Extension(known): axum::Extension<Arc<KnownPaths>>, req: Request) -> Response {
    let path = req.uri().path();
    let other = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        Some(_) => String::new(),
        None => format!("{path}/"),
    };
    if !other.is_empty() && known.contains(&other) {
        let status = if req.method() == Method::GET {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::TEMPORARY_REDIRECT
        };
        let location = match req.uri().query() {
            Some(q) => format!("{other}?{q}"),
            None => other,
        };
        if let Ok(value) = HeaderValue::from_str(&location) {
            return (status, [(header::LOCATION, value)]).into_response();
        }
    }
    toolbox_envelope::no_route(req).await
}

fn panic_response(p: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    // Inside the envelope layer, so the body names the request like any other error.
    toolbox_envelope::panic_answer(p)
}

/// Serves a side server (web terminal, recording dashboard) on `port` until the process ends.
/// A port that cannot be bound is logged and the toolbox goes on without that server.
pub async fn serve_side(port: u16, what: &'static str, app: Router) {
    let listener = match bind(port).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, port, "cannot listen on the {what} port");
            return;
        }
    };
    tracing::info!(port, "{what} listening");
    serve(listener, app, std::future::pending()).await;
}

/// Binds the toolbox port on every interface, IPv6 and IPv4 when the host has IPv6.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
        Ok(l) => Ok(l),
        Err(_) => TcpListener::bind(SocketAddr::from(([0u8; 4], port))).await,
    }
}

/// Serves `app` until `shutdown` resolves, then stops accepting and gives in-flight requests up
/// to [`DRAIN_TIMEOUT`] to finish. Idle kept-alive connections close at once; upgraded
/// connections (websockets) have left hyper by then and are not waited for.
///
/// Each connection passes the guards of [`crate::conn`] first: a place in the connection table
/// (idle ones make room at the cap), its first byte within [`conn::FIRST_BYTE_TIMEOUT`].
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    serve_with(listener, app, shutdown, conn::Limits::from_process()).await
}

/// [`serve`] with explicit connection limits.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: conn::Limits,
) {
    let table = conn::Table::new(limits);
    tracing::debug!(max_connections = limits.max_connections, "serving");
    let mut warnings = conn::AcceptWarnings::new(Duration::from_secs(10));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection task holds a sender; when all are dropped the drain is complete.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning, and say so once
                    // in a while rather than on every attempt.
                    if let Some(line) = warnings.record(&e) {
                        tracing::warn!("{line}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = table.admit() else {
            // Every place is held by a connection in the middle of a request: closing this one
            // at once is kinder than letting it wait unseen in the queue.
            if let Some(line) = warnings.record(&std::io::Error::other(format!(
                "{} connections are busy; closing a new one",
                limits.max_connections
            ))) {
                tracing::warn!("{line}");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let (busy, requests, close) = (slot.busy.clone(), slot.requests.clone(), slot.close.clone());
        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            let guard = conn::Busy::start(&busy, &requests);
            let mut req = req.map(axum::body::Body::new);
            // The client's address, for the proxy's X-Forwarded-For.
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            async move {
                let res = app.oneshot(req).await.unwrap_or_else(|e| match e {});
                if res.status() == StatusCode::SWITCHING_PROTOCOLS {
                    // The socket goes to a WebSocket: never idle, never evicted.
                    guard.keep();
                    return Ok::<_, Infallible>(res);
                }
                Ok(res.map(|body| axum::body::Body::new(conn::TrackedBody::new(body, guard))))
            }
        });
        let (busy, requests) = (slot.busy.clone(), slot.requests.clone());
        let mut stop = stop_rx.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            // The stream holds the connection's place until the socket is closed.
            let io = conn::Guarded::new(stream, slot);
            // A connection that says nothing is closed before hyper ever sees it (or sooner,
            // when the table needs its place, or the daemon stops).
            tokio::select! {
                r = tokio::time::timeout(conn::FIRST_BYTE_TIMEOUT, io.get_ref().readable()) => {
                    if r.is_err() {
                        return;
                    }
                }
                () = close.notified() => return,
                () = stopping(&mut stop) => return,
            }
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // hyper arms this timer while it waits for the next request too, so it doubles
                // as the keep-alive idle timeout.
                .header_read_timeout(IDLE_TIMEOUT)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            // The first request's head must be whole within this time: a client that sends a
            // byte and stalls keeps no place for the keep-alive time.
            let head_deadline = tokio::time::sleep(conn::FIRST_HEAD_TIMEOUT);
            let mut head_deadline = std::pin::pin!(head_deadline);
            let mut head_due = true;
            let idle = || busy.load(std::sync::atomic::Ordering::Relaxed) == 0;
            let result = loop {
                tokio::select! {
                    r = conn.as_mut() => break r,
                    () = &mut head_deadline, if head_due => {
                        head_due = false;
                        if requests.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                            return;
                        }
                    }
                    () = close.notified() => {
                        // Asked to make room: an idle connection goes at once (hyper would
                        // otherwise wait for a head that is not coming); one in a request
                        // finishes it first.
                        if idle() {
                            return;
                        }
                        conn.as_mut().graceful_shutdown();
                        break conn.await;
                    }
                    () = stopping(&mut stop) => {
                        conn.as_mut().graceful_shutdown();
                        break conn.await;
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(alive);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv()).await.is_err() {
        tracing::warn!("in-flight requests still running after {DRAIN_TIMEOUT:?}; shutting down anyway");
    }
}

/// Resolves once the daemon is stopping (the guard `wait_for` returns is not kept: it may not
/// live across the awaits that follow).
async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lean_routes_are_the_documented_ones() {
        let methods = |item: &utoipa::openapi::PathItem| {
            [
                item.get.is_some(),
                item.put.is_some(),
                item.post.is_some(),
                item.delete.is_some(),
                item.options.is_some(),
                item.head.is_some(),
                item.patch.is_some(),
                item.trace.is_some(),
            ]
        };
        let shape = |doc: &utoipa::openapi::OpenApi| {
            doc.paths.paths.iter().map(|(p, item)| (p.clone(), methods(item))).collect::<Vec<_>>()
        };
        let lean = crate::openapi::lean(|| areas().split_for_parts().1);
        let mut full = areas().split_for_parts().1;
        assert!(full.paths.paths.len() > 50, "{} paths", full.paths.paths.len());
        // The computer-use relay's paths are described only in the full document: one
        // catch-all route serves them all.
        let relayed = computer_use_api::openapi();
        full.paths.paths.retain(|p, _| !relayed.paths.paths.contains_key(p));
        assert_eq!(shape(&lean), shape(&full));
        // Lean leaves the documentation out, and only inside `lean`.
        assert!(
            lean.paths
                .paths
                .values()
                .all(|i| i.get.as_ref().is_none_or(|o| o.responses.responses.is_empty()))
        );
        assert!(!crate::openapi::is_lean());
    }
    use crate::config;
    use crate::env::ChildEnv;
    use axum::body::Body;
    use http_body_util::BodyExt;

    fn app(production: bool) -> Router {
        let mut vars = std::collections::HashMap::new();
        vars.insert("DAYTONA_SANDBOX_ID".to_string(), "t".to_string());
        if production {
            vars.insert("ENVIRONMENT".to_string(), "production".to_string());
        }
        let cfg = config::from_env(&vars).unwrap();
        let env = ChildEnv::new([("HOME".into(), "/home/u".into())]);
        router(AppState::new(cfg, env, "/work".into())).0
    }

    async fn send(
        app: &Router,
        method: Method,
        uri: &str,
        body: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let req = Request::builder().method(method).uri(uri).body(Body::from(body.to_string())).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn info_routes() {
        let app = app(false);
        assert_eq!(send(&app, Method::GET, "/work-dir", "").await.2, r#"{"dir":"/work"}"#);
        assert_eq!(send(&app, Method::GET, "/user-home-dir", "").await.2, r#"{"dir":"/home/u"}"#);
        assert_eq!(send(&app, Method::GET, "/project-dir", "").await.2, r#"{"dir":"/home/u"}"#);
        let (status, _, body) = send(&app, Method::POST, "/init", r#"{"token":"t"}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("Auth token set"));
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_are_json_404s() {
        let app = app(false);
        for (method, uri) in
            [(Method::GET, "/nope"), (Method::DELETE, "/version"), (Method::GET, "/process/execute")]
        {
            let (status, headers, body) = send(&app, method.clone(), uri, "").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["code"], "NOT_FOUND");
            assert_eq!(v["path"], uri);
        }
    }

    #[tokio::test]
    async fn trailing_slash_redirects() {
        let app = app(false);
        let (status, headers, _) = send(&app, Method::GET, "/version/?a=1", "").await;
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(headers[header::LOCATION], "/version?a=1");
        let (status, headers, _) = send(&app, Method::POST, "/env/", "{}").await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(headers[header::LOCATION], "/env");
        assert_eq!(send(&app, Method::GET, "/", "").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn body_errors_and_env() {
        let app = app(false);
        let (status, _, body) = send(&app, Method::POST, "/env", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("INVALID_REQUEST_BODY"));
        let (status, _, body) = send(&app, Method::POST, "/env", r#"{"set":{"A=B":"x"}}"#).await;
        assert_eq!((status, body.contains("BAD_REQUEST")), (StatusCode::BAD_REQUEST, true));
        assert_eq!(send(&app, Method::POST, "/env", r#"{"set":{"A":"x"}}"#).await.2, "{}");
    }

    #[tokio::test]
    async fn openapi_document_lists_routes_unless_production() {
        let (status, _, body) = send(&app(false), Method::GET, "/swagger/doc.json", "").await;
        assert_eq!(status, StatusCode::OK);
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        for path in
            ["/version", "/work-dir", "/user-home-dir", "/project-dir", "/init", "/env", "/process/execute"]
        {
            assert!(doc["paths"].get(path).is_some(), "{path} missing from the document");
        }
        assert_eq!(send(&app(true), Method::GET, "/swagger/doc.json", "").await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_document_tells_of_the_token_and_signed_urls_only_when_configured() {
        let doc = |vars: &[(&str, &str)]| {
            let mut all: std::collections::HashMap<String, String> =
                vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            all.insert("DAYTONA_SANDBOX_ID".into(), "t".into());
            let cfg = config::from_env(&all).unwrap();
            let env = ChildEnv::new([("HOME".into(), "/home/u".into())]);
            serde_json::to_value(&*router(AppState::new(cfg, env, "/work".into())).1.public()).unwrap()
        };
        let plain = doc(&[]);
        assert!(plain.get("security").is_none());
        assert!(plain["paths"]["/version"]["get"]["responses"].get("401").is_none());
        let secured =
            doc(&[("DAYTONA_AUTH_TOKEN", "0123456789abcdef"), ("DAYTONA_SIGNING_KEY", "0123456789abcdef")]);
        assert_eq!(secured["components"]["securitySchemes"]["bearerToken"]["scheme"], "bearer");
        assert_eq!(
            secured["components"]["securitySchemes"]["authKeyQuery"]["name"],
            "DAYTONA_SANDBOX_AUTH_KEY"
        );
        assert!(secured["paths"]["/version"]["get"]["responses"].get("401").is_some());
        let download = &secured["paths"]["/files/download"]["get"];
        assert!(download["responses"].get("403").is_some());
        let names: Vec<_> =
            download["parameters"].as_array().unwrap().iter().map(|p| p["name"].clone()).collect();
        assert!(names.contains(&"signature".into()) && names.contains(&"expires".into()), "{names:?}");
        assert!(secured["paths"]["/files/upload-v2"]["post"]["responses"].get("403").is_some());
        let info = secured["paths"]["/files/info"]["get"]["parameters"].as_array().unwrap();
        assert!(info.iter().all(|p| p["name"] != "signature"), "only the two signed routes");
    }

    #[test]
    fn which_location_keeps_the_sandbox_prefix() {
        assert!(keeps_prefix("/version/", "/version"));
        assert!(!keeps_prefix("/version/", "https://elsewhere/"));
        assert!(!keeps_prefix("/version/", "//elsewhere/x"));
        assert!(keeps_prefix("/proxy/3000", "/proxy/3000/?a"));
        // The user's app's own redirect passes as it was.
        assert!(!keeps_prefix("/proxy/3000/app", "/login"));
    }

    #[tokio::test]
    async fn mcp_is_served_beside_the_toolbox_and_absent_from_its_document() {
        let app = app(true);
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let req = Request::post("/mcp")
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(Body::from(init))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["result"]["serverInfo"]["name"], "daytona-toolbox", "{v}");
        // Every tool of the table matches an operation of the document this router serves.
        let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        let req = Request::post("/mcp")
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .body(Body::from(list))
            .unwrap();
        let body = app.clone().oneshot(req).await.unwrap().into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["result"]["tools"].as_array().map(Vec::len),
            Some(crate::mcp::tools::TOOLS.len()),
            "{v}"
        );
        // A protocol endpoint, not an operation: the document does not list it, and its
        // trailing-slash form is an unknown path rather than a redirect.
        let (_, doc) = router(AppState::new(
            config::from_env(&[("DAYTONA_SANDBOX_ID".to_string(), "t".to_string())].into_iter().collect())
                .unwrap(),
            ChildEnv::new([("HOME".into(), "/home/u".into())]),
            "/work".into(),
        ));
        assert!(!doc.public().paths.paths.contains_key("/mcp"));
        assert_eq!(send(&app, Method::POST, "/mcp/", init).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_envelope() {
        let app = Router::new()
            .route(
                "/p",
                axum::routing::get(|| async {
                    if true {
                        panic!("boom");
                    }
                    "unreachable"
                }),
            )
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
            .layer(axum::middleware::from_fn(envelope_layer));
        let (status, _, body) = send(&app, Method::GET, "/p", "").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains(r#""path":"/p""#), "{body}");
    }
}

/// Router tests of the outermost layers on the whole toolbox router as [`router`] builds it:
/// the token check and its 401s, signed file URLs, the `/{sandboxId}` prefix and its redirects,
/// the redaction of secrets in the request log, and the side servers' check.
#[cfg(test)]
mod auth_tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use axum::Router;

    use crate::auth::signed_url;
    use crate::env::ChildEnv;
    use crate::state::AppState;

    const TOKEN: &str = "tok-0123456789abcdef";
    const KEY: &str = "sign-0123456789abcdef";
    const SANDBOX: &str = "sb-1";

    struct App {
        router: Router,
        work: tempfile::TempDir,
    }

    fn app(vars: &[(&str, &str)]) -> App {
        let work = tempfile::tempdir().unwrap();
        let vars = [("DAYTONA_SANDBOX_ID", SANDBOX)]
            .iter()
            .chain(vars)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = crate::config::from_env(&vars).unwrap();
        let env = ChildEnv::new([("HOME".into(), work.path().into())]);
        let (router, _) = crate::server::router(AppState::new(config, env, work.path().to_path_buf()));
        App { router, work }
    }

    fn with_token() -> App {
        app(&[("DAYTONA_AUTH_TOKEN", TOKEN)])
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Answer {
        fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
        }
    }

    async fn send(app: &Router, req: Request<Body>) -> Answer {
        let res = app.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned();
        Answer { status: parts.status, headers: parts.headers, body }
    }

    async fn get(app: &Router, uri: &str) -> Answer {
        send(app, Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn get_bearer(app: &Router, uri: &str, token: &str) -> Answer {
        let req =
            Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty());
        send(app, req.unwrap()).await
    }

    fn assert_401(a: &Answer, says: &str) {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
        assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");
        let v = a.json();
        assert_eq!(v["code"], "UNAUTHORIZED");
        assert_eq!(v["statusCode"], 401);
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(says), "{msg}");
        assert!(!a.body.contains(TOKEN) && !a.body.contains("guess-"), "never echoes a value: {}", a.body);
    }

    #[tokio::test]
    async fn without_a_token_nothing_is_asked() {
        let app = app(&[]);
        assert_eq!(get(&app.router, "/version").await.status, StatusCode::OK);
        // Stray credentials and signature parameters are ignored, as behind Daytona's proxy.
        let a =
            get_bearer(&app.router, "/version?DAYTONA_SANDBOX_AUTH_KEY=x&expires=1&signature=y", "k").await;
        assert_eq!(a.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn missing_or_wrong_token_is_a_401_on_every_route() {
        let app = with_token();
        for uri in [
            "/version",
            "/files?path=/",
            "/nope",
            "/swagger/doc.json",
            "/proxy/1/x",
            "/process/pty/x/connect",
            "/",
        ] {
            assert_401(&get(&app.router, uri).await, "authentication required");
            assert_401(
                &get_bearer(&app.router, uri, "guess-0123456789abcdef").await,
                "the bearer token does not match",
            );
            let wrong_query =
                format!("{uri}{}DAYTONA_SANDBOX_AUTH_KEY=guess-1", if uri.contains('?') { "&" } else { "?" });
            assert_401(
                &get(&app.router, &wrong_query).await,
                "DAYTONA_SANDBOX_AUTH_KEY query parameter does not match",
            );
        }
        // A websocket upgrade is refused before it is accepted.
        let req = Request::get("/process/interpreter/execute")
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(Body::empty())
            .unwrap();
        assert_401(&send(&app.router, req).await, "authentication required");
        // Another scheme is not our credential.
        let req = Request::get("/version").header(header::AUTHORIZATION, format!("Basic {TOKEN}"));
        assert_401(&send(&app.router, req.body(Body::empty()).unwrap()).await, "authentication required");
    }

    #[tokio::test]
    async fn the_right_token_in_a_header_or_the_query_passes() {
        let app = with_token();
        assert_eq!(get_bearer(&app.router, "/version", TOKEN).await.status, StatusCode::OK);
        let req = Request::get("/version").header(header::AUTHORIZATION, format!("bearer  {TOKEN} "));
        assert_eq!(send(&app.router, req.body(Body::empty()).unwrap()).await.status, StatusCode::OK);
        let a = get(&app.router, &format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
        assert_eq!(a.status, StatusCode::OK);
        // A wrong header beside the right parameter (a proxied app's own header): the parameter counts.
        let a =
            get_bearer(&app.router, &format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"), "theirs").await;
        assert_eq!(a.status, StatusCode::OK);
        // A redirect keeps the parameter, so a browser following it is let in again.
        let a = get(&app.router, &format!("/{SANDBOX}/proxy/1?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
        assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            a.headers[header::LOCATION],
            format!("/{SANDBOX}/proxy/1/?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")
        );
        let a = get(&app.router, &format!("/version/?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await;
        assert_eq!(a.headers[header::LOCATION], format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"));
        // Past the check, the usual answers: a 404 for an unknown route, the redirect.
        assert_eq!(get_bearer(&app.router, "/nope", TOKEN).await.status, StatusCode::NOT_FOUND);
        let a = get_bearer(&app.router, "/version/?a=1", TOKEN).await;
        assert_eq!(
            (a.status, &a.headers[header::LOCATION]),
            (StatusCode::MOVED_PERMANENTLY, &"/version?a=1".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn routes_are_served_under_the_sandbox_id_too() {
        let app = app(&[]);
        let a = get(&app.router, &format!("/{SANDBOX}/work-dir")).await;
        assert_eq!((a.status, a.json()["dir"].as_str()), (StatusCode::OK, app.work.path().to_str()));
        assert_eq!(get(&app.router, &format!("/{SANDBOX}/version")).await.status, StatusCode::OK);
        // Only that id.
        let a = get(&app.router, "/sb-2/version").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(get(&app.router, &format!("/{SANDBOX}x/version")).await.status, StatusCode::NOT_FOUND);
        // Redirects keep the prefix: the trailing-slash ones and the proxy's.
        let a = get(&app.router, &format!("/{SANDBOX}/version/?a=1")).await;
        assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(a.headers[header::LOCATION], format!("/{SANDBOX}/version?a=1"));
        let a = get(&app.router, &format!("/{SANDBOX}/proxy/1?q=2")).await;
        assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(a.headers[header::LOCATION], format!("/{SANDBOX}/proxy/1/?q=2"));
        // The proxy's relay runs on the stripped path (nothing listens on port 1: its own 502).
        let a = get(&app.router, &format!("/{SANDBOX}/proxy/1/x")).await;
        assert_eq!(
            (a.status, a.json()["code"].as_str()),
            (StatusCode::BAD_GATEWAY, Some("PROXY_UPSTREAM_FAILED"))
        );
        // And with a token, the prefixed routes ask for it like the others.
        let app = with_token();
        assert_401(&get(&app.router, &format!("/{SANDBOX}/version")).await, "authentication required");
        assert_eq!(
            get_bearer(&app.router, &format!("/{SANDBOX}/version"), TOKEN).await.status,
            StatusCode::OK
        );
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn signed(route: &str, method: &str, path: &str, expires: u64) -> String {
        let sig = signed_url::sign(KEY.as_bytes(), method, path.as_bytes(), &expires.to_string());
        let query: String = form(&[("path", path), ("expires", &expires.to_string()), ("signature", &sig)]);
        format!("{route}?{query}")
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        pairs
            .iter()
            .map(|(k, v)| {
                let v: String = v
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                            (b as char).to_string()
                        }
                        b' ' => "+".into(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn assert_403(a: &Answer, says: &str) {
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        let v = a.json();
        assert_eq!(v["code"], "FORBIDDEN");
        assert!(v["message"].as_str().unwrap().contains(says), "{v}");
    }

    fn upload(uri: &str, content: &str) -> Request<Body> {
        let body = format!(
            "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{content}\r\n--XX--\r\n"
        );
        Request::post(uri)
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XX")
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn signed_urls_replace_the_token_on_the_two_file_routes() {
        let app = app(&[("DAYTONA_AUTH_TOKEN", TOKEN), ("DAYTONA_SIGNING_KEY", KEY)]);
        let dir = app.work.path();
        let file = dir.join("a b.txt");
        std::fs::write(&file, "hello").unwrap();
        let path = file.to_str().unwrap();
        let later = now() + 600;

        let a = get(&app.router, &signed("/files/download", "GET", path, later)).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "hello"));
        let a = get(&app.router, &format!("/{SANDBOX}{}", signed("/files/download", "GET", path, 0))).await;
        assert_eq!(a.status, StatusCode::OK, "never expires, under the prefix as the SDK builds it");
        let head = Request::head(signed("/files/download", "GET", path, later)).body(Body::empty()).unwrap();
        assert_eq!(send(&app.router, head).await.status, StatusCode::OK, "HEAD takes the GET signature");

        let target = dir.join("up.txt");
        let up = target.to_str().unwrap();
        let a = send(&app.router, upload(&signed("/files/upload-v2", "POST", up, later), "data")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "data");

        // Refusals, each saying why; nothing is written by a refused upload.
        let past = now() - 10;
        assert_403(&get(&app.router, &signed("/files/download", "GET", path, past)).await, "expired at");
        let tampered = signed("/files/download", "GET", "/etc/hostname", later)
            .replace("path=/etc/hostname", &form(&[("path", path)]));
        assert!(tampered.contains("a+b.txt"), "{tampered}");
        assert_403(&get(&app.router, &tampered).await, "signature does not match");
        let wrong_method = signed("/files/download", "POST", path, later);
        assert_403(&get(&app.router, &wrong_method).await, "signature does not match");
        let fresh = dir.join("never.txt");
        let download_sig = signed("/files/upload-v2", "GET", fresh.to_str().unwrap(), later);
        assert_403(&send(&app.router, upload(&download_sig, "x")).await, "signature does not match");
        assert!(!fresh.exists(), "a refused upload leaves no file");
        let sig = signed("/files/download", "GET", path, later);
        let bad_sig = sig.replace("signature=v1_", "signature=v1_A");
        assert_403(&get(&app.router, &bad_sig).await, "signature does not match");
        assert_403(&get(&app.router, &sig.replace("signature=v1_", "signature=v2_")).await, "scheme");
        assert_403(&get(&app.router, &sig.replace("signature=v1_", "signature=v1_*")).await, "base64url");
        // A malformed query is a 400 that does not quote it (the signature would be logged).
        let a = get(&app.router, &format!("{sig}%zz")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(!a.body.contains("v1_"), "{}", a.body);
        // Half a signed URL, or a bad expiry, is the client's mistake.
        let only_expires = format!("/files/download?{}", form(&[("path", path), ("expires", "0")]));
        let a = get(&app.router, &only_expires).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(a.json()["message"].as_str().unwrap().contains("`signature`"));
        let a = get(&app.router, &sig.replace(&format!("expires={later}"), "expires=soon")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        // Elsewhere a signature is no credential: the token rule applies.
        let elsewhere = signed("/files/info", "GET", path, later);
        assert_401(&get(&app.router, &elsewhere).await, "authentication required");
        // The token still works on the file routes.
        let plain = format!("/files/download?{}", form(&[("path", path)]));
        assert_eq!(get_bearer(&app.router, &plain, TOKEN).await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn without_a_signing_key_signatures_are_ignored() {
        let secured = with_token();
        let file = secured.work.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let uri = signed("/files/download", "GET", file.to_str().unwrap(), now() + 60);
        assert_401(&get(&secured.router, &uri).await, "authentication required");
        assert_eq!(get_bearer(&secured.router, &uri, TOKEN).await.status, StatusCode::OK);
        // Neither token nor key: the file is served whatever the parameters say.
        let plain = app(&[]);
        assert_eq!(
            get(&plain.router, &uri.replace("signature=v1_", "signature=v9_")).await.status,
            StatusCode::OK
        );
    }

    /// A writer into a shared buffer, for the log subscriber of one test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn no_token_or_signature_reaches_the_log() {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
        );
        let _guard = tracing::subscriber::set_default(subscriber);

        let app = app(&[("DAYTONA_AUTH_TOKEN", TOKEN), ("DAYTONA_SIGNING_KEY", KEY)]);
        let file = app.work.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let uri = signed("/files/download", "GET", file.to_str().unwrap(), now() + 60);
        let sig = uri.split("signature=").nth(1).unwrap().to_string();
        // Tests on other threads (with other subscribers, or none) can cache "not interested"
        // for the request span's callsite between our rebuild and our requests: the rounds are
        // repeated until the requests were seen, which is what the check below needs.
        let mut log = String::new();
        for _ in 0..20 {
            out.0.lock().unwrap().clear();
            tracing::callsite::rebuild_interest_cache();
            assert_eq!(get(&app.router, &uri).await.status, StatusCode::OK);
            assert_eq!(
                get(&app.router, &format!("/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")).await.status,
                StatusCode::OK
            );
            assert_eq!(get_bearer(&app.router, "/version", TOKEN).await.status, StatusCode::OK);
            assert_eq!(
                get(&app.router, "/version?DAYTONA_SANDBOX_AUTH_KEY=guess-0123456789").await.status,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(
                get(&app.router, &uri.replace("signature=v1_", "signature=v1_A")).await.status,
                StatusCode::FORBIDDEN
            );
            log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            if log.contains("/files/download") && log.contains("REDACTED") {
                break;
            }
        }
        assert!(log.contains("/files/download"), "the requests were logged: {log}");
        assert!(log.contains("REDACTED"), "{log}");
        for secret in [TOKEN, KEY, sig.as_str(), "guess-0123456789"] {
            assert!(!log.contains(secret), "{secret} in the log:\n{log}");
        }
    }
}
