//! Mouse and keyboard over XTEST (spec computer-use.md §4–5, sdk-0.226.md §3.6, §4.3).
//!
//! SKELETON: filled in by the input work.

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
