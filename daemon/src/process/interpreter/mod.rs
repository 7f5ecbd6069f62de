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
//! Modules: [`Interpreters`] here is the service (contexts, their limit, their lifecycle); the
//! HTTP edge is `api`; underneath are `context` (one context and its queue), `exec` (its
//! executor), `launcher` (starting workers) and `worker` (one worker process and its reader).

pub mod api;
pub mod context;
pub mod exec;
pub mod language;
pub mod launcher;
pub mod worker;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::env::ChildEnv;
use crate::reaper::Reaper;
use context::{Context, DEFAULT_CONTEXT};
use language::Language;
use launcher::{Launcher, StartError};

/// Jobs waiting per context.
pub const QUEUE_CAPACITY: usize = 128;
/// Delete: SIGTERM, then SIGKILL after this long (process.md §6.4).
const DELETE_GRACE: Duration = Duration::from_secs(2);
/// Daemon shutdown: the same, but shorter, all workers at once.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How many contexts clients may create when the daemon is not told otherwise.
///
/// Every context is a live interpreter process (a bare Python worker is about 10 MB resident,
/// and user code typically loads far more), and nothing ever ends one but a delete: a client
/// that forgets to delete (fuzzing left 92 behind) would otherwise fill the sandbox's memory
/// and process table. The SDKs' usage is a handful of contexts per sandbox, one per concurrent
/// notebook or agent; 32 leaves ample room for that while bounding idle workers to a few hundred
/// MB. The `default` context does not count: the daemon creates it, one exists at most, and
/// clients cannot delete it, so counting it would only take one slot away that no client could
/// ever free.
pub const DEFAULT_MAX_CONTEXTS: usize = 32;

/// A context as the service reports it.
#[derive(Debug, Clone)]
pub struct ContextInfo {
    pub id: String,
    pub cwd: PathBuf,
    pub created_at: String,
    pub active: bool,
    pub language: Language,
}

/// Why a context could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The working directory cannot be used: `error` says why (`ENOENT`, `ENOTDIR` for a file,
    /// `EACCES`, …).
    #[error("cwd {}: {error}", cwd.display())]
    Cwd { cwd: PathBuf, error: io::Error },
    /// `max` contexts exist already.
    #[error("the limit of {max} interpreter contexts is reached")]
    Limit { max: usize },
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Why a context could not be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    #[error("context id is required")]
    MissingId,
    #[error("cannot delete default context")]
    Default,
    #[error("context not found")]
    NotFound,
}

/// Every context of the daemon.
pub struct Interpreters {
    launcher: Arc<Launcher>,
    work_dir: PathBuf,
    contexts: Mutex<HashMap<String, Arc<Context>>>,
    default: tokio::sync::Mutex<Option<Arc<Context>>>,
    max_contexts: usize,
    /// User contexts that exist or are being created; never above `max_contexts`.
    taken: AtomicUsize,
}

/// A place under the limit, held while a context is created; given back when dropped unless
/// the context was kept (a failed or cancelled creation frees its place).
struct Place<'a> {
    taken: &'a AtomicUsize,
    kept: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.taken.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Interpreters {
    /// The service with the default limit, [`DEFAULT_MAX_CONTEXTS`].
    pub fn new(env: Arc<ChildEnv>, reaper: &'static Reaper, work_dir: PathBuf) -> Self {
        Self::with_max_contexts(env, reaper, work_dir, DEFAULT_MAX_CONTEXTS)
    }

    /// The service allowing at most `max_contexts` user contexts at a time (0: none).
    pub fn with_max_contexts(
        env: Arc<ChildEnv>,
        reaper: &'static Reaper,
        work_dir: PathBuf,
        max_contexts: usize,
    ) -> Self {
        Interpreters {
            launcher: Arc::new(Launcher::new(env, reaper)),
            work_dir,
            contexts: Mutex::new(HashMap::new()),
            default: tokio::sync::Mutex::new(None),
            max_contexts,
            taken: AtomicUsize::new(0),
        }
    }

    pub fn max_contexts(&self) -> usize {
        self.max_contexts
    }

    fn contexts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Context>>> {
        toolbox_envelope::sync::lock(&self.contexts)
    }

    fn take_place(&self) -> Option<Place<'_>> {
        self.taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.max_contexts).then_some(n + 1))
            .ok()
            .map(|_| Place { taken: &self.taken, kept: false })
    }

    /// Creates a context and starts its worker.
    async fn create_context(
        self: &Arc<Self>,
        id: String,
        cwd: PathBuf,
        language: Language,
    ) -> Result<Arc<Context>, StartError> {
        let w = self.launcher.start(&id, &cwd, language).await?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let ctx = Arc::new(Context::new(id, cwd, language, tx, w.pid, w.alive.clone()));
        tokio::spawn(exec::executor(self.launcher.clone(), ctx.clone(), Some(w), rx));
        Ok(ctx)
    }

    /// `POST /process/interpreter/context`: a context working in `cwd` (absolute, already
    /// checked for form), or in the daemon's working directory when `None`.
    pub async fn create(
        self: &Arc<Self>,
        cwd: Option<PathBuf>,
        language: Language,
    ) -> Result<ContextInfo, CreateError> {
        let cwd = cwd.unwrap_or_else(|| self.work_dir.clone());
        // Checked here, where the problem can be named, rather than left to the worker's
        // chdir, whose failure only says that the spawn failed.
        let checked = cwd.clone();
        match tokio::task::spawn_blocking(move || crate::fspath::usable_dir(&checked)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(CreateError::Cwd { cwd, error }),
            Err(e) => return Err(StartError::Spawn(io::Error::other(e.to_string())).into()),
        }
        let mut place = self.take_place().ok_or(CreateError::Limit { max: self.max_contexts })?;
        let id = crate::id::uuid_v4();
        let ctx = self.create_context(id.clone(), cwd, language).await?;
        self.contexts().insert(id, ctx.clone());
        place.kept = true;
        Ok(info(&ctx))
    }

    /// User contexts, oldest first (the default one is never listed).
    pub fn list(&self) -> Vec<ContextInfo> {
        let mut all: Vec<_> = self.contexts().values().map(|c| info(c)).collect();
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

    /// `DELETE /process/interpreter/context/{id}`: stops the worker and frees its place.
    pub async fn delete(&self, id: &str) -> Result<(), DeleteError> {
        if id.is_empty() {
            return Err(DeleteError::MissingId);
        }
        if id == DEFAULT_CONTEXT {
            return Err(DeleteError::Default);
        }
        let Some(ctx) = self.contexts().remove(id) else { return Err(DeleteError::NotFound) };
        self.taken.fetch_sub(1, Ordering::SeqCst);
        ctx.stop(DELETE_GRACE).await;
        Ok(())
    }

    /// Daemon shutdown: every worker is terminated.
    pub async fn shutdown(&self) {
        let mut all: Vec<Arc<Context>> = self.contexts().drain().map(|(_, c)| c).collect();
        if let Some(d) = self.default.lock().await.take() {
            all.push(d);
        }
        futures_util::future::join_all(all.iter().map(|c| c.stop(SHUTDOWN_GRACE))).await;
        self.launcher.remove_scripts();
    }
}

fn info(ctx: &Context) -> ContextInfo {
    ContextInfo {
        id: ctx.id.clone(),
        cwd: ctx.cwd.clone(),
        created_at: ctx.created_at.clone(),
        active: ctx.is_active(),
        language: ctx.language,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_are_bounded_and_given_back() {
        let svc = Interpreters::with_max_contexts(
            Arc::new(ChildEnv::new([])),
            Reaper::global(),
            PathBuf::from("/"),
            2,
        );
        let a = svc.take_place().unwrap();
        let mut b = svc.take_place().unwrap();
        assert!(svc.take_place().is_none());
        drop(a);
        let c = svc.take_place().unwrap();
        b.kept = true;
        drop(b);
        drop(c);
        assert_eq!(svc.taken.load(Ordering::SeqCst), 1);
        let none = Interpreters::with_max_contexts(
            Arc::new(ChildEnv::new([])),
            Reaper::global(),
            PathBuf::from("/"),
            0,
        );
        assert!(none.take_place().is_none());
    }
}
