//! Who may log in, and the server's own identity: the host key kept under the daemon's state
//! directory and authorized public keys (passwords are compared by `crate::secret`).

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};

/// Loads the host key at `path`, or makes a new Ed25519 key there (mode 0600, its directory
/// 0700) when there is none, so clients see the same key after every restart.
pub fn load_or_create_host_key(path: &Path) -> io::Result<PrivateKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            return PrivateKey::from_openssh(text.as_bytes())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    let text = key.to_openssh(LineEnding::LF).map_err(io::Error::other)?;
    // Written to a private temporary name and renamed, so a crash never leaves a truncated key
    // that would stop every later start.
    let temp = dir.join(format!(".host_key.{}.tmp", std::process::id()));
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&temp, path)?;
    Ok(key)
}

/// Where the host key lives under the daemon's state directory (`$HOME/.daytona`).
pub fn host_key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("ssh").join("host_key")
}

/// The keys of an `authorized_keys` text: one per line, comments and blank lines skipped.
/// A line with options before the key type (`command="…"`, `from=…`, `restrict`,
/// `cert-authority`, …) is skipped: this server cannot enforce them, and accepting the key
/// without them would give it more than its owner allowed. Unparsable lines are skipped, as
/// sshd does.
pub fn parse_authorized_keys(text: &str) -> Vec<PublicKey> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (kind, key) = (words.next()?, words.next()?);
            if !looks_like_key_type(kind) {
                tracing::warn!(
                    "an authorized_keys line with options is ignored: they cannot be enforced here"
                );
                return None;
            }
            russh::keys::parse_public_key_base64(key).ok()
        })
        .collect()
}

fn looks_like_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-sha2-") || word.starts_with("sk-")
}

/// Whether `key` is one of `allowed` (the key material compared, comments ignored).
pub fn key_allowed(allowed: &[PublicKey], key: &PublicKey) -> bool {
    allowed.iter().any(|k| k.key_data() == key.key_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";

    #[test]
    fn authorized_keys_lines_with_options_and_comments() {
        let text = format!(
            "# a comment\n\nssh-ed25519 {ED} me@host\nno-pty,command=\"echo hi there\" ssh-ed25519 {ED}\n\
             cert-authority ssh-ed25519 {ED}\nrestrict ssh-ed25519 {ED}\ngarbage line\n"
        );
        // Only the plain line counts: a restricted key is not accepted as an unrestricted one.
        let keys = parse_authorized_keys(&text);
        assert_eq!(keys.len(), 1);
        assert!(key_allowed(&keys, &keys[0]));
        assert!(!key_allowed(&[], &keys[0]));
    }

    #[test]
    fn host_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = host_key_path(dir.path());
        let first = load_or_create_host_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let second = load_or_create_host_key(&path).unwrap();
        assert_eq!(first.public_key().key_data(), second.public_key().key_data());
    }

    #[test]
    fn a_corrupt_host_key_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = host_key_path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_create_host_key(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");
    }
}
