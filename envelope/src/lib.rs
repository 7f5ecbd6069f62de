//! The toolbox API's error model and request layer, shared by the daemon and the computer-use
//! agent. The daemon relays the agent's answers unchanged, so both must render exactly the same
//! envelope and reject bad input the same way.
//!
//! - [`ApiError`] is the one error type, generic over each binary's code enum ([`ErrorCode`]).
//! - [`Envelope`] is the one JSON error body:
//!   `{"statusCode", "message", "code"?, "source": "DAYTONA_DAEMON", "timestamp", "path", "method"}`;
//!   the error layer renders it, the OpenAPI document describes it, bulk-download error parts
//!   carry it.
//! - [`extract`] holds the typed extractors every route takes its input through; each rejects
//!   with the envelope.
//! - [`layer`] fills in the request's path and method, and wraps any error response that left
//!   the router without a body (a safety net: no 4xx or 5xx is ever sent bare).

pub mod extract;
pub mod sync;
pub mod timefmt;

use std::fmt;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The `source` of every error this project emits; with `code` it selects the SDK's exception
/// class.
pub const SOURCE: &str = "DAYTONA_DAEMON";

/// The kinds of error the shared layer raises itself; each binary maps them onto its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generic {
    BadRequest,
    InvalidRequestBody,
    NotFound,
    Conflict,
    Gone,
    PayloadTooLarge,
    TooManyRequests,
    InternalServerError,
}

impl Generic {
    /// The code on the wire. `PAYLOAD_TOO_LARGE` and `TOO_MANY_REQUESTS` are not in the 0.226
    /// clients' enum; they map to its catch-all member and the SDK picks the class by status.
    pub fn as_str(self) -> &'static str {
        match self {
            Generic::BadRequest => "BAD_REQUEST",
            Generic::InvalidRequestBody => "INVALID_REQUEST_BODY",
            Generic::NotFound => "NOT_FOUND",
            Generic::Conflict => "CONFLICT",
            Generic::Gone => "GONE",
            Generic::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Generic::TooManyRequests => "TOO_MANY_REQUESTS",
            Generic::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// Declares a binary's code enum: the [`Generic`] kinds (same variant names) plus the binary's
/// own codes with their wire names, and the conversions the shared layer needs. Each binary
/// lists only what is its own:
///
/// ```
/// toolbox_envelope::error_codes! {
///     /// The codes of some binary.
///     pub enum Code {
///         FileNotFound => "FILE_NOT_FOUND",
///     }
/// }
/// assert_eq!(Code::from(toolbox_envelope::Generic::Gone), Code::Gone);
/// assert_eq!(Code::FileNotFound.as_str(), "FILE_NOT_FOUND");
/// assert_eq!(Code::BadRequest.as_str(), "BAD_REQUEST");
/// ```
#[macro_export]
macro_rules! error_codes {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            BadRequest,
            InvalidRequestBody,
            NotFound,
            Conflict,
            Gone,
            PayloadTooLarge,
            TooManyRequests,
            InternalServerError,
            $($(#[$vmeta])* $variant,)*
        }

        impl ::core::convert::From<$crate::Generic> for $name {
            fn from(g: $crate::Generic) -> Self {
                match g {
                    $crate::Generic::BadRequest => $name::BadRequest,
                    $crate::Generic::InvalidRequestBody => $name::InvalidRequestBody,
                    $crate::Generic::NotFound => $name::NotFound,
                    $crate::Generic::Conflict => $name::Conflict,
                    $crate::Generic::Gone => $name::Gone,
                    $crate::Generic::PayloadTooLarge => $name::PayloadTooLarge,
                    $crate::Generic::TooManyRequests => $name::TooManyRequests,
                    $crate::Generic::InternalServerError => $name::InternalServerError,
                }
            }
        }

        impl $crate::ErrorCode for $name {
            fn as_str(self) -> &'static str {
                match self {
                    $name::BadRequest => $crate::Generic::BadRequest.as_str(),
                    $name::InvalidRequestBody => $crate::Generic::InvalidRequestBody.as_str(),
                    $name::NotFound => $crate::Generic::NotFound.as_str(),
                    $name::Conflict => $crate::Generic::Conflict.as_str(),
                    $name::Gone => $crate::Generic::Gone.as_str(),
                    $name::PayloadTooLarge => $crate::Generic::PayloadTooLarge.as_str(),
                    $name::TooManyRequests => $crate::Generic::TooManyRequests.as_str(),
                    $name::InternalServerError => $crate::Generic::InternalServerError.as_str(),
                    $($name::$variant => $wire,)*
                }
            }
        }

        impl $name {
            /// The code on the wire (also through `ErrorCode`; here so callers need no import).
            pub fn as_str(self) -> &'static str {
                $crate::ErrorCode::as_str(self)
            }
        }
    };
}

/// A binary's `DaemonErrorCode` enum.
pub trait ErrorCode: Copy + fmt::Debug + PartialEq + Send + Sync + 'static + From<Generic> {
    /// The code as it appears on the wire.
    fn as_str(self) -> &'static str;
}

/// An error answer: status, optional code, and the message the SDK shows its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError<C> {
    pub status: StatusCode,
    pub code: Option<C>,
    pub message: String,
}

impl<C: ErrorCode> ApiError<C> {
    /// An error with an explicit status, code and message, used verbatim.
    pub fn new(status: StatusCode, code: C, message: impl Into<String>) -> Self {
        ApiError { status, code: Some(code), message: message.into() }
    }

    /// An error without a code (the reference sends some, e.g. the desktop's 503s).
    pub fn uncoded(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, code: None, message: message.into() }
    }

    fn generic(status: StatusCode, kind: Generic, message: String) -> Self {
        ApiError { status, code: Some(C::from(kind)), message }
    }

    // The generic kinds keep the reference's message prefixes ("bad request: …"), which users
    // already see in SDK exceptions and may match on.
    pub fn bad_request(detail: impl fmt::Display) -> Self {
        Self::generic(StatusCode::BAD_REQUEST, Generic::BadRequest, format!("bad request: {detail}"))
    }

    pub fn invalid_body(detail: impl fmt::Display) -> Self {
        Self::generic(
            StatusCode::BAD_REQUEST,
            Generic::InvalidRequestBody,
            format!("invalid body request: {detail}"),
        )
    }

    pub fn not_found(detail: impl fmt::Display) -> Self {
        Self::generic(StatusCode::NOT_FOUND, Generic::NotFound, format!("not found: {detail}"))
    }

    pub fn conflict(detail: impl fmt::Display) -> Self {
        Self::generic(StatusCode::CONFLICT, Generic::Conflict, format!("conflict: {detail}"))
    }

    pub fn gone(detail: impl fmt::Display) -> Self {
        Self::generic(StatusCode::GONE, Generic::Gone, format!("gone: {detail}"))
    }

    pub fn payload_too_large(detail: impl fmt::Display) -> Self {
        Self::generic(
            StatusCode::PAYLOAD_TOO_LARGE,
            Generic::PayloadTooLarge,
            format!("payload too large: {detail}"),
        )
    }

    pub fn too_many_requests(detail: impl fmt::Display) -> Self {
        Self::generic(
            StatusCode::TOO_MANY_REQUESTS,
            Generic::TooManyRequests,
            format!("too many requests: {detail}"),
        )
    }

    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::generic(
            StatusCode::INTERNAL_SERVER_ERROR,
            Generic::InternalServerError,
            format!("internal server error: {detail}"),
        )
    }

    /// The body this error renders to for one request (also used inside multipart streams,
    /// where no middleware runs).
    pub fn envelope(&self, method: &str, path: &str) -> Envelope {
        Envelope::new(self.status, self.code.map(C::as_str), &self.message, method, path)
    }
}

impl<C: ErrorCode> fmt::Display for ApiError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl<C: ErrorCode> std::error::Error for ApiError<C> {}

impl<C: ErrorCode> IntoResponse for ApiError<C> {
    fn into_response(self) -> Response {
        Pending { status: self.status, code: self.code.map(C::as_str), message: self.message }.into_response()
    }
}

/// An error on its way out of a handler, before its body is rendered: the request's path and
/// method are not known where an error is raised, so the error travels out of the handler as a
/// response extension and [`layer`] renders the body with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub status: StatusCode,
    pub code: Option<&'static str>,
    pub message: String,
}

impl IntoResponse for Pending {
    /// An empty response carrying the error; [`layer`] writes its body.
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self.status;
        res.extensions_mut().insert(self);
        res
    }
}

/// The JSON error body every failing route answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ErrorResponse)]
pub struct Envelope {
    pub status_code: u16,
    pub message: String,
    /// One of the clients' `DaemonErrorCode` values; absent when the error has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Always `DAYTONA_DAEMON`.
    pub source: String,
    /// RFC 3339 with nanoseconds, in the daemon's local time zone.
    pub timestamp: String,
    pub path: String,
    pub method: String,
}

impl Envelope {
    pub fn new(status: StatusCode, code: Option<&str>, message: &str, method: &str, path: &str) -> Self {
        Envelope {
            status_code: status.as_u16(),
            message: message.to_owned(),
            code: code.map(str::to_owned),
            source: SOURCE.to_owned(),
            timestamp: timefmt::now_rfc3339(),
            path: path.to_owned(),
            method: method.to_owned(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelope serialises")
    }
}

/// Renders the JSON body of an error for one request.
pub fn render(err: &Pending, method: &str, path: &str) -> Response {
    let body = Envelope::new(err.status, err.code, &err.message, method, path).to_json();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = err.status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    res
}

/// Middleware that turns every [`Pending`] error leaving a handler into the JSON envelope, with
/// the request's path and method filled in. An error status that leaves the router with no body
/// and no content type (a library's own rejection, say) gets the envelope too, with the status's
/// reason as its message, so no client ever sees a bare 4xx or 5xx.
pub async fn layer(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    if let Some(err) = res.extensions_mut().remove::<Pending>() {
        return render(&err, &method, &path);
    }
    let status = res.status();
    if (status.is_client_error() || status.is_server_error())
        && !res.headers().contains_key(header::CONTENT_TYPE)
        && axum::body::HttpBody::size_hint(res.body()).exact() == Some(0)
    {
        let err = Pending {
            status,
            code: bare_code(status),
            message: status.canonical_reason().unwrap_or("error").to_lowercase(),
        };
        let mut out = render(&err, &method, &path);
        // Keep what the response said besides its body (Allow, Retry-After, …).
        for (name, value) in res.headers() {
            if name != header::CONTENT_LENGTH {
                out.headers_mut().insert(name.clone(), value.clone());
            }
        }
        return out;
    }
    res
}

/// The answer to an unknown route or a known route called with a method it does not serve:
/// 404 `NOT_FOUND` either way (never 405), as the reference answers, since clients pick
/// exception classes by status.
pub async fn no_route(req: Request) -> Response {
    Pending {
        status: StatusCode::NOT_FOUND,
        code: Some(Generic::NotFound.as_str()),
        message: format!("not found: no route for {} {}", req.method(), req.uri().path()),
    }
    .into_response()
}

/// The panic guard's answer (for `tower_http`'s `CatchPanicLayer::custom`, inside [`layer`]):
/// a 500 envelope for the request whose handler panicked; the server goes on.
pub fn panic_answer(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    Pending {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: Some(Generic::InternalServerError.as_str()),
        message: "internal server error: the request handler failed unexpectedly".into(),
    }
    .into_response()
}

/// The generic code of a bare error status, for the safety net above.
fn bare_code(status: StatusCode) -> Option<&'static str> {
    Some(match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::GONE => "GONE",
        StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
        StatusCode::INTERNAL_SERVER_ERROR => "INTERNAL_SERVER_ERROR",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum TestCode {
        G(Generic),
        Special,
    }
    impl From<Generic> for TestCode {
        fn from(g: Generic) -> Self {
            TestCode::G(g)
        }
    }
    impl ErrorCode for TestCode {
        fn as_str(self) -> &'static str {
            match self {
                TestCode::G(Generic::NotFound) => "NOT_FOUND",
                TestCode::G(_) => "OTHER",
                TestCode::Special => "SPECIAL",
            }
        }
    }
    type E = ApiError<TestCode>;

    async fn call(app: Router, req: Request) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let res = app.oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn handler_errors_become_the_envelope() {
        let app = Router::new()
            .route("/boom", get(|| async { Err::<(), _>(E::not_found("session abc")) }))
            .layer(axum::middleware::from_fn(layer));
        let (status, headers, v) = call(app, Request::get("/boom?x=1").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json; charset=utf-8");
        assert_eq!(v["statusCode"], 404);
        assert_eq!(v["message"], "not found: session abc");
        assert_eq!(v["code"], "NOT_FOUND");
        assert_eq!(v["source"], "DAYTONA_DAEMON");
        assert_eq!(v["path"], "/boom");
        assert_eq!(v["method"], "GET");
        let parsed: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(parsed.status_code, 404);
    }

    #[tokio::test]
    async fn uncoded_errors_omit_the_code() {
        let app = Router::new()
            .route(
                "/p",
                axum::routing::post(|| async {
                    Err::<(), _>(E::uncoded(StatusCode::SERVICE_UNAVAILABLE, "m"))
                }),
            )
            .layer(axum::middleware::from_fn(layer));
        let (status, _, v) = call(app, Request::post("/p").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(v.get("code").is_none());
        assert_eq!(v["method"], "POST");
    }

    #[tokio::test]
    async fn bare_error_statuses_get_the_envelope() {
        let app = Router::new()
            .route("/bare", get(|| async { (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET")]) }))
            .route("/text", get(|| async { (StatusCode::BAD_REQUEST, "plain words") }))
            .layer(axum::middleware::from_fn(layer));
        let (status, headers, v) =
            call(app.clone(), Request::get("/bare").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "GET");
        assert_eq!(v["message"], "method not allowed");
        // A body the handler wrote itself is left alone.
        let res = app.oneshot(Request::get("/text").body(Body::empty()).unwrap()).await.unwrap();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"plain words");
    }

    #[test]
    fn constructors_keep_the_reference_prefixes() {
        let e = E::bad_request("x");
        assert_eq!((e.status, e.message.as_str()), (StatusCode::BAD_REQUEST, "bad request: x"));
        assert_eq!(e.code, Some(TestCode::G(Generic::BadRequest)));
        assert_eq!(E::invalid_body("eof").message, "invalid body request: eof");
        assert_eq!(E::conflict("dup").status, StatusCode::CONFLICT);
        assert_eq!(E::gone("g").status, StatusCode::GONE);
        assert_eq!(E::payload_too_large("p").status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(E::too_many_requests("t").status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(E::internal("io").code, Some(TestCode::G(Generic::InternalServerError)));
        let env = E::new(StatusCode::IM_A_TEAPOT, TestCode::Special, "m").envelope("GET", "/x");
        assert_eq!(
            (env.status_code, env.code.as_deref(), env.source.as_str()),
            (418, Some("SPECIAL"), SOURCE)
        );
    }
}
