//! What went wrong in a git operation, in the terms the clients tell apart.
//!
//! The SDK picks its exception class from the code (`GIT_AUTH_FAILED` → `DaytonaGitAuthFailedError`
//! and so on), so classification is part of the contract. libgit2 reports failures as an error
//! code plus a class plus a text; [`classify`] turns that into a [`Kind`] once, close to where the
//! error happened, and [`GitError`] carries it to the HTTP edge (`api.rs`, the only place that
//! knows statuses). Every text that leaves here has been through [`redact`] by whoever built it
//! with credentials in scope.

use std::path::Path;
use std::sync::OnceLock;

use git2::{ErrorClass, ErrorCode};

/// The classes of failure the clients tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A user mistake in the request that the body decoder could not see.
    BadRequest,
    /// A required body field is missing or empty.
    InvalidBody,
    /// A path the file system refuses to resolve: a symbolic-link loop, a name that is too
    /// long, a file where a directory is expected.
    InvalidPath,
    AuthFailed,
    Forbidden,
    RepoNotFound,
    BranchNotFound,
    BranchExists,
    PushRejected,
    DirtyWorktree,
    MergeConflict,
    /// Any other missing thing: remote, revision, object, path.
    NotFound,
    /// Repository or remote already exists, nothing to commit, current branch deletion.
    Conflict,
    Transport,
    RemoteRejected,
    Internal,
}

/// A classified git failure with a text that is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GitError {
    pub kind: Kind,
    pub message: String,
}

pub type GitResult<T> = Result<T, GitError>;

impl GitError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        GitError { kind, message: message.into() }
    }

    /// Prefixes the text with what was being done, keeping the class.
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// A failed file-system call on `path`, classified by its errno: what the user's path
    /// caused is theirs to fix (4xx), anything else is ours.
    pub fn io(e: &std::io::Error, path: &Path) -> Self {
        let kind = e.raw_os_error().map_or(Kind::Internal, errno_kind);
        GitError::new(kind, format!("{}: {}", path.display(), os_text(e)))
    }

    /// The repository `path` names does not exist (or is not a repository).
    pub fn repo_missing(path: &Path) -> Self {
        GitError::new(Kind::RepoNotFound, format!("repository does not exist: {}", path.display()))
    }
}

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        let kind = classify(&e);
        if kind == Kind::Conflict && e.class() == ErrorClass::Config {
            // libgit2 says "failed to parse 'v' as a boolean" without saying where.
            return GitError::new(kind, format!("the git configuration is invalid: {}", e.message()));
        }
        if e.code() == ErrorCode::Locked {
            return GitError::new(
                kind,
                format!(
                    "{}: another git process holds the lock; retry, or remove the .lock file if none is running",
                    e.message()
                ),
            );
        }
        GitError::new(kind, e.message().to_string())
    }
}

/// The class of an errno that a requested path can cause.
fn errno_kind(errno: i32) -> Kind {
    match errno {
        libc::ELOOP | libc::ENAMETOOLONG | libc::ENOTDIR => Kind::InvalidPath,
        libc::EACCES | libc::EPERM | libc::EROFS => Kind::Forbidden,
        libc::ENOENT => Kind::NotFound,
        _ => Kind::Internal,
    }
}

/// The C library's text of an I/O error, without Rust's ` (os error N)` suffix, lower-cased
/// as git prints it.
fn os_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.find(" (os error ").map_or(text.as_str(), |at| &text[..at]);
    text.to_lowercase()
}

/// The texts libgit2 appends (via `strerror`) to an OS-class error whose errno a user's path
/// can cause, with their class. Taken from the C library at run time, so they match whatever
/// libc the daemon is linked with.
fn os_error_texts() -> &'static [(String, Kind)] {
    static TEXTS: OnceLock<Vec<(String, Kind)>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        [libc::ELOOP, libc::ENAMETOOLONG, libc::ENOTDIR, libc::EACCES, libc::EPERM, libc::EROFS]
            .into_iter()
            .map(|n| (os_text(&std::io::Error::from_raw_os_error(n)), errno_kind(n)))
            .collect()
    })
}

/// The class of a libgit2 failure. First what the user's input caused (a file-system verdict
/// on a path, a NUL byte, an invalid path or spec), because libgit2 files some of these under
/// misleading codes (a symbolic-link loop in `mkdir` is `GIT_EEXISTS`); then the codes (they
/// are stable); then the HTTP status libgit2 writes into its text; then the error class for
/// network trouble.
pub fn classify(e: &git2::Error) -> Kind {
    let msg = e.message().to_ascii_lowercase();
    if matches!(e.class(), ErrorClass::Os | ErrorClass::Filesystem)
        && let Some((_, kind)) = os_error_texts().iter().find(|(text, _)| msg.ends_with(text.as_str()))
    {
        return *kind;
    }
    // git2 refuses a string with a NUL byte before libgit2 sees it; only request input gets here.
    if msg.contains("nul byte") {
        return Kind::BadRequest;
    }
    // "invalid path: '.git/config'" (index), "invalid path for filesystem '…'" (checkout, add).
    if msg.starts_with("invalid path") || msg.contains("unsupported url protocol") {
        return Kind::BadRequest;
    }
    match e.code() {
        ErrorCode::Auth => return Kind::AuthFailed,
        ErrorCode::Certificate => return Kind::Transport,
        ErrorCode::NotFastForward => return Kind::PushRejected,
        ErrorCode::Conflict | ErrorCode::MergeConflict | ErrorCode::Uncommitted | ErrorCode::Unmerged => {
            return Kind::DirtyWorktree;
        }
        ErrorCode::Exists => return Kind::Conflict,
        // Another git process holds the `.lock` file (or one was left behind by a crash).
        ErrorCode::Locked => return Kind::Conflict,
        _ => {}
    }
    if let Some(status) = http_status(&msg) {
        return match status {
            401 => Kind::AuthFailed,
            403 => Kind::Forbidden,
            404 | 410 => Kind::RepoNotFound,
            _ => Kind::Transport,
        };
    }
    if msg.contains("authentication replays") || msg.contains("authentication required") {
        return Kind::AuthFailed;
    }
    if msg.contains("could not find repository")
        || msg.contains("not a git repository")
        || msg.contains("repository not found")
        || msg.contains("does not appear to be a git repository")
        || (msg.contains("failed to resolve path") && msg.contains("no such file"))
    {
        return Kind::RepoNotFound;
    }
    // Socket-level failures come with the OS class; their texts are libgit2's own.
    const TRANSPORT: [&str; 8] = [
        "failed to connect",
        "failed to resolve address",
        "connection refused",
        "connection reset",
        "connection timed out",
        "network is unreachable",
        "ssl error",
        "certificate",
    ];
    if TRANSPORT.iter().any(|m| msg.contains(m)) {
        return Kind::Transport;
    }
    match e.class() {
        // An argument libgit2 refuses (`invalid argument: 'url->host'`) came from the request.
        ErrorClass::Invalid => Kind::BadRequest,
        _ if e.code() == ErrorCode::InvalidSpec || e.code() == ErrorCode::Invalid => Kind::BadRequest,
        // A config file holding a value git cannot read (`core.bare = v`, which `git config`
        // itself accepts): the repository's state is in the way, not the daemon.
        ErrorClass::Config => Kind::Conflict,
        ErrorClass::Net | ErrorClass::Ssl | ErrorClass::Http | ErrorClass::Ssh => Kind::Transport,
        _ if e.code() == ErrorCode::NotFound => Kind::NotFound,
        _ => Kind::Internal,
    }
}

/// The status in libgit2's "unexpected http status code: 404" style texts.
fn http_status(msg: &str) -> Option<u16> {
    const MARKERS: [&str; 3] =
        ["unexpected http status code: ", "request failed with status code: ", "status code: "];
    MARKERS.iter().find_map(|m| {
        let at = msg.find(m)? + m.len();
        msg[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
    })
}

/// Removes secrets from a text that is about to leave the daemon: the password, then the user
/// name (password first, so a user name inside the password cannot expose the rest), then the
/// password part of any `scheme://user:password@host` URL.
pub fn redact(text: &str, username: Option<&str>, password: Option<&str>) -> String {
    let mut out = text.to_string();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        out = out.replace(p, "***");
    }
    if let Some(u) = username.filter(|u| !u.is_empty()) {
        out = out.replace(u, "***");
    }
    redact_url_passwords(&out)
}

/// `https://user:secret@host/x` → `https://user:***@host/x`, anywhere in a text.
pub fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; userinfo at its last '@'.
        let end =
            tail.find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"').unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: ErrorCode, class: ErrorClass, msg: &str) -> git2::Error {
        git2::Error::new(code, class, msg)
    }

    #[test]
    fn classification() {
        let cases = [
            (err(ErrorCode::Auth, ErrorClass::Http, "authentication failed"), Kind::AuthFailed),
            (
                err(ErrorCode::GenericError, ErrorClass::Http, "unexpected http status code: 401"),
                Kind::AuthFailed,
            ),
            (
                err(ErrorCode::GenericError, ErrorClass::Http, "unexpected http status code: 403"),
                Kind::Forbidden,
            ),
            (
                err(ErrorCode::GenericError, ErrorClass::Http, "unexpected http status code: 404"),
                Kind::RepoNotFound,
            ),
            (
                err(ErrorCode::GenericError, ErrorClass::Http, "unexpected http status code: 500"),
                Kind::Transport,
            ),
            (
                err(ErrorCode::NotFound, ErrorClass::Repository, "could not find repository at '/x'"),
                Kind::RepoNotFound,
            ),
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Net,
                    "failed to resolve address for nohost: Name or service not known",
                ),
                Kind::Transport,
            ),
            (err(ErrorCode::Certificate, ErrorClass::Ssl, "the SSL certificate is invalid"), Kind::Transport),
            (
                err(
                    ErrorCode::NotFastForward,
                    ErrorClass::Reference,
                    "cannot push non-fastforwardable reference",
                ),
                Kind::PushRejected,
            ),
            (
                err(ErrorCode::Conflict, ErrorClass::Checkout, "1 conflict prevents checkout"),
                Kind::DirtyWorktree,
            ),
            (
                err(ErrorCode::NotFound, ErrorClass::Reference, "reference 'refs/heads/x' not found"),
                Kind::NotFound,
            ),
            (err(ErrorCode::Exists, ErrorClass::Reference, "already exists"), Kind::Conflict),
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Os,
                    "failed to connect to 127.0.0.1: Connection refused",
                ),
                Kind::Transport,
            ),
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Os,
                    "failed to resolve path '/x.git': No such file or directory",
                ),
                Kind::RepoNotFound,
            ),
            (err(ErrorCode::GenericError, ErrorClass::Os, "disk full"), Kind::Internal),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e), want, "{e}");
        }
    }

    /// What a user's path or input makes libgit2 say is a 4xx, whatever code it files it under.
    #[test]
    fn user_input_failures_are_not_internal() {
        let os = |errno: i32| os_text(&std::io::Error::from_raw_os_error(errno));
        let cases = [
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Os,
                    &format!("failed to resolve path '/l': {}", os(libc::ELOOP)),
                ),
                Kind::InvalidPath,
            ),
            // mkdir on a loop: libgit2 says EEXISTS.
            (
                err(
                    ErrorCode::Exists,
                    ErrorClass::Os,
                    &format!("failed to make directory '/l': {}", os(libc::ELOOP)),
                ),
                Kind::InvalidPath,
            ),
            (
                err(
                    ErrorCode::InvalidSpec,
                    ErrorClass::Os,
                    &format!("invalid path for filesystem '/a': {}", os(libc::ENAMETOOLONG)),
                ),
                Kind::InvalidPath,
            ),
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Os,
                    &format!("failed to stat '/f/x': {}", os(libc::ENOTDIR)),
                ),
                Kind::InvalidPath,
            ),
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Os,
                    &format!("could not open '/r/.git/index': {}", os(libc::EACCES)),
                ),
                Kind::Forbidden,
            ),
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Os,
                    &format!("failed to make directory '/ro': {}", os(libc::EROFS)),
                ),
                Kind::Forbidden,
            ),
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::None,
                    "data contained a nul byte that could not be represented as a string",
                ),
                Kind::BadRequest,
            ),
            (
                err(ErrorCode::GenericError, ErrorClass::Index, "invalid path: '.git/config'"),
                Kind::BadRequest,
            ),
            (err(ErrorCode::GenericError, ErrorClass::Net, "unsupported URL protocol"), Kind::BadRequest),
            (
                err(ErrorCode::GenericError, ErrorClass::Invalid, "invalid argument: 'url->host'"),
                Kind::BadRequest,
            ),
            (
                err(ErrorCode::InvalidSpec, ErrorClass::Net, "invalid url: malformed hostname"),
                Kind::BadRequest,
            ),
            (
                err(ErrorCode::InvalidSpec, ErrorClass::Config, "invalid config item name 'a.x'"),
                Kind::BadRequest,
            ),
            (
                err(ErrorCode::GenericError, ErrorClass::Config, "failed to parse 'v' as a boolean"),
                Kind::Conflict,
            ),
            // Not the user's doing: stays a 500.
            (
                err(
                    ErrorCode::GenericError,
                    ErrorClass::Os,
                    &format!("failed to write '/r/x': {}", os(libc::ENOSPC)),
                ),
                Kind::Internal,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e), want, "{e}");
        }
        let io = |errno| GitError::io(&std::io::Error::from_raw_os_error(errno), Path::new("/p"));
        assert_eq!(io(libc::ELOOP).kind, Kind::InvalidPath);
        assert_eq!(io(libc::ENAMETOOLONG).kind, Kind::InvalidPath);
        assert_eq!(io(libc::EACCES).kind, Kind::Forbidden);
        assert_eq!(io(libc::ENOENT).kind, Kind::NotFound);
        assert_eq!(io(libc::EIO).kind, Kind::Internal);
        let e = io(libc::ELOOP);
        assert!(e.message.starts_with("/p: ") && !e.message.contains("os error"), "{}", e.message);
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("user alice pw s3cr3t-alice", Some("alice"), Some("s3cr3t-alice")),
            "user *** pw ***"
        );
        assert_eq!(
            redact_url_passwords(
                "fatal: https://bob:tok3n@example.com/r.git and http://x@h/ and 'ftp://a:b@c'"
            ),
            "fatal: https://bob:***@example.com/r.git and http://x@h/ and 'ftp://a:***@c'"
        );
        assert_eq!(redact_url_passwords("no urls :// here"), "no urls :// here");
        assert_eq!(redact("x", Some(""), Some("")), "x");
    }
}
