//! The OpenAPI document, assembled from the handlers' annotations.

use utoipa::OpenApi;

/// The error envelope every failing route answers with (one struct, in `toolbox-envelope`).
pub use toolbox_envelope::Envelope as ErrorResponse;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Daytona toolbox daemon",
        description = "The in-sandbox toolbox API, wire-compatible with Daytona's official clients.",
    ),
    components(schemas(ErrorResponse))
)]
pub struct ApiDoc;
