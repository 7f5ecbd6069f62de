//! One worker process of an interpreter context and the thread that reads it.
//!
//! Descriptors of a worker (our own design, not the reference's single stdout channel):
//! * fd 0: `/dev/null`, so a subprocess that reads stdin cannot eat the command stream;
//! * fd 1 and fd 2: pipes read here and forwarded as `stdout`/`stderr` frames. The worker's
//!   `sys.stdout`/`sys.stderr` (or `console`) write to them unbuffered, so Python-level output and
//!   subprocess output share one ordered stream per descriptor;
//! * fd 3: the worker's protocol messages (JSON lines: ready, error, control);
//! * fd 4: the daemon's commands (JSON lines).
//!
//! The worker marks fds 3 and 4 close-on-exec, so its subprocesses never see the protocol.
//!
//! One thread per worker polls fds 1, 2 and 3. Before it acts on a protocol line it drains what
//! is already in the output pipes: the worker wrote that output before the line, so frames keep
//! the order in which the worker produced them, and the control frame that the executor sends
//! once it hears of the protocol line is always last. Output
//! goes to the attached client through a bounded channel with a blocking send: a slow client
//! slows the worker down (its writes block on a full pipe) instead of growing memory. Output
//! that arrives while no client is attached is read and dropped, as the reference does.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::reaper::{ExitWait, Reaper};

/// Largest piece of output read at once, hence the largest `text` of a stdout/stderr frame.
pub const CHUNK: usize = 64 * 1024;
/// Longest protocol line kept; longer ones are dropped (the worker clips error texts well below).
const MAX_PROTOCOL_LINE: usize = 16 * 1024 * 1024;
/// Upper bound of one drain of an output pipe before a protocol line. The worker's own output is
/// at most a pipe's capacity by then; the bound only stops a background subprocess that writes
/// without end from starving the protocol.
const MAX_DRAIN: usize = 4 * 1024 * 1024;

/// What a client receives, in order: frames, then exactly one close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Frame(String),
    Close(u16, String),
}

/// What the reading thread tells the context's executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ready,
    /// The control message of command `id`. Every output frame of the command has been queued
    /// to its client before this event is sent; the control frame has not.
    Done {
        id: String,
        interrupted: bool,
    },
    /// The protocol channel closed: the worker is gone.
    Eof,
}

/// The client an execution's output goes to, with the id of that execution.
struct Attached {
    id: String,
    tx: mpsc::Sender<Out>,
}

/// Where the reading thread sends output; `None` between executions.
#[derive(Default)]
pub struct Sink(Mutex<Option<Attached>>);

impl Sink {
    pub fn attach(&self, id: &str, tx: mpsc::Sender<Out>) {
        *self.lock() = Some(Attached { id: id.to_string(), tx });
    }

    pub fn detach(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Attached>> {
        toolbox_envelope::sync::lock(&self.0)
    }

    fn is_attached(&self) -> bool {
        self.lock().is_some()
    }

    fn current(&self) -> Option<(String, mpsc::Sender<Out>)> {
        self.lock().as_ref().map(|a| (a.id.clone(), a.tx.clone()))
    }

    /// Sends a frame to the attached client, waiting while its queue is full. A client that went
    /// away is detached and the frame dropped.
    fn send(&self, frame: String) {
        let Some((id, tx)) = self.current() else { return };
        if tx.blocking_send(Out::Frame(frame)).is_err() {
            let mut g = self.lock();
            if g.as_ref().is_some_and(|a| a.id == id) {
                *g = None;
            }
        }
    }
}

/// A frame as the clients read it: always exactly these five keys, in this order.
#[derive(Serialize)]
pub struct Frame<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub text: &'a str,
    pub name: &'a str,
    pub value: &'a str,
    pub traceback: &'a str,
}

impl Frame<'_> {
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("frames serialise")
    }
}

pub fn output_frame(kind: &str, text: &str) -> String {
    Frame { kind, text, name: "", value: "", traceback: "" }.json()
}

/// An error frame of the daemon's own (the worker reports the code's errors itself).
pub fn error_frame(name: &str, value: &str) -> String {
    Frame { kind: "error", text: "", name, value, traceback: "" }.json()
}

/// A line of the worker's protocol.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    text: String,
    name: String,
    value: String,
    traceback: String,
}

/// How to start a worker.
pub struct Launch<'a> {
    pub program: &'a Path,
    pub script: &'a Path,
    pub context_id: &'a str,
    pub cwd: &'a Path,
    pub env: Vec<(OsString, OsString)>,
}

/// A running worker as the executor holds it.
pub struct Worker {
    pub pid: u32,
    pub commands: tokio::net::unix::pipe::Sender,
    pub events: mpsc::Receiver<Event>,
    pub sink: Arc<Sink>,
    pub alive: Arc<AtomicBool>,
    /// The daemon environment the worker has been given (at start, then by every command).
    pub env: BTreeMap<String, String>,
    /// How the worker ended, once the reaper has said.
    pub ended: Arc<std::sync::OnceLock<crate::reaper::ExitStatus>>,
}

impl Worker {
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Kills the worker and everything it started (its process group).
    pub fn kill(&self) {
        if self.is_alive() {
            crate::signal::kill_group(self.pid, libc::SIGKILL);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What [`spawn`] hands back before the async side wraps the command pipe.
pub struct Spawned {
    pub pid: u32,
    pub commands: OwnedFd,
    pub events: mpsc::Receiver<Event>,
    pub sink: Arc<Sink>,
    pub alive: Arc<AtomicBool>,
    pub exit: ExitWait,
}

/// Starts a worker (blocking: fork/exec) and its reading thread.
pub fn spawn(reaper: &Reaper, launch: Launch<'_>) -> io::Result<Spawned> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (proto_r, proto_w) = pipe()?;
    let (cmd_r, cmd_w) = pipe()?;
    let (proto_fd, cmd_fd) = (proto_w.as_raw_fd(), cmd_r.as_raw_fd());

    let mut cmd = Command::new(launch.program);
    cmd.arg(launch.script)
        .arg(launch.context_id)
        .current_dir(launch.cwd)
        .env_clear()
        .envs(launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .process_group(0);
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Duplicate above the target numbers first: a source may itself be 3 or 4.
            let a = libc::fcntl(proto_fd, libc::F_DUPFD_CLOEXEC, 10);
            let b = libc::fcntl(cmd_fd, libc::F_DUPFD_CLOEXEC, 10);
            // dup2 clears close-on-exec on the new descriptor.
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (child, exit) = reaper.spawn(&mut cmd)?;
    drop(cmd);
    drop(proto_w);
    drop(cmd_r);
    let pid = child.id();

    for fd in [&out_r, &err_r, &proto_r] {
        set_nonblocking(fd.as_raw_fd())?;
    }
    let sink = Arc::new(Sink::default());
    let (events_tx, events) = mpsc::channel(16);
    let reader = Reader {
        out: Some(out_r),
        err: Some(err_r),
        proto: proto_r,
        pending: [Vec::new(), Vec::new()],
        line: Vec::new(),
        overlong: false,
        sink: sink.clone(),
        events: events_tx,
    };
    let spawned = std::thread::Builder::new().name(format!("interp-{pid}")).spawn(move || reader.run());
    if let Err(e) = spawned {
        crate::signal::kill_group(pid, libc::SIGKILL);
        return Err(e);
    }
    Ok(Spawned { pid, commands: cmd_w, events, sink, alive: Arc::new(AtomicBool::new(true)), exit })
}

/// The reading side of one worker.
struct Reader {
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    proto: OwnedFd,
    /// Per output stream, the start of a UTF-8 sequence whose remaining bytes have not arrived.
    pending: [Vec<u8>; 2],
    line: Vec<u8>,
    overlong: bool,
    sink: Arc<Sink>,
    events: mpsc::Sender<Event>,
}

enum Read {
    Data(usize),
    WouldBlock,
    Eof,
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> Read {
    loop {
        // SAFETY: reads into a buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Read::Data(n as usize);
        }
        if n == 0 {
            return Read::Eof;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Read::WouldBlock,
            _ => return Read::Eof,
        }
    }
}

const STREAMS: [&str; 2] = ["stdout", "stderr"];

impl Reader {
    fn run(mut self) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let mut fds = [
                poll_fd(self.out.as_ref()),
                poll_fd(self.err.as_ref()),
                libc::pollfd { fd: self.proto.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: polls an array of three valid pollfd entries (-1 entries are ignored).
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
            if rc < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for (i, fd) in fds[..2].iter().enumerate() {
                if fd.revents != 0 {
                    self.read_output(i, &mut buf);
                }
            }
            if fds[2].revents != 0 && !self.read_protocol(&mut buf) {
                break;
            }
        }
        // The worker is gone. What it wrote is in the pipes already; a background subprocess
        // that still holds them is not waited for.
        self.drain();
        self.flush_pending();
        let _ = self.events.blocking_send(Event::Eof);
    }

    /// Reads one chunk from output stream `i`; false once nothing more is there.
    fn read_output(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let Some(fd) = (if i == 0 { self.out.as_ref() } else { self.err.as_ref() }) else {
            return false;
        };
        let n = match read_some(fd, buf) {
            Read::Data(n) => n,
            Read::WouldBlock => return false,
            Read::Eof => {
                if i == 0 {
                    self.out = None
                } else {
                    self.err = None
                }
                return false;
            }
        };
        let pending = &mut self.pending[i];
        if !self.sink.is_attached() {
            // Nobody to tell: dropped without decoding (a flood after its client left).
            pending.clear();
            return true;
        }
        pending.extend_from_slice(&buf[..n]);
        let keep = incomplete_tail(pending);
        let tail = pending.split_off(pending.len() - keep);
        let text = String::from_utf8_lossy(pending).into_owned();
        *pending = tail;
        if !text.is_empty() {
            self.sink.send(output_frame(STREAMS[i], &text));
        }
        true
    }

    /// Everything already in the output pipes (bounded), so it goes out before what follows.
    fn drain(&mut self) {
        let mut buf = vec![0u8; CHUNK];
        for i in 0..2 {
            let mut total = 0;
            while total < MAX_DRAIN && self.read_output(i, &mut buf) {
                total += CHUNK;
            }
        }
    }

    fn flush_pending(&mut self) {
        for (pending, stream) in self.pending.iter_mut().zip(STREAMS) {
            if !pending.is_empty() {
                let text = String::from_utf8_lossy(&std::mem::take(pending)).into_owned();
                self.sink.send(output_frame(stream, &text));
            }
        }
    }

    /// Reads protocol bytes and handles every complete line; false at end of stream.
    fn read_protocol(&mut self, buf: &mut [u8]) -> bool {
        let n = match read_some(&self.proto, buf) {
            Read::Data(n) => n,
            Read::WouldBlock => return true,
            Read::Eof => return false,
        };
        let mut rest = &buf[..n];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if !self.overlong {
                self.line.extend_from_slice(&rest[..nl]);
                let line = std::mem::take(&mut self.line);
                self.handle_line(&line);
            }
            self.overlong = false;
            rest = &rest[nl + 1..];
        }
        if !self.overlong {
            if self.line.len() + rest.len() > MAX_PROTOCOL_LINE {
                tracing::warn!("interpreter worker sent an overlong protocol line; dropped");
                self.line = Vec::new();
                self.overlong = true;
            } else {
                self.line.extend_from_slice(rest);
            }
        }
        true
    }

    fn handle_line(&mut self, line: &[u8]) {
        let msg: Message = match serde_json::from_slice(line) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "non-JSON line from an interpreter worker dropped");
                return;
            }
        };
        match msg.kind.as_str() {
            "ready" => {
                let _ = self.events.blocking_send(Event::Ready);
            }
            "error" | "control" => {
                // Output written before this line is in the pipes: it goes first.
                self.drain();
                self.flush_pending();
                let current = self.sink.current().map(|(id, _)| id);
                let ours = current.as_deref() == Some(msg.id.as_str());
                if msg.kind == "error" {
                    if ours || msg.id.is_empty() {
                        let f = Frame {
                            kind: "error",
                            text: "",
                            name: &msg.name,
                            value: &msg.value,
                            traceback: &msg.traceback,
                        };
                        self.sink.send(f.json());
                    }
                    return;
                }
                let interrupted = msg.text == "interrupted";
                if ours {
                    // The execution's output ends here (later output of a background process
                    // is not its). Its control frame is the executor's to send: only it knows
                    // whether the daemon caused an interrupt.
                    self.sink.detach();
                }
                let _ = self.events.blocking_send(Event::Done { id: msg.id, interrupted });
            }
            other => tracing::debug!(kind = other, "unknown message from an interpreter worker"),
        }
    }
}

fn poll_fd(fd: Option<&OwnedFd>) -> libc::pollfd {
    libc::pollfd { fd: fd.map_or(-1, |f| f.as_raw_fd()), events: libc::POLLIN, revents: 0 }
}

/// How many bytes at the end of `b` begin a UTF-8 sequence that is not complete yet.
pub fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=b.len().min(3) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue;
        }
        let need = match c {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if need > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_tails() {
        assert_eq!(incomplete_tail(b"abc"), 0);
        let e = "é".as_bytes(); // 2 bytes
        assert_eq!(incomplete_tail(&e[..1]), 1);
        assert_eq!(incomplete_tail(e), 0);
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(incomplete_tail(&[b'x', euro[0], euro[1]]), 2);
        let emoji = "😀".as_bytes(); // 4 bytes
        assert_eq!(incomplete_tail(&emoji[..3]), 3);
        assert_eq!(incomplete_tail(emoji), 0);
        // Stray continuation bytes are invalid, not pending: lossy conversion handles them.
        assert_eq!(incomplete_tail(&[0x80, 0x80, 0x80]), 0);
        assert_eq!(incomplete_tail(b""), 0);
    }

    #[test]
    fn frames_have_five_keys_in_order() {
        assert_eq!(
            output_frame("stdout", "hi\n"),
            r#"{"type":"stdout","text":"hi\n","name":"","value":"","traceback":""}"#
        );
    }
}
