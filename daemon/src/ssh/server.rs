//! The listener: loads the host key, accepts connections up to the cap and hands each to
//! [`handler::serve_connection`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{KEEPALIVE_INTERVAL, KEEPALIVE_MAX, Shared, handler, keys};
use crate::state::AppState;

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
        login_timeout: state.config.ssh_login_timeout,
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
