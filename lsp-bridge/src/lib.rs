//! A small async Language Server Protocol client for the daemon's `/lsp/*` routes.
//!
//! [`Client`] speaks JSON-RPC with `Content-Length` framing over any [`AsyncRead`] /
//! [`AsyncWrite`] pair: it numbers requests, keeps a map of pending requests keyed by id (with a
//! timeout and `$/cancelRequest` for each), sends requests and notifications through one queue
//! so they reach the server in call order, answers the requests every server sends its client
//! (`workspace/configuration`, `client/registerCapability`, `window/workDoneProgress/create`, …),
//! drains the server's stderr into a bounded ring, and fails every waiting request with the
//! stderr tail when the server goes away. Messages are the typed ones of [`lsp_types`],
//! re-exported here.
//!
//! It does not spawn language servers. The daemon runs every child through its own reaper (it is
//! PID 1 in the sandbox, and owns process groups, the child environment, and the kill on stop), so
//! it starts the process with `std::process` and hands this crate the three pipes. That also keeps
//! the crate testable over in-memory pipes, and free of any HTTP: the daemon's `lsp` module is the
//! thin HTTP layer over it.
//!
//! Memory is bounded everywhere the server controls it: header blocks (8 KiB), message bodies
//! ([`Options::max_message_bytes`]; larger ones are skipped, see [`Client`]), the stderr ring
//! ([`Options::stderr_bytes`]); and what waits to be written is capped at
//! `max(4 × max_message_bytes, 1 MiB)` so a server that stops reading its input makes sends fail
//! with [`Error::Io`] instead of growing the queue.
//!
//! [`AsyncRead`]: tokio::io::AsyncRead
//! [`AsyncWrite`]: tokio::io::AsyncWrite

mod client;
mod framing;
mod uri;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use client::Client;
pub use lsp_types;
pub use uri::file_uri;

/// Limits of one connection.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long [`Client::request`] waits for an answer. Default 30 s.
    pub request_timeout: Duration,
    /// The largest message body read from the server. Default 16 MiB.
    pub max_message_bytes: usize,
    /// How much of the server's stderr is kept. Default 64 KiB.
    pub stderr_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            request_timeout: Duration::from_secs(30),
            max_message_bytes: 16 << 20,
            stderr_bytes: 64 << 10,
        }
    }
}

/// Why a request or notification failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server did not answer in time; the request was cancelled with `$/cancelRequest`.
    #[error("the language server did not answer {method} within {after:?}")]
    Timeout { method: String, after: Duration },
    /// The server went away (its output ended or was not LSP, or writing to it failed).
    /// `stderr` is the tail (at most 4 KiB) of what it wrote to stderr.
    #[error("the language server closed the connection{}", stderr_suffix(.stderr))]
    Closed { stderr: String },
    /// The answer was larger than [`Options::max_message_bytes`] and was discarded.
    #[error("the language server's answer to {method} is {size} bytes, over the limit of {limit} bytes")]
    ResponseTooLarge { method: String, size: usize, limit: usize },
    /// The server answered with a JSON-RPC error.
    #[error("the language server failed {method}: {message} (code {code})")]
    Server { method: String, code: i64, message: String },
    /// The answer (or the params) did not match the method's type.
    #[error("the language server's answer to {method} could not be decoded: {detail}")]
    Decode { method: String, detail: String },
    /// The message could not be queued (e.g. the server stopped reading its input).
    #[error("{0}")]
    Io(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!("; its stderr ends with: {stderr}") }
}
