//! One server span per toolbox request.
//!
//! The layer is only added to the router when an endpoint is configured; then, until `/init`,
//! a request costs one atomic load. Preview-proxy requests (`/proxy/...`) get no span: they are
//! the user's traffic, not the toolbox's.

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::Telemetry;

/// `router` with request spans when telemetry is configured; `router` itself otherwise.
pub fn layer(router: Router, telemetry: &Arc<Telemetry>) -> Router {
    if !telemetry.configured() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(telemetry.clone(), trace))
}

/// Whether a path belongs to the preview proxy.
pub fn is_proxy(path: &str) -> bool {
    path == "/proxy" || path.starts_with("/proxy/")
}

/// The span's name and start attributes, or `None` for a request that gets no span. The name
/// is `METHOD /route/{template}` when a route matched, the method alone otherwise (OpenTelemetry's
/// HTTP conventions: a raw path would make every file its own span name).
pub fn describe(method: &str, path: &str, route: Option<&str>) -> Option<(String, Vec<KeyValue>)> {
    if is_proxy(path) {
        return None;
    }
    let mut attrs = vec![
        KeyValue::new("http.request.method", method.to_string()),
        KeyValue::new("url.path", path.to_string()),
    ];
    let name = match route {
        Some(route) => {
            attrs.push(KeyValue::new("http.route", route.to_string()));
            format!("{method} {route}")
        }
        None => method.to_string(),
    };
    Some((name, attrs))
}

async fn trace(State(telemetry): State<Arc<Telemetry>>, req: Request, next: Next) -> Response {
    let Some(tracer) = telemetry.tracer() else {
        return next.run(req).await;
    };
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let Some((name, attrs)) = describe(req.method().as_str(), req.uri().path(), route) else {
        return next.run(req).await;
    };
    let span = tracer.span_builder(name).with_kind(SpanKind::Server).with_attributes(attrs).start(tracer);
    // Current while the handler runs, so its log records carry the trace and span ids.
    let cx = Context::current_with_span(span);
    let res = next.run(req).with_context(cx.clone()).await;
    let span = cx.span();
    let status = res.status();
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status.as_u16())));
    // Server spans are errors for 5xx only: a 4xx is the client's mistake, not the server's.
    if status.is_server_error() {
        span.set_status(Status::error(status.to_string()));
    }
    span.end();
    res
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use opentelemetry::Value;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Collect {
        fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            self.0.lock().unwrap().extend(batch);
            std::future::ready(Ok(()))
        }
    }

    fn attr(span: &SpanData, key: &str) -> Option<Value> {
        span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
    }

    async fn send(app: &Router, method: &str, uri: &str) -> StatusCode {
        let req = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        app.clone().oneshot(req).await.unwrap().status()
    }

    fn app(telemetry: &Arc<Telemetry>) -> Router {
        let routes = Router::new()
            .route("/things/{id}", get(|| async { "thing" }))
            .route("/boom", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .route("/proxy/{port}/{*path}", get(|| async { "proxied" }))
            .fallback(|| async { StatusCode::NOT_FOUND });
        layer(routes, telemetry)
    }

    #[test]
    fn proxy_paths_get_no_span_and_names_use_the_route() {
        assert!(describe("GET", "/proxy/3000/x", Some("/proxy/{port}/{*path}")).is_none());
        assert!(describe("GET", "/proxy", None).is_none());
        assert!(describe("GET", "/proxyish", None).is_some());
        let (name, attrs) = describe("POST", "/files/a b", Some("/files/{path}")).unwrap();
        assert_eq!(name, "POST /files/{path}");
        assert_eq!(attrs.len(), 3);
        assert_eq!(describe("GET", "/nope", None).unwrap().0, "GET");
    }

    #[tokio::test]
    async fn one_server_span_per_request_and_none_for_the_proxy() {
        let spans = Collect::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
        let telemetry = Arc::new(Telemetry::exporting_to(provider));
        let app = app(&telemetry);
        assert_eq!(send(&app, "GET", "/things/42").await, StatusCode::OK);
        assert_eq!(send(&app, "GET", "/proxy/3000/index.html").await, StatusCode::OK);
        assert_eq!(send(&app, "GET", "/proxy/1/").await, StatusCode::NOT_FOUND);
        assert_eq!(send(&app, "GET", "/boom").await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(send(&app, "DELETE", "/nope").await, StatusCode::NOT_FOUND);

        let spans = spans.0.lock().unwrap().clone();
        let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["GET /things/{id}", "GET /boom", "DELETE"]);
        let thing = &spans[0];
        assert_eq!(thing.span_kind, opentelemetry::trace::SpanKind::Server);
        assert_eq!(attr(thing, "http.request.method"), Some(Value::from("GET")));
        assert_eq!(attr(thing, "url.path"), Some(Value::from("/things/42")));
        assert_eq!(attr(thing, "http.route"), Some(Value::from("/things/{id}")));
        assert_eq!(attr(thing, "http.response.status_code"), Some(Value::I64(200)));
        assert_eq!(thing.status, Status::Unset);
        assert!(matches!(spans[1].status, Status::Error { .. }), "a 5xx is an error");
        assert_eq!(spans[2].status, Status::Unset, "a 4xx is not the server's error");
        assert_eq!(attr(&spans[2], "http.route"), None);
    }

    #[tokio::test]
    async fn no_layer_without_an_endpoint_and_no_span_before_init() {
        let vars =
            [("DAYTONA_SANDBOX_ID", "t")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let off = Arc::new(Telemetry::new(&crate::config::from_env(&vars).unwrap(), "v"));
        assert_eq!(send(&app(&off), "GET", "/things/1").await, StatusCode::OK);
        assert!(off.tracer().is_none());
    }
}
