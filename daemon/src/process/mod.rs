//! Running processes: `/process/execute` and sessions; code-run, PTYs and interpreter
//! contexts join them here.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub mod code_run;
pub mod execute;
pub mod pty;
pub mod session;
pub mod signal;
pub mod tree;
pub mod version;

pub fn routes() -> OpenApiRouter<AppState> {
    execute::routes().merge(code_run::routes()).merge(session::api::routes()).merge(pty::api::routes())
}
