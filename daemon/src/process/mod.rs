//! Running processes: `/process/execute` today; code-run, sessions, PTYs and interpreter
//! contexts join it here.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub mod execute;
pub mod signal;

pub fn routes() -> OpenApiRouter<AppState> {
    execute::routes()
}
