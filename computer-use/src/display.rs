//! Display information and the window list (spec computer-use.md §6).
//!
//! SKELETON: filled in by the capture work.

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
