//! What the daemon writes to a session shell's stdin to run one command.
//!
//! The block runs in the session shell itself (so `cd`, variables and functions persist) and
//! sources the command from `cmd.sh` (so here-docs and any syntax work). It uses only POSIX
//! syntax that bash, zsh and dash share, defines no variables or functions in the user's shell
//! and touches no traps: paths are inlined as quoted literals and the exit status is reported
//! straight from `$?`. Output goes to FIFOs the daemon reads; the daemon learns that the
//! command started and ended from two lines on the session's control FIFO:
//!
//! ```text
//! S <cmdId>            the redirections are open (the command's stdin may now be closed)
//! E <cmdId> <status>   the command returned with <status>
//! ```

use std::path::Path;

use crate::shell::quote as sh_quote;

/// The entrypoint command string: every argument quoted, joined by spaces.
pub fn quote_argv<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter().map(|a| sh_quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

/// The block that runs command `id` whose files are in `dir`, reporting on `control`.
/// `\printf` sidesteps user aliases named `printf` and stays the builtin in every shell (zsh's
/// `command printf` would fork the external one, ~3 ms per line).
pub fn block(id: &str, dir: &Path, control: &Path) -> String {
    let q = |p: &Path| sh_quote(&p.to_string_lossy());
    let (ctl, id) = (q(control), sh_quote(id));
    format!(
        "{{ \\printf 'S %s\\n' {id} >{ctl}; . {cmd}; }} <{inp} >{out} 2>{err}\n\
         \\printf 'E %s %s\\n' {id} \"$?\" >{ctl}\n",
        cmd = q(&dir.join("cmd.sh")),
        inp = q(&dir.join("input.pipe")),
        out = q(&dir.join("stdout.pipe")),
        err = q(&dir.join("stderr.pipe")),
    )
}

/// A control line from the session shell.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Started(&'a str),
    Ended(&'a str, i32),
}

pub fn parse_event(line: &str) -> Option<Event<'_>> {
    let mut it = line.trim_end().splitn(3, ' ');
    match (it.next()?, it.next()?, it.next()) {
        ("S", id, None) => Some(Event::Started(id)),
        ("E", id, Some(code)) => Some(Event::Ended(id, code.parse().ok()?)),
        _ => None,
    }
}

/// Interpreter contexts take their ids from here until they use [`crate::id`] directly.

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn quoting() {
        assert_eq!(quote_argv(&["sleep", "infinity"]), "'sleep' 'infinity'");
        assert_eq!(quote_argv(&["a b", "$HOME"]), "'a b' '$HOME'");
    }

    #[test]
    fn events() {
        assert_eq!(parse_event("S abc\n"), Some(Event::Started("abc")));
        assert_eq!(parse_event("E abc 130\n"), Some(Event::Ended("abc", 130)));
        assert_eq!(parse_event("E abc x"), None);
        assert_eq!(parse_event("junk"), None);
    }

    /// Runs the block in each available shell, with this test playing the daemon: FIFOs, the
    /// control FIFO, shell state across two commands, and here-docs.
    #[test]
    fn block_runs_in_every_shell() {
        for shell in ["sh", "bash", "zsh", "dash"] {
            // Not a skip: a shell the machine lacks is a failure (tests/ensure-deps installs them).
            assert!(which(shell), "{shell} is not installed; the wrapper must be tested in every shell");
            run_two_commands(shell);
        }
    }

    fn which(name: &str) -> bool {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    }

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    fn run_two_commands(shell: &str) {
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let ctl = tmp.path().join("it's control");
        mkfifo(&ctl);
        let mut ctl_r = std::fs::OpenOptions::new().read(true).write(true).open(&ctl).unwrap();
        let (mut child, exit) = crate::reaper::Reaper::global()
            .spawn(Command::new(shell).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()))
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let cmds = [
            "cd /; X=kept; f() { echo \"fn $1\"; }",
            "cat <<'EOF'\n$X here\nEOF\nf $X; pwd; read v; echo \"v=$v\" >&2; exit_code_is() { return 3; }; exit_code_is",
        ];
        for (i, text) in cmds.iter().enumerate() {
            let dir = tmp.path().join(format!("c{i}"));
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("cmd.sh"), text).unwrap();
            for f in ["stdout.pipe", "stderr.pipe", "input.pipe"] {
                mkfifo(&dir.join(f));
            }
            let open_r = |f: &str| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(dir.join(f))
                    .unwrap()
            };
            let (mut out, mut err) = (open_r("stdout.pipe"), open_r("stderr.pipe"));
            let input =
                std::fs::OpenOptions::new().read(true).write(true).open(dir.join("input.pipe")).unwrap();
            stdin.write_all(block(&format!("id{i}"), &dir, &ctl).as_bytes()).unwrap();
            let mut line = read_line(&mut ctl_r);
            assert_eq!(line, format!("S id{i}\n"), "{shell}");
            drop(input); // a sync command: its stdin ends now
            line = read_line(&mut ctl_r);
            let code = if i == 0 { 0 } else { 3 };
            assert_eq!(line, format!("E id{i} {code}\n"), "{shell}");
            let read_all = |f: &mut std::fs::File| {
                let mut s = String::new();
                let mut buf = [0u8; 4096];
                loop {
                    match f.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => s.push_str(std::str::from_utf8(&buf[..n]).unwrap()),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                s
            };
            let (o, e) = (read_all(&mut out), read_all(&mut err));
            if i == 1 {
                assert_eq!(o, "$X here\nfn kept\n/\n", "{shell}");
                assert_eq!(e, "v=\n", "{shell}");
            }
        }
        drop(stdin);
        assert_eq!(exit.wait_blocking().api_code(), 0, "{shell}");
    }

    fn read_line(f: &mut std::fs::File) -> String {
        use std::io::Read;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while line.last() != Some(&b'\n') {
            assert_eq!(f.read(&mut b).unwrap(), 1);
            line.push(b[0]);
        }
        String::from_utf8(line).unwrap()
    }
}
