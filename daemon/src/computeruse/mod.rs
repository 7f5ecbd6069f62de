//! `/computeruse/*`: relayed to the computer-use agent (`daytona-computer-use`), a separate,
//! dynamically linked program that owns the X11 desktop (the daemon itself is static and needs
//! nothing from the image).
//!
//! The agent is started lazily, on the first `/computeruse/*` request: most sandboxes never use
//! the desktop, so until then it costs neither a process nor memory, and a missing or broken
//! agent is reported to the client that asked for it. It listens on a Unix socket in a private
//! 0700 directory and gets the daemon's child environment. An agent that crashed is started
//! again on the next request (after ending whatever desktop processes it left). When no agent
//! can run the answer is a 503 naming what is missing; the daemon never waits for the agent
//! without a bound.
//!
//! Once the desktop runs, `DISPLAY` and `DBUS_SESSION_BUS_ADDRESS` join the child environment
//! so that everything started afterwards (exec, sessions, PTYs, interpreters) shares the
//! desktop's display and bus, and with them its accessibility tree; stop takes them out again.
//!
//! This file, `agent` and `forward` are the service; `api` is the HTTP side (the relay route and
//! the routes' OpenAPI description, which comes from the `computer-use-api` crate the agent
//! serves its bodies from).

pub mod agent;
pub mod api;
pub mod forward;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use computer_use_api::process::DesktopEnvResponse;

use crate::env::{ChildEnv, EnvUpdate};
use crate::reaper::Reaper;

/// The variables the desktop adds to the child environment.
const DESKTOP_VARS: [&str; 2] = ["DISPLAY", "DBUS_SESSION_BUS_ADDRESS"];

/// The request could not reach the agent: none can run, or it did not answer. The message
/// names what is missing (the clients show it as is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

pub struct ComputerUse {
    env: Arc<ChildEnv>,
    reaper: &'static Reaper,
    /// The agent's stdout/stderr (truncated at each launch).
    log: PathBuf,
    tag: String,
    /// Where the agent binary is, when not found the usual way ([`agent::locate`]).
    agent_bin: Option<PathBuf>,
    agent: tokio::sync::Mutex<Option<Arc<agent::Agent>>>,
    /// What the desktop put into the child environment, and what was there before.
    overlay: Mutex<Option<Overlay>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Overlay {
    set: Vec<(String, String)>,
    previous: Vec<(String, Option<OsString>)>,
}

impl ComputerUse {
    pub fn new(env: Arc<ChildEnv>, reaper: &'static Reaper, config_dir: PathBuf) -> ComputerUse {
        let tag = format!("daemon-{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond());
        ComputerUse {
            env,
            reaper,
            log: config_dir.join("computeruse").join("agent.log"),
            tag,
            agent_bin: None,
            agent: tokio::sync::Mutex::new(None),
            overlay: Mutex::new(None),
        }
    }

    /// Uses the agent binary at `bin`, as `$DAYTONA_COMPUTER_USE_BIN` would.
    pub fn with_agent_bin(mut self, bin: PathBuf) -> ComputerUse {
        self.agent_bin = Some(bin);
        self
    }

    /// The running agent, started (or restarted after a crash) if needed.
    async fn agent(&self) -> Result<Arc<agent::Agent>, Unavailable> {
        let mut slot = self.agent.lock().await;
        if let Some(a) = slot.as_ref() {
            if a.alive() {
                return Ok(a.clone());
            }
            tracing::warn!(pid = a.pid, "the computer-use agent died; starting a new one");
            *slot = None;
            self.desktop_gone().await;
        }
        let chosen = self.agent_bin.clone().map(OsString::from).or_else(|| std::env::var_os(agent::BIN_ENV));
        let bin = agent::locate(chosen, std::env::current_exe().ok(), &|p| p.is_file())
            .map_err(|e| Unavailable(format!("{}: {e}", agent::LOADING_MESSAGE)))?;
        let env = self.env.snapshot_with([]);
        let a = agent::launch(self.reaper, &bin, env, &self.tag, &self.log).await.map_err(|e| {
            tracing::warn!(bin = %bin.display(), "computer-use agent unavailable: {e}");
            Unavailable(e)
        })?;
        let a = Arc::new(a);
        *slot = Some(a.clone());
        Ok(a)
    }

    /// The desktop of a dead agent: its processes are ended (the next agent needs the display
    /// and ports) and its variables leave the child environment.
    async fn desktop_gone(&self) {
        self.restore_env();
        let tag = self.tag.clone();
        // Before the next agent starts, whose desktop will carry the same tag.
        let _ = tokio::task::spawn_blocking(move || agent::sweep(&tag)).await;
    }

    /// Relays one request to the agent (starting it first if needed) and returns its answer
    /// as it is.
    pub async fn handle(&self, req: Request) -> Result<Response, Unavailable> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let agent = self.agent().await?;
        let res = forward::forward(&agent.socket, req).await.map_err(|e| {
            let why = if agent.alive() { e } else { format!("the agent ended: {e}") };
            Unavailable(format!("{}: {why}", agent::LOADING_MESSAGE))
        })?;
        if method == Method::POST && res.status().is_success() {
            match path.as_str() {
                "/computeruse/start" => self.adopt_desktop_env(&agent).await,
                "/computeruse/stop" => self.restore_env(),
                _ => {}
            }
        }
        Ok(res)
    }

    /// Asks the agent which display and bus the desktop uses and exports them to children.
    async fn adopt_desktop_env(&self, agent: &agent::Agent) {
        let env: DesktopEnvResponse = match forward::get_json(&agent.socket, "/internal/desktop-env").await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("cannot read the desktop environment from the agent: {e}");
                return;
            }
        };
        let values = [Some(env.display), env.dbus_session_bus_address];
        let set = DESKTOP_VARS
            .iter()
            .zip(values)
            .filter_map(|(var, value)| Some((var.to_string(), value.filter(|v| !v.is_empty())?)))
            .collect();
        self.apply_overlay(set);
    }

    fn apply_overlay(&self, set: Vec<(String, String)>) {
        let mut overlay = toolbox_envelope::sync::lock(&self.overlay);
        // The values from before the first start are the ones to come back to.
        let previous = match overlay.take() {
            Some(o) => o.previous,
            None => DESKTOP_VARS.iter().map(|v| (v.to_string(), self.env.get(v))).collect(),
        };
        let update = EnvUpdate { set: set.iter().cloned().collect(), ..Default::default() };
        if let Err(e) = self.env.apply(&update) {
            tracing::warn!("cannot export the desktop environment: {e}");
        }
        *overlay = Some(Overlay { set, previous });
    }

    /// Puts back what the desktop replaced; a variable changed since (through `POST /env`) is
    /// the user's and stays.
    fn restore_env(&self) {
        let Some(o) = toolbox_envelope::sync::lock(&self.overlay).take() else { return };
        let mut update = EnvUpdate::default();
        for (name, before) in &o.previous {
            let ours = o.set.iter().find(|(n, _)| n == name).map(|(_, v)| OsString::from(v));
            if ours.is_some() && self.env.get(name) != ours {
                continue;
            }
            match before.as_ref().and_then(|b| b.to_str()) {
                Some(b) => {
                    update.set.insert(name.clone(), b.to_string());
                }
                None => update.unset.push(name.clone()),
            }
        }
        if let Err(e) = self.env.apply(&update) {
            tracing::warn!("cannot restore the environment: {e}");
        }
    }

    /// Stops the agent (which stops the desktop); called at daemon shutdown.
    pub async fn shutdown(&self) {
        let agent = self.agent.lock().await.take();
        if let Some(a) = agent {
            a.terminate().await;
            let tag = self.tag.clone();
            let _ = tokio::task::spawn_blocking(move || agent::sweep(&tag)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(vars: &[(&str, &str)]) -> ComputerUse {
        let env = Arc::new(ChildEnv::new(vars.iter().map(|(k, v)| (OsString::from(k), OsString::from(v)))));
        ComputerUse::new(env, Reaper::global(), std::env::temp_dir())
    }

    #[test]
    fn desktop_vars_are_exported_and_restored() {
        let cu = service(&[("DISPLAY", ":57"), ("PATH", "/bin")]);
        cu.apply_overlay(vec![
            ("DISPLAY".into(), ":57".into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), "unix:path=/b".into()),
        ]);
        assert_eq!(cu.env.get("DBUS_SESSION_BUS_ADDRESS"), Some("unix:path=/b".into()));
        // A second start (new bus) keeps the original values to restore.
        cu.apply_overlay(vec![
            ("DISPLAY".into(), ":57".into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), "unix:path=/c".into()),
        ]);
        cu.restore_env();
        assert_eq!(cu.env.get("DBUS_SESSION_BUS_ADDRESS"), None);
        assert_eq!(cu.env.get("DISPLAY"), Some(":57".into()));
        cu.restore_env(); // nothing to do twice
        assert_eq!(cu.env.get("PATH"), Some("/bin".into()));
    }

    #[test]
    fn a_variable_the_user_changed_meanwhile_is_kept() {
        let cu = service(&[]);
        cu.apply_overlay(vec![
            ("DISPLAY".into(), ":5".into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), "unix:path=/b".into()),
        ]);
        cu.env
            .apply(&EnvUpdate {
                set: [("DISPLAY".to_string(), ":9".to_string())].into(),
                ..Default::default()
            })
            .unwrap();
        cu.restore_env();
        assert_eq!(cu.env.get("DISPLAY"), Some(":9".into()));
        assert_eq!(cu.env.get("DBUS_SESSION_BUS_ADDRESS"), None);
    }
}
