//! Running processes: `/process/execute`, code-run, sessions, PTYs and interpreter contexts.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub mod code_run;
pub mod execute;
pub mod interpreter;
pub mod pty;
pub mod session;
pub mod signal;
pub mod tree;

pub fn routes() -> OpenApiRouter<AppState> {
    execute::api::routes()
        .merge(code_run::api::routes())
        .merge(session::api::routes())
        .merge(pty::api::routes())
        .merge(interpreter::api::routes())
}
