//! The SSH server on port 22220 (misc.md §9): what Daytona's SSH gateway, its CLI `ssh`
//! command and IDE remote development connect to.
//!
//! A server of its own, like the web terminal: [`server::run`] listens and hands each
//! connection to russh with a [`handler::Conn`]. Beyond the reference, which accepted any public
//! key and made a new host key at every start:
//! * public keys are those of the sandbox user's `~/.ssh/authorized_keys` (read at each login,
//!   so added keys work at once) and of `DAYTONA_SSH_AUTHORIZED_KEYS`; the gateway password
//!   (`DAYTONA_SSH_PASSWORD`, `sandbox-ssh`; the API token instead when `DAYTONA_AUTH_TOKEN` is
//!   set) is compared in constant time and can be turned off (`DAYTONA_SSH_PASSWORD_AUTH=false`);
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
    /// The password login takes (see `server::login_password`); `None` = password login off.
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
        if let Some(text) = self.user_keys_path().and_then(|p| read_small_file(&p)) {
            keys.extend(keys::parse_authorized_keys(&text));
        }
        keys
    }
}

/// The largest `authorized_keys` read: thousands of keys.
const MAX_KEYS_FILE: u64 = 1 << 20;

/// A regular file's text, at most [`MAX_KEYS_FILE`] bytes. Anyone in the sandbox can put a FIFO or
/// a link to `/dev/zero` at `~/.ssh/authorized_keys`; this runs before login on the runtime's
/// threads, so it must neither block nor read without end. `O_NONBLOCK` keeps the open of a
/// FIFO from waiting for a writer; the type is checked on the opened file.
fn read_small_file(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        tracing::warn!(path = %path.display(), "authorized_keys is not a regular file; ignored");
        return None;
    }
    let mut text = String::new();
    file.take(MAX_KEYS_FILE).read_to_string(&mut text).ok()?;
    Some(text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_file_read_neither_blocks_nor_runs_away() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: plain syscall on a path in our own temporary directory.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_small_file(&fifo), None, "a FIFO with no writer is skipped, not waited on");
        assert_eq!(read_small_file(std::path::Path::new("/dev/zero")), None);
        let big = dir.path().join("big");
        std::fs::write(&big, "a".repeat(3 << 20)).unwrap();
        assert_eq!(read_small_file(&big).unwrap().len() as u64, MAX_KEYS_FILE);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert!(read_small_file(&link).is_some(), "a link to a regular file is fine");
    }
}
