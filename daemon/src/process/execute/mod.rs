//! Running one script in a fresh shell and collecting its combined output: the service behind
//! `POST /process/execute` ([`api`]) and `/process/code-run`.

pub mod api;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::time::Instant;

use crate::env::ChildEnv;
use crate::exhaust::Exhausted;
use crate::reaper::{ExitStatus, Reaper};
use crate::shell;
use crate::signal::{GroupGuard, kill_group};
use crate::text::os_error_text;
/// Other areas still import it from here; it lives in [`crate::text`].

/// How long to keep reading after the shell exited, for background jobs that inherited the
/// output pipe (`server &`): their output so far is returned instead of waiting for them.
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(30);
/// Most output kept per command. Beyond it output is still drained (so the command never blocks
/// on a full pipe) but dropped, and a note says how much.
pub const MAX_OUTPUT: usize = 64 * 1024 * 1024;

/// A script to run in a fresh shell: a validated `/process/execute` request, or the script
/// `/process/code-run` builds around a program.
#[derive(Debug)]
pub struct ExecSpec {
    /// Written to the shell's stdin, then stdin is closed.
    pub command: String,
    pub cwd: PathBuf,
    pub timeout: Option<Duration>,
    pub envs: BTreeMap<String, String>,
}

/// Why a script has no result. A process that cannot be started is a result, not an error —
/// unless the sandbox is exhausted ([`ExecError::Exhausted`]): then nothing about the script is
/// wrong and the client should hear "try again", not read an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Exhausted(#[from] crate::exhaust::Exhausted),
    /// It ran past its timeout; its whole process group was killed.
    #[error("command execution timeout")]
    Timeout,
    /// The daemon could not set up the pipes to talk to it.
    #[error("cannot set up the command's pipes: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `spec` to completion: the shell (own process group, environment = `env` plus
/// `spec.envs`) reads the script from stdin; stdout and stderr are collected together. A
/// process that cannot be started is a result (exit code -1 and the OS error), as the clients
/// expect; running past `spec.timeout` kills the group and is [`ExecError::Timeout`].
pub async fn run_script(reaper: &Reaper, env: &ChildEnv, spec: ExecSpec) -> Result<(i32, String), ExecError> {
    let shell = shell::select(env);
    let pipes = std::io::pipe().and_then(|(r, w)| Ok((r, w.try_clone()?, w)));
    let (reader, writer2, writer) =
        pipes.map_err(|e| exhausted_or("cannot set up the command's pipes", e))?;
    let mut cmd = Command::new(&shell);
    cmd.stdin(Stdio::piped())
        .stdout(writer)
        .stderr(writer2)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(env.snapshot_in(&spec.cwd, spec.envs.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .process_group(0);
    let oom_before = crate::oom::Counts::now();
    let spawned = reaper.spawn(&mut cmd);
    // Our copies of the write end must go, or the reader never sees EOF.
    drop(cmd);
    let (mut child, exit) = match spawned {
        Ok(pair) => pair,
        Err(e) => {
            if let Some(x) = Exhausted::of(format_args!("cannot start {shell}"), &e) {
                return Err(x.into());
            }
            return Ok((-1, spawn_error_text(&e, &shell, &spec.cwd)));
        }
    };
    let pgid = child.id();
    let mut guard = GroupGuard::new(pgid);

    let stdin = child.stdin.take().expect("stdin is piped");
    // The shell reads its script from stdin, then sees EOF. A script that fits in the pipe
    // (almost all) is written here at once; only the rest of a longer one needs a task that
    // waits for the shell to read. Errors mean the shell is gone.
    // A stdin that cannot be registered would leave the shell an empty script: exit 0, no
    // output, nothing run. Fail the request instead (the guard kills the shell).
    // The block ends the writer's ownership: the shell sees EOF once the script is written.
    {
        let tx = pipe::Sender::from_owned_fd(OwnedFd::from(stdin))
            .map_err(|e| exhausted_or("cannot pass the command to its shell", e))?;
        let mut command = spec.command.into_bytes();
        match tx.try_write(&command) {
            Ok(n) if n == command.len() => {}
            Ok(n) => {
                command.drain(..n);
                tokio::spawn(write_rest(tx, command));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::spawn(write_rest(tx, command));
            }
            Err(_) => {}
        }
    }

    let mut rx = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let deadline = spec.timeout.map(|t| Instant::now() + t);
    let mut output = Output::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut exit = std::pin::pin!(exit);
    let mut status: Option<ExitStatus> = None;
    let mut drain_until: Option<Instant> = None;
    let mut eof = false;

    while !(eof && status.is_some()) {
        let sleep_target = match (status, deadline, drain_until) {
            (_, Some(d), Some(u)) => Some(d.min(u)),
            (_, Some(d), None) => Some(d),
            (Some(_), None, Some(u)) => Some(u),
            _ => None,
        };
        tokio::select! {
            st = &mut exit, if status.is_none() => {
                status = Some(st);
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            }
            n = rx.read(&mut chunk), if !eof => match n {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => output.push(&chunk[..n]),
            },
            _ = sleep_until_opt(sleep_target) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    kill_group(pgid, libc::SIGKILL);
                    guard.disarm();
                    return Err(ExecError::Timeout);
                }
                // Drain window over: answer with what background jobs wrote so far.
                break;
            }
        }
    }
    guard.disarm();
    // The kernel's SIGKILL says nothing of why; the result does, where the SDKs show it.
    if let Some(why) = status.and_then(|st| crate::oom::verdict(oom_before, st)) {
        output.push(format!("\nthe command was {why}\n").as_bytes());
    }
    let code = status.map_or(-1, ExitStatus::api_code);
    Ok((code, output.into_string()))
}

async fn write_rest(mut tx: pipe::Sender, rest: Vec<u8>) {
    let _ = tx.write_all(&rest).await;
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Collected output, capped at [`MAX_OUTPUT`].
#[derive(Default)]
struct Output {
    buf: Vec<u8>,
    dropped: usize,
}

impl Output {
    fn push(&mut self, data: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.buf.len());
        let take = room.min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        self.dropped += data.len() - take;
    }

    fn into_string(self) -> String {
        let mut s = crate::text::lossy_per_byte(&self.buf);
        if self.dropped > 0 {
            s.push_str(&format!("\n[output truncated: {} bytes dropped]", self.dropped));
        }
        s
    }
}

/// The OS error in the words users know from the reference (`chdir /x: no such file or
/// directory`), without Rust's `(os error N)` suffix.
/// An I/O failure of the daemon's own: exhaustion when it is one.
fn exhausted_or(what: &str, e: std::io::Error) -> ExecError {
    match Exhausted::of(what, &e) {
        Some(x) => x.into(),
        None => e.into(),
    }
}

fn spawn_error_text(err: &std::io::Error, shell: &str, cwd: &Path) -> String {
    let detail = os_error_text(err);
    if !cwd.is_dir() {
        format!("chdir {}: {detail}", cwd.display())
    } else {
        format!("fork/exec {shell}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn spec(command: &str) -> ExecSpec {
        ExecSpec { command: command.into(), cwd: std::env::temp_dir(), timeout: None, envs: BTreeMap::new() }
    }

    fn env() -> ChildEnv {
        ChildEnv::new([
            (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
            ("KEEP".into(), "k".into()),
        ])
    }

    fn run_blocking(s: ExecSpec) -> Result<(i32, String), ExecError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_script(Reaper::global(), &env(), s))
    }

    #[test]
    fn combined_output_in_order_and_exit_code() {
        let (code, out) = run_blocking(spec("echo one; echo two >&2; echo three; exit 3")).unwrap();
        assert_eq!(code, 3);
        assert_eq!(out, "one\ntwo\nthree\n");
    }

    #[test]
    fn env_layers_and_stdin_eof() {
        let mut s = spec("cat; echo \"$KEEP $EXTRA\"");
        s.envs.insert("EXTRA".into(), "e".into());
        s.envs.insert("KEEP".into(), "override".into());
        let (code, out) = run_blocking(s).unwrap();
        assert_eq!((code, out.as_str()), (0, "override e\n"));
    }

    #[test]
    fn timeout_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let mut s = spec(&format!("(sleep 2; touch {}) & sleep 30", marker.display()));
        s.timeout = Some(Duration::from_secs(1));
        assert!(matches!(run_blocking(s), Err(ExecError::Timeout)));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a process of the group survived the timeout");
    }

    #[test]
    fn a_script_longer_than_the_pipe_reaches_the_shell_whole() {
        // Past the pipe's buffer the rest of the script is written as the shell reads.
        let filler = format!("# {}\n", "x".repeat(1000)).repeat(300);
        let (code, out) = run_blocking(spec(&format!("{filler}echo end; exit 4"))).unwrap();
        assert_eq!((code, out.as_str()), (4, "end\n"));
    }

    #[test]
    fn the_shell_starts_with_pwd_naming_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec("echo \"$PWD\"; pwd");
        s.cwd = dir.path().to_path_buf();
        let real = dir.path().canonicalize().unwrap();
        let (_, out) = run_blocking(s).unwrap();
        assert_eq!(out, format!("{0}\n{0}\n", real.display()));
    }

    #[test]
    fn signal_death_is_minus_one() {
        assert_eq!(run_blocking(spec("kill -9 $$")).unwrap().0, -1);
    }

    #[test]
    fn bad_cwd_is_a_result() {
        let mut s = spec("true");
        s.cwd = PathBuf::from("/definitely/not/here");
        let (code, out) = run_blocking(s).unwrap();
        assert_eq!(code, -1);
        assert_eq!(out, "chdir /definitely/not/here: no such file or directory");
    }

    #[test]
    fn redirected_background_job_does_not_delay() {
        let started = std::time::Instant::now();
        let (code, _) = run_blocking(spec("nohup sleep 20 >/dev/null 2>&1 &")).unwrap();
        assert_eq!(code, 0);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_is_capped_but_drained() {
        let mut o = Output::default();
        o.push(&vec![b'a'; MAX_OUTPUT - 1]);
        o.push(b"bcd");
        assert_eq!(o.buf.len(), MAX_OUTPUT);
        assert_eq!(o.dropped, 2);
        assert!(o.into_string().ends_with("[output truncated: 2 bytes dropped]"));
    }
}
