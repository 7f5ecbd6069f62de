//! The toolbox API's one error body, shared by the daemon and the computer-use agent: the daemon
//! relays the agent's answers unchanged, so both must render exactly the same envelope:
//! `{"statusCode", "message", "code"?, "source": "DAYTONA_DAEMON", "timestamp", "path", "method"}`.
//!
//! Each crate keeps its own error type and codes; it turns an error into a [`Pending`] response
//! and [`layer`] renders the body once the request's path and method are known.

pub mod timefmt;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error on its way out of a handler: status, optional `DaemonErrorCode`, and the message.
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    status_code: u16,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    source: &'static str,
    timestamp: String,
    path: &'a str,
    method: &'a str,
}

/// Renders the JSON body of an error for one request.
pub fn render(err: &Pending, method: &str, path: &str) -> Response {
    let body = serde_json::to_vec(&Envelope {
        status_code: err.status.as_u16(),
        message: &err.message,
        code: err.code,
        source: "DAYTONA_DAEMON",
        timestamp: timefmt::now_rfc3339(),
        path,
        method,
    })
    .expect("envelope serialises");
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = err.status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    res
}

/// Middleware that turns every [`Pending`] error leaving a handler into the JSON envelope, with
/// the request's path and method filled in.
pub async fn layer(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    match res.extensions_mut().remove::<Pending>() {
        Some(err) => render(&err, &method, &path),
        None => res,
    }
}
