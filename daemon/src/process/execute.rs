//! `POST /process/execute`: run one command in a fresh shell and return its combined output.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::time::Instant;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::signal::{GroupGuard, kill_group};
use crate::env::{ChildEnv, is_portable_name};
use crate::error::{ApiError, Code};
use crate::extract::Json as JsonBody;
use crate::reaper::{ExitStatus, Reaper};
use crate::shell;
use crate::state::AppState;

/// How long to keep reading after the shell exited, for background jobs that inherited the
/// output pipe (`server &`): their output so far is returned instead of waiting for them.
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(30);
/// Most output kept per command. Beyond it output is still drained (so the command never blocks
/// on a full pipe) but dropped, and a note says how much.
pub const MAX_OUTPUT: usize = 64 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(execute))
}

#[derive(Deserialize, ToSchema)]
pub struct ExecuteRequest {
    /// Shell command text; written to the shell's stdin, so it may be any length.
    // Absent is a validation failure like empty, not a decoding one.
    #[serde(default)]
    command: String,
    /// Working directory; the daemon's work dir when absent.
    cwd: Option<String>,
    /// Seconds before the whole process group is killed; absent or 0 means no limit.
    timeout: Option<u32>,
    /// Extra environment variables; they win over inherited ones.
    envs: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResponse {
    exit_code: i32,
    result: String,
}

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

/// Runs a command in a new shell and returns its exit code and combined output.
#[utoipa::path(post, path = "/process/execute", tag = "process", request_body = ExecuteRequest,
    responses((status = 200, body = ExecuteResponse),
        (status = 400, body = crate::openapi::ErrorResponse),
        (status = 408, description = "the command ran past its timeout and was killed", body = crate::openapi::ErrorResponse)))]
async fn execute(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    let spec = validate(req, &state.work_dir)?;
    let (exit_code, result) = run(state.reaper, &state.env, spec).await?;
    Ok(Json(ExecuteResponse { exit_code, result }))
}

pub fn validate(req: ExecuteRequest, work_dir: &Path) -> Result<ExecSpec, ApiError> {
    if req.command.is_empty() {
        return Err(ApiError::bad_request("invalid request body: command is required"));
    }
    if req.command.trim().is_empty() {
        return Err(ApiError::bad_request("command cannot be empty or whitespace-only"));
    }
    let envs = req.envs.unwrap_or_default();
    if let Some(bad) = envs.keys().find(|k| !is_portable_name(k)) {
        return Err(ApiError::bad_request(format!("invalid environment variable name: '{bad}'")));
    }
    Ok(ExecSpec {
        command: req.command,
        cwd: req.cwd.filter(|c| !c.is_empty()).map_or_else(|| work_dir.to_path_buf(), PathBuf::from),
        timeout: req.timeout.filter(|t| *t > 0).map(|t| Duration::from_secs(t.into())),
        envs,
    })
}

/// Runs `spec` to completion: the shell (own process group, environment = `env` plus
/// `spec.envs`) reads the script from stdin; stdout and stderr are collected together. A
/// process that cannot be started is a result (exit code -1 and the OS error), not an error, as
/// the clients expect; running past `spec.timeout` kills the group and is a 408.
pub async fn run(reaper: &Reaper, env: &ChildEnv, spec: ExecSpec) -> Result<(i32, String), ApiError> {
    let shell = shell::select(env);
    let (reader, writer) = std::io::pipe().map_err(ApiError::internal)?;
    let writer2 = writer.try_clone().map_err(ApiError::internal)?;
    let mut cmd = Command::new(&shell);
    cmd.stdin(Stdio::piped())
        .stdout(writer)
        .stderr(writer2)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(env.snapshot_with(spec.envs.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .process_group(0);
    let spawned = reaper.spawn(&mut cmd);
    // Our copies of the write end must go, or the reader never sees EOF.
    drop(cmd);
    let (mut child, exit) = match spawned {
        Ok(pair) => pair,
        Err(e) => return Ok((-1, spawn_error_text(&e, &shell, &spec.cwd))),
    };
    let pgid = child.id();
    let mut guard = GroupGuard::new(pgid);

    let stdin = child.stdin.take().expect("stdin is piped");
    let command = spec.command;
    tokio::spawn(async move {
        // The shell reads its script from stdin, then sees EOF. Errors mean the shell is gone.
        if let Ok(mut tx) = pipe::Sender::from_owned_fd(OwnedFd::from(stdin)) {
            let _ = tx.write_all(command.as_bytes()).await;
        }
    });

    let mut rx = pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(ApiError::internal)?;
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
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        Code::ProcessExecutionTimeout,
                        "command execution timeout",
                    ));
                }
                // Drain window over: answer with what background jobs wrote so far.
                break;
            }
        }
    }
    guard.disarm();
    let code = status.map_or(-1, ExitStatus::api_code);
    Ok((code, output.into_string()))
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
fn spawn_error_text(err: &std::io::Error, shell: &str, cwd: &Path) -> String {
    let detail = os_error_text(err);
    if !cwd.is_dir() {
        format!("chdir {}: {detail}", cwd.display())
    } else {
        format!("fork/exec {shell}: {detail}")
    }
}

pub fn os_error_text(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
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

    fn run_blocking(s: ExecSpec) -> Result<(i32, String), ApiError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(Reaper::global(), &env(), s))
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
        let e = run_blocking(s).unwrap_err();
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(e.code, Some(Code::ProcessExecutionTimeout));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a process of the group survived the timeout");
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

    #[test]
    fn validation() {
        let req = |command: &str, envs: &[(&str, &str)]| ExecuteRequest {
            command: command.into(),
            cwd: None,
            timeout: Some(0),
            envs: Some(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        };
        let wd = Path::new("/w");
        assert_eq!(validate(req("", &[]), wd).unwrap_err().code, Some(Code::BadRequest));
        assert_eq!(
            validate(req(" \n\t", &[]), wd).unwrap_err().message,
            "bad request: command cannot be empty or whitespace-only"
        );
        assert_eq!(
            validate(req("ls", &[("1BAD", "x")]), wd).unwrap_err().message,
            "bad request: invalid environment variable name: '1BAD'"
        );
        let s = validate(req("ls", &[("OK", "x")]), wd).unwrap();
        assert_eq!((s.cwd.as_path(), s.timeout), (wd, None));
    }

    #[test]
    fn os_error_words() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error_text(&e), "no such file or directory");
    }
}
