//! The output pump of one command: a thread that waits (poll(2), no timers) on the command's
//! stdout and stderr FIFOs and on a wake-up pipe, writes the output into `output.log` as
//! marker records and publishes how far the log has grown.
//!
//! When told that the command ended it takes what the command wrote (all of it is in the pipe
//! buffers by then: the shell reports the end only after the command returned), ends unfinished
//! lines, writes `exit_code` — so "exit code present ⇒ log complete" holds — and removes the
//! FIFOs. Background jobs that inherited the FIFOs may keep writing: their output is still
//! appended (so they never block or get SIGPIPE) until they close the FIFOs.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;

use super::log::{Recorder, STDERR, STDOUT};
use super::{Command, Finish};

/// Read size from the FIFOs: a fast writer is taken in few large reads, and the log grows in
/// large appends that followers stream as large frames.
const CHUNK: usize = 256 * 1024;
/// The buffer a FIFO gets once a read finds it full: a fast writer then runs ahead while the
/// pump writes the log, and the pump takes more per wake-up. Only busy streams get it, because
/// the kernel counts pipe buffers against the user's limit (past which every new pipe of the
/// user shrinks); the default (the largest an unprivileged process may ask for) is 1 MiB.
const BUSY_PIPE_SIZE: libc::c_int = 1 << 20;
/// A read this large found the FIFO's default buffer full.
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;

pub struct PumpFiles {
    pub out: File,
    pub err: File,
    pub log: File,
    pub wake: std::io::PipeReader,
    pub fifos: Vec<PathBuf>,
    pub exit_code: PathBuf,
}

pub fn start(cmd: Arc<Command>, files: PumpFiles) -> std::io::Result<()> {
    std::thread::Builder::new().name("session-output".into()).spawn(move || run(cmd, files))?;
    Ok(())
}

fn run(cmd: Arc<Command>, f: PumpFiles) {
    let PumpFiles { out, err, mut log, mut wake, fifos, exit_code } = f;
    let mut streams = [Some(out), Some(err)];
    let mut rec = Recorder::default();
    let mut buf = vec![0u8; CHUNK];
    let mut records = Vec::with_capacity(CHUNK + CHUNK / 8);
    let mut finalized = false;
    let mut grown = [false; 2];
    loop {
        let mut fds = vec![libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        for s in streams.iter().flatten() {
            fds.push(libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if fds[0].revents != 0 {
            let mut sink = [0u8; 64];
            while matches!(wake.read(&mut sink), Ok(n) if n > 0) {}
        }
        let ctl = cmd.pump_ctl();
        if ctl.cancel {
            break;
        }
        let mut ready = fds[1..].iter().map(|p| p.revents != 0);
        for (i, slot) in streams.iter_mut().enumerate() {
            if slot.is_none() || !ready.next().unwrap_or(false) {
                continue;
            }
            let stream = if i == 0 { STDOUT } else { STDERR };
            let n = read_once(slot, stream, &mut buf, &mut rec, &mut records);
            if n >= DEFAULT_PIPE_SIZE
                && !grown[i]
                && let Some(f) = slot.as_ref()
            {
                grown[i] = true;
                // SAFETY: fcntl on a descriptor we own; a refusal leaves the pipe as it was.
                unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETPIPE_SZ, BUSY_PIPE_SIZE) };
            }
        }
        // While a deletion drains the output, the command is not finalized before its output
        // ends: the shell dies with the group's SIGTERM while the program may still be printing
        // its last words, which followers (reading up to the final length) must still get.
        let defer = ctl.draining && streams.iter().any(Option::is_some);
        if !finalized
            && !defer
            && let Some(fin) = ctl.finish
        {
            // Everything the command wrote is in the pipes now; take it all.
            // At most one pipe buffer each: a background job that keeps writing must not keep
            // this drain going.
            for (i, slot) in streams.iter_mut().enumerate() {
                let stream = if i == 0 { STDOUT } else { STDERR };
                let mut budget = slot.as_ref().map_or(0, pipe_capacity);
                while budget > 0 {
                    let n = read_once(slot, stream, &mut buf, &mut rec, &mut records);
                    if n == 0 {
                        break;
                    }
                    budget = budget.saturating_sub(n);
                    if records.len() >= CHUNK {
                        append(&cmd, &mut log, &mut records);
                    }
                }
            }
            rec.finish(&mut records);
            append(&cmd, &mut log, &mut records);
            let code = match fin {
                Finish::Exit(c) | Finish::Ended(Some(c)) => Some(c),
                Finish::Ended(None) => None,
            };
            if let Some(c) = code {
                let _ = std::fs::write(&exit_code, format!("{c}\n"));
            }
            for p in &fifos {
                let _ = std::fs::remove_file(p);
            }
            cmd.publish_done(fin);
            finalized = true;
        } else {
            append(&cmd, &mut log, &mut records);
        }
        if (finalized || ctl.draining) && streams.iter().all(Option::is_none) {
            break;
        }
    }
    if !finalized {
        cmd.publish_done(Finish::Ended(None));
    }
    cmd.close_wake();
}

fn pipe_capacity(f: &File) -> usize {
    // SAFETY: fcntl on an fd we own.
    let n = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETPIPE_SZ) };
    if n > 0 { n as usize + CHUNK } else { 1 << 20 }
}

/// Reads one chunk into records. Returns how much was read (0 at EOF, on error, or when nothing
/// is there right now).
fn read_once(
    slot: &mut Option<File>,
    stream: usize,
    buf: &mut [u8],
    rec: &mut Recorder,
    records: &mut Vec<u8>,
) -> usize {
    let Some(f) = slot.as_mut() else { return 0 };
    match f.read(buf) {
        Ok(0) => {
            *slot = None;
            0
        }
        Ok(n) => {
            rec.push(stream, &buf[..n], records);
            n
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => 0,
        Err(_) => {
            *slot = None;
            0
        }
    }
}

fn append(cmd: &Command, log: &mut File, records: &mut Vec<u8>) {
    if records.is_empty() {
        return;
    }
    let n = records.len() as u64;
    if let Err(e) = super::append_log(&cmd.tail, log, records) {
        tracing::warn!(error = %e, command = %cmd.id, "cannot write the session output log");
    }
    cmd.grew(n);
}
