//! The OpenAPI document, assembled from the handlers' annotations.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// The error envelope every failing route answers with.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // only its schema is used
pub struct ErrorResponse {
    status_code: u16,
    message: String,
    /// One of the clients' `DaemonErrorCode` values; absent when the error has none.
    code: Option<String>,
    /// Always `DAYTONA_DAEMON`.
    source: String,
    /// RFC 3339, daemon's local time zone.
    timestamp: String,
    path: String,
    method: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Daytona toolbox daemon",
        description = "The in-sandbox toolbox API, wire-compatible with Daytona's official clients.",
    ),
    components(schemas(ErrorResponse))
)]
pub struct ApiDoc;
