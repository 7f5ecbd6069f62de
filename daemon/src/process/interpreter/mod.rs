//! Interpreter contexts: stateful Python (and JavaScript) workers (process.md §6).
//!
//! A context is a worker process plus an executor task that runs its jobs one at a time from a
//! bounded FIFO queue; contexts run in parallel. The `default` context is started in the
//! background when the daemon starts and re-created on demand. A worker that died (killed by a
//! timeout, externally, or by its own code) is restarted, with fresh state, by the next job.
//!
//! Environment: a worker starts with the daemon's child environment (process environment plus the
//! `POST /env` overlay). Because workers live long (the default one from daemon start), every
//! job also brings the worker's `os.environ` up to date with the *current* child environment:
//! the executor sends the difference from what the worker last got, which the worker applies for
//! good. The request's `envs` then apply on top for that one execution only. So a context sees
//! later `POST /env` changes, such as the desktop variables set when a desktop starts.
//!
//! The worker programs are ours (`worker.py`, `worker.js`), written at first use into a private
//! 0700 temporary directory with a random name, so a stale copy of another daemon version is
//! never picked up (pitfalls §32) and no other user can replace them.

pub mod api;
mod exec;
pub mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::env::ChildEnv;
use crate::reaper::Reaper;
pub use exec::Job;
use worker::{Event, Launch, Worker};

pub const DEFAULT_CONTEXT: &str = "default";
/// Jobs waiting per context.
pub const QUEUE_CAPACITY: usize = 128;
/// How long a new worker may take to report that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Delete: SIGTERM, then SIGKILL after this long (process.md §6.4).
const DELETE_GRACE: Duration = Duration::from_secs(2);
/// Daemon shutdown: the same, but shorter, all workers at once.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

const PYTHON_WORKER: &str = include_str!("worker.py");
const JS_WORKER: &str = include_str!("worker.js");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Javascript,
}

impl Language {
    /// `None`, empty and `python` are Python; `javascript` is JavaScript.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("") {
            "" | "python" => Ok(Language::Python),
            "javascript" => Ok(Language::Javascript),
            other => Err(format!(
                "unsupported language: {other} (only 'python' and 'javascript' are supported currently)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Javascript => "javascript",
        }
    }

    fn programs(self) -> &'static [&'static str] {
        match self {
            Language::Python => &["python3", "python"],
            Language::Javascript => &["node", "nodejs"],
        }
    }

    fn script_name(self) -> &'static str {
        match self {
            Language::Python => "daytona_repl_worker.py",
            Language::Javascript => "daytona_repl_worker.js",
        }
    }

    fn script(self) -> &'static str {
        match self {
            Language::Python => PYTHON_WORKER,
            Language::Javascript => JS_WORKER,
        }
    }
}

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

/// What the clients see of a context.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterpreterContext {
    pub id: String,
    pub cwd: String,
    pub created_at: String,
    pub active: bool,
    pub language: String,
}

/// The worker currently serving a context, as far as others need to know.
#[derive(Default)]
struct WorkerRef {
    pid: u32,
    alive: Option<Arc<AtomicBool>>,
}

pub struct Context {
    pub id: String,
    pub cwd: PathBuf,
    pub created_at: String,
    pub language: Language,
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    deleting: AtomicBool,
    current: Mutex<WorkerRef>,
}

impl Context {
    pub fn info(&self) -> InterpreterContext {
        InterpreterContext {
            id: self.id.clone(),
            cwd: self.cwd.to_string_lossy().into_owned(),
            created_at: self.created_at.clone(),
            active: self.is_active(),
            language: self.language.as_str().to_string(),
        }
    }

    /// Accepting jobs and its worker running.
    pub fn is_active(&self) -> bool {
        !self.is_deleting() && self.current().alive.as_ref().is_some_and(|a| a.load(Ordering::SeqCst))
    }

    pub fn is_deleting(&self) -> bool {
        self.deleting.load(Ordering::SeqCst)
    }

    fn current(&self) -> std::sync::MutexGuard<'_, WorkerRef> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a job. Err gives the job back when the context no longer takes jobs or its queue
    /// is full.
    pub fn submit(&self, job: Job) -> Result<(), (Job, SubmitError)> {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = queue.as_ref() else { return Err((job, SubmitError::Inactive)) };
        tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) => (j, SubmitError::Full),
            mpsc::error::TrySendError::Closed(j) => (j, SubmitError::Inactive),
        })
    }

    /// Stops taking jobs and terminates the worker: SIGTERM, then SIGKILL of its process group
    /// after `grace`. Jobs already queued end with `1001 context shutdown`.
    async fn stop(&self, grace: Duration) {
        self.deleting.store(true, Ordering::SeqCst);
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (pid, alive) = {
            let w = self.current();
            (w.pid, w.alive.clone())
        };
        let Some(alive) = alive.filter(|a| a.load(Ordering::SeqCst)) else { return };
        // SAFETY: plain syscall.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        let deadline = tokio::time::Instant::now() + grace;
        while alive.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The group too: subprocesses of the worker must not outlive the context.
        crate::process::signal::kill_group(pid, libc::SIGKILL);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    Inactive,
    Full,
}

/// Every context of the daemon.
pub struct Interpreters {
    env: Arc<ChildEnv>,
    reaper: &'static Reaper,
    work_dir: PathBuf,
    contexts: Mutex<HashMap<String, Arc<Context>>>,
    default: tokio::sync::Mutex<Option<Arc<Context>>>,
    scripts: OnceLock<Result<tempfile::TempDir, String>>,
}

impl Interpreters {
    pub fn new(env: Arc<ChildEnv>, reaper: &'static Reaper, work_dir: PathBuf) -> Self {
        Interpreters {
            env,
            reaper,
            work_dir,
            contexts: Mutex::new(HashMap::new()),
            default: tokio::sync::Mutex::new(None),
            scripts: OnceLock::new(),
        }
    }

    fn contexts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Context>>> {
        self.contexts.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Starts a worker for a context (blocking parts on the blocking pool) and waits until it
    /// is ready.
    async fn start_worker(&self, id: &str, cwd: &Path, language: Language) -> Result<Worker, StartError> {
        let env = self.env.snapshot_with([]);
        let program = worker::find_program(
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
        tokio::spawn(async move {
            let status = exit.wait().await;
            alive.store(false, Ordering::SeqCst);
            tracing::debug!(?status, "interpreter worker ended");
        });
        let commands = match tokio::net::unix::pipe::Sender::from_owned_fd(spawned.commands) {
            Ok(c) => c,
            Err(e) => {
                crate::process::signal::kill_group(spawned.pid, libc::SIGKILL);
                return Err(StartError::Spawn(e));
            }
        };
        let mut w = Worker {
            pid: spawned.pid,
            commands,
            events: spawned.events,
            sink: spawned.sink,
            alive: spawned.alive,
            env: given,
        };
        match tokio::time::timeout(READY_TIMEOUT, w.events.recv()).await {
            Ok(Some(Event::Ready)) => Ok(w),
            Ok(_) => Err(StartError::NotReady("it exited during start-up")),
            Err(_) => Err(StartError::NotReady("timed out")),
        }
    }

    /// Creates a context and starts its worker.
    async fn create_context(
        self: &Arc<Self>,
        id: String,
        cwd: PathBuf,
        language: Language,
    ) -> Result<Arc<Context>, StartError> {
        let w = self.start_worker(&id, &cwd, language).await?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let ctx = Arc::new(Context {
            id,
            cwd,
            created_at: crate::timefmt::now_rfc3339(),
            language,
            queue: Mutex::new(Some(tx)),
            deleting: AtomicBool::new(false),
            current: Mutex::new(WorkerRef { pid: w.pid, alive: Some(w.alive.clone()) }),
        });
        tokio::spawn(exec::executor(self.clone(), ctx.clone(), Some(w), rx));
        Ok(ctx)
    }

    /// `POST /process/interpreter/context`.
    pub async fn create(
        self: &Arc<Self>,
        cwd: Option<&str>,
        language: Language,
    ) -> Result<InterpreterContext, StartError> {
        let cwd = match cwd.filter(|c| !c.is_empty()) {
            Some(c) => self.work_dir.join(c),
            None => self.work_dir.clone(),
        };
        let id = crate::process::session::wrapper::uuid_v4();
        let ctx = self.create_context(id.clone(), cwd, language).await?;
        self.contexts().insert(id, ctx.clone());
        Ok(ctx.info())
    }

    /// User contexts, oldest first (the default one is never listed).
    pub fn list(&self) -> Vec<InterpreterContext> {
        let mut all: Vec<_> = self.contexts().values().map(|c| c.info()).collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    pub fn get(&self, id: &str) -> Option<Arc<Context>> {
        self.contexts().get(id).cloned()
    }

    /// The default context, created (again) when missing.
    pub async fn default_context(self: &Arc<Self>) -> Result<Arc<Context>, StartError> {
        let mut slot = self.default.lock().await;
        if let Some(ctx) = slot.as_ref().filter(|c| !c.is_deleting()) {
            return Ok(ctx.clone());
        }
        let ctx =
            self.create_context(DEFAULT_CONTEXT.into(), self.work_dir.clone(), Language::Python).await?;
        *slot = Some(ctx.clone());
        Ok(ctx)
    }

    /// Starts the default context in the background; a failure only shows on first use.
    pub fn warm_default(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.default_context().await {
                tracing::info!(error = %e, "the default interpreter context is not available");
            }
        });
    }

    /// `DELETE /process/interpreter/context/{id}`: false when there is no such context.
    pub async fn delete(&self, id: &str) -> bool {
        let Some(ctx) = self.contexts().remove(id) else { return false };
        ctx.stop(DELETE_GRACE).await;
        true
    }

    /// Daemon shutdown: every worker is terminated.
    pub async fn shutdown(&self) {
        let mut all: Vec<Arc<Context>> = self.contexts().drain().map(|(_, c)| c).collect();
        if let Some(d) = self.default.lock().await.take() {
            all.push(d);
        }
        futures_util::future::join_all(all.iter().map(|c| c.stop(SHUTDOWN_GRACE))).await;
        if let Some(Ok(dir)) = self.scripts.get() {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

fn write_scripts() -> std::io::Result<tempfile::TempDir> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // tempfile creates the directory with mode 0700 and a random name.
    let dir = tempfile::Builder::new().prefix("daytona-interpreter-").tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    for lang in [Language::Python, Language::Javascript] {
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
    fn languages() {
        assert_eq!(Language::parse(None), Ok(Language::Python));
        assert_eq!(Language::parse(Some("")), Ok(Language::Python));
        assert_eq!(Language::parse(Some("python")), Ok(Language::Python));
        assert_eq!(Language::parse(Some("javascript")), Ok(Language::Javascript));
        assert_eq!(
            Language::parse(Some("ruby")).unwrap_err(),
            "unsupported language: ruby (only 'python' and 'javascript' are supported currently)"
        );
    }

    #[test]
    fn scripts_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = write_scripts().unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let py = std::fs::read_to_string(dir.path().join("daytona_repl_worker.py")).unwrap();
        assert_eq!(py, PYTHON_WORKER);
    }
}
