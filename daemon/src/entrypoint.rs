//! The entrypoint: the image's command, given to the daemon as its arguments.
//!
//! It runs as the single command (`entrypoint_command`) of the reserved `entrypoint` session
//! (see [`crate::process::session`]), so its output is recorded in the session log layout
//! (`<config>/sessions/entrypoint/entrypoint_command/output.log`, one marker-prefixed record per
//! line) and `daytona-daemon entrypoint logs` and the sessions API read it like any session
//! command. This module has the log location and the `entrypoint logs` subcommand.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::session::log::{Demux, STDOUT};
use crate::process::session::{ENTRYPOINT_COMMAND, ENTRYPOINT_SESSION};

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
