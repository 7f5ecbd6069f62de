//! The desktop's environment, shared by the subsystems that talk to it: the X display and the
//! D-Bus session bus. The supervisor fills in the bus address once `dbus-launch` ran (and takes
//! it out on stop); until then it is whatever the agent inherited. Nothing here knows any
//! subsystem, so every one of them can depend on it.

use std::sync::{Arc, RwLock};

use crate::sync::{read, write};

/// The variables every desktop client needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesktopEnv {
    pub display: String,
    pub dbus_session_bus_address: Option<String>,
}

/// One [`DesktopEnv`] shared between the subsystems; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct SharedDesktopEnv(Arc<RwLock<DesktopEnv>>);

impl SharedDesktopEnv {
    pub fn new(env: DesktopEnv) -> SharedDesktopEnv {
        SharedDesktopEnv(Arc::new(RwLock::new(env)))
    }

    /// A copy of the current values.
    pub fn get(&self) -> DesktopEnv {
        read(&self.0).clone()
    }

    pub fn display(&self) -> String {
        read(&self.0).display.clone()
    }

    /// The session bus's address, when there is one.
    pub fn session_bus(&self) -> Option<String> {
        read(&self.0).dbus_session_bus_address.clone().filter(|a| !a.is_empty())
    }

    pub fn update(&self, f: impl FnOnce(&mut DesktopEnv)) {
        f(&mut write(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_values_and_an_empty_bus_is_none() {
        let env = SharedDesktopEnv::new(DesktopEnv { display: ":3".into(), dbus_session_bus_address: None });
        let other = env.clone();
        other.update(|e| e.dbus_session_bus_address = Some("unix:path=/b".into()));
        assert_eq!(env.session_bus().as_deref(), Some("unix:path=/b"));
        assert_eq!(env.display(), ":3");
        env.update(|e| e.dbus_session_bus_address = Some(String::new()));
        assert_eq!(other.session_bus(), None);
        assert_eq!(other.get().dbus_session_bus_address.as_deref(), Some(""));
    }
}
