//! The typed extractors every route takes its input through. Each one rejects with the JSON
//! envelope and a message that names the problem; no route uses axum's bare extractors, whose
//! rejections are plain text.
//!
//! - [`Json`]: a JSON object body, whatever the `Content-Type` (the sync Python client sends
//!   some bodies without one). A `Content-Length` over the limit is refused with 413 before a
//!   byte is read; a chunked body is cut off at the limit with the same answer.
//! - [`Query`]: the query string into a struct; duplicate keys and bad values are 400.
//! - [`Path`]: path parameters; an undecodable one (`%FF`) is 400.
//! - [`Ws`]: a WebSocket upgrade; a plain request to a WebSocket route is 400.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::{ApiError, ErrorCode, Generic, Pending};

/// Largest JSON body accepted. Commands travel in JSON (`/process/execute`), so this is generous;
/// files never come through here.
pub const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

/// Why the request layer refused a request. Converts into each binary's [`ApiError`], so code
/// that runs an extractor by hand can use `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub kind: Generic,
    pub message: String,
}

impl Rejection {
    pub fn bad_request(detail: impl std::fmt::Display) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            kind: Generic::BadRequest,
            message: format!("bad request: {detail}"),
        }
    }

    pub fn invalid_body(detail: impl std::fmt::Display) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            kind: Generic::InvalidRequestBody,
            message: format!("invalid body request: {detail}"),
        }
    }

    pub fn too_large(limit: usize) -> Self {
        Rejection {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: Generic::PayloadTooLarge,
            message: format!("payload too large: the request body exceeds the limit of {limit} bytes"),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        Pending { status: self.status, code: Some(self.kind.as_str()), message: self.message }.into_response()
    }
}

impl<C: ErrorCode> From<Rejection> for ApiError<C> {
    fn from(r: Rejection) -> Self {
        ApiError { status: r.status, code: Some(C::from(r.kind)), message: r.message }
    }
}

/// A JSON object request body, and a JSON response (`application/json`), so a handler needs
/// one `Json` for both directions.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Rejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Rejection> {
        read_body(req, MAX_JSON_BODY).await.and_then(|b| decode(&b)).map(Json)
    }
}

/// A JSON object request body that may be left out: an empty (or all-whitespace) body is
/// `None`; anything else must decode as [`Json`] would.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = Rejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Rejection> {
        let body = read_body(req, MAX_JSON_BODY).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        decode(&body).map(|v| OptionalJson(Some(v)))
    }
}

/// Reads a whole body of at most `limit` bytes: a declared length over the limit is refused
/// before reading, an undeclared one as soon as it passes the limit.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, Rejection> {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Rejection::too_large(limit));
    }
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
        let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if over {
            Rejection::too_large(limit)
        } else {
            Rejection::invalid_body(format!("cannot read body: {e}"))
        }
    })
}

/// Decodes a JSON object body, naming what is wrong when it cannot. Every request body of the
/// API is an object; serde would also fill a struct from an array (`[]`, `[null]`), which no
/// client sends and which must not create anything.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(Rejection::invalid_body("the request body is empty; a JSON object is expected")),
        Some(b'{') => {}
        Some(_) => return Err(Rejection::invalid_body("the request body must be a JSON object")),
    }
    serde_json::from_slice(bytes).map_err(Rejection::invalid_body)
}

/// The query string, decoded into `T`. Repeated keys are refused for struct targets (serde
/// names the duplicate field) rather than silently taking one of them.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Decodes a query string into `T`.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Rejection> {
    serde_urlencoded::from_str(query).map_err(|e| Rejection::bad_request(format!("invalid query: {e}")))
}

/// The route's path parameters, decoded into `T` (a `String`, a tuple, or a struct).
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(Rejection::bad_request(format!("invalid path parameter: {}", e.body_text()))),
        }
    }
}

/// A WebSocket upgrade.
pub struct Ws(pub axum::extract::ws::WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for Ws {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        axum::extract::ws::WebSocketUpgrade::from_request_parts(parts, state).await.map(Ws).map_err(|e| {
            Rejection::bad_request(format!("this route expects a WebSocket upgrade: {}", e.body_text()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Req {
        name: String,
        n: Option<u32>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct Opt {
        a: Option<String>,
        follow: Option<bool>,
    }

    fn app() -> Router {
        Router::new()
            .route("/j", post(|Json(r): Json<Req>| async move { r.name }))
            .route("/o", post(|Json(r): Json<Opt>| async move { format!("{:?}", r.a) }))
            .route("/q", get(|Query(q): Query<Opt>| async move { format!("{:?}", q.follow) }))
            .route("/p/{id}", get(|Path(id): Path<String>| async move { id }))
            .route("/w", get(|Ws(_ws): Ws| async { "upgraded" }))
            .layer(axum::middleware::from_fn(layer))
    }

    async fn send(req: Request) -> (StatusCode, String) {
        let res = app().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn envelope(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not the envelope ({e}): {body}"))
    }

    #[test]
    fn decodes_objects_and_reports() {
        let r: Req = decode(br#"{"name":"a","n":null,"extra":1}"#).unwrap();
        assert_eq!(r, Req { name: "a".into(), n: None });
        let e = decode::<Req>(b"  ").unwrap_err();
        assert_eq!(e.kind, Generic::InvalidRequestBody);
        assert!(e.message.contains("empty"));
        let e = decode::<Req>(br#"{"name":1}"#).unwrap_err();
        assert!(e.message.starts_with("invalid body request: invalid type"), "{}", e.message);
        for array in [&b"[]"[..], b"[null,null]", b" [\"a\"]", b"null", b"1"] {
            let e = decode::<Opt>(array).unwrap_err();
            assert_eq!(e.message, "invalid body request: the request body must be a JSON object");
        }
    }

    #[tokio::test]
    async fn json_rejections_are_envelopes() {
        let (s, b) = send(Request::post("/j").body(Body::from(r#"{"name":"x"}"#)).unwrap()).await;
        assert_eq!((s, b.as_str()), (StatusCode::OK, "x"));
        let (s, b) = send(Request::post("/o").body(Body::from("[]")).unwrap()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(envelope(&b)["code"], "INVALID_REQUEST_BODY");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_413_unread() {
        // The body is never polled: a declared length alone decides.
        let req = Request::post("/o")
            .header("content-length", (MAX_JSON_BODY + 1).to_string())
            .body(Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>()))
            .unwrap();
        let (s, b) = send(req).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(envelope(&b)["code"], "PAYLOAD_TOO_LARGE");
    }

    #[tokio::test]
    async fn an_undeclared_body_over_the_limit_is_413() {
        let req = Request::post("/o").body(Body::from(vec![b' '; 100])).unwrap();
        let err = read_body(req, 10).await.unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn query_duplicates_and_bad_values_are_400_envelopes() {
        let (s, b) = send(Request::get("/q?follow=true").body(Body::empty()).unwrap()).await;
        assert_eq!((s, b.as_str()), (StatusCode::OK, "Some(true)"));
        for uri in ["/q?follow=1&follow=1", "/q?follow=maybe"] {
            let (s, b) = send(Request::get(uri).body(Body::empty()).unwrap()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
            let v = envelope(&b);
            assert_eq!(v["code"], "BAD_REQUEST");
            assert!(v["message"].as_str().unwrap().starts_with("bad request: invalid query"), "{v}");
        }
    }

    #[tokio::test]
    async fn undecodable_path_parameters_are_400_envelopes() {
        let (s, b) = send(Request::get("/p/a%20b").body(Body::empty()).unwrap()).await;
        assert_eq!((s, b.as_str()), (StatusCode::OK, "a b"));
        let (s, b) = send(Request::get("/p/%FF%FE").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(envelope(&b)["message"].as_str().unwrap().contains("invalid path parameter"));
    }

    #[tokio::test]
    async fn a_plain_request_to_a_websocket_route_is_400() {
        let (s, b) = send(Request::get("/w").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(envelope(&b)["message"].as_str().unwrap().contains("WebSocket upgrade"));
    }
}
