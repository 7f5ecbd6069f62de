//! The supervisor: brings the desktop's processes up and down, restarts them, and reports on
//! them.
//!
//! Start brings the processes up in priority order and returns as soon as each one is *seen*
//! to be ready (the display answers, a window manager runs, the VNC port speaks RFB, noVNC
//! accepts), within an overall deadline; the reference instead slept 2 s after every launch.
//! Every desktop process carries an environment tag so that stop can end all of them, also
//! those that left their process group (see [`desktop_tag`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::child::{self, Proc, RunState};
use super::table::{self, Readiness};
use super::{dbus, ready};
use crate::config::Config;
use crate::desktop_env::SharedDesktopEnv;
use crate::sync::lock;
use computer_use_api::desktop_tag;

/// Upper bound for `start` (the reference needed about 10 s of sleeps).
const START_DEADLINE: Duration = Duration::from_secs(45);

/// One process's state, as the start/stop answers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStatus {
    pub running: bool,
    pub priority: u32,
    pub auto_restart: bool,
    pub pid: Option<u32>,
}

pub struct Supervisor {
    config: Arc<Config>,
    desktop_env: SharedDesktopEnv,
    /// In ascending priority.
    procs: Vec<Arc<Proc>>,
    /// The value of [`desktop_tag::TAG_VAR`] every desktop process gets.
    tag: String,
    bus: Mutex<Option<dbus::Bus>>,
    /// Start, stop and restart one at a time.
    ops: tokio::sync::Mutex<()>,
    /// The agent's own environment, minus what the desktop decides.
    base_env: Vec<(String, String)>,
}

impl Supervisor {
    pub fn new(config: Arc<Config>, desktop_env: SharedDesktopEnv) -> Supervisor {
        let path = std::env::var_os("PATH");
        let specs = table::process_table(&config, path.as_deref(), &table::is_executable);
        let log_dir = config.log_dir();
        // The daemon chooses the tag (so it can clean up after a crashed agent) and passes it
        // under another name: the agent itself must not carry the tag it sweeps.
        let tag = std::env::var(desktop_tag::TAG_FROM_DAEMON_VAR)
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond()));
        let base_env = std::env::vars()
            .filter(|(k, _)| {
                !matches!(k.as_str(), "DISPLAY" | "DBUS_SESSION_BUS_ADDRESS" | "DBUS_SESSION_BUS_PID")
            })
            .filter(|(k, _)| k != desktop_tag::TAG_VAR && k != desktop_tag::TAG_FROM_DAEMON_VAR)
            .collect();
        Supervisor {
            procs: specs.into_iter().map(|s| Proc::new(s, log_dir.clone())).collect(),
            config,
            desktop_env,
            tag,
            bus: Mutex::new(None),
            ops: tokio::sync::Mutex::new(()),
            base_env,
        }
    }

    fn find(&self, name: &str) -> Option<&Arc<Proc>> {
        self.procs.iter().find(|p| p.spec.name == name)
    }

    pub fn knows(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    fn bus(&self) -> Option<dbus::Bus> {
        lock(&self.bus).clone()
    }

    /// The environment of a desktop process.
    fn env_for(&self, session: bool) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = self.base_env.iter().cloned().collect();
        env.insert("DISPLAY".into(), self.config.display.clone());
        if let Some(bus) = self.bus() {
            env.insert("DBUS_SESSION_BUS_ADDRESS".into(), bus.address);
        }
        env.insert(desktop_tag::TAG_VAR.into(), self.tag.clone());
        if session {
            env.insert("HOME".into(), self.config.home.display().to_string());
            env.insert("USER".into(), self.config.user.clone());
        }
        env.into_iter().collect()
    }

    fn program(&self, name: &str) -> Option<PathBuf> {
        table::which(name, std::env::var_os("PATH").as_deref(), &table::is_executable)
    }

    /// Brings the desktop up; returns once every required process is ready, or names what is
    /// not. Processes already supervised are left alone.
    pub async fn start(&self) -> Result<(), String> {
        let _one = self.ops.lock().await;
        let deadline = Instant::now() + START_DEADLINE;
        let log_dir = self.config.log_dir();
        create_dir_0755(&log_dir).map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
        prepare_xfce_config(&self.config.home);
        self.ensure_bus().await.map_err(|e| format!("session bus: {e}"))?;
        clear_stale_x_lock(&self.config.display);

        let mut failures = Vec::new();
        let mut waits = Vec::new();
        for p in &self.procs {
            let before = p.run_state().0;
            let fresh = !p.loop_active();
            if fresh {
                p.start(self.env_for(p.spec.session_env));
            }
            // Everything else needs the X server: wait for it before launching the rest.
            if p.spec.ready == Readiness::XDisplay {
                if let Err(e) = self.wait_ready(p, fresh.then_some(before), deadline).await {
                    return Err(format!("{}: {e}", p.spec.name));
                }
            } else {
                waits.push((p, fresh.then_some(before)));
            }
        }
        let results =
            futures_join(waits.iter().map(|(p, before)| self.wait_ready(p, *before, deadline))).await;
        for ((p, _), result) in waits.iter().zip(results) {
            if let Err(e) = result
                && p.spec.required
            {
                failures.push(format!("{}: {e}", p.spec.name));
            }
        }
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }

    /// Waits until `p` is ready. `first_run` is the run count before this start launched it:
    /// when that run ends, the process failed (no waiting for restarts).
    async fn wait_ready(&self, p: &Proc, first_run: Option<u64>, deadline: Instant) -> Result<(), String> {
        let display = &self.config.display;
        let mut last_problem = String::from("not running");
        loop {
            let (runs, state) = p.run_state();
            match (&state, first_run) {
                (Some(RunState::Ended(how)), Some(before)) if runs > before => {
                    let said = child::last_line(&p.err_path()).map(|l| format!(": {l}")).unwrap_or_default();
                    return Err(format!("{how}{said}"));
                }
                _ => {}
            }
            let probe = match (&p.spec.ready, &state) {
                (Readiness::Nothing, _) => return Ok(()),
                (_, Some(RunState::Running(_))) => match &p.spec.ready {
                    Readiness::XDisplay => ready::x_display(display).await,
                    Readiness::WindowManager => match ready::window_manager(display).await {
                        Ok(Some(_)) => Ok(()),
                        Ok(None) => Err("no window manager on the display yet".into()),
                        Err(e) => Err(e),
                    },
                    Readiness::Rfb(port) => ready::rfb(*port).await,
                    Readiness::Accepts(port) => ready::accepts(*port).await,
                    Readiness::Nothing => Ok(()),
                },
                _ => Err(last_problem.clone()),
            };
            match probe {
                // Ready, and still ours: a port answered by someone else would have made our
                // process exit on bind.
                Ok(()) if p.pid().is_some() => return Ok(()),
                Ok(()) => last_problem = "exited".into(),
                Err(e) => last_problem = e,
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {}s: {last_problem}", START_DEADLINE.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the session bus unless ours still answers, and publishes its address.
    async fn ensure_bus(&self) -> Result<(), String> {
        if let Some(bus) = self.bus()
            && dbus::answers(&bus.address)
        {
            return Ok(());
        }
        let launcher =
            self.program("dbus-launch").ok_or("dbus-launch not found on PATH (package dbus-x11)")?;
        let mut env = self.base_env.clone();
        env.push((desktop_tag::TAG_VAR.into(), self.tag.clone()));
        let bus = dbus::launch(&launcher, &env).await?;
        if !dbus::answers(&bus.address) {
            return Err(format!("the bus at {} does not answer", bus.address));
        }
        tracing::info!(address = %bus.address, pid = ?bus.pid, "session bus started");
        *lock(&self.bus) = Some(bus.clone());
        self.desktop_env.update(|de| {
            de.display = self.config.display.clone();
            de.dbus_session_bus_address = Some(bus.address.clone());
        });
        if let Some(update) = self.program("dbus-update-activation-environment") {
            let env = self.env_for(true);
            dbus::update_activation_environment(&update, &env, &["DISPLAY", "XAUTHORITY"]).await;
        }
        Ok(())
    }

    /// Stops every process (reverse priority), then the bus, then anything left that carries
    /// the desktop's tag.
    pub async fn stop(&self) -> Result<(), String> {
        let _one = self.ops.lock().await;
        let mut errors = Vec::new();
        for p in self.procs.iter().rev() {
            if let Err(e) = p.stop().await {
                errors.push(e);
            }
        }
        if let Some(bus) = lock(&self.bus).take()
            && let Some(pid) = bus.pid
        {
            // SAFETY: plain syscall; the pid is the bus dbus-launch reported (the sweep below
            // also finds it by its tag, which guards against a reused pid's mistaken kill only
            // partly, so check the tag first).
            if desktop_tag::tagged(&self.tag).contains(&(pid as i32)) {
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
        }
        self.desktop_env.update(|de| de.dbus_session_bus_address = None);
        let tag = self.tag.clone();
        let _ =
            tokio::task::spawn_blocking(move || desktop_tag::end_tagged(&tag, Duration::from_millis(1500)))
                .await;
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Stops everything; called when the agent exits.
    pub async fn shutdown(&self) {
        if let Err(e) = self.stop().await {
            tracing::warn!("stopping the desktop: {e}");
        }
    }

    /// Restarts one process; `None` when the name is unknown.
    pub async fn restart(&self, name: &str) -> Option<Result<(), String>> {
        let p = self.find(name)?.clone();
        let _one = self.ops.lock().await;
        if let Err(e) = p.stop().await {
            return Some(Err(e));
        }
        p.start(self.env_for(p.spec.session_env));
        Some(Ok(()))
    }

    /// Every process's status. `atspi_healthy` is the accessibility bus's health, which is what
    /// `atspi` reports (its launcher usually exits at once by design).
    pub fn statuses(&self, atspi_healthy: bool) -> BTreeMap<String, ProcessStatus> {
        self.procs
            .iter()
            .map(|p| {
                let (running, pid) = if p.spec.name == "atspi" {
                    (atspi_healthy, None)
                } else {
                    let pid = p.pid();
                    (pid.is_some(), pid)
                };
                let st = ProcessStatus {
                    running,
                    priority: p.spec.priority,
                    auto_restart: p.spec.auto_restart,
                    pid,
                };
                (p.spec.name.to_string(), st)
            })
            .collect()
    }

    /// `active`, `partial` or `inactive`.
    pub fn overall(&self, atspi_healthy: bool) -> &'static str {
        let statuses = self.statuses(atspi_healthy);
        table::overall(self.procs.iter().map(|p| (&p.spec, statuses[p.spec.name].running)))
    }

    /// Whether a process's supervision loop is active (`None`: unknown name).
    pub fn loop_active(&self, name: &str) -> Option<bool> {
        self.find(name).map(|p| p.loop_active())
    }

    pub fn log_path(&self, name: &str, errors: bool) -> Option<PathBuf> {
        self.find(name).map(|p| if errors { p.err_path() } else { p.log_path() })
    }

    pub fn bus_address(&self) -> Option<String> {
        self.bus().map(|b| b.address)
    }
}

/// Joins futures that borrow from the caller (no 'static needed), polling them together.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = futs.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    let mut futs: Vec<_> = futs.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in futs.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future completed")).collect()
}

fn create_dir_0755(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)
}

/// xfce4-session starts ssh-agent and gpg-agent, which leave the session and would outlive the
/// desktop; this xfconf channel turns them off. An existing file (the image's or the user's
/// choice) is left alone.
fn prepare_xfce_config(home: &Path) {
    const SESSION_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-session" version="1.0">
  <property name="startup" type="empty">
    <property name="ssh-agent" type="empty">
      <property name="enabled" type="bool" value="false"/>
    </property>
    <property name="gpg-agent" type="empty">
      <property name="enabled" type="bool" value="false"/>
    </property>
  </property>
</channel>
"#;
    let dir = home.join(".config/xfce4/xfconf/xfce-perchannel-xml");
    let file = dir.join("xfce4-session.xml");
    if file.exists() {
        return;
    }
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, SESSION_XML)) {
        tracing::warn!(error = %e, "cannot write {}", file.display());
    }
}

/// An Xvfb that was killed leaves `/tmp/.X<n>-lock` behind, and the next one refuses to start
/// ("server already active"). Remove the lock (and socket) only when its pid is gone.
fn clear_stale_x_lock(display: &str) {
    let Some(n) = display.strip_prefix(':').and_then(|d| d.split('.').next()).filter(|n| !n.is_empty())
    else {
        return;
    };
    let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
    let Ok(text) = std::fs::read_to_string(&lock) else { return };
    let Ok(pid) = text.trim().parse::<i32>() else { return };
    // SAFETY: signal 0 only checks that the process exists.
    let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
    if !alive {
        let shown = display;
        tracing::info!("removing a stale X lock of display {shown} (pid {pid} is gone)");
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{n}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_before_start_are_all_down_with_table_values() {
        let config = Arc::new(Config::from_lookup(|k| (k == "HOME").then(|| "/nonexistent".into())).unwrap());
        let sup = Supervisor::new(config, SharedDesktopEnv::default());
        let st = sup.statuses(false);
        let xvfb = &st["xvfb"];
        assert_eq!(xvfb, &ProcessStatus { running: false, priority: 100, auto_restart: true, pid: None });
        assert_eq!(sup.overall(false), "inactive");
        assert_eq!(sup.loop_active("nope"), None);
    }
}
