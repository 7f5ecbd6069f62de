//! What every handler shares: configuration, the desktop's environment, and one handle per
//! service. Each service owns its own locking.

use std::sync::Arc;

use crate::a11y::service::A11y;
use crate::config::Config;
use crate::desktop_env::{DesktopEnv, SharedDesktopEnv};
use crate::supervisor::service::Supervisor;
use crate::x11::service::X11;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub desktop_env: SharedDesktopEnv,
    pub supervisor: Arc<Supervisor>,
    pub x11: Arc<X11>,
    pub a11y: Arc<A11y>,
}

impl AppState {
    pub fn new(config: Config) -> AppState {
        let desktop_env = SharedDesktopEnv::new(DesktopEnv {
            display: config.display.clone(),
            dbus_session_bus_address: std::env::var("DBUS_SESSION_BUS_ADDRESS")
                .ok()
                .filter(|v| !v.is_empty()),
        });
        let config = Arc::new(config);
        AppState {
            supervisor: Arc::new(Supervisor::new(config.clone(), desktop_env.clone())),
            x11: Arc::new(X11::new(desktop_env.clone())),
            a11y: Arc::new(A11y::new(desktop_env.clone())),
            config,
            desktop_env,
        }
    }
}
