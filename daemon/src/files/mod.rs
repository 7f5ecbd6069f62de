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

/// A required query parameter that is missing or empty. Kept only for `/git`, whose routes
/// still call it; `crate::fspath::FilePath` replaces it for paths.
pub fn required<'a>(value: &'a Option<String>, message: &str) -> Result<&'a str, crate::error::ApiError> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| crate::error::ApiError::bad_request(message))
}
