//! The info routes: version, directories, `/init` and `/env`, and the live resource snapshot
//! `/system/metrics`. The environment overlay they update is the shared `crate::env` service
//! (every area's children read it); the snapshot is [`metrics`], over the `crate::cgroup`
//! readers.

pub mod api;
pub mod metrics;
