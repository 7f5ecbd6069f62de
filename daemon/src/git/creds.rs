//! Credentials for remote operations, the credential store, and TLS set-up.
//!
//! Credentials given with a request live in memory for that one operation: they reach libgit2
//! only through the credential callback, never a URL, config file, argument vector or log line.
//! The callback answers a bounded number of times, so a server that keeps refusing wrong
//! credentials ends the operation with `GIT_AUTH_FAILED` instead of looping.
//!
//! `POST /git/credentials` is the one deliberate exception: it writes `~/.git-credentials` in the
//! format of git's `store` helper (mode 0600) and sets `credential.helper=store`, exactly as
//! `git credential approve` would. Later operations without explicit credentials read that file
//! themselves (no helper process is spawned), so the CLI and the daemon share one store.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};

use super::error::GitError;

/// How often the credential callback answers in one operation. libgit2 asks again after every
/// 401; with correct credentials one answer suffices, the rest covers redirects to another host.
pub const MAX_AUTH_ATTEMPTS: u32 = 3;

/// HTTP basic credentials for one operation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Creds {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Creds(***)")
    }
}

impl Creds {
    /// Credentials count only when both parts are present; empty strings count as present.
    pub fn from_request(username: Option<String>, password: Option<String>) -> Option<Creds> {
        Some(Creds { username: username?, password: password? })
    }
}

/// What a remote operation may use to authenticate and how it treats TLS.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub creds: Option<Creds>,
    /// The store file consulted when no credentials were given (None: not configured).
    pub store: Option<PathBuf>,
    pub insecure_skip_tls: bool,
}

impl Auth {
    /// Redacts this operation's secrets from a text.
    pub fn redact(&self, text: &str) -> String {
        let c = self.creds.as_ref();
        super::error::redact(text, c.map(|c| c.username.as_str()), c.map(|c| c.password.as_str()))
    }

    /// A libgit2 error as a classified, redacted [`GitError`].
    pub fn error(&self, e: git2::Error) -> GitError {
        let mut g = GitError::from(e);
        g.message = self.redact(&g.message);
        g
    }

    /// Callbacks answering credential and certificate questions for one operation.
    pub fn callbacks(&self) -> RemoteCallbacks<'static> {
        let mut cb = RemoteCallbacks::new();
        let creds = self.creds.clone();
        let store = self.store.clone();
        let mut attempts = 0u32;
        cb.credentials(move |url, user_from_url, allowed| {
            attempts += 1;
            if attempts > MAX_AUTH_ATTEMPTS {
                return Err(auth_error("authentication failed: the remote refused the credentials"));
            }
            if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return Err(auth_error("authentication required: the remote asks for an unsupported method"));
            }
            let found = match &creds {
                Some(c) => Some(c.clone()),
                None => store.as_deref().and_then(|s| lookup_store(s, url, user_from_url)),
            };
            match found {
                Some(c) if attempts == 1 || creds.is_some() => {
                    Cred::userpass_plaintext(&c.username, &c.password)
                }
                Some(_) => Err(auth_error("authentication failed: the stored credentials were refused")),
                None => Err(auth_error("authentication required: no credentials were given")),
            }
        });
        let insecure = self.insecure_skip_tls;
        cb.certificate_check(move |_cert, _host| Ok(certificate_answer(insecure)));
        cb
    }
}

/// The answer to libgit2's certificate question. Passthrough keeps libgit2's own verdict (the
/// chain verified against the CA store); it is asked right after the TLS handshake, before any
/// request, so credentials never travel over a connection that failed verification. Only the
/// explicit insecure flag accepts any certificate.
pub fn certificate_answer(insecure_skip_tls: bool) -> CertificateCheckStatus {
    if insecure_skip_tls {
        CertificateCheckStatus::CertificateOk
    } else {
        CertificateCheckStatus::CertificatePassthrough
    }
}

fn auth_error(msg: &str) -> git2::Error {
    git2::Error::new(ErrorCode::Auth, ErrorClass::Http, msg)
}

// ---------------------------------------------------------------------------------------------
// The `store` helper's file.

/// One line of `~/.git-credentials`: `proto://user:pass@host[/path]`, user and password
/// percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCred {
    pub protocol: String,
    pub host: String,
    pub username: String,
    pub password: String,
}

impl StoredCred {
    pub fn to_line(&self) -> String {
        format!(
            "{}://{}:{}@{}",
            self.protocol,
            percent_encode(&self.username),
            percent_encode(&self.password),
            self.host
        )
    }

    pub fn parse(line: &str) -> Option<StoredCred> {
        let (protocol, rest) = line.trim_end_matches(['\r', '\n']).split_once("://")?;
        let (userinfo, hostpath) = rest.rsplit_once('@')?;
        let (user, pass) = userinfo.split_once(':')?;
        let host = hostpath.split('/').next().unwrap_or("");
        Some(StoredCred {
            protocol: protocol.to_string(),
            host: host.to_string(),
            username: percent_decode(user)?,
            password: percent_decode(pass)?,
        })
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Splits `proto://[user@]host[:port]/…` into protocol and host (with port).
fn url_protocol_host(url: &str) -> Option<(&str, &str)> {
    let (proto, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some((proto, host))
}

/// The first stored credential for the URL's protocol and host (and user, when the URL names
/// one), as git's store helper picks it.
pub fn lookup_store(store: &Path, url: &str, user: Option<&str>) -> Option<Creds> {
    let (proto, host) = url_protocol_host(url)?;
    let text = std::fs::read_to_string(store).ok()?;
    text.lines().filter_map(StoredCred::parse).find_map(|c| {
        let user_ok = user.is_none_or(|u| u == c.username);
        (c.protocol == proto && c.host.eq_ignore_ascii_case(host) && user_ok)
            .then_some(Creds { username: c.username, password: c.password })
    })
}

/// Adds (or replaces) a credential in the store file like `git credential-store store`: entries
/// for the same protocol, host and user go, the new one comes first. Written to a temporary file
/// with mode 0600 and renamed over the old one, so the password is never world-readable.
pub fn store_credential(store: &Path, cred: &StoredCred) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let old = match std::fs::read_to_string(store) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut out = cred.to_line();
    out.push('\n');
    for line in old.lines().filter(|l| !l.trim().is_empty()) {
        let same = StoredCred::parse(line).is_some_and(|c| {
            c.protocol == cred.protocol && c.host == cred.host && c.username == cred.username
        });
        if !same {
            out.push_str(line);
            out.push('\n');
        }
    }
    let dir = store.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".git-credentials.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, store)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Global libgit2 settings.

/// CA bundles of the common distributions, most common first.
pub const CA_FILES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora, CentOS
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine (LibreSSL), macOS-alike
    "/usr/local/share/certs/ca-root-nss.crt", // FreeBSD-alike images
];
/// Hashed certificate directories.
pub const CA_DIRS: [&str; 3] = ["/etc/ssl/certs", "/etc/pki/tls/certs", "/usr/share/ca-certificates"];

/// The CA file and directory to verify against: `SSL_CERT_FILE`/`SSL_CERT_DIR` when they name
/// something that exists, else the first existing well-known path under `root`.
pub fn probe_ca(
    root: &Path,
    env_file: Option<&str>,
    env_dir: Option<&str>,
) -> (Option<PathBuf>, Option<PathBuf>) {
    let file = env_file
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| CA_FILES.iter().map(|f| root.join(f.trim_start_matches('/'))).find(|p| p.is_file()));
    let dir = env_dir
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .or_else(|| CA_DIRS.iter().map(|d| root.join(d.trim_start_matches('/'))).find(|p| p.is_dir()));
    (file, dir)
}

/// Sets `SSL_CERT_FILE`/`SSL_CERT_DIR` where they are unset (or name nothing), as git2's first
/// call would: git2 probes the same way and leaves variables that already hold its answer alone,
/// so with this done before any thread exists, the lazy [`init_libgit2`] never writes to the
/// environment while other threads may read it. Only file-system probes: cheap.
pub fn export_ca_env() {
    // SAFETY: called once at start, before the async runtime or any other thread exists.
    unsafe {
        openssl_probe::try_init_openssl_env_vars();
    }
}

/// One-time libgit2 settings, made on the first git operation (not at start: loading the CA
/// bundle costs tens of milliseconds): where the CA certificates are (the vendored OpenSSL's compiled-in
/// default points into its build directory), and caps on the memory libgit2 keeps mapped or
/// cached, so a large repository cannot grow the daemon without bound.
pub fn init_libgit2() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let env_file = std::env::var("SSL_CERT_FILE").ok();
        let env_dir = std::env::var("SSL_CERT_DIR").ok();
        let (file, dir) = probe_ca(Path::new("/"), env_file.as_deref(), env_dir.as_deref());
        // SAFETY: these set libgit2 globals; Once runs them before any other git2 call of ours.
        unsafe {
            if let Some(f) = &file
                && let Err(e) = git2::opts::set_ssl_cert_file(f)
            {
                tracing::warn!(error = %e, file = %f.display(), "cannot use the CA bundle");
            }
            if let Some(d) = &dir
                && let Err(e) = git2::opts::set_ssl_cert_dir(d)
            {
                tracing::warn!(error = %e, dir = %d.display(), "cannot use the CA directory");
            }
            let _ = git2::opts::set_mwindow_size(32 * 1024 * 1024);
            let _ = git2::opts::set_mwindow_mapped_limit(96 * 1024 * 1024);
            let _ = git2::opts::set_mwindow_file_limit(128);
            // Repositories belong to whoever made them in the sandbox; the daemon (often root)
            // serves them all, as git's safe.directory=* would.
            let _ = git2::opts::set_verify_owner_validation(false);
            let _ = git2::opts::set_cache_max_size(48 * 1024 * 1024);
        }
        if file.is_none() && dir.is_none() {
            tracing::warn!("no CA certificates found; HTTPS remotes will fail certificate verification");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lines_round_trip_and_lookup() {
        let c = StoredCred {
            protocol: "https".into(),
            host: "example.com:8443".into(),
            username: "a@b".into(),
            password: "p:w/d%?#".into(),
        };
        let line = c.to_line();
        assert_eq!(line, "https://a%40b:p%3Aw%2Fd%25%3F%23@example.com:8443");
        assert_eq!(StoredCred::parse(&line).unwrap(), c);

        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("sub/.git-credentials");
        store_credential(&store, &c).unwrap();
        let other = StoredCred { host: "other".into(), ..c.clone() };
        store_credential(&store, &other).unwrap();
        let newer = StoredCred { password: "new".into(), ..c.clone() };
        store_credential(&store, &newer).unwrap();
        let text = std::fs::read_to_string(&store).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&store).unwrap().permissions().mode() & 0o777, 0o600);
        let got = lookup_store(&store, "https://example.com:8443/r.git", None).unwrap();
        assert_eq!(got.password, "new");
        assert!(lookup_store(&store, "http://example.com:8443/r.git", None).is_none());
        assert!(lookup_store(&store, "https://example.com:8443/r.git", Some("zz")).is_none());
        assert_eq!(lookup_store(&store, "https://u@other/x", Some("a@b")).unwrap().password, "p:w/d%?#");
    }

    #[test]
    fn ca_probing_picks_existing_paths() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(probe_ca(root.path(), None, None), (None, None));
        let rhel = root.path().join("etc/pki/tls/certs");
        std::fs::create_dir_all(&rhel).unwrap();
        std::fs::write(rhel.join("ca-bundle.crt"), "x").unwrap();
        let (f, d) = probe_ca(root.path(), None, None);
        assert_eq!(f.unwrap(), rhel.join("ca-bundle.crt"));
        assert_eq!(d.unwrap(), rhel);
        let deb = root.path().join("etc/ssl/certs");
        std::fs::create_dir_all(&deb).unwrap();
        std::fs::write(deb.join("ca-certificates.crt"), "x").unwrap();
        let (f, d) = probe_ca(root.path(), None, None);
        assert_eq!(f.unwrap(), deb.join("ca-certificates.crt"));
        assert_eq!(d.unwrap(), deb);
        // An environment override wins only when it exists.
        let custom = root.path().join("custom.pem");
        std::fs::write(&custom, "x").unwrap();
        let (f, _) = probe_ca(root.path(), Some(custom.to_str().unwrap()), Some("/nonexistent"));
        assert_eq!(f.unwrap(), custom);
        let (f, _) = probe_ca(root.path(), Some("/nonexistent.pem"), None);
        assert_eq!(f.unwrap(), deb.join("ca-certificates.crt"));
    }

    #[test]
    fn request_credentials_need_both_parts() {
        assert!(Creds::from_request(Some("u".into()), None).is_none());
        assert!(Creds::from_request(None, Some("p".into())).is_none());
        assert_eq!(Creds::from_request(Some(String::new()), Some(String::new())).unwrap().username, "");
        assert_eq!(format!("{:?}", Creds { username: "u".into(), password: "p".into() }), "Creds(***)");
    }

    #[test]
    fn insecure_flag_accepts_any_certificate_and_secure_defers() {
        assert!(matches!(certificate_answer(true), CertificateCheckStatus::CertificateOk));
        assert!(matches!(certificate_answer(false), CertificateCheckStatus::CertificatePassthrough));
    }
}
