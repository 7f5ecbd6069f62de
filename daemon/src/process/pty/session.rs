//! One terminal: its shell, the reader and writer threads, the attached clients and the replay
//! buffer.
//!
//! All state that output delivery touches lives under one mutex: the reader appends a chunk to
//! the replay ring and queues it for every client in the same critical section in which
//! [`Pty::attach`] copies the ring for a new client, so a client sees every byte exactly once
//! (replay, then live) with no gap and no duplicate.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::process::tree;
use crate::pty as sys;
use crate::reaper::{ExitStatus, Reaper};

/// Chunks a client may have queued before it counts as a slow consumer (process.md §5.7).
pub const CLIENT_QUEUE: usize = 256;
/// Input messages queued for the terminal.
const INPUT_QUEUE: usize = 1024;
/// Largest read from the master.
const READ_CHUNK: usize = 32 * 1024;
/// How long to wait for output still in flight after the shell exited.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// Stack of the per-terminal threads: they only move bytes, and 100 idle terminals must stay
/// cheap.
const THREAD_STACK: usize = 128 * 1024;

/// How a client's connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The shell exited; `code` as the API reports it (-1 for a signal, 1 if unrecoverable).
    Exited { code: i32, unrecoverable: bool },
    /// Deleted through the API.
    Killed,
    /// This client's queue overflowed.
    SlowConsumer,
}

impl End {
    fn of(status: ExitStatus) -> End {
        match status {
            ExitStatus::Exited(c) => End::Exited { code: c, unrecoverable: false },
            ExitStatus::Signaled(_) => End::Exited { code: -1, unrecoverable: false },
            ExitStatus::Unknown => End::Exited { code: 1, unrecoverable: true },
        }
    }
}

/// What to start and where.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
}

struct Running {
    master: Arc<OwnedFd>,
    pid: u32,
    /// `/dev/pts/<n>`, to find processes that still hold the terminal.
    tty: Option<String>,
    input: mpsc::Sender<Bytes>,
    stop: Arc<AtomicBool>,
}

enum Phase {
    Idle,
    Running(Running),
    Ended,
}

struct Slot {
    out: mpsc::Sender<Bytes>,
    end: Option<oneshot::Sender<End>>,
}

struct Inner {
    phase: Phase,
    cols: u16,
    rows: u16,
    ring: super::ring::Ring,
    clients: HashMap<u64, Slot>,
    next_client: u64,
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

/// A terminal and its metadata.
pub struct Pty {
    pub id: String,
    pub cwd: String,
    pub envs: BTreeMap<String, String>,
    pub created_at: String,
    pub lazy_start: bool,
    inner: Mutex<Inner>,
}

/// An attached client: its output queue and the signal that ends it. Dropping it detaches.
pub struct Client {
    pub out: mpsc::Receiver<Bytes>,
    pub end: oneshot::Receiver<End>,
    id: u64,
    pty: Arc<Pty>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.pty.lock().clients.remove(&self.id);
    }
}

/// Why a terminal cannot be resized.
#[derive(Debug, PartialEq, Eq)]
pub enum ResizeError {
    NotStarted,
    Ended,
    Io(String),
}

impl Pty {
    pub fn new(
        id: String,
        cwd: String,
        envs: BTreeMap<String, String>,
        cols: u16,
        rows: u16,
        lazy_start: bool,
        replay_bytes: usize,
    ) -> Arc<Pty> {
        Arc::new(Pty {
            id,
            cwd,
            envs,
            created_at: crate::timefmt::now_rfc3339(),
            lazy_start,
            inner: Mutex::new(Inner {
                phase: Phase::Idle,
                cols,
                rows,
                ring: super::ring::Ring::new(replay_bytes),
                clients: HashMap::new(),
                next_client: 0,
                on_end: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        toolbox_envelope::sync::lock(&self.inner)
    }

    pub fn size(&self) -> (u16, u16) {
        let g = self.lock();
        (g.cols, g.rows)
    }

    pub fn is_active(&self) -> bool {
        matches!(self.lock().phase, Phase::Running(_))
    }

    pub fn is_started(&self) -> bool {
        !matches!(self.lock().phase, Phase::Idle)
    }

    pub fn is_ended(&self) -> bool {
        matches!(self.lock().phase, Phase::Ended)
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.lock().phase {
            Phase::Running(r) => Some(r.pid),
            _ => None,
        }
    }

    /// Starts the shell unless it already runs (a terminal is started at most once).
    /// `on_end` runs once when the terminal ends, whichever way. Must run inside a tokio runtime.
    pub fn start(
        self: &Arc<Self>,
        reaper: &'static Reaper,
        launch: Launch,
        on_end: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let mut g = self.lock();
        match g.phase {
            Phase::Running(_) => return Ok(()),
            Phase::Ended => return Err(std::io::Error::other("the PTY session has ended")),
            Phase::Idle => {}
        }
        let args: Vec<&str> = launch.args.iter().map(String::as_str).collect();
        let spawned = sys::spawn(
            reaper,
            sys::SpawnSpec {
                program: &launch.program,
                args: &args,
                cwd: &launch.cwd,
                env: launch.env,
                cols: g.cols,
                rows: g.rows,
            },
        )?;
        let tty = sys::slave_path(&spawned.master);
        let master = Arc::new(spawned.master);
        let stop = Arc::new(AtomicBool::new(false));
        let (input_tx, input_rx) = mpsc::channel::<Bytes>(INPUT_QUEUE);
        let (reader_done_tx, reader_done_rx) = oneshot::channel::<()>();

        let reader = {
            let (pty, master, stop) = (Arc::downgrade(self), master.clone(), stop.clone());
            move || {
                let mut buf = vec![0u8; READ_CHUNK];
                while !stop.load(Ordering::Relaxed) {
                    match sys::poll_readable(&master, 200) {
                        Ok(false) => continue,
                        Ok(true) => {}
                        Err(_) => break,
                    }
                    match sys::read(&master, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => match pty.upgrade() {
                            Some(p) => p.broadcast(&buf[..n]),
                            None => break,
                        },
                    }
                }
                let _ = reader_done_tx.send(());
            }
        };
        let writer = {
            let master = master.clone();
            let mut rx = input_rx;
            move || {
                while let Some(data) = rx.blocking_recv() {
                    if sys::write_all(&master, &data).is_err() {
                        break;
                    }
                }
            }
        };
        for (name, f) in
            [("pty-read", Box::new(reader) as Box<dyn FnOnce() + Send>), ("pty-write", Box::new(writer))]
        {
            if let Err(e) = std::thread::Builder::new().name(name.into()).stack_size(THREAD_STACK).spawn(f) {
                // No thread (the sandbox is at its limit): the shell goes, or every retry of
                // the client would leave one behind with a reader holding its terminal.
                stop.store(true, Ordering::Relaxed);
                crate::signal::kill_group(spawned.pid, libc::SIGKILL);
                return Err(e);
            }
        }

        let pid = spawned.pid;
        let keep_tty = master.clone();
        g.phase =
            Phase::Running(Running { master, pid, tty: tty.clone(), input: input_tx, stop: stop.clone() });
        g.on_end = Some(Box::new(on_end));
        drop(g);

        // The exit watcher: the reaper supplies the status; output still in flight is delivered
        // before clients are told, and jobs the shell left on its terminal are taken down.
        let me = self.clone();
        let exit = spawned.exit;
        tokio::spawn(async move {
            let status = exit.await;
            // After a kill the tree is already gone and the terminal closed: its number may
            // belong to a new terminal by now, whose processes must not be touched.
            if !me.is_ended() {
                let _ = tokio::task::spawn_blocking(move || {
                    for p in leftovers(pid, tty.as_deref()) {
                        tree::signal(p, libc::SIGKILL);
                    }
                    // Released only now, so the number cannot be reused during the search.
                    drop(keep_tty);
                })
                .await;
            }
            let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, reader_done_rx).await;
            stop.store(true, Ordering::Relaxed);
            me.finish(End::of(status));
        });
        Ok(())
    }

    /// Queues a chunk of output for every client and the replay buffer.
    fn broadcast(&self, data: &[u8]) {
        let chunk = Bytes::copy_from_slice(data);
        let mut g = self.lock();
        g.ring.push(data);
        g.clients.retain(|_, slot| match slot.out.try_send(chunk.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The reader never waits for a client: a full queue drops that client.
                if let Some(end) = slot.end.take() {
                    let _ = end.send(End::SlowConsumer);
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Attaches a client. Its queue starts with the replay buffer (recent output), then live
    /// output follows. Fails once the terminal has ended.
    pub fn attach(self: &Arc<Self>) -> Option<Client> {
        let mut g = self.lock();
        if matches!(g.phase, Phase::Ended) {
            return None;
        }
        // The replay goes out in read-sized chunks (the python SDK's sync client rejects
        // messages over 64 KiB) and does not count against the slow-consumer budget.
        let replay = Bytes::from(g.ring.contents());
        let chunks = replay.len().div_ceil(READ_CHUNK);
        let (out_tx, out_rx) = mpsc::channel(CLIENT_QUEUE + chunks);
        let (end_tx, end_rx) = oneshot::channel();
        for i in 0..chunks {
            let _ = out_tx.try_send(replay.slice(i * READ_CHUNK..((i + 1) * READ_CHUNK).min(replay.len())));
        }
        let id = g.next_client;
        g.next_client += 1;
        g.clients.insert(id, Slot { out: out_tx, end: Some(end_tx) });
        Some(Client { out: out_rx, end: end_rx, id, pty: self.clone() })
    }

    /// The input queue, while the shell runs.
    pub fn input(&self) -> Option<mpsc::Sender<Bytes>> {
        match &self.lock().phase {
            Phase::Running(r) => Some(r.input.clone()),
            _ => None,
        }
    }

    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), ResizeError> {
        let mut g = self.lock();
        match &g.phase {
            Phase::Idle => Err(ResizeError::NotStarted),
            Phase::Ended => Err(ResizeError::Ended),
            Phase::Running(r) => {
                sys::resize(&r.master, cols, rows).map_err(|e| ResizeError::Io(e.to_string()))?;
                g.cols = cols;
                g.rows = rows;
                Ok(())
            }
        }
    }

    /// Ends the terminal: tells every client how, stops the threads, runs `on_end`. Idempotent:
    /// a kill is followed by the exit watcher's own call, which then does nothing.
    pub fn finish(&self, end: End) {
        let (clients, on_end, running) = {
            let mut g = self.lock();
            if matches!(g.phase, Phase::Ended) {
                return;
            }
            let running = std::mem::replace(&mut g.phase, Phase::Ended);
            (std::mem::take(&mut g.clients), g.on_end.take(), running)
        };
        if let Phase::Running(r) = running {
            r.stop.store(true, Ordering::Relaxed);
            // Dropping `r` drops the input sender (the writer thread ends) and our master handle.
        }
        for (_, mut slot) in clients {
            if let Some(tx) = slot.end.take() {
                let _ = tx.send(end);
            }
        }
        if let Some(f) = on_end {
            f();
        }
    }

    /// Kills the shell's whole tree: every descendant found in `/proc` while the shell still
    /// lives (including `disown`ed ones), every other member of its session (a double-forked
    /// `(cmd &)` was re-parented to the daemon but kept the session) and every process holding
    /// its terminal (`setsid cmd &` forks and leaves both tree and session), then the shell.
    /// Only a process that left the session *and* closed the terminal escapes. Clients are closed as
    /// killed. Blocking: reads `/proc`.
    pub fn kill_blocking(&self) {
        let target = match &self.lock().phase {
            Phase::Running(r) => Some((r.pid, r.tty.clone())),
            _ => None,
        };
        if let Some((pid, tty)) = target
            && let Some(shell) = tree::identify(pid)
        {
            // A fork bomb (its jobs each in a process group of their own under job control)
            // forks between a snapshot and its signals: the session is swept again until
            // nothing of it is left, each sweep finding only what the previous one missed.
            let until = std::time::Instant::now() + KILL_SWEEP_TIME;
            for round in 0.. {
                // Whole groups only of the shell's own tree and session: a process elsewhere
                // that merely holds the terminal dies alone, not with its group.
                let mut ours = tree::descendants(pid);
                ours.extend(sys::session_members(pid).into_iter().filter_map(tree::identify));
                let mut doomed = ours.clone();
                for p in leftovers(pid, tty.as_deref()) {
                    if !doomed.contains(&p) {
                        doomed.push(p);
                    }
                }
                if round == 0 {
                    doomed.push(shell);
                    ours.push(shell);
                } else if doomed.is_empty() || std::time::Instant::now() >= until {
                    break;
                }
                tree::signal_groups(&ours, libc::SIGKILL);
                for p in doomed {
                    tree::signal(p, libc::SIGKILL);
                }
                if round == 0 {
                    // Before the shell's exit is noticed elsewhere and reported as its own.
                    self.finish(End::Killed);
                } else {
                    // What is left may only need the reaper (or is stuck in the kernel): a
                    // breath between sweeps instead of spinning over /proc.
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        self.finish(End::Killed);
    }

    /// Hangs up the shell's process group (the web terminal's disconnect), as closing a real
    /// terminal does.
    pub fn hangup(&self) {
        if let Some(pid) = self.pid() {
            crate::signal::kill_group(pid, libc::SIGHUP);
        }
    }
}

/// How long a killed terminal's session is swept at most (each sweep a /proc walk).
const KILL_SWEEP_TIME: Duration = Duration::from_secs(2);

/// Processes other than the shell that belong to its session or hold its terminal.
fn leftovers(shell: u32, tty: Option<&str>) -> Vec<tree::Proc> {
    let mut pids = sys::session_members(shell);
    if let Some(tty) = tty {
        pids.extend(sys::terminal_holders(tty));
    }
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter().filter(|&p| p != shell).filter_map(tree::identify).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(script: &str) -> Launch {
        Launch {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: "/".into(),
            env: vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())],
        }
    }

    async fn collect(c: &mut Client) -> (Vec<u8>, End) {
        let mut out = Vec::new();
        loop {
            tokio::select! {
                biased;
                Some(b) = c.out.recv() => out.extend_from_slice(&b),
                end = &mut c.end => {
                    while let Ok(b) = c.out.try_recv() { out.extend_from_slice(&b); }
                    return (out, end.unwrap());
                }
            }
        }
    }

    #[tokio::test]
    async fn output_exit_code_and_replay() {
        let pty = Pty::new("t".into(), "/".into(), BTreeMap::new(), 80, 24, false, 1024);
        let (tx, rx) = oneshot::channel();
        pty.start(Reaper::global(), launch("echo first; read x; echo got-$x; exit 3"), move || {
            let _ = tx.send(());
        })
        .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Attached late: the replay buffer shows what was printed before.
        let mut c = pty.attach().unwrap();
        let mut c2 = pty.attach().unwrap();
        pty.input().unwrap().send(Bytes::from_static(b"yes\n")).await.unwrap();
        let (out, end) = collect(&mut c).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("first") && text.contains("got-yes"), "{text}");
        assert_eq!(end, End::Exited { code: 3, unrecoverable: false });
        let (out2, _) = collect(&mut c2).await;
        assert_eq!(out, out2);
        rx.await.unwrap();
        assert!(pty.attach().is_none());
        pty.finish(End::Killed); // idempotent
    }

    #[tokio::test]
    async fn kill_takes_down_setsid_descendants() {
        let pty = Pty::new("k".into(), "/".into(), BTreeMap::new(), 80, 24, false, 1024);
        pty.start(Reaper::global(), launch("setsid sleep 60 & echo $!; wait"), || {}).unwrap();
        let mut c = pty.attach().unwrap();
        let mut seen = Vec::new();
        let pid: u32 = loop {
            seen.extend_from_slice(&c.out.recv().await.unwrap());
            if let Some(line) =
                String::from_utf8_lossy(&seen).lines().find(|l| l.trim().parse::<u32>().is_ok())
            {
                break line.trim().parse().unwrap();
            }
        };
        let child = tree::identify(pid).unwrap();
        let p = pty.clone();
        tokio::task::spawn_blocking(move || p.kill_blocking()).await.unwrap();
        assert_eq!((&mut c.end).await.unwrap(), End::Killed);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tree::is_alive(child) {
            assert!(std::time::Instant::now() < deadline, "setsid child survived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_large_replay_comes_in_bounded_chunks() {
        let pty = Pty::new("r".into(), "/".into(), BTreeMap::new(), 80, 24, false, 100_000);
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        pty.broadcast(&data);
        let mut c = pty.attach().unwrap();
        let mut got = Vec::new();
        while let Ok(chunk) = c.out.try_recv() {
            assert!(chunk.len() <= READ_CHUNK);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, data[50_000..]);
        // Live output still fits behind the replay.
        for _ in 0..CLIENT_QUEUE {
            pty.broadcast(b"y");
        }
        assert!(c.end.try_recv().is_err(), "not a slow consumer yet");
    }

    #[tokio::test]
    async fn slow_consumer_is_dropped() {
        let pty = Pty::new("s".into(), "/".into(), BTreeMap::new(), 80, 24, false, 0);
        let mut c = pty.attach().unwrap();
        for _ in 0..=CLIENT_QUEUE {
            pty.broadcast(b"x");
        }
        assert_eq!((&mut c.end).await.unwrap(), End::SlowConsumer);
    }
}
