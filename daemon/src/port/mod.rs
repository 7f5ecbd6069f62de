//! `/port`: the TCP ports something in the sandbox listens on, and whether one is in use.
//!
//! Beyond the reference: IPv6 and dual-stack listeners are reported (it read only
//! `/proc/net/tcp`), the tables are read on demand instead of by a background scan that also
//! walked every process's descriptors, and the in-use probe closes its connection.

pub mod api;
pub mod service;

pub use service::Ports;
