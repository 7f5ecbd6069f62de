//! The info routes: version, directories, `/init` and `/env`. The environment overlay they
//! update is the shared `crate::env` service (every area's children read it), so this area is
//! its HTTP side only.

pub mod api;
