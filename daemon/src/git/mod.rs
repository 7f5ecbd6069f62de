//! The `/git` API, on libgit2 (vendored and linked statically; no `git` binary is needed).
//!
//! * [`api`] — handlers, DTOs and routes: decode and check the request, resolve its paths, run
//!   the operation, and map [`error::GitError`] to HTTP (the only part that knows HTTP).
//! * [`repo`] — local repository operations; [`remote`] — clone, pull, push; [`url`] — which
//!   remote locations are accepted.
//! * [`creds`] — per-operation credentials, the credential store, TLS settings.
//! * [`config`] — `git config` scopes; [`error`] — classification into the clients' kinds.
//! * [`prescan`] — the quick pass that spares libgit2's status most unchanged files.
//! * [`locks`] — each operation on a blocking thread, one at a time per repository path.

mod api;
pub mod config;
pub mod creds;
pub mod error;
pub mod locks;
mod prescan;
pub mod remote;
pub mod repo;
pub mod url;

pub use api::routes;
