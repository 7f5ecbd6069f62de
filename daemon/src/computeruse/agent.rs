//! Finding, starting and stopping the computer-use agent (`daytona-computer-use`), and turning
//! its failures into the messages clients see (sdk-0.226 §2.6).

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use computer_use_api::desktop_tag;
use tokio::sync::watch;

use crate::reaper::{ExitStatus, Reaper};

/// Overrides where the agent binary is looked for (first choice).
pub const BIN_ENV: &str = "DAYTONA_COMPUTER_USE_BIN";
/// The reference's install location.
pub const SYSTEM_PATH: &str = "/usr/local/lib/daytona-computer-use";
pub const BINARY_NAME: &str = "daytona-computer-use";
/// How long the agent may take to listen on its socket.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the agent gets to stop the desktop on shutdown before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(8);

const X11_LIBRARIES: [&str; 9] = [
    "libX11.so.6",
    "libXext.so.6",
    "libXtst.so.6",
    "libXrandr.so.2",
    "libXrender.so.1",
    "libXfixes.so.3",
    "libXss.so.1",
    "libXi.so.6",
    "libXinerama.so.1",
];

pub const LOADING_MESSAGE: &str = "computer-use plugin is still loading or failed to initialize";

/// Where the agent is: `$DAYTONA_COMPUTER_USE_BIN`, then the reference's system path, then next
/// to the daemon's executable. `Err` lists what was tried.
pub fn locate(
    override_path: Option<OsString>,
    daemon_exe: Option<PathBuf>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    if let Some(p) = override_path.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        // An explicit choice is not second-guessed: a wrong one is reported, not skipped.
        return if exists(&p) { Ok(p) } else { Err(format!("{BIN_ENV}={} does not exist", p.display())) };
    }
    let mut tried = vec![PathBuf::from(SYSTEM_PATH)];
    if let Some(dir) = daemon_exe.as_deref().and_then(Path::parent) {
        tried.push(dir.join(BINARY_NAME));
    }
    tried.iter().find(|p| exists(p)).cloned().ok_or_else(|| {
        let list: Vec<_> = tried.iter().map(|p| p.display().to_string()).collect();
        format!("the agent binary was not found (looked for {})", list.join(", "))
    })
}

/// The message for an agent that ended before it listened, from its exit and what it printed.
pub fn classify(status: ExitStatus, output: &str) -> String {
    let missing: Vec<&str> = X11_LIBRARIES.iter().copied().filter(|lib| output.contains(lib)).collect();
    if output.contains("error while loading shared libraries") && !missing.is_empty() {
        return format!(
            "computer-use plugin is unavailable: required X11 runtime libraries are missing on this sandbox ({}); rebuild the sandbox image with the computer-use dependencies installed",
            missing.join(", ")
        );
    }
    let how = match status {
        ExitStatus::Exited(c) => format!("exited with status {c}"),
        ExitStatus::Signaled(s) => format!("was killed by signal {s}"),
        ExitStatus::Unknown => "ended".to_string(),
    };
    let said: Vec<&str> = output.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let said = said[said.len().saturating_sub(3)..].join(" | ");
    let hint = if output.contains("error while loading shared libraries") {
        " (a shared library is missing)"
    } else if output.contains("GLIBC_") {
        " (the system C library is too old for this build)"
    } else {
        ""
    };
    if said.is_empty() {
        format!("{LOADING_MESSAGE}: the agent {how} at start{hint}")
    } else {
        format!("{LOADING_MESSAGE}: the agent {how} at start{hint}: {said}")
    }
}

/// The message for an agent that could not even be executed.
pub fn classify_spawn_error(bin: &Path, e: &std::io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(libc::EACCES) => "permission denied (is it executable?)".to_string(),
        Some(libc::ENOEXEC) => "exec format error (wrong architecture or not a program)".to_string(),
        Some(libc::ENOENT) => "not found (or its ELF interpreter is missing)".to_string(),
        _ => e.to_string(),
    };
    format!("{LOADING_MESSAGE}: cannot run {}: {why}", bin.display())
}

/// A running agent.
pub struct Agent {
    pub pid: u32,
    pub socket: PathBuf,
    /// The 0700 directory holding the socket; removed when the agent is dropped.
    _dir: tempfile::TempDir,
    /// The write end of the agent's stdin: when the daemon dies, the agent sees end of file
    /// and stops its desktop.
    _stdin: std::process::ChildStdin,
    exit: watch::Receiver<Option<ExitStatus>>,
}

impl Agent {
    pub fn alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// SIGTERM (the agent stops the desktop), SIGKILL after [`STOP_TIMEOUT`].
    pub async fn terminate(&self) {
        if !self.alive() {
            return;
        }
        // SAFETY: plain syscall on our own child, which has not been reaped (alive).
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let mut exit = self.exit.clone();
        if tokio::time::timeout(STOP_TIMEOUT, exit.wait_for(Option::is_some)).await.is_err() {
            tracing::warn!(pid = self.pid, "the computer-use agent did not stop in time; killing it");
            // SAFETY: as above.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
    }
}

/// Starts the agent on a fresh private socket and waits until it listens (bounded). Its
/// output goes to `log` (truncated per launch); an agent that ends first is classified.
pub async fn launch(
    reaper: &'static Reaper,
    bin: &Path,
    env: Vec<(OsString, OsString)>,
    tag: &str,
    log: &Path,
) -> Result<Agent, String> {
    let dir = tempfile::Builder::new()
        .prefix("daytona-computer-use-")
        .tempdir()
        .map_err(|e| format!("{LOADING_MESSAGE}: cannot create the agent's socket directory: {e}"))?;
    // tempfile creates it 0700 already; say so explicitly, the socket is the agent's only guard.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700));
    }
    let socket = dir.path().join("agent.sock");
    if let Some(parent) = log.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let out = std::fs::File::create(log)
        .map_err(|e| format!("{LOADING_MESSAGE}: cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("{LOADING_MESSAGE}: {e}"))?;
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("--socket")
        .arg(&socket)
        .env_clear()
        .envs(env)
        .env(desktop_tag::TAG_FROM_DAEMON_VAR, tag)
        .env("DAYTONA_COMPUTER_USE_EXIT_ON_STDIN_EOF", "1")
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        // Its own group: a signal to the daemon's group (Ctrl-C in a terminal) is not for it.
        .process_group(0);
    let (mut child, wait) = reaper.spawn(&mut cmd).map_err(|e| classify_spawn_error(bin, &e))?;
    let pid = child.id();
    let stdin = child.stdin.take().expect("stdin is piped");
    let (tx, exit) = watch::channel(None);
    tokio::spawn(async move {
        let status = wait.await;
        tracing::info!(pid, ?status, "computer-use agent ended");
        let _ = tx.send(Some(status));
    });
    let agent = Agent { pid, socket, _dir: dir, _stdin: stdin, exit };
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        if let Some(status) = *agent.exit.borrow() {
            return Err(classify(status, &read_tail(log, 8192)));
        }
        if UnixStream::connect(&agent.socket).is_ok() {
            tracing::info!(pid, socket = %agent.socket.display(), "computer-use agent listening");
            return Ok(agent);
        }
        if Instant::now() >= deadline {
            agent.terminate().await;
            return Err(format!(
                "{LOADING_MESSAGE}: the agent did not listen within {}s",
                LISTEN_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_tail(path: &Path, max: u64) -> String {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        let _ = f.seek(SeekFrom::Start(len - max));
    }
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Ends every process carrying the desktop tag: what a crashed agent left behind, so that the
/// next agent finds the display and ports free. Blocking.
pub fn sweep(tag: &str) {
    let ended = desktop_tag::end_tagged(tag, Duration::from_secs(1));
    if ended > 0 {
        tracing::info!(count = ended, "ended desktop processes left by the computer-use agent");
    }
}

/// A shareable agent slot entry.
pub type Shared = Arc<Agent>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_order() {
        let all = |_: &Path| true;
        let exe = Some(PathBuf::from("/opt/daytona/daytona-daemon"));
        assert_eq!(locate(Some("/x/agent".into()), exe.clone(), &all), Ok("/x/agent".into()));
        assert_eq!(locate(None, exe.clone(), &all), Ok(SYSTEM_PATH.into()));
        let beside = |p: &Path| p == Path::new("/opt/daytona/daytona-computer-use");
        assert_eq!(locate(None, exe.clone(), &beside), Ok("/opt/daytona/daytona-computer-use".into()));
        assert_eq!(
            locate(Some("".into()), exe.clone(), &beside),
            Ok("/opt/daytona/daytona-computer-use".into())
        );
        let none = |_: &Path| false;
        let e = locate(None, exe.clone(), &none).unwrap_err();
        assert!(e.contains(SYSTEM_PATH) && e.contains("/opt/daytona/daytona-computer-use"), "{e}");
        let e = locate(Some("/x/agent".into()), exe, &none).unwrap_err();
        assert!(e.contains("DAYTONA_COMPUTER_USE_BIN=/x/agent"), "{e}");
    }

    #[test]
    fn missing_x_libraries_give_the_dependency_message() {
        let out = "daytona-computer-use: error while loading shared libraries: libXtst.so.6: cannot open shared object file: No such file or directory\n";
        let m = classify(ExitStatus::Exited(127), out);
        assert!(m.starts_with("computer-use plugin is unavailable: required X11 runtime libraries are missing on this sandbox"), "{m}");
        assert!(m.contains("libXtst.so.6"), "{m}");
    }

    #[test]
    fn other_early_exits_say_how_and_what_was_printed() {
        let m = classify(ExitStatus::Exited(3), "starting\nboom: no config\n");
        assert_eq!(
            m,
            format!("{LOADING_MESSAGE}: the agent exited with status 3 at start: starting | boom: no config")
        );
        let m = classify(ExitStatus::Signaled(11), "");
        assert_eq!(m, format!("{LOADING_MESSAGE}: the agent was killed by signal 11 at start"));
        let m = classify(
            ExitStatus::Exited(127),
            "x: error while loading shared libraries: libfoo.so.1: cannot open",
        );
        assert!(m.contains("a shared library is missing"), "{m}");
    }

    #[test]
    fn spawn_errors_are_named() {
        let e = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(classify_spawn_error(Path::new("/a"), &e).contains("permission denied"));
        let e = std::io::Error::from_raw_os_error(libc::ENOEXEC);
        assert!(classify_spawn_error(Path::new("/a"), &e).contains("exec format error"));
    }
}
