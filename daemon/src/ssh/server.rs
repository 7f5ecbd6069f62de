//! The listener: loads the host key, accepts connections up to the cap and hands each to
//! [`handler::serve_connection`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use toolbox_envelope::sync::lock;

use super::handler::Presence;
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
        password: login_password(&state.config),
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

/// The one password login takes, if any: none when password login is off
/// (`DAYTONA_SSH_PASSWORD_AUTH=false`); the API token when one is configured (the well-known
/// gateway default would otherwise be a way around it, and the configuration refuses an explicit
/// `DAYTONA_SSH_PASSWORD` beside a token); the gateway password otherwise.
fn login_password(config: &crate::config::Config) -> Option<String> {
    if !config.ssh_password_auth {
        return None;
    }
    Some(config.auth_token.as_ref().unwrap_or(&config.ssh_password).0.clone())
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
    // Live connections in arrival order, each with what it holds open.
    let live: Arc<Mutex<Vec<(u64, Arc<Presence>)>>> = Arc::default();
    let mut next_id = 0u64;
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
        let presence = Arc::new(Presence::default());
        {
            let mut table = lock(&live);
            if table.len() >= max {
                // Full: the oldest connection with nothing open makes room; one in use is never
                // closed for a newcomer.
                match table.iter().position(|(_, p)| p.idle()) {
                    Some(at) => {
                        let (_, victim) = table.remove(at);
                        victim.close.notify_one();
                    }
                    None => {
                        tracing::warn!(%peer, max, "SSH connection refused: every connection is in use");
                        drop(stream);
                        continue;
                    }
                }
            }
            next_id += 1;
            table.push((next_id, presence.clone()));
        }
        let _ = stream.set_nodelay(true);
        let (config, shared, live, id) = (config.clone(), shared.clone(), live.clone(), next_id);
        tokio::spawn(async move {
            handler::serve_connection(config, stream, peer, shared, presence).await;
            lock(&live).retain(|(i, _)| *i != id);
        });
    }
}

#[cfg(test)]
mod tests {
    //! SSH `signal` requests, which the OpenSSH client cannot send, driven through russh's own
    //! client against the real server.

    use super::*;
    use russh::keys::PublicKeyOrCertificate;
    use russh::{ChannelMsg, Sig};

    struct TrustingClient;

    impl russh::client::Handler for TrustingClient {
        type Error = russh::Error;

        async fn check_server_key(&mut self, _key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
            Ok(true)
        }
    }

    async fn start() -> u16 {
        let dir = tempfile::tempdir().unwrap();
        let key = keys::load_or_create_host_key(&keys::host_key_path(dir.path())).unwrap();
        let shared = Arc::new(Shared {
            env: Arc::new(crate::env::ChildEnv::from_process()),
            reaper: crate::reaper::Reaper::global(),
            work_dir: std::env::temp_dir(),
            password: Some("pw".into()),
            configured_keys: Vec::new(),
            login_timeout: Duration::from_secs(10),
        });
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(serve(listener, Arc::new(server_config(key, true)), shared, 4));
        port
    }

    /// Runs `command`, sends `sig` once it printed `ready`, and returns the exit status.
    async fn status_after_signal(command: &str, sig: Sig) -> Option<u32> {
        // A test binary started in the background by a non-interactive shell inherits SIGINT
        // ignored, and so would the command (an ignored signal survives exec). The daemon
        // itself handles SIGINT, which exec resets to the default for its children; here the
        // test binary stands in for it.
        // SAFETY: setting a signal's disposition to the default; no handler is involved.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
        }
        let port = start().await;
        let config = Arc::new(russh::client::Config::default());
        let mut client = russh::client::connect(config, ("127.0.0.1", port), TrustingClient).await.unwrap();
        assert!(client.authenticate_password("user", "pw").await.unwrap().success());
        let mut channel = client.channel_open_session().await.unwrap();
        channel.exec(true, command).await.unwrap();
        let mut out = Vec::new();
        let mut status = None;
        let mut signalled = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, channel.wait()).await {
            match msg {
                ChannelMsg::Data { data } => {
                    out.extend_from_slice(&data);
                    if !signalled && out.windows(5).any(|w| w == b"ready") {
                        signalled = true;
                        channel.signal(sig.clone()).await.unwrap();
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        assert!(signalled, "never saw ready: {:?}", String::from_utf8_lossy(&out));
        status
    }

    #[test]
    fn with_a_token_the_password_is_the_token() {
        let config = |pairs: &[(&str, &str)]| {
            let vars = [("DAYTONA_SANDBOX_ID", "x")]
                .iter()
                .chain(pairs)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            crate::config::from_env(&vars).unwrap()
        };
        assert_eq!(login_password(&config(&[])).as_deref(), Some("sandbox-ssh"));
        assert_eq!(login_password(&config(&[("DAYTONA_SSH_PASSWORD", "own")])).as_deref(), Some("own"));
        let token = ("DAYTONA_AUTH_TOKEN", "0123456789abcdef");
        assert_eq!(login_password(&config(&[token])).as_deref(), Some("0123456789abcdef"));
        let off = ("DAYTONA_SSH_PASSWORD_AUTH", "false");
        assert_eq!(login_password(&config(&[token, off])), None);
        assert_eq!(login_password(&config(&[off])), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signal_request_reaches_the_command_and_a_signal_death_reports_1() {
        // `exec` makes sleep the process itself, so INT kills it (a shell would wait).
        assert_eq!(status_after_signal("echo ready; exec sleep 30", Sig::INT).await, Some(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trapped_signal_lets_the_command_choose_its_status() {
        let trap = "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done";
        assert_eq!(status_after_signal(trap, Sig::USR1).await, Some(7));
    }
}
