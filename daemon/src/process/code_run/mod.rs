//! `POST /process/code-run`: run a Python, JavaScript or TypeScript program in a fresh shell,
//! exactly like `/process/execute` runs a command, and report the matplotlib charts it shows.
//!
//! The HTTP edge is `api`; the service that runs programs is `service`; `chart` decodes the
//! chart artifacts, `detect` decides when Python code needs the chart wrapper, and `script`
//! writes the shell commands.

pub mod api;
pub mod chart;
pub mod detect;
pub mod script;
pub mod service;
