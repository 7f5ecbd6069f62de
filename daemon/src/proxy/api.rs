//! `ANY /proxy/{port}`, `/proxy/{port}/` and `/proxy/{port}/{path…}`: the HTTP side of the
//! preview proxy. The target is read from the raw request target ([`super::target`]), the
//! exchange is [`super::upstream`]'s.
//!
//! These routes sit outside the daemon's error layer (see `server::router`): that layer turns
//! any bodiless 4xx/5xx into a JSON envelope, and a proxied app's own bare 404 or 401 must reach
//! the client as the app sent it. The proxy's own failures are rendered here, as the same
//! envelope.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use toolbox_envelope::Pending;

use super::ProxyError;
use super::target::{self, Target};
use super::upstream::{Head, RequestBody, Settings, Upstream};
use crate::error::{ApiError, Code};

/// The proxy's routes, with their own pooled client. Not in the OpenAPI document: the reference
/// hides the proxy from it too.
pub fn routes() -> Router {
    routes_with(Settings::default())
}

/// [`routes`] with explicit pool settings.
pub fn routes_with(settings: Settings) -> Router {
    Router::new()
        .route("/proxy/{port}", any(proxy))
        .route("/proxy/{port}/", any(proxy))
        .route("/proxy/{port}/{*path}", any(proxy))
        .with_state(Upstream::new(settings))
}

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> Self {
        let msg = e.to_string();
        match e {
            ProxyError::BadPort(_) | ProxyError::BadTarget(_) | ProxyError::ClientBody(_) => {
                ApiError::bad_request(msg)
            }
            ProxyError::Upstream { .. } | ProxyError::UnaskedUpgrade { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, Code::ProxyUpstreamFailed, msg)
            }
        }
    }
}

async fn proxy(State(upstream): State<Upstream>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match relay(&upstream, req).await {
        Ok(res) => res,
        Err(e) => {
            let err = ApiError::from(e);
            let pending =
                Pending { status: err.status, code: err.code.map(Code::as_str), message: err.message };
            toolbox_envelope::render(&pending, method.as_str(), &path)
        }
    }
}

async fn relay(upstream: &Upstream, mut req: Request) -> Result<Response, ProxyError> {
    let (port, path_and_query) = match target::parse(req.uri().path(), req.uri().query())? {
        // The daemon's own token is not the app's business (a redirect above keeps it, so a
        // browser following it is let in again).
        Target::Forward { port, path_and_query }
            if req.extensions().get::<crate::auth::OwnQueryKey>().is_some() =>
        {
            (port, crate::auth::without_key(&path_and_query))
        }
        Target::Forward { port, path_and_query } => (port, path_and_query),
        Target::Redirect { location } => return Ok(redirect(req.method(), &location)),
    };
    let upgrade = target::requested_upgrade(req.headers());
    // Taken before the request is consumed: the client's side of a switch, should the target
    // agree to it.
    let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let client_ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    target::request_headers(&mut headers, port, client_ip, upgrade);
    let body = RequestBody::prepare(body).await?;
    let head = Head { method: parts.method, path_and_query, headers };
    let mut res = upstream.send(port, head, body).await?;

    let switching = res.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        let Some(client_side) = client_side else {
            return Err(ProxyError::UnaskedUpgrade { port });
        };
        super::upstream::tunnel(client_side, hyper::upgrade::on(&mut res));
    }
    let (mut parts, body) = res.into_parts();
    target::response_headers(&mut parts.headers, switching);
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    Ok(out)
}

/// 301 for GET and HEAD; 307 otherwise, so the method and body are sent again as they were.
fn redirect(method: &Method, location: &str) -> Response {
    let status = if method == Method::GET || method == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    // The location is made of the request target's own characters, valid in a header.
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

#[cfg(test)]
mod tests;
