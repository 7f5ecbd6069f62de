//! A sandbox whose user has used up what its limits allow: no process or thread can be started
//! (the pids limit, `EAGAIN`), no memory (`ENOMEM`), no file descriptor (`EMFILE`, `ENFILE`).
//!
//! None of these is the daemon's fault nor the request's: the answer is a 503 with its own code
//! that names the exhausted resource, so a client can tell "retry once the sandbox has calmed
//! down" from a bug (500) or a mistake (4xx). Areas that start processes or threads keep the
//! failing [`io::Error`] long enough to ask [`Exhausted::of`] before turning it into text.

use std::io;

use axum::http::StatusCode;

use crate::error::{ApiError, Code};

/// What ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Processes or threads: the container's pids limit or `RLIMIT_NPROC`.
    Processes,
    Memory,
    FileDescriptors,
}

impl Resource {
    pub fn of(e: &io::Error) -> Option<Resource> {
        match e.raw_os_error()? {
            libc::EAGAIN => Some(Resource::Processes),
            libc::ENOMEM => Some(Resource::Memory),
            libc::EMFILE | libc::ENFILE => Some(Resource::FileDescriptors),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Resource::Processes => "the sandbox has reached its limit of processes and threads",
            Resource::Memory => "the sandbox is out of memory",
            Resource::FileDescriptors => "the daemon has reached its limit of open files",
        }
    }
}

/// Something could not be started because the sandbox is exhausted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {} ({}); end some processes and try again", .resource.describe(), .os)]
pub struct Exhausted {
    pub what: String,
    pub resource: Resource,
    /// The operating system's words.
    pub os: String,
}

impl Exhausted {
    /// `Some` when `e` means the sandbox is exhausted; `what` says what could not be done.
    pub fn of(what: impl std::fmt::Display, e: &io::Error) -> Option<Exhausted> {
        let resource = Resource::of(e)?;
        Some(Exhausted { what: what.to_string(), resource, os: crate::text::os_error_text(e) })
    }
}

impl From<Exhausted> for ApiError {
    fn from(e: Exhausted) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::ResourceExhausted, e.to_string())
    }
}

/// The async runtime, built so that answering a request never needs a new OS thread: tokio's
/// blocking pool panics when it has no thread at all and the OS refuses to make one (a fork
/// bomb holding the pids limit), so a few blocking threads are started here and kept for the
/// daemon's life instead of ending after ten idle seconds. New threads are still made when the
/// system allows; when it does not, work queues on the kept ones.
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    build("tokio-runtime-worker")
}

fn build(thread_name: &str) -> io::Result<tokio::runtime::Runtime> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(thread_name)
        .thread_keep_alive(std::time::Duration::from_secs(365 * 24 * 3600))
        .build()?;
    // Started beside the start-up rather than before it: the threads are there within a
    // millisecond, and the daemon does not wait for eight thread creations to begin listening.
    rt.spawn(prestart_blocking_threads(KEPT_BLOCKING_THREADS));
    Ok(rt)
}

/// How many blocking threads exist from the start. A thread costs a few KiB of memory until
/// it is used (its stack is reserved, not touched).
pub const KEPT_BLOCKING_THREADS: usize = 8;

/// Occupies `n` blocking threads at once, which makes the pool start that many. Each task waits
/// for the others until a second after the start: a system that gives fewer threads (tokio
/// then queues the rest) leaves the daemon with what it got instead of waiting for ever.
async fn prestart_blocking_threads(n: usize) {
    use std::sync::{Arc, Condvar, Mutex};
    let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
    // One deadline for all: a task that only runs once another ended finds it passed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let a = arrived.clone();
            tokio::task::spawn_blocking(move || {
                let (count, cv) = &*a;
                let mut c = toolbox_envelope::sync::lock(count);
                *c += 1;
                cv.notify_all();
                while *c < n {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    c = cv.wait_timeout(c, left).unwrap_or_else(|e| e.into_inner()).0;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// The OOM score the daemon asks for itself: the kernel then prefers any user process as a
/// victim (the daemon's own memory is small and bounded; losing it loses every session).
pub const DAEMON_OOM_SCORE: i32 = -800;

/// What children get back: the daemon's score from before it lowered its own, once it did.
static CHILD_OOM_SCORE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Lowers the daemon's OOM score where the kernel permits it (lowering takes
/// `CAP_SYS_RESOURCE`, which containers seldom have; then nothing changes and children keep the
/// default anyway). Called once at start, before any child exists.
pub fn protect_daemon() {
    let path = "/proc/self/oom_score_adj";
    let Some(before) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<i32>().ok()) else {
        return;
    };
    if before <= DAEMON_OOM_SCORE {
        return;
    }
    match std::fs::write(path, DAEMON_OOM_SCORE.to_string()) {
        Ok(()) => {
            let _ = CHILD_OOM_SCORE.set(before);
            tracing::debug!(
                score = DAEMON_OOM_SCORE,
                "the daemon lowered its OOM score; its children keep {before}"
            );
        }
        Err(e) => tracing::debug!("the daemon keeps OOM score {before}: {}", crate::text::os_error_text(&e)),
    }
}

/// Gives a new child the score the daemon had before [`protect_daemon`], so user processes are
/// not protected with it. Raising a score needs no privilege. Done by the parent right after the
/// spawn, before the child is given any input (a `pre_exec` hook would cost every spawn the
/// slower fork path).
pub fn unprotect_child(pid: u32) {
    if let Some(score) = CHILD_OOM_SCORE.get() {
        let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_that_mean_exhaustion() {
        let e = io::Error::from_raw_os_error(libc::EAGAIN);
        let x = Exhausted::of("cannot start the session's shell", &e).unwrap();
        assert_eq!(x.resource, Resource::Processes);
        let text = x.to_string();
        assert!(
            text.starts_with(
                "cannot start the session's shell: the sandbox has reached its limit of processes"
            )
        );
        assert!(text.contains("try again"), "{text}");
        assert_eq!(Resource::of(&io::Error::from_raw_os_error(libc::ENOMEM)), Some(Resource::Memory));
        assert_eq!(
            Resource::of(&io::Error::from_raw_os_error(libc::EMFILE)),
            Some(Resource::FileDescriptors)
        );
        assert_eq!(
            Resource::of(&io::Error::from_raw_os_error(libc::ENFILE)),
            Some(Resource::FileDescriptors)
        );
        assert_eq!(Resource::of(&io::Error::from_raw_os_error(libc::ENOENT)), None);
        assert_eq!(Resource::of(&io::Error::other("x")), None);
        let api = ApiError::from(x);
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn the_runtime_keeps_its_blocking_threads() {
        // Threads are counted by name: the test harness runs other threads in this process.
        let name = "exhaust-test-rt";
        let rt = build(name).unwrap();
        let count = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|comm| comm.trim_end() == name)
                .count()
        };
        let workers = rt.metrics().num_workers();
        // They are started beside the start-up: give them a moment, then keep checking that
        // they stay.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while count() < workers + KEPT_BLOCKING_THREADS && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let ours = count();
        assert!(ours >= workers + KEPT_BLOCKING_THREADS, "{ours} threads, {workers} workers");
    }
}
