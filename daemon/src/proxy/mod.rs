//! The preview proxy: `ANY /proxy/{port}/{path…}` relays a request to `http://localhost:<port>`
//! inside the sandbox and streams the answer back; upgraded connections (WebSocket) are
//! tunnelled.
//!
//! Beyond the reference: a target listening only on `::1` is reached too, a failure is a 502
//! JSON envelope naming the port and the cause (the reference answered a bare 502), and the
//! port is checked (1 to 65535). Not in the OpenAPI document, like the reference's.

pub mod api;
pub mod target;
pub mod upstream;

use thiserror::Error;

/// Why the target did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Nothing listens on the port (on 127.0.0.1 nor on ::1).
    Refused,
    /// Connecting took longer than the connect timeout.
    TimedOut,
    /// The target reset the connection.
    Reset,
    /// The target closed the connection before a complete response.
    Closed,
    Other(String),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Refused => f.write_str("connection refused (nothing listens on it)"),
            Cause::TimedOut => f.write_str("connecting timed out"),
            Cause::Reset => f.write_str("connection reset by the target"),
            Cause::Closed => f.write_str("the target closed the connection before answering"),
            Cause::Other(s) => f.write_str(s),
        }
    }
}

/// What can go wrong relaying a request.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("invalid port {0:?} in /proxy/{0}/…: expected a number from 1 to 65535")]
    BadPort(String),
    #[error("the target URL cannot be built: {0}")]
    BadTarget(String),
    #[error("the request body could not be read: {0}")]
    ClientBody(String),
    #[error("proxy to localhost:{port} failed: {cause}")]
    Upstream { port: u16, cause: Cause },
    #[error("localhost:{port} switched protocols though the request asked for no upgrade")]
    UnaskedUpgrade { port: u16 },
}
