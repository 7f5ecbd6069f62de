//! Running processes: `/process/execute`, code-run, sessions, PTYs and interpreter contexts.
//! Each is a folder with its `api.rs`; [`api`] mounts them together.

pub mod api;
pub mod code_run;
pub mod execute;
pub mod interpreter;
pub mod pty;
pub mod session;
pub mod tree;
