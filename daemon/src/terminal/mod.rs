//! The web terminal on port 22222: a server of its own (page, assets and a websocket per
//! shell), so the whole area is its HTTP side.

pub mod api;

pub use api::run;
