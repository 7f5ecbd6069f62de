//! The `/files` API: listing and metadata, file operations, search, transfers and watching.
//! `api` holds the routes; the other modules are the services behind them.

mod api;
pub mod download;
pub mod error;
pub mod info;
pub mod ops;
pub mod search;
pub mod upload;
pub mod watch;

pub use api::routes;
