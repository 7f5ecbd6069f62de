//! Is there an X server to record? A local display (`:N`, `:N.S`, `unix:N`) is probed by
//! connecting to its socket, the path or the abstract one Xvfb also listens on, so a missing
//! desktop is a clear error before ffmpeg is spawned; a display on another host is left to
//! ffmpeg, whose error then reaches the client.

use std::os::unix::net::UnixStream;

/// The display number of a local display name, `None` for a remote or unparsable one.
pub fn local_display_number(display: &str) -> Option<u32> {
    let rest = display.strip_prefix("unix").unwrap_or(display);
    let number = rest.strip_prefix(':')?;
    let number = number.split('.').next()?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 9 {
        return None;
    }
    number.parse().ok()
}

/// Whether an X server answers on a local display: `Ok` when it does or when the display is
/// not local (nothing to probe), `Err` with what was tried when nothing listens.
pub fn probe(display: &str) -> Result<(), String> {
    if display.is_empty() {
        return Err("DISPLAY is empty".into());
    }
    let Some(n) = local_display_number(display) else {
        if display.starts_with(':') || display.starts_with("unix") {
            return Err(format!("{display:?} is not a valid X display name"));
        }
        return Ok(());
    };
    let path = format!("/tmp/.X11-unix/X{n}");
    if UnixStream::connect(&path).is_ok() {
        return Ok(());
    }
    if connect_abstract(&path) {
        return Ok(());
    }
    Err(format!("no X server listens on display {display} (nothing accepts connections at {path})"))
}

fn connect_abstract(name: &str) -> bool {
    use std::os::linux::net::SocketAddrExt;
    match std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
        Ok(addr) => UnixStream::connect_addr(&addr).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(local_display_number(":0"), Some(0));
        assert_eq!(local_display_number(":99.0"), Some(99));
        assert_eq!(local_display_number("unix:7"), Some(7));
        assert_eq!(local_display_number("host:0"), None);
        assert_eq!(local_display_number(":"), None);
        assert_eq!(local_display_number(":x"), None);
    }

    #[test]
    fn a_display_nobody_serves_is_an_error_naming_it() {
        let err = probe(":398").unwrap_err();
        assert!(err.contains(":398") && err.contains("/tmp/.X11-unix/X398"), "{err}");
        assert!(probe("").is_err());
        assert!(probe(":x").is_err());
        // Remote displays are ffmpeg's business.
        assert!(probe("otherhost:0").is_ok());
    }

    #[test]
    fn a_listening_socket_counts() {
        use std::os::linux::net::SocketAddrExt;
        // An abstract socket under a name only this test uses stands in for an X server.
        let name = format!("/tmp/.X11-unix/X{}", 1_000_000 + std::process::id() % 1_000_000);
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        assert!(connect_abstract(&name));
    }
}
