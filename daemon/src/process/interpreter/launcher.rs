//! Starting workers: finding the interpreter, writing the worker programs, spawning, and waiting
//! until the worker reports that it is ready.
//!
//! The worker programs are ours (`worker.py`, `worker.js`), written at first use into a private
//! 0700 temporary directory with a random name, so a stale copy of another daemon version is
//! never picked up (pitfalls §32) and no other user can replace them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::language::Language;
use super::worker::{self, Event, Launch, Worker};
use crate::env::ChildEnv;
use crate::reaper::Reaper;

/// How long a new worker may take to report that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a job or a context could not get a worker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no {0} interpreter found on PATH")]
    NoProgram(&'static str),
    #[error("cannot write the worker program: {0}")]
    Script(String),
    #[error("failed to start the worker: {0}")]
    Spawn(std::io::Error),
    #[error("the worker did not become ready: {0}")]
    NotReady(&'static str),
}

/// What every worker of the daemon is started with.
pub struct Launcher {
    env: Arc<ChildEnv>,
    reaper: &'static Reaper,
    scripts: OnceLock<Result<tempfile::TempDir, String>>,
}

impl Launcher {
    pub fn new(env: Arc<ChildEnv>, reaper: &'static Reaper) -> Self {
        Launcher { env, reaper, scripts: OnceLock::new() }
    }

    /// The private directory holding the worker programs, created on first use.
    fn script_path(&self, language: Language) -> Result<PathBuf, StartError> {
        let dir = self
            .scripts
            .get_or_init(|| write_scripts().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| StartError::Script(e.clone()))?;
        Ok(dir.path().join(language.script_name()))
    }

    /// Daemon shutdown: the worker programs go.
    pub fn remove_scripts(&self) {
        if let Some(Ok(dir)) = self.scripts.get() {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }

    /// The current child environment, as the worker can take it (UTF-8 names and values).
    pub fn env_strings(&self) -> BTreeMap<String, String> {
        self.env
            .snapshot_with([])
            .into_iter()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    /// Starts a worker (blocking parts on the blocking pool) and waits until it is ready.
    pub async fn start(&self, id: &str, cwd: &Path, language: Language) -> Result<Worker, StartError> {
        let env = self.env.snapshot_with([]);
        let program = crate::which::find_program(
            language.programs(),
            env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_os_str()),
        )
        .ok_or(StartError::NoProgram(language.as_str()))?;
        let script = self.script_path(language)?;
        let given: BTreeMap<String, String> = env
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
            .collect();
        let (reaper, id2, cwd2) = (self.reaper, id.to_string(), cwd.to_path_buf());
        let spawned = tokio::task::spawn_blocking(move || {
            worker::spawn(
                reaper,
                Launch { program: &program, script: &script, context_id: &id2, cwd: &cwd2, env },
            )
        })
        .await
        .map_err(|e| StartError::Spawn(std::io::Error::other(e.to_string())))?
        .map_err(StartError::Spawn)?;
        let alive = spawned.alive.clone();
        let exit = spawned.exit;
        let ended = Arc::new(std::sync::OnceLock::new());
        let ended2 = ended.clone();
        tokio::spawn(async move {
            let status = exit.wait().await;
            let _ = ended2.set(status);
            alive.store(false, Ordering::SeqCst);
            tracing::debug!(?status, "interpreter worker ended");
        });
        let commands = match tokio::net::unix::pipe::Sender::from_owned_fd(spawned.commands) {
            Ok(c) => c,
            Err(e) => {
                crate::signal::kill_group(spawned.pid, libc::SIGKILL);
                return Err(StartError::Spawn(e));
            }
        };
        // From here on, dropping the worker (a failure below, or a cancelled request) kills it.
        let mut w = Worker {
            pid: spawned.pid,
            commands,
            events: spawned.events,
            sink: spawned.sink,
            alive: spawned.alive,
            env: given,
            ended,
        };
        match tokio::time::timeout(READY_TIMEOUT, w.events.recv()).await {
            Ok(Some(Event::Ready)) => Ok(w),
            Ok(_) => Err(StartError::NotReady("it exited during start-up")),
            Err(_) => Err(StartError::NotReady("timed out")),
        }
    }
}

fn write_scripts() -> std::io::Result<tempfile::TempDir> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // tempfile creates the directory with mode 0700 and a random name.
    let dir = tempfile::Builder::new().prefix("daytona-interpreter-").tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    for lang in Language::ALL {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.path().join(lang.script_name()))?;
        f.write_all(lang.script().as_bytes())?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = write_scripts().unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let py = std::fs::read_to_string(dir.path().join("daytona_repl_worker.py")).unwrap();
        assert_eq!(py, Language::Python.script());
    }
}
