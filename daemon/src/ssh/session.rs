//! A `session` channel: collects the requests that come before the program (`pty-req`, `env`,
//! `auth-agent-req@openssh.com`), then runs a shell or command, or hands the channel to SFTP.
//!
//! Commands run as `/bin/sh -c "<command>"` (a shell without a command: `/bin/sh` reading the
//! channel), in the work directory, with the daemon's child environment plus the client's `env`
//! requests. With a PTY a shell is the one sessions choose (`crate::shell::select`), and a
//! command runs on the terminal too, as sshd does for `ssh -t host cmd`. Every program gets its
//! own process group (a session on a PTY), which is killed when the client closes the channel
//! before the program is done; a program that finished on its own keeps its background jobs,
//! as with sshd (an IDE backend started with `nohup … &` must survive the command).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use russh::server::{Handle, Msg};
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;

use super::ChannelSlot;
use super::{Shared, forward, sftp};
use crate::pty as sys;
use crate::reaper::ExitStatus;
use crate::signal::{GroupGuard, kill_group};

/// What the client asked for before starting the program.
#[derive(Default)]
struct Setup {
    pty: Option<PtyRequest>,
    env: Vec<(OsString, OsString)>,
    agent: Option<Agent>,
}

struct PtyRequest {
    term: String,
    cols: u16,
    rows: u16,
}

/// How much output a PTY shell may still print after it exited before the session ends.
const PTY_DRAIN: Duration = Duration::from_millis(200);
/// `env` requests kept per session (OpenSSH sends a handful).
const MAX_ENV_REQUESTS: usize = 1024;
/// Output read at once from a program.
const CHUNK: usize = 32 * 1024;

/// Serves one session channel to its end.
pub async fn run(mut channel: Channel<Msg>, handle: Handle, shared: Arc<Shared>, slot: ChannelSlot) {
    let mut setup = Setup::default();
    loop {
        let Some(msg) = channel.wait().await else { return };
        match msg {
            ChannelMsg::RequestPty { term, col_width, row_height, .. } => {
                setup.pty = Some(PtyRequest {
                    term,
                    cols: dimension(col_width, 80),
                    rows: dimension(row_height, 24),
                });
            }
            // A name with '=' or NUL (or a NUL in the value) cannot be passed to exec; the count
            // is bounded so a client cannot grow the daemon's memory with requests.
            ChannelMsg::SetEnv { variable_name, variable_value, .. }
                if setup.env.len() < MAX_ENV_REQUESTS
                    && !variable_name.is_empty()
                    && !variable_name.contains(['=', '\0'])
                    && !variable_value.contains('\0') =>
            {
                setup.env.push((variable_name.into(), variable_value.into()));
            }
            ChannelMsg::AgentForward { .. } if setup.agent.is_none() => match Agent::start(handle.clone()) {
                Ok(a) => setup.agent = Some(a),
                Err(e) => tracing::warn!(error = %e, "cannot make the SSH agent socket"),
            },
            ChannelMsg::RequestShell { .. } => return start(channel, shared, setup, None, slot).await,
            ChannelMsg::Exec { command, .. } => {
                return start(channel, shared, setup, Some(command), slot).await;
            }
            ChannelMsg::RequestSubsystem { name, .. } if name == "sftp" => {
                return sftp::serve(channel, handle, slot).await;
            }
            ChannelMsg::Eof | ChannelMsg::Close => return,
            _ => {}
        }
    }
}

/// A terminal dimension from the client; 0 ("unknown") takes the default.
fn dimension(v: u32, default: u16) -> u16 {
    match u16::try_from(v) {
        Ok(0) => default,
        Ok(n) => n,
        Err(_) => u16::MAX,
    }
}

/// The exit status sent to the client: the program's code, and 1 for a death by signal or an
/// unknown status (the reference reports those as 1 too).
pub fn reported_status(status: ExitStatus) -> u32 {
    match status {
        ExitStatus::Exited(c) => c as u32,
        ExitStatus::Signaled(_) | ExitStatus::Unknown => 1,
    }
}

/// The signal for an SSH `signal` request; unknown names kill, as the reference does.
pub fn signal_number(sig: &Sig) -> libc::c_int {
    match sig {
        Sig::ABRT => libc::SIGABRT,
        Sig::ALRM => libc::SIGALRM,
        Sig::FPE => libc::SIGFPE,
        Sig::HUP => libc::SIGHUP,
        Sig::ILL => libc::SIGILL,
        Sig::INT => libc::SIGINT,
        Sig::KILL => libc::SIGKILL,
        Sig::PIPE => libc::SIGPIPE,
        Sig::QUIT => libc::SIGQUIT,
        Sig::SEGV => libc::SIGSEGV,
        Sig::TERM => libc::SIGTERM,
        Sig::USR1 => libc::SIGUSR1,
        Sig::Custom(name) if name == "USR2" => libc::SIGUSR2,
        Sig::Custom(_) => libc::SIGKILL,
    }
}

async fn start(
    channel: Channel<Msg>,
    shared: Arc<Shared>,
    setup: Setup,
    command: Option<Vec<u8>>,
    slot: ChannelSlot,
) {
    let mut env = setup.env;
    if let Some(agent) = &setup.agent {
        env.push(("SSH_AUTH_SOCK".into(), agent.path()));
    }
    let vars = shared.env.snapshot_with(std::iter::empty());
    let (mut rx, tx) = channel.split();
    let ended = match setup.pty {
        Some(pty) => run_on_pty(&mut rx, &tx, &shared, vars, env, pty, command).await,
        None => run_on_pipes(&mut rx, &tx, &shared, vars, env, command).await,
    };
    finish(&tx, ended).await;
    drop(setup.agent);
    drop(slot);
}

/// How the program ended, as far as the client is told.
enum Ended {
    Exited(ExitStatus),
    /// The client closed the channel first.
    Closed,
    /// It could not be started.
    Failed(String),
}

async fn finish(channel: &ChannelWriteHalf<Msg>, ended: Ended) {
    match ended {
        Ended::Closed => {}
        Ended::Exited(status) => {
            let _ = channel.eof().await;
            let _ = channel.exit_status(reported_status(status)).await;
            let _ = channel.close().await;
        }
        Ended::Failed(message) => {
            let _ = channel.extended_data_bytes(1, format!("{message}\r\n").into_bytes()).await;
            let _ = channel.eof().await;
            let _ = channel.exit_status(127).await;
            let _ = channel.close().await;
        }
    }
}

fn merge_env(
    mut vars: Vec<(OsString, OsString)>,
    extra: Vec<(OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    for (k, v) in extra {
        match vars.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => vars.push((k, v)),
        }
    }
    vars
}

async fn run_on_pipes(
    rx: &mut ChannelReadHalf,
    channel: &ChannelWriteHalf<Msg>,
    shared: &Shared,
    vars: Vec<(OsString, OsString)>,
    extra: Vec<(OsString, OsString)>,
    command: Option<Vec<u8>>,
) -> Ended {
    let mut cmd = Command::new("/bin/sh");
    if let Some(c) = command {
        cmd.arg("-c").arg(OsString::from_vec(c));
    }
    cmd.current_dir(&shared.work_dir)
        .env_clear()
        .envs(merge_env(vars, extra))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let (mut child, exit) = match shared.reaper.spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => return Ended::Failed(format!("cannot start /bin/sh: {e}")),
    };
    let pid = child.id();
    let mut guard = GroupGuard::new(pid);
    let pipes = (|| -> std::io::Result<_> {
        let stdin = pipe::Sender::from_owned_fd(OwnedFd::from(child.stdin.take().expect("piped")))?;
        let stdout = pipe::Receiver::from_owned_fd(OwnedFd::from(child.stdout.take().expect("piped")))?;
        let stderr = pipe::Receiver::from_owned_fd(OwnedFd::from(child.stderr.take().expect("piped")))?;
        Ok((stdin, stdout, stderr))
    })();
    let (stdin, stdout, stderr) = match pipes {
        Ok(p) => p,
        Err(e) => return Ended::Failed(format!("cannot set up the command's pipes: {e}")),
    };
    let out = tokio::spawn(copy_out(stdout, channel.make_writer()));
    let err = tokio::spawn(copy_out(stderr, channel.make_writer_ext(Some(1))));
    let outputs = async move {
        let _ = out.await;
        let _ = err.await;
    };
    let ended = drive(rx, Some(stdin), exit, outputs, |msg| match msg {
        Control::Signal(sig) => kill_group(pid, sig),
        Control::Resize(..) => {}
    })
    .await;
    if !matches!(ended, Ended::Closed) {
        guard.disarm();
    }
    ended
}

/// Copies a program's output to the channel until end of file.
async fn copy_out<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(mut from: R, mut to: W) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.flush().await;
}

enum Control {
    Signal(libc::c_int),
    Resize(u16, u16),
}

/// Input a program has not read yet, at most: past this its stdin is closed and further input is
/// dropped. Without a bound either memory grows or a blocked write stalls the channel, so that
/// neither the client's close nor a signal gets through.
const MAX_PENDING_INPUT: usize = 8 << 20;

/// Aborts the input writer when the channel is done with the program, even mid-write.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes channel input to the program on a task of its own, so a program that does not read
/// never blocks the channel. Dropping the sender closes the program's stdin once what is queued
/// is written.
fn input_writer<W: AsyncWrite + Unpin + Send + 'static>(
    mut w: W,
) -> (tokio::sync::mpsc::UnboundedSender<Vec<u8>>, Arc<AtomicUsize>, AbortOnDrop) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let pending = Arc::new(AtomicUsize::new(0));
    let left = pending.clone();
    let task = tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            let ok = w.write_all(&chunk).await.is_ok() && w.flush().await.is_ok();
            left.fetch_sub(chunk.len(), Ordering::AcqRel);
            if !ok {
                break;
            }
        }
    });
    (tx, pending, AbortOnDrop(task.abort_handle()))
}

/// Feeds channel input to the program and waits until it has exited and `outputs` (its output
/// copied to the channel) is done — or until the client closes the channel.
async fn drive<W: AsyncWrite + Unpin + Send + 'static>(
    rx: &mut ChannelReadHalf,
    stdin: Option<W>,
    exit: impl std::future::Future<Output = ExitStatus>,
    outputs: impl std::future::Future<Output = ()>,
    mut control: impl FnMut(Control),
) -> Ended {
    let mut exit = std::pin::pin!(exit);
    let mut outputs = std::pin::pin!(outputs);
    let mut status = None;
    let mut outputs_done = false;
    let (mut input, pending, _writer) = match stdin.map(input_writer) {
        Some((tx, pending, writer)) => (Some(tx), pending, Some(writer)),
        None => (None, Arc::default(), None),
    };
    loop {
        if let (Some(s), true) = (status, outputs_done) {
            return Ended::Exited(s);
        }
        tokio::select! {
            s = &mut exit, if status.is_none() => status = Some(s),
            _ = &mut outputs, if !outputs_done => outputs_done = true,
            msg = rx.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    if let Some(tx) = &input {
                        let n = data.len();
                        if pending.fetch_add(n, Ordering::AcqRel) + n > MAX_PENDING_INPUT
                            || tx.send(data.to_vec()).is_err()
                        {
                            input = None;
                        }
                    }
                }
                // End of input closes the program's stdin.
                Some(ChannelMsg::Eof) => input = None,
                Some(ChannelMsg::Signal { signal }) => control(Control::Signal(signal_number(&signal))),
                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                    control(Control::Resize(dimension(col_width, 80), dimension(row_height, 24)))
                }
                Some(ChannelMsg::Close) | None => return Ended::Closed,
                Some(_) => {}
            },
        }
    }
}

async fn run_on_pty(
    rx: &mut ChannelReadHalf,
    channel: &ChannelWriteHalf<Msg>,
    shared: &Shared,
    vars: Vec<(OsString, OsString)>,
    mut extra: Vec<(OsString, OsString)>,
    pty: PtyRequest,
    command: Option<Vec<u8>>,
) -> Ended {
    let shell = crate::shell::select(&shared.env);
    extra.push(("TERM".into(), pty.term.clone().into()));
    extra.push(("SHELL".into(), shell.clone().into()));
    let command = command.map(|c| String::from_utf8_lossy(&c).into_owned());
    let (program, args): (&str, Vec<&str>) = match &command {
        None => (&shell, Vec::new()),
        Some(c) => ("/bin/sh", vec!["-c", c.as_str()]),
    };
    let spawned = match sys::spawn(
        shared.reaper,
        sys::SpawnSpec {
            program,
            args: &args,
            cwd: &shared.work_dir,
            env: merge_env(vars, extra),
            cols: pty.cols,
            rows: pty.rows,
        },
    ) {
        Ok(s) => s,
        Err(e) => return Ended::Failed(format!("cannot start {program}: {e}")),
    };
    let pid = spawned.pid;
    // The shell leads its own session; its group is the session's.
    let mut guard = GroupGuard::new(pid);
    let master = Arc::new(spawned.master);
    let io = (|| -> std::io::Result<_> {
        set_nonblocking(&master)?;
        let reader = pipe::Receiver::from_owned_fd_unchecked(master.try_clone()?)?;
        let writer = pipe::Sender::from_owned_fd_unchecked(master.try_clone()?)?;
        Ok((reader, writer))
    })();
    let (reader, writer) = match io {
        Ok(p) => p,
        Err(e) => return Ended::Failed(format!("cannot set up the terminal: {e}")),
    };
    let out = tokio::spawn(copy_out(TerminalReader(reader), channel.make_writer()));
    let exited = std::sync::Arc::new(tokio::sync::Notify::new());
    let outputs = {
        let exited = exited.clone();
        async move {
            let mut out = out;
            // The terminal reports end of file only once every process on it is gone; after
            // the shell exits its leftovers get a moment to print and are then hung up.
            tokio::select! {
                _ = &mut out => {}
                _ = exited.notified() => {
                    if tokio::time::timeout(PTY_DRAIN, &mut out).await.is_err() {
                        hang_up(pid);
                        out.abort();
                    }
                }
            }
        }
    };
    let exit = spawned.exit;
    let exit = async move {
        let s = exit.await;
        exited.notify_one();
        s
    };
    let resize_master = master.clone();
    let ended = drive(rx, Some(writer), exit, outputs, |c| match c {
        Control::Signal(sig) => kill_group(pid, sig),
        Control::Resize(cols, rows) => {
            let _ = sys::resize(&resize_master, cols, rows);
        }
    })
    .await;
    match ended {
        // The client went away: as when a terminal closes, every job of the session is hung
        // up (job control puts them in groups of their own), and the shell's group killed.
        Ended::Closed => hang_up(pid),
        _ => guard.disarm(),
    }
    ended
}

/// Sends SIGHUP to every process of the terminal session led by `sid`.
fn hang_up(sid: u32) {
    for member in sys::session_members(sid) {
        // SAFETY: plain syscall.
        unsafe { libc::kill(member as libc::pid_t, libc::SIGHUP) };
    }
}

/// Reads the PTY master; Linux reports the last close of the terminal as EIO, which is the end.
struct TerminalReader(pipe::Receiver);

impl AsyncRead for TerminalReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::EIO) => {
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Agent forwarding: a socket in a private directory; each connection to it opens an
/// `auth-agent@openssh.com` channel to the client.
struct Agent {
    dir: tempfile::TempDir,
    task: tokio::task::AbortHandle,
}

impl Agent {
    fn start(handle: Handle) -> std::io::Result<Agent> {
        // tempfile makes the directory 0700: only the sandbox user reaches the agent.
        let dir = tempfile::Builder::new().prefix("ssh-agent-").tempdir()?;
        let listener = tokio::net::UnixListener::bind(dir.path().join("agent.sock"))?;
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let handle = handle.clone();
                tokio::spawn(async move {
                    if let Ok(channel) = handle.channel_open_agent().await {
                        forward::pipe(channel, socket).await;
                    }
                });
            }
        });
        Ok(Agent { dir, task: task.abort_handle() })
    }

    fn path(&self) -> OsString {
        self.dir.path().join("agent.sock").into_os_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_deaths_and_unknown_statuses_report_1() {
        assert_eq!(reported_status(ExitStatus::Exited(0)), 0);
        assert_eq!(reported_status(ExitStatus::Exited(42)), 42);
        assert_eq!(reported_status(ExitStatus::Signaled(libc::SIGKILL)), 1);
        assert_eq!(reported_status(ExitStatus::Unknown), 1);
    }

    #[test]
    fn ssh_signal_names_map_to_signals_and_unknown_ones_kill() {
        assert_eq!(signal_number(&Sig::INT), libc::SIGINT);
        assert_eq!(signal_number(&Sig::TERM), libc::SIGTERM);
        assert_eq!(signal_number(&Sig::USR1), libc::SIGUSR1);
        assert_eq!(signal_number(&Sig::Custom("USR2".into())), libc::SIGUSR2);
        assert_eq!(signal_number(&Sig::Custom("WINCH".into())), libc::SIGKILL);
    }

    #[test]
    fn terminal_dimensions_default_and_saturate() {
        assert_eq!(dimension(0, 80), 80);
        assert_eq!(dimension(132, 80), 132);
        assert_eq!(dimension(1 << 20, 80), u16::MAX);
    }

    #[test]
    fn client_variables_override_the_daemons() {
        let merged = merge_env(
            vec![("A".into(), "1".into()), ("B".into(), "2".into())],
            vec![("B".into(), "3".into()), ("C".into(), "4".into())],
        );
        let want: Vec<(OsString, OsString)> =
            vec![("A".into(), "1".into()), ("B".into(), "3".into()), ("C".into(), "4".into())];
        assert_eq!(merged, want);
    }
}
