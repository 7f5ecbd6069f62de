//! What every handler shares: configuration, the desktop's environment, and one handle per
//! subsystem. Each subsystem owns its own locking.

use std::sync::{Arc, RwLock};

use crate::a11y::A11y;
use crate::config::Config;
use crate::supervisor::Supervisor;
use crate::x11::X11;

/// The variables every desktop client needs: the X display and the D-Bus session bus. The
/// supervisor fills in the bus address once `dbus-launch` ran; until then it is whatever the
/// agent inherited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesktopEnv {
    pub display: String,
    pub dbus_session_bus_address: Option<String>,
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub desktop_env: Arc<RwLock<DesktopEnv>>,
    pub supervisor: Arc<Supervisor>,
    pub x11: Arc<X11>,
    pub a11y: Arc<A11y>,
}

impl AppState {
    pub fn new(config: Config) -> AppState {
        let env = DesktopEnv {
            display: config.display.clone(),
            dbus_session_bus_address: std::env::var("DBUS_SESSION_BUS_ADDRESS")
                .ok()
                .filter(|v| !v.is_empty()),
        };
        let desktop_env = Arc::new(RwLock::new(env));
        let config = Arc::new(config);
        AppState {
            supervisor: Arc::new(Supervisor::new(config.clone(), desktop_env.clone())),
            x11: Arc::new(X11::new(desktop_env.clone())),
            a11y: Arc::new(A11y::new(desktop_env.clone())),
            config,
            desktop_env,
        }
    }

    pub fn desktop_env(&self) -> DesktopEnv {
        self.desktop_env.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
