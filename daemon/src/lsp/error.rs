//! What can go wrong with a language server, in the service's terms; `api.rs` maps each case to
//! a status and code.

use std::path::PathBuf;

/// A failure of an `/lsp` operation.
#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("invalid language id {0:?}: letters, digits and -_.+# only, at most 64 bytes")]
    InvalidLanguage(String),
    #[error(
        "unsupported language {language:?}: supported are {}; more can be configured with DAYTONA_LSP_SERVERS",
        supported.join(", ")
    )]
    Unsupported { language: String, supported: Vec<String> },
    #[error("no language server for {language} is installed: looked for {} on PATH", looked_for.join(", "))]
    NotInstalled { language: String, looked_for: Vec<String> },
    #[error(
        "{limit} language servers are running, the most allowed (DAYTONA_LSP_MAX_SERVERS); stop one first"
    )]
    TooMany { limit: usize },
    #[error("{}: {detail}", path.display())]
    BadProject { path: PathBuf, detail: String, kind: PathProblem },
    #[error("{}: {detail}", path.display())]
    BadFile { path: PathBuf, detail: String, kind: PathProblem },
    #[error("uri must be a file:// URI, got {0:?}")]
    BadUri(String),
    #[error("server not initialized: no {language} language server runs for {project}; call start first")]
    NotStarted { language: String, project: String },
    #[error(
        "server not initialized: the {language} language server for {project} {how}; call start to run it again{}",
        stderr_suffix(stderr)
    )]
    Exited { language: String, project: String, how: String, stderr: String },
    #[error("the {language} language server ({program}) failed to start: {detail}{}", stderr_suffix(stderr))]
    StartFailed { language: String, program: String, detail: String, stderr: String },
    /// The sandbox has no processes, memory or descriptors left to start the server.
    #[error(transparent)]
    Exhausted(#[from] crate::exhaust::Exhausted),
    #[error("the language server did not answer {method} within {}s", after.as_secs_f64())]
    Timeout { method: String, after: std::time::Duration },
    #[error("the language server's answer to {method} is {size} bytes, over the {limit}-byte limit")]
    TooLarge { method: String, size: usize, limit: usize },
    #[error("the {language} language server does not support {method}")]
    NotSupported { language: String, method: String },
    #[error("the language server failed {method}: {message} (code {code})")]
    Request { method: String, code: i64, message: String },
    #[error("the language server is not taking requests: {detail}")]
    Stalled { detail: String },
    #[error("the language server's answer to {method} could not be read: {detail}")]
    BadAnswer { method: String, detail: String },
}

/// Which kind of path problem: the caller's path does not exist, may not be read, or is the
/// wrong kind of thing (or too large).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    Missing,
    Denied,
    Invalid,
    TooLarge,
}

impl PathProblem {
    pub fn of(e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOENT) => PathProblem::Missing,
            Some(libc::EACCES | libc::EPERM) => PathProblem::Denied,
            _ => PathProblem::Invalid,
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!("; its last output: {stderr}") }
}
