//! Desktop process supervision (spec computer-use.md §2): the session bus, Xvfb, xfce4, the
//! AT-SPI bus, x11vnc and noVNC, with restart, logs and the start/stop/status routes.
//!
//! SKELETON: filled in by the supervision work.

use std::sync::{Arc, RwLock};

use axum::Router;

use crate::config::Config;
use crate::state::{AppState, DesktopEnv};

pub struct Supervisor {
    #[allow(dead_code)]
    config: Arc<Config>,
    #[allow(dead_code)]
    desktop_env: Arc<RwLock<DesktopEnv>>,
}

impl Supervisor {
    pub fn new(config: Arc<Config>, desktop_env: Arc<RwLock<DesktopEnv>>) -> Supervisor {
        Supervisor { config, desktop_env }
    }

    /// Stops every supervised process; called when the agent exits.
    pub async fn shutdown(&self) {}
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
