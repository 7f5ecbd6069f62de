//! Ids that clients choose for the things they create (sessions, their commands, PTYs), and
//! random ids for the ones the daemon names itself.
//!
//! Every client-chosen id follows one rule: a single plain path component of at most 255 bytes.
//! Session and command ids name directories under the sessions folder (an id of `..` once made a
//! delete remove the config dir); PTY ids only key a map, but an id that could never be sent
//! back in a URL (a slash, NUL, a megabyte) would leave a shell no one can address or delete.

/// Longest id accepted, in bytes: a file name's limit.
pub const MAX_ID_BYTES: usize = 255;
/// How much of a rejected id the error message repeats.
const SHOWN_BYTES: usize = 64;

/// What is wrong with an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Empty,
    Dot,
    Slash,
    Nul,
    TooLong,
}

impl Problem {
    fn text(self) -> &'static str {
        match self {
            Problem::Empty => "must not be empty",
            Problem::Dot => "must not be '.' or '..'",
            Problem::Slash => "must not contain '/'",
            Problem::Nul => "must not contain NUL",
            Problem::TooLong => "must be at most 255 bytes",
        }
    }
}

/// A rejected id: what kind of id, (the start of) the id itself, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} ID {shown}: it {}", problem.text())]
pub struct InvalidId {
    pub what: &'static str,
    /// The id as the message shows it: quoted, cut after [`SHOWN_BYTES`] bytes.
    pub shown: String,
    pub problem: Problem,
}

/// Checks a client-chosen id of kind `what` (`session`, `command`, `PTY`).
pub fn check(what: &'static str, id: &str) -> Result<(), InvalidId> {
    let problem = if id.is_empty() {
        Problem::Empty
    } else if id == "." || id == ".." {
        Problem::Dot
    } else if id.contains('/') {
        Problem::Slash
    } else if id.contains('\0') {
        Problem::Nul
    } else if id.len() > MAX_ID_BYTES {
        Problem::TooLong
    } else {
        return Ok(());
    };
    Err(InvalidId { what, shown: shown(id), problem })
}

/// The id quoted for a message; a long one (up to a megabyte arrives) is cut, with its length.
fn shown(id: &str) -> String {
    if id.len() <= SHOWN_BYTES {
        return format!("{id:?}");
    }
    let mut end = SHOWN_BYTES;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &id[..end], id.len())
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: writes at most the remaining length into the buffer.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // No getrandom: time and a counter still give unique (if guessable) ids.
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            b[..8].copy_from_slice(&(t.as_nanos() as u64).to_le_bytes());
            let c =
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) ^ u64::from(std::process::id());
            b[8..].copy_from_slice(&c.to_le_bytes());
            break;
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Longest language id (`/lsp`, `DAYTONA_LSP_SERVERS`), in bytes.
pub const MAX_LANGUAGE_ID: usize = 64;

/// A language id as LSP uses them (`python`, `typescriptreact`, `objective-c`, `c++`):
/// ASCII letters, digits and `-_.+#`, 1 to 64 bytes. It keys a server and names it in errors.
pub fn is_language_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LANGUAGE_ID
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+#".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_plain_path_component() {
        let long = "x".repeat(256);
        let cases: [(&str, Problem); 7] = [
            ("", Problem::Empty),
            (".", Problem::Dot),
            ("..", Problem::Dot),
            ("a/b", Problem::Slash),
            ("../x", Problem::Slash),
            ("a\0b", Problem::Nul),
            (&long, Problem::TooLong),
        ];
        for (bad, problem) in cases {
            assert_eq!(check("session", bad).unwrap_err().problem, problem, "{bad:?}");
        }
        for ok in ["s1", "my session", "..a", "entrypoint_command", &"x".repeat(255), "é"] {
            assert!(check("session", ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn messages_name_the_id_but_never_repeat_a_huge_one() {
        assert_eq!(
            check("PTY", "a/b").unwrap_err().to_string(),
            r#"invalid PTY ID "a/b": it must not contain '/'"#
        );
        let huge = "é".repeat(512 * 1024);
        let msg = check("PTY", &huge).unwrap_err().to_string();
        assert!(msg.len() < 200, "{} bytes", msg.len());
        assert!(msg.ends_with("… (1048576 bytes): it must be at most 255 bytes"), "{msg}");
    }

    #[test]
    fn uuids() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid_v4());
    }

    #[test]
    fn language_ids() {
        for ok in ["python", "typescriptreact", "objective-c", "c++", "c#", "x.y_z"] {
            assert!(is_language_id(ok), "{ok}");
        }
        for bad in ["", "py thon", "a/b", "é", &"a".repeat(65), "py\0"] {
            assert!(!is_language_id(bad), "{bad:?}");
        }
    }
}
