//! Port and socket forwarding: `direct-tcpip` (`ssh -L`), `tcpip-forward` (`ssh -R`), and their
//! Unix-socket forms (`direct-streamlocal@openssh.com`, `streamlocal-forward@openssh.com`).

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use russh::server::{ChannelOpenHandle, Handle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use super::ChannelSlot;

/// How long a forwarded connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Copies both ways between a channel and a socket until both directions end.
pub async fn pipe<S: AsyncRead + AsyncWrite + Unpin>(channel: Channel<Msg>, mut socket: S) {
    let mut stream = channel.into_stream();
    let _ = tokio::io::copy_bidirectional(&mut stream, &mut socket).await;
}

/// `direct-tcpip`: connects to `host:port` and joins it to the channel; the channel is refused
/// when the connection cannot be made.
pub async fn direct_tcp(
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    host: String,
    port: u16,
    slot: ChannelSlot,
) {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(socket)) => {
            let _ = socket.set_nodelay(true);
            reply.accept().await;
            pipe(channel, socket).await;
        }
        Ok(Err(e)) => {
            tracing::debug!(host, port, error = %e, "SSH direct-tcpip connect failed");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
        Err(_) => reply.reject(ChannelOpenFailure::ConnectFailed).await,
    }
    drop(slot);
}

/// `direct-streamlocal@openssh.com`: the same to a Unix socket.
pub async fn direct_unix(
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    path: std::path::PathBuf,
    slot: ChannelSlot,
) {
    match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&path)).await {
        Ok(Ok(socket)) => {
            reply.accept().await;
            pipe(channel, socket).await;
        }
        _ => {
            tracing::debug!(path = %path.display(), "SSH direct-streamlocal connect failed");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
    }
    drop(slot);
}

/// The listener for `tcpip-forward`. OpenSSH's spellings: an empty address or `*` is every
/// interface, `localhost` the loopback.
pub async fn listen_tcp(address: &str, port: u16) -> std::io::Result<TcpListener> {
    match address {
        "" | "*" | "0.0.0.0" => TcpListener::bind(("0.0.0.0", port)).await,
        "localhost" => TcpListener::bind(("127.0.0.1", port)).await,
        other => TcpListener::bind((other, port)).await,
    }
}

/// Accepts on a remote-forward listener and opens a `forwarded-tcpip` channel to the client for
/// each connection.
pub async fn serve_remote_tcp(
    listener: TcpListener,
    handle: Handle,
    address: String,
    port: u32,
    channels: Arc<AtomicUsize>,
) {
    loop {
        let Ok((socket, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Some(slot) = ChannelSlot::take(&channels) else { continue };
        let handle = handle.clone();
        let address = address.clone();
        tokio::spawn(async move {
            let _ = socket.set_nodelay(true);
            let opened = handle
                .channel_open_forwarded_tcpip(address, port, peer.ip().to_string(), u32::from(peer.port()))
                .await;
            if let Ok(channel) = opened {
                pipe(channel, socket).await;
            }
            drop(slot);
        });
    }
}

/// The listener for `streamlocal-forward@openssh.com`: parent directories are made 0700 and a
/// stale socket at the path is replaced.
pub fn listen_unix(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => std::fs::remove_file(path)?,
        _ => {}
    }
    UnixListener::bind(path)
}

/// Accepts on a socket forward and opens a `forwarded-streamlocal@openssh.com` channel for each
/// connection.
pub async fn serve_remote_unix(
    listener: UnixListener,
    handle: Handle,
    path: String,
    channels: Arc<AtomicUsize>,
) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Some(slot) = ChannelSlot::take(&channels) else { continue };
        let handle = handle.clone();
        let path = path.clone();
        tokio::spawn(async move {
            if let Ok(channel) = handle.channel_open_forwarded_streamlocal(path).await {
                pipe(channel, socket).await;
            }
            drop(slot);
        });
    }
}
