//! The SSH server on port 22220 (misc.md §9): what Daytona's SSH gateway, its CLI `ssh`
//! command and IDE remote development connect to.
//!
//! A server of its own, like the web terminal: [`server::run`] listens and hands each
//! connection to russh with a [`handler::Conn`]. Beyond the reference, which accepted any public
//! key and made a new host key at every start:
//! * public keys are those of the sandbox user's `~/.ssh/authorized_keys` (read at each login,
//!   so added keys work at once) and of `DAYTONA_SSH_AUTHORIZED_KEYS`; the gateway password
//!   (`DAYTONA_SSH_PASSWORD`, `sandbox-ssh`) is compared in constant time and can be turned off
//!   (`DAYTONA_SSH_PASSWORD_AUTH=false`);
//! * the host key is made once and kept (0600) at `$HOME/.daytona/ssh/host_key`;
//! * connections are capped (`DAYTONA_SSH_MAX_CONNECTIONS`), as are channels per connection
//!   ([`MAX_CHANNELS`]); a connection must log in within `DAYTONA_SSH_LOGIN_TIMEOUT`, and a peer
//!   that stops answering keepalives is dropped;
//! * SFTP uploads go to a temporary file beside the target that replaces it on close, so an
//!   interrupted upload leaves the old file (or nothing) rather than a truncated one.

pub mod forward;
pub mod handler;
pub mod keys;
pub mod server;
pub mod session;
pub mod sftp;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::env::ChildEnv;
use crate::reaper::Reaper;

/// Channels one connection may have open at once (sessions, forwards, SFTP).
pub const MAX_CHANNELS: usize = 64;
/// Keepalive probes: a peer that answers none of [`KEEPALIVE_MAX`] sent this far apart is gone.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_MAX: usize = 4;

/// What every connection shares.
pub struct Shared {
    pub env: Arc<ChildEnv>,
    pub reaper: &'static Reaper,
    pub work_dir: PathBuf,
    pub password: Option<String>,
    /// Keys from the configuration; the user's own file is read at each login.
    pub configured_keys: Vec<russh::keys::PublicKey>,
    /// Time from TCP accept to a successful login (`DAYTONA_SSH_LOGIN_TIMEOUT`).
    pub login_timeout: Duration,
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

/// A slot among a connection's [`MAX_CHANNELS`], given back when dropped.
pub struct ChannelSlot(Arc<AtomicUsize>);

impl ChannelSlot {
    pub fn take(count: &Arc<AtomicUsize>) -> Option<ChannelSlot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_CHANNELS).then_some(n + 1))
            .ok()
            .map(|_| ChannelSlot(count.clone()))
    }
}

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
