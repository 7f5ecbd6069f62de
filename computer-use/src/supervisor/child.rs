//! One supervised desktop process: spawn it in its own process group with its output appended
//! to `<log dir>/<name>.log` / `.err`, wait for it, restart it with back-off when it may restart,
//! and end the whole group on stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::logs::read_tail;
use super::table::ProcSpec;
use crate::sync::lock;

/// First restart delay; doubled after each quick failure up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long is considered healthy again: the back-off starts over.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long a process group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(1500);
/// How long stopping a supervisor may take (spec: 5 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct State {
    pid: Option<u32>,
    /// How the last run ended (`exited with status 1`, `cannot start: …`).
    last_end: Option<String>,
    /// Incremented for every run, so a waiter can tell "the run I started ended".
    runs: u64,
    task: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

pub struct Proc {
    pub spec: ProcSpec,
    log_dir: PathBuf,
    state: Mutex<State>,
}

/// How one run of the process ended, as seen by a readiness waiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Running(u32),
    Ended(String),
}

impl Proc {
    pub fn new(spec: ProcSpec, log_dir: PathBuf) -> Arc<Proc> {
        Arc::new(Proc { spec, log_dir, state: Mutex::new(State::default()) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn log_path(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.spec.name))
    }

    pub fn err_path(&self) -> PathBuf {
        self.log_dir.join(format!("{}.err", self.spec.name))
    }

    /// The supervised child's pid while it exists.
    pub fn pid(&self) -> Option<u32> {
        let pid = self.state().pid?;
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid as i32, 0) } == 0).then_some(pid)
    }

    /// Whether the supervision loop is active (also during a restart back-off).
    pub fn loop_active(&self) -> bool {
        self.state().task.as_ref().is_some_and(|(_, h)| !h.is_finished())
    }

    /// The number of runs so far and the state of the latest one.
    pub fn run_state(&self) -> (u64, Option<RunState>) {
        let s = self.state();
        let state = match (s.pid, &s.last_end) {
            (Some(pid), _) => Some(RunState::Running(pid)),
            (None, Some(end)) => Some(RunState::Ended(end.clone())),
            (None, None) => None,
        };
        (s.runs, state)
    }

    /// Starts the supervision loop unless it is active.
    pub fn start(self: &Arc<Self>, env: Vec<(String, String)>) {
        let mut s = self.state();
        if s.task.as_ref().is_some_and(|(_, h)| !h.is_finished()) {
            return;
        }
        let (tx, rx) = watch::channel(false);
        let me = self.clone();
        s.task = Some((tx, tokio::spawn(async move { me.supervise(env, rx).await })));
    }

    /// Stops the loop and ends the process group; bounded.
    pub async fn stop(&self) -> Result<(), String> {
        let task = self.state().task.take();
        let Some((cancel, handle)) = task else { return Ok(()) };
        let _ = cancel.send(true);
        match tokio::time::timeout(STOP_TIMEOUT, handle).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("timed out waiting for process {} supervisor to stop", self.spec.name)),
        }
    }

    async fn supervise(self: Arc<Self>, env: Vec<(String, String)>, mut cancel: watch::Receiver<bool>) {
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let started = Instant::now();
            match self.spawn_once(&env) {
                Ok(mut child) => {
                    let pid = child.id().unwrap_or(0);
                    {
                        let mut s = self.state();
                        s.pid = Some(pid);
                        s.last_end = None;
                    }
                    tracing::info!(process = self.spec.name, pid, "started");
                    let ended = tokio::select! {
                        status = child.wait() => Some(status),
                        _ = cancel.wait_for(|c| *c) => None,
                    };
                    match ended {
                        Some(status) => {
                            let text = match status {
                                Ok(st) => describe(st),
                                Err(e) => format!("wait failed: {e}"),
                            };
                            tracing::warn!(process = self.spec.name, pid, "{text}");
                            // Whatever the leader left in its group goes with it.
                            kill_group(pid, libc::SIGKILL);
                            self.ended(text);
                        }
                        None => {
                            terminate_group(pid, &mut child).await;
                            self.ended("stopped".into());
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(process = self.spec.name, "cannot start: {e}");
                    self.ended(format!("cannot start: {e}"));
                }
            }
            if !self.spec.auto_restart {
                return;
            }
            if started.elapsed() >= STABLE_AFTER {
                backoff = INITIAL_BACKOFF;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = cancel.wait_for(|c| *c) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn ended(&self, how: String) {
        let mut s = self.state();
        s.pid = None;
        s.last_end = Some(how);
    }

    fn spawn_once(&self, env: &[(String, String)]) -> Result<tokio::process::Child, String> {
        {
            // One step, so a waiter never sees the new run counted with the old run's end.
            let mut s = self.state();
            s.runs += 1;
            s.last_end = None;
        }
        let program = self.spec.program.as_ref().map_err(Clone::clone)?;
        let stdout = open_append(&self.log_path())?;
        let stderr = open_append(&self.err_path())?;
        tokio::process::Command::new(program)
            .args(&self.spec.args)
            .env_clear()
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own group, so that stopping it ends everything it started in the group.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))
    }
}

fn open_append(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

fn kill_group(pgid: u32, sig: i32) {
    if pgid > 1 {
        // SAFETY: plain syscall; the group is ours (created with process_group(0)).
        unsafe { libc::killpg(pgid as i32, sig) };
    }
}

/// SIGTERM to the group, SIGKILL after the grace period, and the leader reaped.
async fn terminate_group(pid: u32, child: &mut tokio::process::Child) {
    kill_group(pid, libc::SIGTERM);
    if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_err() {
        kill_group(pid, libc::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    }
    // Members that ignored SIGTERM while the leader obeyed.
    kill_group(pid, libc::SIGKILL);
}

/// The last non-empty line of a file (what a failing process said last), bounded.
pub fn last_line(path: &Path) -> Option<String> {
    let text = read_tail(path, 4096).ok()?;
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::table::Readiness;

    fn spec(name: &'static str, script: &str, auto_restart: bool) -> ProcSpec {
        ProcSpec {
            name,
            priority: 1,
            auto_restart,
            program: Ok("/bin/sh".into()),
            args: vec!["-c".into(), script.into()],
            session_env: false,
            ready: Readiness::Nothing,
            required: true,
        }
    }

    async fn until(what: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < deadline, "condition not reached");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn restarts_with_a_new_pid_and_logs_each_run() {
        let dir = tempdir();
        let p = Proc::new(spec("flaky", "echo out; echo err >&2; sleep 0.2; exit 3", true), dir.clone());
        p.start(vec![("PATH".into(), "/usr/bin:/bin".into())]);
        until(|| p.run_state().0 >= 2).await;
        assert!(p.loop_active());
        p.stop().await.unwrap();
        assert!(!p.loop_active());
        assert_eq!(p.pid(), None);
        let log = std::fs::read_to_string(p.log_path()).unwrap();
        assert!(log.matches("out").count() >= 1, "{log}");
        assert_eq!(last_line(&p.err_path()).as_deref(), Some("err"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn no_restart_and_stop_ends_the_group() {
        let dir = tempdir();
        let once = Proc::new(spec("once", "exit 4", false), dir.clone());
        once.start(vec![]);
        until(|| !once.loop_active()).await;
        assert_eq!(once.run_state(), (1, Some(RunState::Ended("exited with status 4".into()))));

        // A grandchild in the same group must not survive the stop.
        let script = format!(
            "cd {}; sleep 60 & echo $! > grandchild.tmp; mv grandchild.tmp grandchild; wait",
            dir.display()
        );
        let p = Proc::new(spec("tree", &script, true), dir.clone());
        p.start(vec![("PATH".into(), "/usr/bin:/bin".into())]);
        until(|| dir.join("grandchild").exists() && p.pid().is_some()).await;
        let grandchild: i32 =
            std::fs::read_to_string(dir.join("grandchild")).unwrap().trim().parse().unwrap();
        p.stop().await.unwrap();
        until(|| {
            std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        })
        .await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_missing_program_is_reported() {
        let dir = tempdir();
        let mut s = spec("ghost", "", false);
        s.program = Err("Ghost not found on PATH".into());
        let p = Proc::new(s, dir.clone());
        p.start(vec![]);
        until(|| !p.loop_active()).await;
        assert_eq!(p.run_state().1, Some(RunState::Ended("cannot start: Ghost not found on PATH".into())));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "cu-child-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
