//! The entrypoint: the image's command, given to the daemon as its arguments.
//!
//! It runs as the single command (`entrypoint_command`) of the reserved `entrypoint` session
//! (see [`crate::process::session`]), so its output is recorded in the session log layout
//! (`<config>/sessions/entrypoint/entrypoint_command/output.log`, one marker-prefixed record per
//! line) and `daytona-daemon entrypoint logs` and the sessions API read it like any session
//! command. This module has the log location, the `entrypoint logs` subcommand and the follower
//! that hands the output to telemetry ([`export_output`]).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::session::log::{Demux, STDOUT};
use crate::process::session::{ENTRYPOINT_COMMAND, ENTRYPOINT_SESSION, SessionService};
use crate::telemetry::EntrypointSink;

/// Where the entrypoint's output log lives under the config dir.
pub fn log_path(config_dir: &Path) -> PathBuf {
    config_dir.join("sessions").join(ENTRYPOINT_SESSION).join(ENTRYPOINT_COMMAND).join("output.log")
}

/// `daytona-daemon entrypoint logs`: replays the entrypoint log to stdout and stderr and follows
/// it like `tail -f`. Returns only on error.
pub fn follow_logs(path: &Path) -> std::process::ExitCode {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("Logs not found, please check if correct entrypoint was provided for sandbox.");
            return std::process::ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("cannot open {}: {e}", path.display());
            return std::process::ExitCode::from(1);
        }
    };
    let mut demux = Demux::default();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    loop {
        match file.read(&mut buf) {
            Ok(0) => {
                let _ = out.flush();
                // At the end of the file: wait for the writer. This separate process has no other
                // signal than the file itself (the spec's `tail -f` behaviour).
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(n) => demux.feed(&buf[..n], |stream, bytes| {
                let _ = if stream == STDOUT { out.write_all(bytes) } else { err.write_all(bytes) };
            }),
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                return std::process::ExitCode::from(1);
            }
        }
    }
}

/// Exports the entrypoint's output as telemetry log records (stdout and stderr apart) from where
/// `sink` last stopped, following the log as it grows, until the entrypoint has ended and all
/// of its output is out. Returns at once when there is no entrypoint.
pub async fn export_output(sessions: std::sync::Arc<SessionService>, sink: EntrypointSink) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    let Some(cmd) = sessions.get(ENTRYPOINT_SESSION).ok().and_then(|s| s.command(ENTRYPOINT_COMMAND)) else {
        return;
    };
    let Ok(mut file) = cmd.open_log().await else { return };
    let mut pos = sink.position();
    if file.seek(std::io::SeekFrom::Start(pos)).await.is_err() {
        return;
    }
    let mut progress = cmd.progress();
    let mut demux = Demux::default();
    let mut buf = vec![0u8; 32 * 1024];
    let emit = |stream: usize, bytes: &[u8]| {
        if stream == STDOUT { sink.stdout(bytes) } else { sink.stderr(bytes) }
    };
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the entrypoint log for telemetry");
                return;
            }
        };
        if n > 0 {
            demux.feed(&buf[..n], emit);
            pos += n as u64;
            sink.set_position(pos);
            continue;
        }
        // At the end of what is written: wait for the pump to say the log grew or ended.
        let p = *progress.borrow_and_update();
        match p.final_len {
            Some(end) if pos >= end => break,
            _ if pos < p.len => continue,
            _ => {}
        }
        if progress.changed().await.is_err() {
            break;
        }
    }
    demux.finish(emit);
}
