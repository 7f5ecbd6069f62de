//! Readiness probes: each answers "is this process usable yet?" by talking to it.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to the X display and completes the X11 handshake.
pub async fn x_display(display: &str) -> Result<(), String> {
    let display = display.to_string();
    blocking(move || x11rb::connect(Some(&display)).map(|_| ()).map_err(|e| e.to_string())).await
}

/// The name of the EWMH window manager running on the display, if any
/// (`_NET_SUPPORTING_WM_CHECK` → `_NET_WM_NAME`, what `wmctrl -m` reads).
pub async fn window_manager(display: &str) -> Result<Option<String>, String> {
    let display = display.to_string();
    blocking(move || wm_name(&display)).await
}

fn wm_name(display: &str) -> Result<Option<String>, String> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt};
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (conn, screen) = x11rb::connect(Some(display)).map_err(|e| err(&e))?;
    let root = conn.setup().roots[screen].root;
    let atom = |name: &[u8]| -> Result<u32, String> {
        Ok(conn.intern_atom(false, name).map_err(|e| err(&e))?.reply().map_err(|e| err(&e))?.atom)
    };
    let check = atom(b"_NET_SUPPORTING_WM_CHECK")?;
    let window_prop = |w: u32| -> Result<Option<u32>, String> {
        let reply = conn
            .get_property(false, w, check, AtomEnum::WINDOW, 0, 1)
            .map_err(|e| err(&e))?
            .reply()
            .map_err(|e| err(&e))?;
        Ok(reply.value32().and_then(|mut v| v.next()))
    };
    let Some(wm_window) = window_prop(root)? else { return Ok(None) };
    // A stale property from a window manager that died points at a window that is gone.
    if window_prop(wm_window).ok().flatten() != Some(wm_window) {
        return Ok(None);
    }
    let name_atom = atom(b"_NET_WM_NAME")?;
    let utf8 = atom(b"UTF8_STRING")?;
    let name = conn
        .get_property(false, wm_window, name_atom, utf8, 0, 256)
        .map_err(|e| err(&e))?
        .reply()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .unwrap_or_default();
    Ok(Some(name))
}

/// The port accepts and the server greets with the RFB protocol version.
pub async fn rfb(port: u16) -> Result<(), String> {
    let mut stream = connect(port).await?;
    let mut greeting = [0u8; 12];
    tokio::time::timeout(PROBE_TIMEOUT, stream.read_exact(&mut greeting))
        .await
        .map_err(|_| format!("no RFB greeting on port {port}"))?
        .map_err(|e| format!("port {port}: {e}"))?;
    if greeting.starts_with(b"RFB ") {
        Ok(())
    } else {
        Err(format!("port {port} answered {:?}, not RFB", String::from_utf8_lossy(&greeting)))
    }
}

/// The port accepts connections.
pub async fn accepts(port: u16) -> Result<(), String> {
    connect(port).await.map(drop)
}

async fn connect(port: u16) -> Result<TcpStream, String> {
    tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
        .await
        .map_err(|_| format!("connecting to port {port} timed out"))?
        .map_err(|e| format!("port {port}: {e}"))
}

/// Runs a blocking probe off the runtime, bounded. A probe that hangs (a wedged X server) leaves
/// one thread behind; callers stop probing after a timeout, so threads cannot pile up.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("probe failed: {e}")),
        Err(_) => Err("the X server did not answer within 3s".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn rfb_greeting_is_recognised() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for greeting in [&b"RFB 003.008\n"[..], &b"HTTP/1.1 200\r\n"[..]] {
                let (mut s, _) = l.accept().await.unwrap();
                s.write_all(greeting).await.unwrap();
            }
        });
        assert_eq!(rfb(port).await, Ok(()));
        assert!(rfb(port).await.unwrap_err().contains("not RFB"));
        server.await.unwrap();
        assert!(accepts(port).await.is_err());
    }
}
