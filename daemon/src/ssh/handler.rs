//! One SSH connection: authentication, channel opens and global requests. What happens on a
//! session channel is in `session.rs`; forwarding in `forward.rs`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::task::AbortHandle;

use super::{ChannelSlot, MAX_CHANNELS, Shared, forward, keys, session};

/// Runs one connection to its end: login within the login timeout, then until either side
/// closes.
pub async fn serve_connection(
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    presence: Arc<Presence>,
) {
    tokio::select! {
        () = run_connection(config, stream, peer, shared, &presence) => {}
        () = presence.close.notified() => {
            tracing::info!(%peer, "SSH connection closed to make room: it had no channel and no forward open");
        }
    }
}

/// What the listener sees of a live connection, to choose one to close when all places are
/// taken. Daytona's gateway opens a connection per client channel and closes only the channel,
/// so connections with nothing open pile up; refusing newcomers would lock everyone out.
#[derive(Default)]
pub struct Presence {
    pub authed: Arc<AtomicBool>,
    pub channels: Arc<AtomicUsize>,
    /// Remote forwards (`-R`, socket forwards): a connection that only holds those still works.
    pub forwards: AtomicUsize,
    pub close: tokio::sync::Notify,
}

impl Presence {
    /// Nothing would be lost by closing it: not logged in, or no channel and no forward open.
    pub fn idle(&self) -> bool {
        !self.authed.load(Ordering::Acquire)
            || (self.channels.load(Ordering::Acquire) == 0 && self.forwards.load(Ordering::Acquire) == 0)
    }
}

async fn run_connection(
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    presence: &Arc<Presence>,
) {
    let deadline = tokio::time::Instant::now() + shared.login_timeout;
    let authed = presence.authed.clone();
    let conn = Conn {
        shared,
        peer,
        authed: authed.clone(),
        channels: presence.channels.clone(),
        presence: presence.clone(),
        tcp_forwards: HashMap::new(),
        unix_forwards: HashMap::new(),
        sftp_channels: HashSet::new(),
    };
    // The version exchange is inside run_stream: a client that connects and says nothing must
    // not hold a connection slot forever either.
    let running =
        match tokio::time::timeout_at(deadline, russh::server::run_stream(config, stream, conn)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "SSH handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "SSH connection closed: no handshake within the login grace time");
                return;
            }
        };
    let handle = running.handle();
    let mut running = std::pin::pin!(running);
    tokio::select! {
        r = &mut running => {
            log_end(peer, r);
            return;
        }
        _ = tokio::time::sleep_until(deadline) => {}
    }
    if !authed.load(Ordering::Acquire) {
        tracing::info!(%peer, "SSH connection closed: not logged in within the login grace time");
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "login grace time exceeded".into(), "en".into())
            .await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut running).await;
        return;
    }
    log_end(peer, running.await);
}

fn log_end(peer: SocketAddr, r: Result<(), russh::Error>) {
    match r {
        Ok(()) => tracing::debug!(%peer, "SSH connection ended"),
        Err(e) => tracing::debug!(%peer, error = %e, "SSH connection ended with an error"),
    }
}

/// The connection's state, owned by russh's session task.
pub struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    authed: Arc<AtomicBool>,
    channels: Arc<AtomicUsize>,
    presence: Arc<Presence>,
    /// Remote forwards (`-R`) by the address and port the client asked for.
    tcp_forwards: HashMap<(String, u32), AbortHandle>,
    /// Unix-socket forwards by path; the socket file is removed with the listener.
    unix_forwards: HashMap<String, AbortHandle>,
    /// Channels running SFTP, which report their exit status when the client ends its input.
    sftp_channels: HashSet<ChannelId>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        for (_, task) in self.tcp_forwards.drain() {
            task.abort();
        }
        for (path, task) in self.unix_forwards.drain() {
            task.abort();
            let _ = std::fs::remove_file(&path);
        }
    }
}

impl Conn {
    fn slot(&self) -> Option<ChannelSlot> {
        let slot = ChannelSlot::take(&self.channels);
        if slot.is_none() {
            tracing::warn!(peer = %self.peer, max = MAX_CHANNELS, "SSH channel refused: too many channels");
        }
        slot
    }

    fn refuse(&self, user: &str, method: &str) {
        // Never the password or the key itself: the user name and method say enough.
        tracing::warn!(peer = %self.peer, user, method, "SSH login refused");
    }

    /// Remote forwards are listeners: as many per connection as channels, no more.
    fn forwards_full(&self) -> bool {
        self.tcp_forwards.len() + self.unix_forwards.len() >= MAX_CHANNELS
    }

    fn count_forwards(&self) {
        self.presence.forwards.store(self.tcp_forwards.len() + self.unix_forwards.len(), Ordering::Release);
    }

    fn key_allowed(&self, key: &russh::keys::PublicKey) -> bool {
        keys::key_allowed(&self.shared.allowed_keys(), key)
    }
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        match &self.shared.password {
            Some(expected) if crate::secret::matches(expected.as_bytes(), password.as_bytes()) => {
                Ok(Auth::Accept)
            }
            Some(_) => {
                self.refuse(user, "password");
                Ok(Auth::reject())
            }
            None => {
                self.refuse(user, "password (disabled)");
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.key_allowed(offer.public_key) {
            Ok(Auth::Accept)
        } else {
            tracing::info!(
                peer = %self.peer,
                user,
                fingerprint = %offer.public_key.fingerprint(Default::default()),
                "SSH public key not authorized"
            );
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        // Checked again: the offer and the signed request are separate messages.
        if self.key_allowed(key.public_key) {
            Ok(Auth::Accept)
        } else {
            self.refuse(user, "publickey");
            Ok(Auth::reject())
        }
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        self.authed.store(true, Ordering::Release);
        tracing::info!(peer = %self.peer, "SSH login");
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(slot) = self.slot() else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        reply.accept().await;
        tokio::spawn(session::run(channel, session.handle(), self.shared.clone(), slot));
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(slot) = self.slot() else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let Ok(port) = u16::try_from(port) else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        tokio::spawn(forward::direct_tcp(channel, reply, host.to_string(), port, slot));
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(slot) = self.slot() else {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        tokio::spawn(forward::direct_unix(channel, reply, PathBuf::from(socket_path), slot));
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The session task reads the request itself; the reply is sent here, where russh knows
        // whether the client asked for one.
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            self.sftp_channels.insert(channel);
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        // An SFTP client ends by closing its input, and OpenSSH clients send their channel close
        // right behind that end of file. The exit status (0, as the reference reports) must be
        // queued here, before that close is handled, or the client reports -1 and scp fails.
        if self.sftp_channels.remove(&channel) {
            session.exit_status_request(channel, 0)?;
        }
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.sftp_channels.remove(&channel);
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // The session task makes the socket when it sees the request.
        Ok(true)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let Ok(wanted) = u16::try_from(*port) else { return Ok(false) };
        let key = (address.to_string(), *port);
        if self.tcp_forwards.contains_key(&key) || self.forwards_full() {
            return Ok(false);
        }
        match forward::listen_tcp(address, wanted).await {
            Ok(listener) => {
                let bound = listener.local_addr().map(|a| a.port()).unwrap_or(wanted);
                // Port 0 asks the server to choose; the client is told which.
                *port = u32::from(bound);
                let task = tokio::spawn(forward::serve_remote_tcp(
                    listener,
                    session.handle(),
                    address.to_string(),
                    u32::from(bound),
                    self.channels.clone(),
                ));
                self.tcp_forwards.insert((address.to_string(), u32::from(bound)), task.abort_handle());
                self.count_forwards();
                Ok(true)
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, address, port = wanted, error = %e, "SSH remote forward refused");
                Ok(false)
            }
        }
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let found = match self.tcp_forwards.remove(&(address.to_string(), port)) {
            Some(task) => {
                task.abort();
                true
            }
            None => false,
        };
        self.count_forwards();
        Ok(found)
    }

    async fn streamlocal_forward(
        &mut self,
        socket_path: &str,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if self.unix_forwards.contains_key(socket_path) || self.forwards_full() {
            return Ok(false);
        }
        match forward::listen_unix(std::path::Path::new(socket_path)) {
            Ok(listener) => {
                let task = tokio::spawn(forward::serve_remote_unix(
                    listener,
                    session.handle(),
                    socket_path.to_string(),
                    self.channels.clone(),
                ));
                self.unix_forwards.insert(socket_path.to_string(), task.abort_handle());
                self.count_forwards();
                Ok(true)
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, path = socket_path, error = %e, "SSH socket forward refused");
                Ok(false)
            }
        }
    }

    async fn cancel_streamlocal_forward(
        &mut self,
        socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let found = match self.unix_forwards.remove(socket_path) {
            Some(task) => {
                task.abort();
                let _ = std::fs::remove_file(socket_path);
                true
            }
            None => false,
        };
        self.count_forwards();
        Ok(found)
    }
}
