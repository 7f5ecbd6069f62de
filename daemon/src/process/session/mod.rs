//! Sessions: long-lived shells whose commands share shell state (process.md §3–4).
//!
//! A session is one shell process reading commands from a pipe the daemon writes to. For each
//! command the daemon prepares `<sessions>/<sessionId>/<cmdId>/` (`cmd.sh`, an empty
//! `output.log`, the FIFOs), starts an output pump thread ([`pump`]) and writes a small block
//! ([`wrapper::block`]) to the shell. The shell reports "started" and "ended with status N"
//! as lines on the session's control FIFO, read by one task per session, and the reaper
//! reports the shell's own death — so nothing here ever waits on a timer.

pub mod api;
mod follow;
pub mod log;
mod pump;
pub mod wrapper;

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::tree;
use crate::env::ChildEnv;
use crate::id::{self, InvalidId};
use crate::reaper::{ExitStatus, ExitWait, Reaper};
use crate::signal;
use crate::text::os_error_text;

pub const ENTRYPOINT_SESSION: &str = "entrypoint";
pub const ENTRYPOINT_COMMAND: &str = "entrypoint_command";
const CONTROL_FIFO: &str = ".control";

/// Where a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    /// Ended with this status and `exit_code` is written.
    Exited(i32),
    /// The session ended (its shell exited or it was deleted) before the command reported an
    /// end; the code is the shell's status for the command that was running when it died.
    Ended(Option<i32>),
}

impl State {
    pub fn is_done(self) -> bool {
        self != State::Running
    }

    pub fn exit_code(self) -> Option<i32> {
        match self {
            State::Exited(c) | State::Ended(Some(c)) => Some(c),
            _ => None,
        }
    }
}

/// How much of a command's log exists and whether it is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes appended to `output.log` so far.
    pub len: u64,
    pub state: State,
    /// The log length when the command ended: followers stop there.
    pub final_len: Option<u64>,
}

/// What the pump is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Exit(i32),
    Ended(Option<i32>),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PumpCtl {
    pub finish: Option<Finish>,
    /// The session is being deleted: keep reading until every writer is gone, then stop.
    pub draining: bool,
    pub cancel: bool,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    ShellExited(i32),
    Deleted,
}

/// Why a session operation failed. The routes (`api.rs`) choose the HTTP status of each.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session not found")]
    NotFound,
    #[error("command not found")]
    CommandNotFound,
    #[error("session already exists")]
    Exists,
    #[error("command already exists")]
    CommandExists,
    /// The session's shell is gone; why, when known.
    #[error("{}", ended_text(*.0))]
    Ended(Option<End>),
    #[error("command has already completed with exit code {0}")]
    CommandCompleted(i32),
    #[error("the command's input is closed (it has ended, or it runs synchronously and reads EOF)")]
    InputClosed,
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// A command's log cannot be opened or read.
    #[error("open {}: {}", .path.display(), os_error_text(.source))]
    Log { path: PathBuf, source: std::io::Error },
    /// The system failed the daemon (files, pipes, processes); the text says what was tried.
    #[error("{0}")]
    Io(String),
    /// The sandbox has no processes, memory or descriptors left to start what was asked.
    #[error(transparent)]
    Exhausted(#[from] crate::exhaust::Exhausted),
}

impl SessionError {
    fn io(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        SessionError::Io(format!("{what}: {e}"))
    }

    /// An OS error while setting something up: [`SessionError::Exhausted`] when the sandbox
    /// has run out of what it takes.
    fn os(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        match crate::exhaust::Exhausted::of(&what, &e) {
            Some(x) => x.into(),
            None => SessionError::Io(format!("{what}: {}", os_error_text(&e))),
        }
    }
}

fn ended_text(end: Option<End>) -> String {
    match end {
        Some(End::ShellExited(c)) => format!(
            "session ended: its shell exited with status {c} (a command ran `exit`, or the shell was killed)"
        ),
        Some(End::Deleted) => "session ended: the session was deleted".to_string(),
        None => "session ended: its shell is no longer running".to_string(),
    }
}

/// Appends `records` to a command's log file and its tail as one step, so that the tail's
/// offsets follow the file's whichever writer comes first; `records` is left empty.
fn append_log(
    tail: &Mutex<log::Tail>,
    file: &mut std::fs::File,
    records: &mut Vec<u8>,
) -> std::io::Result<()> {
    use std::io::Write;
    /// Appends below this size are copied into the tail rather than handed over.
    const SMALL_APPEND: usize = 64 * 1024;
    let mut tail = toolbox_envelope::sync::lock(tail);
    let written = file.write_all(records);
    if !tail.followed() {
        tail.skip(records.len());
        records.clear();
        return written;
    }
    // A large append hands its buffer over (the writer starts a new one); a small one is
    // copied, so a chatty command does not allocate a whole chunk per line. Followers get the
    // bytes even when the disk refused them: the length counts them too.
    let chunk = if records.len() >= SMALL_APPEND {
        let cap = records.capacity();
        bytes::Bytes::from(std::mem::replace(records, Vec::with_capacity(cap)))
    } else {
        let b = bytes::Bytes::copy_from_slice(records);
        records.clear();
        b
    };
    tail.push(chunk);
    written
}

/// Off the async workers: a blocking filesystem step, with a panic in it reported as a failure.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SessionError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SessionError::io(what, e))
}

pub struct Command {
    pub id: String,
    pub text: String,
    pub suppress_echo: bool,
    pub is_async: bool,
    dir: PathBuf,
    progress: watch::Sender<Progress>,
    started: std::sync::atomic::AtomicBool,
    /// The daemon's end of `input.pipe` (opened read-write, so the command's open never blocks
    /// and `/input` never has to open the FIFO). Dropped when the command's stdin must end.
    input: tokio::sync::Mutex<Option<pipe::Sender>>,
    ctl: Mutex<PumpCtl>,
    /// Wakes the pump; closed when the pump is done so finished commands hold no descriptors.
    wake: Mutex<Option<std::io::PipeWriter>>,
    /// The newest appends of the log while the command runs. Writers of the log (the pump,
    /// an input echo) hold it across their write and the push, so the tail's offsets are the
    /// file's; followers only try it, and read the file when a writer has it.
    tail: Arc<Mutex<log::Tail>>,
}

impl Command {
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    pub fn state(&self) -> State {
        self.progress.borrow().state
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("output.log")
    }

    fn pump_ctl(&self) -> PumpCtl {
        *toolbox_envelope::sync::lock(&self.ctl)
    }

    fn tell_pump(&self, f: impl FnOnce(&mut PumpCtl)) {
        f(&mut toolbox_envelope::sync::lock(&self.ctl));
        if let Some(w) = toolbox_envelope::sync::lock(&self.wake).as_ref() {
            let _ = w.write_all_nb(b"w");
        }
    }

    fn close_wake(&self) {
        toolbox_envelope::sync::lock(&self.wake).take();
    }

    fn finish(&self, how: Finish) {
        self.tell_pump(|c| {
            c.finish.get_or_insert(how);
        });
    }

    /// Publishes that the log grew by `n` bytes (written and pushed to the tail by now).
    fn grew(&self, n: u64) {
        self.progress.send_modify(|p| p.len += n);
    }

    /// Counts a follower in (`true`) or out: only followed commands keep a tail.
    pub fn follow(&self, starts: bool) {
        toolbox_envelope::sync::lock(&self.tail).follow(starts);
    }

    /// The kept log bytes from `pos`, when the tail holds them and no writer has it right now.
    pub fn tail_at(&self, pos: u64) -> Option<bytes::Bytes> {
        self.tail.try_lock().ok()?.at(pos)
    }

    fn publish_done(&self, how: Finish) {
        let state = match how {
            Finish::Exit(c) => State::Exited(c),
            Finish::Ended(c) => State::Ended(c),
        };
        self.progress.send_modify(|p| {
            p.state = state;
            p.final_len = Some(p.len);
        });
        // Finished commands hold no buffers; a follower still behind reads the file.
        toolbox_envelope::sync::lock(&self.tail).clear();
    }

    /// The whole log as it is now.
    pub async fn read_log(&self) -> Result<Vec<u8>, SessionError> {
        let path = self.log_path();
        let p2 = path.clone();
        blocking("cannot read the log", move || std::fs::read(p2))
            .await?
            .map_err(|source| SessionError::Log { path, source })
    }

    /// The log opened for streaming from its start.
    pub async fn open_log(&self) -> Result<tokio::fs::File, SessionError> {
        let path = self.log_path();
        tokio::fs::File::open(&path).await.map_err(|source| SessionError::Log { path, source })
    }

    /// Sends `data` to the command's stdin and echoes it into the log unless suppressed.
    pub async fn send_input(&self, data: &str) -> Result<(), SessionError> {
        if let Some(code) = self.state().exit_code() {
            return Err(SessionError::CommandCompleted(code));
        }
        let mut data = data.to_string();
        if !data.ends_with('\n') {
            data.push('\n');
        }
        {
            let mut input = self.input.lock().await;
            let Some(tx) = input.as_mut() else {
                return Err(SessionError::InputClosed);
            };
            // The echo goes into the log before the command can read the input, so it always
            // precedes the output the input causes.
            if !self.suppress_echo {
                let mut rec = log::STDOUT_MARKER.to_vec();
                rec.extend_from_slice(data.as_bytes());
                let path = self.log_path();
                let n = rec.len() as u64;
                let tail = self.tail.clone();
                let appended = blocking("failed to echo the input into the log", move || {
                    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
                    Ok(append_log(&tail, &mut file, &mut rec))
                })
                .await?;
                let echo_failed = |e| SessionError::io("failed to echo the input into the log", e);
                let written = appended.map_err(echo_failed)?;
                // Counted once appended, written or not, as the pump counts: the tail already
                // moved past it.
                self.grew(n);
                written.map_err(echo_failed)?;
            }
            tx.write_all(data.as_bytes())
                .await
                .map_err(|e| SessionError::io("failed to write to the command's input", e))?;
        }
        Ok(())
    }
}

/// Non-blocking write of a wake-up byte: a full wake pipe already means "wake up".
trait WriteNb {
    fn write_all_nb(self, b: &[u8]) -> std::io::Result<()>;
}

impl WriteNb for &std::io::PipeWriter {
    fn write_all_nb(mut self, b: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        match self.write(b) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub struct Session {
    pub id: String,
    dir: PathBuf,
    control: PathBuf,
    shell_pid: u32,
    stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    commands: Mutex<Vec<Arc<Command>>>,
    end: watch::Sender<Option<End>>,
}

impl Session {
    pub fn commands(&self) -> Vec<Arc<Command>> {
        toolbox_envelope::sync::lock(&self.commands).clone()
    }

    pub fn command(&self, id: &str) -> Option<Arc<Command>> {
        toolbox_envelope::sync::lock(&self.commands).iter().find(|c| c.id == id).cloned()
    }

    /// A command asked for by a client: its id is checked before it is looked up.
    pub fn find_command(&self, id: &str) -> Result<Arc<Command>, SessionError> {
        id::check("command", id)?;
        self.command(id).ok_or(SessionError::CommandNotFound)
    }

    pub fn end(&self) -> Option<End> {
        *self.end.borrow()
    }

    pub fn ended(&self) -> watch::Receiver<Option<End>> {
        self.end.subscribe()
    }

    /// Why an operation on this ended session fails.
    pub fn end_error(&self) -> SessionError {
        SessionError::Ended(self.end())
    }

    /// Prepares and submits a command. Commands run in submission order: the stdin lock is held
    /// from registration to the write of the block.
    async fn start_command(
        self: &Arc<Self>,
        id: String,
        text: String,
        is_async: bool,
        suppress_echo: bool,
    ) -> Result<Arc<Command>, SessionError> {
        let mut stdin = self.stdin.lock().await;
        if stdin.is_none() || self.end().is_some() {
            return Err(self.end_error());
        }
        if self.command(&id).is_some() {
            return Err(SessionError::CommandExists);
        }
        let dir = self.dir.join(&id);
        let text2 = text.clone();
        let dir2 = dir.clone();
        let files =
            blocking("cannot prepare the command directory", move || prepare_command_dir(&dir2, &text2))
                .await?
                .map_err(|e| {
                    SessionError::os(
                        format_args!("cannot prepare the command directory {}", dir.display()),
                        e,
                    )
                })?;
        let (wake_r, wake_w) = std::io::pipe().map_err(|e| SessionError::os("cannot create a pipe", e))?;
        set_nonblocking(&wake_r);
        set_nonblocking(&wake_w);
        let input = pipe::Sender::from_file(files.input)
            .map_err(|e| SessionError::io("cannot register the command's input", e))?;
        let cmd = Arc::new(Command {
            id: id.clone(),
            text,
            suppress_echo,
            is_async,
            dir: dir.clone(),
            progress: watch::Sender::new(Progress { len: 0, state: State::Running, final_len: None }),
            started: Default::default(),
            input: tokio::sync::Mutex::new(Some(input)),
            ctl: Mutex::new(PumpCtl::default()),
            wake: Mutex::new(Some(wake_w)),
            tail: Default::default(),
        });
        pump::start(
            cmd.clone(),
            pump::PumpFiles {
                out: files.out,
                err: files.err,
                log: files.log,
                wake: wake_r,
                fifos: ["stdout.pipe", "stderr.pipe", "input.pipe"].iter().map(|f| dir.join(f)).collect(),
                exit_code: dir.join("exit_code"),
            },
        )
        .map_err(|e| SessionError::os("cannot start the output pump", e))?;
        toolbox_envelope::sync::lock(&self.commands).push(cmd.clone());
        let block = wrapper::block(&id, &dir, &self.control);
        let tx = stdin.as_mut().expect("checked above");
        if tx.write_all(block.as_bytes()).await.is_err() {
            // The shell is gone; the reaper's report of why follows at once (it needs the stdin
            // lock, so release it first).
            *stdin = None;
            drop(stdin);
            cmd.finish(Finish::Ended(None));
            let mut ended = self.ended();
            let _ = tokio::time::timeout(Duration::from_secs(2), ended.wait_for(Option::is_some)).await;
            return Err(self.end_error());
        }
        Ok(cmd)
    }

    async fn on_event(&self, ev: wrapper::Event<'_>) {
        match ev {
            wrapper::Event::Started(id) => {
                if let Some(cmd) = self.command(id) {
                    cmd.started.store(true, std::sync::atomic::Ordering::Relaxed);
                    if !cmd.is_async {
                        // A synchronous command reads EOF (pitfalls 10).
                        cmd.input.lock().await.take();
                    }
                }
            }
            wrapper::Event::Ended(id, code) => {
                if let Some(cmd) = self.command(id) {
                    cmd.input.lock().await.take();
                    cmd.finish(Finish::Exit(code));
                }
            }
        }
    }

    async fn on_shell_exit(&self, status: ExitStatus) {
        let code = match status {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::Unknown => -1,
        };
        self.end_once(End::ShellExited(code));
        self.stdin.lock().await.take();
        let mut first = true;
        for cmd in self.commands() {
            if cmd.pump_ctl().finish.is_some() {
                continue;
            }
            let ran = first && cmd.started.load(std::sync::atomic::Ordering::Relaxed);
            first = false;
            cmd.input.lock().await.take();
            cmd.finish(Finish::Ended(ran.then_some(code)));
        }
    }

    /// Records how the session ended; the first reason wins.
    fn end_once(&self, end: End) {
        self.end.send_if_modified(|e| {
            if e.is_some() {
                return false;
            }
            *e = Some(end);
            true
        });
    }

    /// The start of a deletion: inputs close and waiting execs end at once, but the pumps keep
    /// taking the output until the processes are gone. A program that prints while it shuts
    /// down (a trap, a server flushing its log) would otherwise die of SIGPIPE on its first
    /// write, and its last words would never reach the log or its followers.
    ///
    /// An input write blocked on a program that does not read holds its lock forever: the
    /// locks are waited for briefly only, so that a deletion (and the daemon's shutdown) never
    /// hangs behind one.
    async fn begin_delete(&self) {
        self.end_once(End::Deleted);
        if let Ok(mut stdin) = tokio::time::timeout(INPUT_LOCK_WAIT, self.stdin.lock()).await {
            stdin.take();
        }
        for cmd in self.commands() {
            cmd.tell_pump(|c| c.draining = true);
            if let Ok(mut input) = tokio::time::timeout(INPUT_LOCK_WAIT, cmd.input.lock()).await {
                input.take();
            }
        }
    }

    /// The end of a deletion, once the processes are gone: the pumps get until `deadline` to
    /// take what is left in the pipes (a process that escaped the tree may hold them open
    /// forever), then stop.
    async fn stop_pumps(&self, deadline: tokio::time::Instant) {
        for cmd in self.commands() {
            let mut progress = cmd.progress();
            let _ = tokio::time::timeout_at(deadline, progress.wait_for(|p| p.final_len.is_some())).await;
            cmd.tell_pump(|c| c.cancel = true);
        }
    }
}

struct CommandFiles {
    out: std::fs::File,
    err: std::fs::File,
    input: std::fs::File,
    log: std::fs::File,
}

fn prepare_command_dir(dir: &Path, text: &str) -> std::io::Result<CommandFiles> {
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
    match std::fs::remove_file(dir.join("exit_code")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Each file is created and opened once: on a busy disk every metadata operation counts in
    // a command's latency.
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join("cmd.sh"))?,
        text.as_bytes(),
    )?;
    // Appending: input echoes are written to the log through descriptors of their own.
    let log = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_APPEND)
        .open(dir.join("output.log"))?;
    for f in ["stdout.pipe", "stderr.pipe", "input.pipe"] {
        mkfifo(&dir.join(f))?;
    }
    let open = |f: &str, write: bool| {
        std::fs::OpenOptions::new().read(true).write(write).custom_flags(libc::O_NONBLOCK).open(dir.join(f))
    };
    Ok(CommandFiles {
        out: open("stdout.pipe", false)?,
        err: open("stderr.pipe", false)?,
        input: open("input.pipe", true)?,
        log,
    })
}

/// (Re)creates a FIFO, mode 0600.
fn mkfifo(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn set_nonblocking(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// All sessions of the daemon.
pub struct SessionService {
    root: PathBuf,
    env: Arc<ChildEnv>,
    reaper: &'static Reaper,
    grace: Duration,
    interval: Duration,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Serialises creations so two creates of one id cannot both spawn a shell.
    creating: tokio::sync::Mutex<()>,
}

impl SessionService {
    pub fn new(
        config_dir: &Path,
        env: Arc<ChildEnv>,
        reaper: &'static Reaper,
        grace: Duration,
        interval: Duration,
    ) -> Self {
        SessionService {
            root: config_dir.join("sessions"),
            env,
            reaper,
            grace,
            interval,
            sessions: Mutex::new(HashMap::new()),
            creating: tokio::sync::Mutex::new(()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        toolbox_envelope::sync::lock(&self.sessions)
    }

    /// A session by id; the id is checked first, so a client's `../x` is refused, not looked up.
    pub fn get(&self, id: &str) -> Result<Arc<Session>, SessionError> {
        id::check("session", id)?;
        self.map().get(id).cloned().ok_or(SessionError::NotFound)
    }

    pub fn list(&self) -> Vec<Arc<Session>> {
        self.map().values().filter(|s| s.id != ENTRYPOINT_SESSION).cloned().collect()
    }

    /// Starts a session shell in `cwd`.
    pub async fn create(&self, id: &str, cwd: &Path) -> Result<Arc<Session>, SessionError> {
        id::check("session", id)?;
        let _one_at_a_time = self.creating.lock().await;
        if self.map().contains_key(id) {
            return Err(SessionError::Exists);
        }
        let dir = self.root.join(id);
        let control = dir.join(CONTROL_FIFO);
        let (dir2, control2) = (dir.clone(), control.clone());
        let ctl_file =
            blocking("cannot create the session directory", move || -> std::io::Result<std::fs::File> {
                std::fs::DirBuilder::new().recursive(true).mode(0o755).create(&dir2)?;
                mkfifo(&control2)?;
                // Read-write: the shell's opens never block and the reader never sees EOF.
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&control2)
            })
            .await?
            .map_err(|e| {
                SessionError::os(format_args!("cannot create the session directory {}", dir.display()), e)
            })?;
        let ctl = pipe::Receiver::from_file(ctl_file)
            .map_err(|e| SessionError::io("cannot register the control FIFO", e))?;

        let shell = crate::shell::select(&self.env);
        let pipe_err = |e| SessionError::os("cannot create the shell's output pipe", e);
        let (out_r, out_w) = std::io::pipe().map_err(pipe_err)?;
        let out_w2 = out_w.try_clone().map_err(pipe_err)?;
        let mut cmd = std::process::Command::new(&shell);
        cmd.stdin(Stdio::piped())
            .stdout(out_w)
            .stderr(out_w2)
            .current_dir(cwd)
            .env_clear()
            .envs(self.env.snapshot_in(cwd, []))
            .process_group(0);
        let spawned = self.reaper.spawn(&mut cmd);
        drop(cmd);
        let (mut child, exit) = spawned.map_err(|e| {
            SessionError::os(format_args!("cannot start the session shell {shell} in {}", cwd.display()), e)
        })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdin = pipe::Sender::from_owned_fd(OwnedFd::from(stdin))
            .map_err(|e| SessionError::io("cannot register the shell's stdin", e))?;
        let session = Arc::new(Session {
            id: id.to_string(),
            dir,
            control,
            shell_pid: child.id(),
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            commands: Mutex::new(Vec::new()),
            end: watch::Sender::new(None),
        });
        tokio::spawn(drain_shell_output(id.to_string(), out_r));
        tokio::spawn(control_loop(session.clone(), ctl, exit));
        self.map().insert(id.to_string(), session.clone());
        Ok(session)
    }

    /// Runs `text` in session `id` with a fresh command id.
    pub async fn exec(
        &self,
        id: &str,
        text: String,
        is_async: bool,
        suppress_echo: bool,
    ) -> Result<(Arc<Session>, Arc<Command>), SessionError> {
        let session = self.get(id)?;
        let cmd = session.start_command(id::uuid_v4(), text, is_async, suppress_echo).await?;
        Ok((session, cmd))
    }

    /// The entrypoint: `argv` as the single async command of the reserved session.
    pub async fn start_entrypoint(&self, argv: &[String], cwd: &Path) -> Result<(), SessionError> {
        let session = self.create(ENTRYPOINT_SESSION, cwd).await?;
        let cmd =
            session.start_command(ENTRYPOINT_COMMAND.into(), wrapper::quote_argv(argv), true, true).await?;
        // The toolbox keeps serving after the image's command exits (as the reference does);
        // its exit code is in the session API (`GET /process/session/entrypoint`) and here.
        let mut progress = cmd.progress();
        tokio::spawn(async move {
            if progress.wait_for(|p| p.final_len.is_some()).await.is_err() {
                return;
            }
            match progress.borrow().state.exit_code() {
                Some(code) => {
                    tracing::info!(exit_code = code, "the entrypoint exited; the toolbox keeps serving")
                }
                None => {
                    tracing::info!("the entrypoint ended without an exit code; the toolbox keeps serving")
                }
            }
        });
        Ok(())
    }

    /// Deletes a session: signals its processes and forgets it at once; what does not stop
    /// within the grace period is killed in the background. The output is read until the
    /// processes are gone, then the session's directory is removed. The returned handle
    /// resolves when all of that is done.
    pub async fn delete(&self, id: &str) -> Result<tokio::task::JoinHandle<()>, SessionError> {
        self.terminate(id, true).await
    }

    /// Terminates the entrypoint at shutdown like [`SessionService::delete`], but keeps its
    /// directory: the entrypoint's log, with what it printed while shutting down, outlives the
    /// daemon (`daytona-daemon entrypoint logs` reads it).
    pub async fn terminate_entrypoint(&self) -> Result<tokio::task::JoinHandle<()>, SessionError> {
        self.terminate(ENTRYPOINT_SESSION, false).await
    }

    /// At daemon shutdown: every other session is terminated as a delete would, all at once,
    /// bounded by the grace period (plus the pumps' linger).
    pub async fn shutdown(&self) {
        let ids: Vec<String> = self.map().keys().filter(|id| *id != ENTRYPOINT_SESSION).cloned().collect();
        let limit = self.grace + Duration::from_secs(2);
        let all = futures_util::future::join_all(ids.iter().map(|id| async move {
            if let Ok(handle) = self.terminate(id, true).await {
                let _ = handle.await;
            }
        }));
        let _ = tokio::time::timeout(limit, all).await;
    }

    async fn terminate(
        &self,
        id: &str,
        remove_dir: bool,
    ) -> Result<tokio::task::JoinHandle<()>, SessionError> {
        id::check("session", id)?;
        let session = self.map().remove(id).ok_or(SessionError::NotFound)?;
        session.begin_delete().await;
        let pid = session.shell_pid;
        // Found before anything is signalled: once the shell dies its descendants are
        // re-parented and can no longer be found by parentage (pitfalls 4).
        let (shell, found) = blocking("cannot signal the session's processes", move || {
            let shell = tree::identify(pid);
            let found = tree::descendants(pid);
            signal::kill_group(pid, libc::SIGTERM);
            // Commands run in process groups of their own; whole groups are signalled so that
            // what forks meanwhile (a fork bomb) is reached too.
            tree::signal_groups(&found, libc::SIGTERM);
            for p in &found {
                tree::signal(*p, libc::SIGTERM);
            }
            (shell, found)
        })
        .await?;
        let (grace, interval) = (self.grace, self.interval);
        // The directory leaves its name at once (a session created again under the same id
        // gets a fresh one) and is removed once the output is taken.
        let dir = if remove_dir {
            let parked = self.root.join(format!(".deleted-{}", id::uuid_v4()));
            match std::fs::rename(&session.dir, &parked) {
                Ok(()) => parked,
                Err(_) => session.dir.clone(),
            }
        } else {
            session.dir.clone()
        };
        Ok(tokio::spawn(async move {
            let _ =
                tokio::task::spawn_blocking(move || finish_termination(pid, shell, found, grace, interval))
                    .await;
            session.stop_pumps(tokio::time::Instant::now() + PUMP_LINGER).await;
            if !remove_dir {
                return;
            }
            let removed =
                blocking("cannot remove the session directory", move || std::fs::remove_dir_all(&dir)).await;
            if let Ok(Err(e)) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(session = %session.id, error = %e, "cannot remove the session directory");
            }
        }))
    }
}

/// How long a deletion waits for an input lock (see `Session::begin_delete`).
const INPUT_LOCK_WAIT: Duration = Duration::from_millis(200);

/// How long the output pumps of a deleted session may still read once its processes are gone.
const PUMP_LINGER: Duration = Duration::from_millis(500);

/// Waits up to `grace` for the shell and every found descendant to be gone, checking every
/// `interval`, then SIGKILLs whatever is left (process.md §4.6).
fn finish_termination(
    pid: u32,
    shell: Option<tree::Proc>,
    found: Vec<tree::Proc>,
    grace: Duration,
    interval: Duration,
) {
    let deadline = std::time::Instant::now() + grace;
    let all_gone = || shell.is_none_or(|s| !tree::is_alive(s)) && found.iter().all(|p| !tree::is_alive(*p));
    // A shell blocks signals around a fork, and the child does not inherit a pending one: what
    // a fork bomb started while SIGTERM was on its way escaped it. SIGKILL is never blocked, so
    // the shell's group (the number stays its own while any member lives) gets one at the end
    // whatever happened before.
    let _last = signal::GroupGuard::new(pid);
    while !all_gone() {
        if std::time::Instant::now() >= deadline {
            let mut late =
                shell.filter(|s| tree::is_alive(*s)).map(|_| tree::descendants(pid)).unwrap_or_default();
            late.extend(found.iter().copied());
            signal::kill_group(pid, libc::SIGKILL);
            tree::signal_groups(&late, libc::SIGKILL);
            for p in late {
                tree::signal(p, libc::SIGKILL);
            }
            if let Some(s) = shell {
                tree::signal(s, libc::SIGKILL);
            }
            return;
        }
        std::thread::sleep(interval);
    }
}

/// Reads the session's control FIFO and dispatches "started"/"ended" to commands; when the
/// shell dies, takes the lines it wrote last and ends the session.
async fn control_loop(session: Arc<Session>, mut ctl: pipe::Receiver, exit: ExitWait) {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut exit = std::pin::pin!(exit);
    loop {
        tokio::select! {
            n = ctl.read(&mut chunk) => match n {
                Ok(n) if n > 0 => {
                    pending.extend_from_slice(&chunk[..n]);
                    dispatch(&session, &mut pending).await;
                }
                _ => {
                    // Cannot happen with a read-write FIFO; wait for the shell instead of spinning.
                    let status = (&mut exit).await;
                    session.on_shell_exit(status).await;
                    return;
                }
            },
            status = &mut exit => {
                while let Ok(n) = ctl.try_read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&chunk[..n]);
                }
                dispatch(&session, &mut pending).await;
                session.on_shell_exit(status).await;
                return;
            }
        }
    }
}

async fn dispatch(session: &Session, pending: &mut Vec<u8>) {
    while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = pending.drain(..=nl).collect();
        match std::str::from_utf8(&line).ok().and_then(wrapper::parse_event) {
            Some(ev) => session.on_event(ev).await,
            None => tracing::debug!(session = %session.id, "ignoring a malformed control line"),
        }
    }
    if pending.len() > 64 * 1024 {
        pending.clear();
    }
}

/// The session shell's own stdout/stderr (commands never write there; the shell's own
/// complaints do). Logged at debug level.
async fn drain_shell_output(id: String, out: std::io::PipeReader) {
    let Ok(mut rx) = pipe::Receiver::from_owned_fd(OwnedFd::from(out)) else { return };
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = rx.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tracing::debug!(session = %id, output = %String::from_utf8_lossy(&buf[..n]), "session shell output");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &Path) -> SessionService {
        let env = ChildEnv::new([("PATH".into(), "/usr/bin:/bin".into()), ("HOME".into(), dir.into())]);
        SessionService::new(
            dir,
            Arc::new(env),
            Reaper::global(),
            Duration::from_secs(2),
            Duration::from_millis(20),
        )
    }

    async fn done(cmd: &Command) -> State {
        cmd.progress().wait_for(|p| p.state.is_done()).await.unwrap().state
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn command_files_log_and_exit_code() {
        let tmp = tempfile::tempdir().unwrap();
        let svc = service(tmp.path());
        svc.create("s", tmp.path()).await.unwrap();
        let (_, cmd) =
            svc.exec("s", "echo out; printf partial >&2; (exit 3)".into(), false, false).await.unwrap();
        assert_eq!(done(&cmd).await, State::Exited(3));
        let dir = tmp.path().join("sessions/s").join(&cmd.id);
        assert_eq!(std::fs::read(dir.join("output.log")).unwrap(), b"\x01\x01\x01out\n\x02\x02\x02partial\n");
        assert_eq!(std::fs::read_to_string(dir.join("exit_code")).unwrap(), "3\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("cmd.sh")).unwrap(),
            "echo out; printf partial >&2; (exit 3)"
        );
        for fifo in ["stdout.pipe", "stderr.pipe", "input.pipe"] {
            assert!(!dir.join(fifo).exists(), "{fifo} left behind");
        }
        let p = *cmd.progress().borrow();
        assert_eq!(p.final_len, Some(p.len));
        assert_eq!(p.len, std::fs::metadata(dir.join("output.log")).unwrap().len());

        // Async with input; a background job keeps writing after the command ended.
        let (_, cmd) =
            svc.exec("s", "read x; echo \"x=$x\"; (sleep 0.3; echo bg) &".into(), true, false).await.unwrap();
        cmd.send_input("hello").await.unwrap();
        assert_eq!(done(&cmd).await, State::Exited(0));
        let log = cmd.log_path();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !std::fs::read(&log).unwrap().ends_with(b"bg\n") {
            assert!(std::time::Instant::now() < deadline, "background output not recorded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (o, _) = log::demux_all(&std::fs::read(&log).unwrap());
        assert_eq!(o, b"hello\nx=hello\nbg\n");
        assert!(matches!(cmd.send_input("late").await, Err(SessionError::CommandCompleted(0))));

        let finisher = svc.delete("s").await.unwrap();
        finisher.await.unwrap();
        assert!(!tmp.path().join("sessions/s").exists());
        assert!(matches!(svc.get("s"), Err(SessionError::NotFound)));
        assert!(matches!(svc.get(".."), Err(SessionError::InvalidId(_))));
        assert!(matches!(svc.delete("s").await, Err(SessionError::NotFound)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exit_ends_the_session() {
        let tmp = tempfile::tempdir().unwrap();
        let svc = service(tmp.path());
        svc.create("s", tmp.path()).await.unwrap();
        // The sleep keeps the shell alive until the second command is queued behind it.
        let (_, first) = svc.exec("s", "sleep 0.3; exit 5".into(), false, false).await.unwrap();
        let Ok((session, queued)) = svc.exec("s", "echo never".into(), true, false).await else {
            panic!("the second command could not be queued");
        };
        assert_eq!(done(&first).await, State::Ended(Some(5)));
        assert_eq!(done(&queued).await, State::Ended(None));
        assert_eq!(session.end(), Some(End::ShellExited(5)));
        let e = svc.exec("s", "true".into(), false, false).await.err().unwrap();
        assert!(matches!(e, SessionError::Ended(Some(End::ShellExited(5)))), "{e:?}");
        drop(svc.delete("s").await.unwrap());
    }
}
