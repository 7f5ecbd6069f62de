//! The `/files` API: listing and metadata, file operations, search, transfers and watching.
//!
//! Paths are used as given: relative ones resolve against the daemon's working directory (the
//! daemon never changes directory after start), `~` is not expanded, and symbolic links are
//! followed except where a route says otherwise.

use std::io;
use std::path::Path;

use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, Code};
use crate::state::AppState;

pub mod download;
pub mod info;
pub mod ops;
pub mod search;
pub mod upload;
pub mod watch;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(info::routes())
        .merge(ops::routes())
        .merge(search::routes())
        .merge(download::routes())
        .merge(upload::routes())
        .merge(watch::routes())
}

/// Classifies an OS error on `path` the way the clients expect: a missing path is 404
/// `FILE_NOT_FOUND`, a permission problem 403 `FILE_ACCESS_DENIED`, anything else 400.
pub fn fs_error(err: &io::Error, path: &Path) -> ApiError {
    let detail = format!("{}: {}", path.display(), crate::process::execute::os_error_text(err));
    match err.kind() {
        io::ErrorKind::NotFound => ApiError::new(StatusCode::NOT_FOUND, Code::FileNotFound, detail),
        io::ErrorKind::PermissionDenied => {
            ApiError::new(StatusCode::FORBIDDEN, Code::FileAccessDenied, detail)
        }
        _ => ApiError::bad_request(detail),
    }
}

/// A required query parameter that is missing or empty.
pub fn required<'a>(value: &'a Option<String>, message: &str) -> Result<&'a str, ApiError> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| ApiError::bad_request(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let p = Path::new("/x");
        let e = fs_error(&io::Error::from_raw_os_error(libc::ENOENT), p);
        assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, Some(Code::FileNotFound)));
        assert_eq!(e.message, "/x: no such file or directory");
        let e = fs_error(&io::Error::from_raw_os_error(libc::EACCES), p);
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, Some(Code::FileAccessDenied)));
        let e = fs_error(&io::Error::from_raw_os_error(libc::ENOTDIR), p);
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, Some(Code::BadRequest)));
    }
}
