//! One context: its identity, its job queue, and the worker currently serving it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::language::Language;
use super::worker::Out;

/// The id of the context used when a request names none.
pub const DEFAULT_CONTEXT: &str = "default";

/// One execution request, queued on its context.
pub struct Job {
    pub code: String,
    pub envs: Option<BTreeMap<String, Option<String>>>,
    /// `None`: no limit.
    pub timeout: Option<Duration>,
    /// Frames and the final close for the client.
    pub out: mpsc::Sender<Out>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    Inactive,
    Full,
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
    /// A context whose jobs go to `queue`, served for now by the worker `pid`.
    pub fn new(
        id: String,
        cwd: PathBuf,
        language: Language,
        queue: mpsc::Sender<Job>,
        pid: u32,
        alive: Arc<AtomicBool>,
    ) -> Self {
        Context {
            id,
            cwd,
            created_at: crate::timefmt::now_rfc3339(),
            language,
            queue: Mutex::new(Some(queue)),
            deleting: AtomicBool::new(false),
            current: Mutex::new(WorkerRef { pid, alive: Some(alive) }),
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
        toolbox_envelope::sync::lock(&self.current)
    }

    /// A new worker serves the context (the previous one died).
    pub fn set_worker(&self, pid: u32, alive: Arc<AtomicBool>) {
        *self.current() = WorkerRef { pid, alive: Some(alive) };
    }

    /// Queues a job. Err gives the job back when the context no longer takes jobs or its queue
    /// is full.
    pub fn submit(&self, job: Job) -> Result<(), (Job, SubmitError)> {
        let queue = toolbox_envelope::sync::lock(&self.queue);
        let Some(tx) = queue.as_ref() else { return Err((job, SubmitError::Inactive)) };
        tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) => (j, SubmitError::Full),
            mpsc::error::TrySendError::Closed(j) => (j, SubmitError::Inactive),
        })
    }

    /// Stops taking jobs and terminates the worker: SIGTERM, then SIGKILL of its process group
    /// after `grace`. Jobs already queued end with `1001 context shutdown`.
    pub async fn stop(&self, grace: Duration) {
        self.deleting.store(true, Ordering::SeqCst);
        toolbox_envelope::sync::lock(&self.queue).take();
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
        crate::signal::kill_group(pid, libc::SIGKILL);
    }
}
