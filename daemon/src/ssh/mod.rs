//! The SSH server on port 22220 (misc.md §9): what Daytona's SSH gateway, its CLI `ssh`
//! command and IDE remote development connect to.
//!
//! A server of its own, like the web terminal: [`run`] listens and hands each connection to
//! russh with a [`handler::Conn`]. Beyond the reference, which accepted any public key and made
//! a new host key at every start:
//! * public keys are those of the sandbox user's `~/.ssh/authorized_keys` (read at each login,
//!   so added keys work at once) and of `DAYTONA_SSH_AUTHORIZED_KEYS`; the gateway password
//!   (`DAYTONA_SSH_PASSWORD`, `sandbox-ssh`) is compared in constant time and can be turned off
//!   (`DAYTONA_SSH_PASSWORD_AUTH=false`);
//! * the host key is made once and kept (0600) at `$HOME/.daytona/ssh/host_key`;
//! * connections are capped (`DAYTONA_SSH_MAX_CONNECTIONS`), as are channels per connection
//!   ([`MAX_CHANNELS`]); a connection must log in within [`LOGIN_GRACE`], and a peer that stops
//!   answering keepalives is dropped;
//! * SFTP uploads go to a temporary file beside the target that replaces it on close, so an
//!   interrupted upload leaves the old file (or nothing) rather than a truncated one.

pub mod forward;
pub mod handler;
pub mod keys;
pub mod session;
pub mod sftp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::env::ChildEnv;
use crate::reaper::Reaper;
use crate::state::AppState;

/// Channels one connection may have open at once (sessions, forwards, SFTP).
pub const MAX_CHANNELS: usize = 64;
/// Time from TCP accept to a successful login (sshd's `LoginGraceTime` is 120 s; a gateway logs
/// in within a second).
pub const LOGIN_GRACE: Duration = Duration::from_secs(30);
/// Keepalive probes: a peer that answers none of [`KEEPALIVE_MAX`] sent this far apart is gone.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_MAX: usize = 4;

/// What every connection shares.
pub struct Shared {
    pub env: Arc<ChildEnv>,
    pub reaper: &'static Reaper,
    pub work_dir: PathBuf,
    pub password: Option<String>,
    /// Keys from the configuration; the user's own file is read at each login.
    pub configured_keys: Vec<russh::keys::PublicKey>,
}

impl Shared {
    /// The sandbox user's `authorized_keys`, from the home directory children see.
    fn user_keys_path(&self) -> Option<PathBuf> {
        self.env.get("HOME").map(|h| PathBuf::from(h).join(".ssh").join("authorized_keys"))
    }

    /// Every key allowed to log in right now.
    pub fn allowed_keys(&self) -> Vec<russh::keys::PublicKey> {
        let mut keys = self.configured_keys.clone();
        if let Some(text) = self.user_keys_path().and_then(|p| std::fs::read_to_string(p).ok()) {
            keys.extend(keys::parse_authorized_keys(&text));
        }
        keys
    }
}

/// Serves SSH until the daemon stops. Failures to start (port taken, unreadable host key) are
/// logged and leave the rest of the daemon running, as for the web terminal.
pub async fn run(state: AppState) {
    let port = state.config.ssh_port;
    let home = state.env.get("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let key_path = keys::host_key_path(&home.join(".daytona"));
    let host_key = match tokio::task::spawn_blocking(move || keys::load_or_create_host_key(&key_path)).await {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot load or create the SSH host key; SSH is off");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "SSH host key task failed; SSH is off");
            return;
        }
    };
    let configured_keys = keys::parse_authorized_keys(&state.config.ssh_authorized_keys);
    let listed = state
        .config
        .ssh_authorized_keys
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    if configured_keys.len() != listed {
        tracing::warn!(
            skipped = listed - configured_keys.len(),
            "DAYTONA_SSH_AUTHORIZED_KEYS has lines that are not public keys; they are ignored"
        );
    }
    let shared = Arc::new(Shared {
        env: state.env.clone(),
        reaper: state.reaper,
        work_dir: state.work_dir.as_ref().clone(),
        password: state.config.ssh_password_auth.then(|| state.config.ssh_password.0.clone()),
        configured_keys,
    });
    let config = Arc::new(server_config(host_key, shared.password.is_some()));
    let listener = match bind(port).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, port, "cannot listen on the SSH port");
            return;
        }
    };
    tracing::info!(port, "SSH server listening");
    serve(listener, config, shared, state.config.ssh_max_connections).await;
}

async fn bind(port: u16) -> std::io::Result<TcpListener> {
    // Both stacks where the host has IPv6, as the other servers listen.
    match TcpListener::bind(("::", port)).await {
        Ok(l) => Ok(l),
        Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
    }
}

fn server_config(host_key: russh::keys::PrivateKey, password: bool) -> russh::server::Config {
    use russh::MethodKind;
    let methods: &[MethodKind] =
        if password { &[MethodKind::PublicKey, MethodKind::Password] } else { &[MethodKind::PublicKey] };
    russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-daytona".into()),
        methods: methods.into(),
        // Refusals take the same time whatever was wrong; the first "none" probe of OpenSSH
        // clients is answered at once.
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        max_auth_attempts: 6,
        // Idle connections stay (an editor may sit for hours); dead peers are found by
        // keepalives instead.
        inactivity_timeout: None,
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        // Larger windows and packets than the defaults: bulk copies are bounded by round trips
        // otherwise.
        window_size: 8 * 1024 * 1024,
        maximum_packet_size: 65536,
        ..Default::default()
    }
}

async fn serve(listener: TcpListener, config: Arc<russh::server::Config>, shared: Arc<Shared>, max: usize) {
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait rather than spin.
                tracing::warn!(error = %e, "SSH accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max, "SSH connection refused: too many connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let config = config.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            handler::serve_connection(config, stream, peer, shared).await;
            drop(permit);
        });
    }
}
