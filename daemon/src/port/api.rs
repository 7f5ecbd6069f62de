//! `GET /port` and `GET /port/{port}/in-use`: handlers, bodies and routes; the work is in
//! [`super::service`].

use crate::openapi::routes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::service::{self, PortError};
use crate::error::{ApiError, Code};
use crate::extract::{Json, Path};
use crate::state::AppState;
use toolbox_envelope::Envelope;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_ports)).routes(routes!(is_port_in_use))
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        // The reference's exact messages, without the generic "bad request: " prefix.
        ApiError::new(StatusCode::BAD_REQUEST, Code::BadRequest, e.to_string())
    }
}

#[derive(Serialize, ToSchema)]
pub struct PortList {
    /// TCP ports in LISTEN state on any address, IPv4 or IPv6, ascending; never null.
    ports: Vec<u16>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IsPortInUseResponse {
    is_in_use: bool,
}

/// The TCP ports something in the sandbox listens on (the daemon's own included). At most half
/// a second old.
#[utoipa::path(get, path = "/port", tag = "port", responses((status = 200, body = PortList)))]
async fn list_ports(State(state): State<AppState>) -> Json<PortList> {
    Json(PortList { ports: state.ports.listening().await.iter().copied().collect() })
}

/// Whether something listens on the port: a LISTEN socket on any address, else a TCP
/// connection to localhost (IPv4 or IPv6) within 50 ms, closed at once.
#[utoipa::path(get, path = "/port/{port}/in-use", tag = "port",
    params(("port" = i64, Path, description = "Port number (3000-9999)", minimum = 3000, maximum = 9999)),
    responses((status = 200, body = IsPortInUseResponse),
        (status = 400, description = "the port is not a decimal number, or outside 3000..=9999", body = Envelope)))]
async fn is_port_in_use(
    State(state): State<AppState>,
    Path(port): Path<String>,
) -> Result<Json<IsPortInUseResponse>, ApiError> {
    let port = service::parse_checkable(&port)?;
    Ok(Json(IsPortInUseResponse { is_in_use: state.ports.in_use(port).await }))
}

#[cfg(test)]
mod tests;
