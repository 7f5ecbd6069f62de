//! Accessibility over AT-SPI (spec computer-use.md §7): tree, find, focus, invoke, set value.
//!
//! SKELETON: filled in by the accessibility work.

use std::sync::{Arc, RwLock};

use axum::Router;

use crate::state::{AppState, DesktopEnv};

pub struct A11y {
    #[allow(dead_code)]
    desktop_env: Arc<RwLock<DesktopEnv>>,
}

impl A11y {
    pub fn new(desktop_env: Arc<RwLock<DesktopEnv>>) -> A11y {
        A11y { desktop_env }
    }

    /// Drops the cached accessibility-bus connection (on `/computeruse/stop`).
    pub async fn reset(&self) {}

    /// Whether the accessibility bus answers (cached briefly); the supervisor reports it as the
    /// `atspi` process's `running`.
    pub async fn healthy(&self) -> bool {
        false
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
