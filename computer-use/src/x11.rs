//! The agent's X11 connection: opened lazily on the current `DISPLAY`, re-opened when the server
//! went away (Xvfb restarted), and the record of held keys and buttons so they can be released.
//!
//! SKELETON: filled in by the input and capture work.

use std::sync::{Arc, RwLock};

use crate::state::DesktopEnv;

pub struct X11 {
    #[allow(dead_code)]
    desktop_env: Arc<RwLock<DesktopEnv>>,
}

impl X11 {
    pub fn new(desktop_env: Arc<RwLock<DesktopEnv>>) -> X11 {
        X11 { desktop_env }
    }

    /// Releases every key and mouse button pressed through `keyboard/down` or `mouse/down` and
    /// not released yet (on `/computeruse/stop` and at exit).
    pub fn release_all(&self) {}
}
