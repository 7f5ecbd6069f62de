//! The routes of every process area, mounted under `/process`.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    super::execute::api::routes()
        .merge(super::code_run::api::routes())
        .merge(super::session::api::routes())
        .merge(super::pty::api::routes())
        .merge(super::interpreter::api::routes())
}
