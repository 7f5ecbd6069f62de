//! Screenshots (spec computer-use.md §3): full, region, compressed; PNG or JPEG; cursor overlay.
//!
//! SKELETON: filled in by the capture work.

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
