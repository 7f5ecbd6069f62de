//! Language servers behind `/lsp`: a registry of servers keyed by language and project, each a
//! process group spoken to over stdio by the `lsp-bridge` client.
//!
//! Beyond the reference: the language decides the server (python is not served by TypeScript),
//! servers are stopped for real and die with the daemon, a crashed server is reported and can be
//! started again, documents edited on disk are re-sent before each query, and more languages can
//! be configured (`DAYTONA_LSP_SERVERS`).

pub mod api;
mod error;
pub mod languages;
mod server;
pub mod service;

pub use error::LspError;
pub use service::Lsp;
