//! The one owner of `waitpid`.
//!
//! As PID 1 the daemon inherits every orphan in the sandbox and must reap them, but a reaper that
//! calls `waitpid(-1)` steals the exit status of children the daemon spawned itself and is
//! waiting for. So exactly one component reaps: a thread woken by `SIGCHLD` that collects every
//! exited child with `waitpid(-1, WNOHANG)` and hands each status to whoever registered for that
//! pid. Nobody else may wait: spawn through [`Reaper::spawn`] (never `tokio::process`, and never
//! call `Child::wait`).
//!
//! Spawns take a shared lock that the reaping pass takes exclusively. A child therefore cannot
//! be reaped between `fork` and the registration of its waiter, and the standard library's own
//! `waitpid` on a child whose `exec` failed cannot race with us either. Statuses nobody waits for
//! (orphans) are kept for [`UNCLAIMED_TTL`] for late registrations of children spawned by code
//! that could not go through the gate, and such a late registration only trusts a status
//! recorded at most [`LATE_WINDOW`] before it, because an older one may belong to an earlier
//! process that had the same pid.
//!
//! The reaping thread is one hop more between a child's exit and whoever waits for it: a
//! signal, a wake-up of that thread, then a wake-up of the waiter. An async waiter (a request
//! waiting for its command) skips both: it also watches a pidfd of its child, which becomes
//! readable when the child exits, and then collects that one child itself with
//! `waitid(P_PIDFD)` — under the table's lock, so that the status goes to exactly one of the
//! two and a pid can only be reused once its waiter is gone.
//!
//! When the daemon is not PID 1 it makes itself a child subreaper, so orphans of its descendants
//! come to it exactly as they would to PID 1 and the same code runs in tests and development.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

/// How long an unclaimed exit status is kept.
pub const UNCLAIMED_TTL: Duration = Duration::from_secs(10);
/// How old an unclaimed status may be and still be handed to a late registration.
pub const LATE_WINDOW: Duration = Duration::from_secs(1);
/// Upper bound on remembered orphan statuses, so a fork bomb of orphans cannot grow memory.
const MAX_UNCLAIMED: usize = 4096;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
    /// The status could not be recovered (the waiter was dropped by a reaper that stopped).
    Unknown,
}

impl ExitStatus {
    /// The exit code the API reports: the code for a normal exit, and -1 for a signal death or
    /// an unknown status, as the reference does for execute, code-run and deletes.
    pub fn api_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(_) | ExitStatus::Unknown => -1,
        }
    }

    fn from_raw(raw: libc::c_int) -> Self {
        if libc::WIFEXITED(raw) {
            ExitStatus::Exited(libc::WEXITSTATUS(raw))
        } else if libc::WIFSIGNALED(raw) {
            ExitStatus::Signaled(libc::WTERMSIG(raw))
        } else {
            ExitStatus::Unknown
        }
    }
}

/// Resolves to a child's exit status once the reaper has collected it.
#[derive(Debug)]
pub struct ExitWait {
    rx: oneshot::Receiver<ExitStatus>,
    /// The child's pidfd, for async waiters to collect the child themselves (module docs).
    direct: Option<Direct>,
}

struct Direct {
    pid: u32,
    inner: Arc<Inner>,
    /// Registered with the runtime on the first poll (the wait may be created outside one).
    pending: Option<OwnedFd>,
    registered: Option<AsyncFd<OwnedFd>>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl ExitWait {
    fn channel_only(rx: oneshot::Receiver<ExitStatus>) -> Self {
        ExitWait { rx, direct: None }
    }

    pub async fn wait(self) -> ExitStatus {
        self.await
    }

    /// For threads outside the async runtime.
    pub fn wait_blocking(self) -> ExitStatus {
        self.rx.blocking_recv().unwrap_or(ExitStatus::Unknown)
    }
}

impl std::future::Future for ExitWait {
    type Output = ExitStatus;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<ExitStatus> {
        use std::task::Poll;
        let this = &mut *self;
        if let Poll::Ready(r) = std::pin::Pin::new(&mut this.rx).poll(cx) {
            return Poll::Ready(r.unwrap_or(ExitStatus::Unknown));
        }
        let Some(direct) = this.direct.as_mut() else { return Poll::Pending };
        match direct.poll_exit(cx) {
            Poll::Ready(Some(status)) => Poll::Ready(status),
            // The reaping thread has it (or the pidfd is unusable): its message comes, and
            // polling the channel above registered for it.
            Poll::Ready(None) => {
                this.direct = None;
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Direct {
    /// Ready(Some) when this waiter collected the child, Ready(None) when it cannot.
    fn poll_exit(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<ExitStatus>> {
        use std::task::Poll;
        if let Some(fd) = self.pending.take() {
            // Polled outside a runtime (a hand-made executor): the channel alone serves.
            if tokio::runtime::Handle::try_current().is_err() {
                return Poll::Ready(None);
            }
            // SAFETY: an OwnedFd stays open and names the same pidfd until it is dropped with
            // the AsyncFd that owns it.
            match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
                Ok(afd) => self.registered = Some(afd),
                Err(_) => return Poll::Ready(None),
            }
        }
        let Some(afd) = &self.registered else { return Poll::Ready(None) };
        loop {
            let mut guard = match afd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let mut table = lock_table(&self.inner);
            match reap_pidfd(guard.get_inner().as_raw_fd()) {
                Reaped::Status(status) => {
                    table.waiters.remove(&self.pid);
                    return Poll::Ready(Some(status));
                }
                Reaped::Gone => return Poll::Ready(None),
                Reaped::Running => guard.clear_ready(),
            }
        }
    }
}

enum Reaped {
    Status(ExitStatus),
    /// Not our child any more: the reaping thread collected it first.
    Gone,
    Running,
}

/// `waitid(P_PIDFD, WEXITED | WNOHANG)`.
fn reap_pidfd(fd: RawFd) -> Reaped {
    // SAFETY: zeroed siginfo is a valid out-buffer for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall with a valid out-pointer; P_PIDFD is 3 on Linux.
    let rc = unsafe { libc::waitid(P_PIDFD, fd as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG) };
    if rc != 0 {
        return Reaped::Gone;
    }
    // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed: nothing exited).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Reaped::Running;
    }
    Reaped::Status(match info.si_code {
        libc::CLD_EXITED => ExitStatus::Exited(status),
        libc::CLD_KILLED | libc::CLD_DUMPED => ExitStatus::Signaled(status),
        _ => ExitStatus::Unknown,
    })
}

const P_PIDFD: libc::idtype_t = 3;

/// A pidfd for a child that cannot have been reaped yet (the caller holds the gate).
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    // SAFETY: on success the kernel returned a new descriptor that nothing else owns; it is
    // marked close-on-exec by the kernel.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[derive(Default)]
struct Table {
    waiters: HashMap<u32, oneshot::Sender<ExitStatus>>,
    unclaimed: HashMap<u32, (ExitStatus, Instant)>,
}

impl Table {
    /// Hands a collected status to its waiter, or keeps it for a late registration.
    fn deliver(&mut self, pid: u32, status: ExitStatus, now: Instant) {
        if let Some(tx) = self.waiters.remove(&pid) {
            let _ = tx.send(status);
            return;
        }
        self.unclaimed.retain(|_, (_, at)| now.duration_since(*at) < UNCLAIMED_TTL);
        if self.unclaimed.len() >= MAX_UNCLAIMED {
            let oldest = self.unclaimed.iter().min_by_key(|(_, (_, at))| *at).map(|(p, _)| *p);
            if let Some(p) = oldest {
                self.unclaimed.remove(&p);
            }
        }
        self.unclaimed.insert(pid, (status, now));
    }

    /// Registers a waiter for a child that was spawned under the gate: it cannot have been
    /// reaped yet, so any unclaimed status under its pid belongs to an earlier process.
    fn register_fresh(&mut self, pid: u32) -> ExitWait {
        self.unclaimed.remove(&pid);
        let (tx, rx) = oneshot::channel();
        self.waiters.insert(pid, tx);
        ExitWait::channel_only(rx)
    }

    /// Registers a waiter for a child spawned outside the gate, which may already be reaped.
    fn register_late(&mut self, pid: u32, now: Instant) -> ExitWait {
        let (tx, rx) = oneshot::channel();
        match self.unclaimed.remove(&pid) {
            Some((status, at)) if now.duration_since(at) <= LATE_WINDOW => {
                let _ = tx.send(status);
            }
            _ => {
                self.waiters.insert(pid, tx);
            }
        }
        ExitWait::channel_only(rx)
    }
}

struct Inner {
    /// Shared by spawns, exclusive for a reaping pass.
    gate: RwLock<()>,
    table: Mutex<Table>,
}

/// Handle to the process-wide reaper. Cheap to clone.
#[derive(Clone)]
pub struct Reaper {
    inner: Arc<Inner>,
}

static GLOBAL: OnceLock<Reaper> = OnceLock::new();

impl Reaper {
    /// The process's reaper, started on first use. There is one per process by construction:
    /// two reapers would steal each other's statuses.
    pub fn global() -> &'static Reaper {
        GLOBAL.get_or_init(|| {
            let reaper = Reaper {
                inner: Arc::new(Inner { gate: RwLock::new(()), table: Mutex::new(Table::default()) }),
            };
            become_subreaper_unless_init();
            reaper.start_thread().expect("cannot install the SIGCHLD handler");
            reaper
        })
    }

    fn start_thread(&self) -> io::Result<()> {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGCHLD])?;
        let me = self.clone();
        std::thread::Builder::new().name("reaper".into()).spawn(move || {
            // Children may have exited before the handler was installed.
            me.reap_all();
            for _ in signals.forever() {
                me.reap_all();
            }
        })?;
        Ok(())
    }

    /// Collects every child that has exited. Signals coalesce, so one wake-up drains them all.
    fn reap_all(&self) {
        let _exclusive = self.inner.gate.write().unwrap_or_else(|e| e.into_inner());
        loop {
            let mut raw: libc::c_int = 0;
            // SAFETY: plain syscall with a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
            if pid <= 0 {
                // 0: children exist but none has exited; -1: ECHILD (none at all) or EINTR,
                // and the next SIGCHLD brings us back either way.
                break;
            }
            let status = ExitStatus::from_raw(raw);
            self.table().deliver(pid as u32, status, Instant::now());
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        lock_table(&self.inner)
    }

    /// Spawns a command and returns the child with a future for its exit status.
    pub fn spawn(&self, cmd: &mut std::process::Command) -> io::Result<(std::process::Child, ExitWait)> {
        self.spawn_with(|| cmd.spawn(), |child| child.id())
    }

    /// Runs any spawning function under the gate (for libraries such as a PTY crate that spawn
    /// themselves) and registers a waiter for the pid it reports.
    pub fn spawn_with<T>(
        &self,
        spawn: impl FnOnce() -> io::Result<T>,
        pid_of: impl FnOnce(&T) -> u32,
    ) -> io::Result<(T, ExitWait)> {
        let _shared = self.inner.gate.read().unwrap_or_else(|e| e.into_inner());
        let child = spawn()?;
        let pid = pid_of(&child);
        crate::exhaust::unprotect_child(pid);
        let mut wait = self.table().register_fresh(pid);
        wait.direct = pidfd_open(pid).map(|fd| Direct {
            pid,
            inner: self.inner.clone(),
            pending: Some(fd),
            registered: None,
        });
        Ok((child, wait))
    }

    /// Waits for a child that was spawned without going through [`Reaper::spawn`].
    pub fn wait_late(&self, pid: u32) -> ExitWait {
        self.table().register_late(pid, Instant::now())
    }
}

fn lock_table(inner: &Inner) -> std::sync::MutexGuard<'_, Table> {
    toolbox_envelope::sync::lock(&inner.table)
}

fn become_subreaper_unless_init() {
    if std::process::id() != 1 {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(error = %io::Error::last_os_error(), "could not become a child subreaper");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn exit_codes_and_signals() {
        let r = Reaper::global();
        let (_c, w) = r.spawn(Command::new("sh").args(["-c", "exit 7"])).unwrap();
        assert_eq!(w.wait_blocking(), ExitStatus::Exited(7));
        let (_c, w) = r.spawn(Command::new("sh").args(["-c", "kill -9 $$"])).unwrap();
        let st = w.wait_blocking();
        assert_eq!(st, ExitStatus::Signaled(9));
        assert_eq!(st.api_code(), -1);
        let (_c, w) = r.spawn(&mut Command::new("true")).unwrap();
        assert_eq!(rt().block_on(w.wait()), ExitStatus::Exited(0));
    }

    #[test]
    fn async_waiters_collect_their_own_children_exactly_once() {
        // Awaited in a runtime, each wait may collect its child through its pidfd while the
        // reaping thread races for the same children: every status must still arrive, right,
        // once, and leave no waiter behind.
        let r = Reaper::global();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let statuses = rt.block_on(async {
            let waits: Vec<_> = (0..40)
                .map(|i| {
                    let script = if i % 5 == 0 { "kill -9 $$".to_string() } else { format!("exit {i}") };
                    let (c, w) = r.spawn(Command::new("sh").args(["-c", &script])).unwrap();
                    (i, c.id(), w)
                })
                .collect();
            let mut out = Vec::new();
            for (i, pid, w) in waits {
                out.push((i, pid, w.await));
            }
            out
        });
        for (i, pid, st) in statuses {
            let want = if i % 5 == 0 { ExitStatus::Signaled(9) } else { ExitStatus::Exited(i) };
            assert_eq!(st, want, "child {i}");
            assert!(!r.table().waiters.contains_key(&pid), "waiter of {pid} left behind");
        }
    }

    #[test]
    fn failed_exec_is_an_error_not_a_panic() {
        // std waits for a child whose exec failed; the gate keeps the reaper from stealing it.
        for _ in 0..50 {
            let err = Reaper::global().spawn(&mut Command::new("/nonexistent/binary")).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
        }
    }

    #[test]
    fn orphans_are_reaped() {
        // A grandchild that outlives its parent is re-parented to us (subreaper) and must not
        // stay a zombie.
        let r = Reaper::global();
        let (mut c, w) =
            r.spawn(Command::new("sh").args(["-c", "sleep 0.2 & echo $!"]).stdout(Stdio::piped())).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut out).unwrap();
        assert_eq!(w.wait_blocking(), ExitStatus::Exited(0));
        let pid: u32 = out.trim().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => break, // reaped: gone from /proc
                Ok(stat) => {
                    assert!(Instant::now() < deadline, "grandchild {pid} not reaped: {stat}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    #[test]
    fn many_concurrent_children_each_get_their_own_status() {
        let r = Reaper::global();
        let handles: Vec<_> = (0..40)
            .map(|i| {
                std::thread::spawn(move || {
                    let (_c, w) =
                        r.spawn(Command::new("sh").args(["-c", &format!("exit {}", i % 256)])).unwrap();
                    assert_eq!(w.wait_blocking(), ExitStatus::Exited(i % 256));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn late_registration_trusts_only_recent_statuses() {
        let mut t = Table::default();
        let t0 = Instant::now();
        t.deliver(4242, ExitStatus::Exited(3), t0);
        let w = t.register_late(4242, t0 + Duration::from_millis(500));
        assert_eq!(rt().block_on(w.wait()), ExitStatus::Exited(3));

        // Recorded too long before the waiter existed: probably an earlier process with that pid.
        t.deliver(4243, ExitStatus::Exited(4), t0);
        let w = t.register_late(4243, t0 + Duration::from_secs(2));
        t.deliver(4243, ExitStatus::Exited(5), t0 + Duration::from_secs(3));
        assert_eq!(rt().block_on(w.wait()), ExitStatus::Exited(5));
    }

    #[test]
    fn stale_and_excess_unclaimed_statuses_are_evicted() {
        let mut t = Table::default();
        let t0 = Instant::now();
        t.deliver(1, ExitStatus::Exited(0), t0);
        t.deliver(2, ExitStatus::Exited(0), t0 + UNCLAIMED_TTL + Duration::from_millis(1));
        assert!(!t.unclaimed.contains_key(&1));
        for pid in 10..(10 + MAX_UNCLAIMED as u32 + 5) {
            t.deliver(pid, ExitStatus::Exited(0), t0 + UNCLAIMED_TTL + Duration::from_millis(2));
        }
        assert!(t.unclaimed.len() <= MAX_UNCLAIMED);
    }

    #[test]
    fn fresh_registration_discards_a_reused_pids_old_status() {
        let mut t = Table::default();
        let t0 = Instant::now();
        t.deliver(77, ExitStatus::Exited(9), t0);
        let w = t.register_fresh(77);
        t.deliver(77, ExitStatus::Exited(1), t0);
        assert_eq!(rt().block_on(w.wait()), ExitStatus::Exited(1));
    }
}
