//! The entrypoint: the image's command, given to the daemon as its arguments.
//!
//! Its output is recorded in the session log layout (`<config>/sessions/entrypoint/
//! entrypoint_command/output.log`, one marker-prefixed record per line) so that
//! `daytona-daemon entrypoint logs` and the sessions API read it like any session command.
//! The argv is executed directly, without a shell, so images with no shell at all work.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::env::ChildEnv;
use crate::process::signal::kill_group;
use crate::reaper::{ExitStatus, ExitWait, Reaper};

pub const STDOUT_MARKER: [u8; 3] = [1, 1, 1];
pub const STDERR_MARKER: [u8; 3] = [2, 2, 2];

/// Where the entrypoint's output log lives under the config dir.
pub fn log_path(config_dir: &Path) -> PathBuf {
    config_dir.join("sessions").join("entrypoint").join("entrypoint_command").join("output.log")
}

/// A running entrypoint.
pub struct Entrypoint {
    pgid: u32,
    exit: Option<ExitWait>,
}

impl Entrypoint {
    /// Starts `argv` in its own process group with output going to `log`.
    pub fn start(
        reaper: &Reaper,
        env: &ChildEnv,
        argv: &[std::ffi::OsString],
        log: &Path,
    ) -> std::io::Result<Self> {
        let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::other("empty entrypoint"))?;
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = Arc::new(Mutex::new(OpenOptions::new().create(true).append(true).open(log)?));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(env.snapshot_with([]))
            // A pipe closed at once, not /dev/null: minimal root filesystems may have no /dev.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let (mut child, exit) = reaper.spawn(&mut cmd)?;
        drop(child.stdin.take());
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        copy_lines(out, STDOUT_MARKER, file.clone());
        copy_lines(err, STDERR_MARKER, file);
        Ok(Entrypoint { pgid: child.id(), exit: Some(exit) })
    }

    /// SIGTERM to the group, SIGKILL after `grace` if it is still there.
    pub async fn terminate(mut self, grace: Duration) -> ExitStatus {
        let Some(exit) = self.exit.take() else { return ExitStatus::Unknown };
        kill_group(self.pgid, libc::SIGTERM);
        let mut exit = std::pin::pin!(exit);
        match tokio::time::timeout(grace, &mut exit).await {
            Ok(status) => status,
            Err(_) => {
                kill_group(self.pgid, libc::SIGKILL);
                exit.await
            }
        }
    }
}

/// Copies a stream into the log as one marker-prefixed record per line, on its own thread so a
/// chatty entrypoint never waits on the async runtime.
fn copy_lines(stream: impl Read + Send + 'static, marker: [u8; 3], file: Arc<Mutex<File>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() != Some(&b'\n') {
                        line.push(b'\n');
                    }
                    let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = f.write_all(&[&marker[..], &line].concat());
                }
            }
        }
    });
}

/// Splits a marker-multiplexed log into stdout and stderr. Bytes before the first marker are
/// dropped; `state` carries the current stream and a partial marker across calls, so the log can
/// be fed in arbitrary chunks.
#[derive(Default)]
pub struct Demux {
    current: Option<u8>,
    pending: Vec<u8>,
}

impl Demux {
    /// Feeds a chunk; calls `emit(stream, bytes)` with stream 1 (stdout) or 2 (stderr).
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(u8, &[u8])) {
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(chunk);
        let mut start = 0;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            if b == 1 || b == 2 {
                let end = (i + 3).min(data.len());
                if data[i..end].iter().all(|&x| x == b) {
                    if end - i < 3 {
                        // A marker may continue in the next chunk.
                        self.flush(&data[start..i], &mut emit);
                        self.pending = data[i..].to_vec();
                        return;
                    }
                    self.flush(&data[start..i], &mut emit);
                    self.current = Some(b);
                    i += 3;
                    start = i;
                    continue;
                }
            }
            i += 1;
        }
        self.flush(&data[start..], &mut emit);
    }

    fn flush(&self, bytes: &[u8], emit: &mut impl FnMut(u8, &[u8])) {
        if let (Some(stream), false) = (self.current, bytes.is_empty()) {
            emit(stream, bytes);
        }
    }
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
                // At the end of the file: wait for the writer. The log has no other signal.
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(n) => demux.feed(&buf[..n], |stream, bytes| {
                let _ = if stream == 1 { out.write_all(bytes) } else { err.write_all(bytes) };
            }),
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                return std::process::ExitCode::from(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demux_all(chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        let mut d = Demux::default();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        for c in chunks {
            d.feed(c, |s, b| if s == 1 { o.extend_from_slice(b) } else { e.extend_from_slice(b) });
        }
        (o, e)
    }

    #[test]
    fn demux_splits_streams_and_drops_the_prefix() {
        let (o, e) = demux_all(&[b"junk\x01\x01\x01out1\n\x02\x02\x02err\n\x01\x01\x01out2\n"]);
        assert_eq!(o, b"out1\nout2\n");
        assert_eq!(e, b"err\n");
    }

    #[test]
    fn demux_handles_markers_split_across_chunks() {
        let (o, e) = demux_all(&[b"\x01\x01\x01a\x02", b"\x02", b"\x02b\n\x01", b"\x01\x01c"]);
        assert_eq!(o, b"ac");
        assert_eq!(e, b"b\n");
    }

    #[test]
    fn entrypoint_output_is_recorded_and_terminated() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_path(dir.path());
        let env = ChildEnv::new([("PATH".into(), "/usr/bin:/bin".into())]);
        let argv: Vec<std::ffi::OsString> =
            ["sh", "-c", "echo hello; echo oops >&2; exec sleep 30"].iter().map(Into::into).collect();
        let ep = Entrypoint::start(Reaper::global(), &env, &argv, &log).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (o, e) = loop {
            let (o, e) = demux_all(&[&std::fs::read(&log).unwrap()]);
            if (o.as_slice(), e.as_slice()) == (b"hello\n".as_slice(), b"oops\n".as_slice())
                || std::time::Instant::now() > deadline
            {
                break (o, e);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!((o.as_slice(), e.as_slice()), (b"hello\n".as_slice(), b"oops\n".as_slice()));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let status = rt.block_on(ep.terminate(Duration::from_secs(2)));
        assert_eq!(status, ExitStatus::Signaled(libc::SIGTERM));
    }
}
