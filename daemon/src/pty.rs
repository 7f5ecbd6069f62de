//! Pseudo-terminals, shared by the PTY sessions (and through them the web terminal) and the SSH
//! server: `openpty`, spawning a shell on the slave side, window size.
//!
//! libc's `openpty` is used directly rather than a PTY crate: the reaper must own `waitpid`, and
//! `std::process::Command` with a `pre_exec` that makes the child a session leader with the slave
//! as its controlling terminal is all a PTY crate would add. musl ships `openpty` in libc itself,
//! so the static build needs nothing more.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::reaper::{ExitWait, Reaper};

/// What to run on a new terminal.
pub struct SpawnSpec<'a> {
    pub program: &'a str,
    pub args: &'a [&'a str],
    pub cwd: &'a Path,
    pub env: Vec<(OsString, OsString)>,
    pub cols: u16,
    pub rows: u16,
}

/// A running terminal: the master side and the shell's pid.
pub struct Spawned {
    pub master: OwnedFd,
    pub pid: u32,
    pub exit: ExitWait,
}

fn winsize(cols: u16, rows: u16) -> libc::winsize {
    libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

/// Opens a master/slave pair with the given size. Both ends are close-on-exec, so other children
/// of the daemon never inherit them.
fn open_pair(cols: u16, rows: u16) -> io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (-1, -1);
    let ws = winsize(cols, rows);
    // SAFETY: valid out-pointers; name and termios are optional and null.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &ws) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openpty returned two fresh descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((master, slave))
}

/// Starts `spec` on a new terminal through the reaper, which alone will collect its status.
pub fn spawn(reaper: &Reaper, spec: SpawnSpec<'_>) -> io::Result<Spawned> {
    let (master, slave) = open_pair(spec.cols, spec.rows)?;
    let mut cmd = Command::new(spec.program);
    cmd.args(spec.args)
        .current_dir(spec.cwd)
        .env_clear()
        .envs(spec.env)
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A new session whose controlling terminal is the slave (now fd 0), so job control,
            // ^C and SIGHUP on close behave as in a real terminal.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            // The daemon may ignore or block signals; a shell must start with defaults.
            for sig in
                [libc::SIGPIPE, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD]
            {
                libc::signal(sig, libc::SIG_DFL);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let (child, exit) = reaper.spawn(&mut cmd)?;
    // `cmd` still holds the slave descriptors; dropping it closes the daemon's copies so the
    // master sees EOF (EIO) once the last process on the terminal has gone.
    drop(cmd);
    Ok(Spawned { master, pid: child.id(), exit })
}

/// Sets the window size (`TIOCSWINSZ`); the kernel sends SIGWINCH to the foreground group.
pub fn resize(master: &OwnedFd, cols: u16, rows: u16) -> io::Result<()> {
    let ws = winsize(cols, rows);
    // SAFETY: ioctl with a valid winsize pointer on a descriptor we own.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ as _, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout_ms` for the master to become readable (or hang up).
pub fn poll_readable(fd: &OwnedFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    match rc {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) }
        }
    }
}

/// One `read` from the master. `Ok(0)` means the terminal is gone: Linux reports the last
/// slave close as EIO, which is folded into end-of-file here.
pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EIO) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Writes all of `data` to the master.
pub fn write_all(fd: &OwnedFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: data is valid for data.len() bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// The slave's path (`/dev/pts/<n>`), from the master.
pub fn slave_path(master: &OwnedFd) -> Option<String> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN as _, &mut n) } < 0 {
        return None;
    }
    Some(format!("/dev/pts/{n}"))
}

/// Processes holding `tty` open on any descriptor: whatever still uses the terminal, even after
/// leaving the shell's process tree and session (`setsid cmd &` in an interactive shell forks
/// and lets the parent exit at once). The daemon itself is never listed.
pub fn terminal_holders(tty: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).ok().is_some_and(|fds| {
                fds.filter_map(Result::ok)
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == tty))
            })
        })
        .collect()
}

/// Processes whose session id is `sid` (the shell's session), for cleaning up after a shell
/// that exited on its own and left jobs behind on its terminal.
pub fn session_members(sid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|s| {
                // Fields after the command name: state ppid pgrp session … A zombie is no
                // member: it is dead already, and only waits for the reaper.
                s.rfind(')').is_some_and(|i| {
                    let mut f = s[i + 1..].split_whitespace();
                    f.next() != Some("Z") && f.nth(2).and_then(|v| v.parse::<u32>().ok()) == Some(sid)
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_runs_on_a_terminal_with_the_given_size() {
        let env = vec![("PATH".into(), std::env::var_os("PATH").unwrap_or_default())];
        let sp = spawn(
            Reaper::global(),
            SpawnSpec {
                program: "sh",
                args: &["-c", "stty size; tty -s && echo TTY"],
                cwd: Path::new("/"),
                env,
                cols: 91,
                rows: 17,
            },
        )
        .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = read(&sp.master, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("17 91"), "{text}");
        assert!(text.contains("TTY"), "{text}");
        assert_eq!(sp.exit.wait_blocking().api_code(), 0);
    }
}
