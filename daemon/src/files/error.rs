//! What the `/files` services report when they cannot do what was asked. They know nothing of
//! HTTP: `api.rs` turns these into statuses and codes (one mapping for the whole area).

use std::io;
use std::path::PathBuf;

/// A failed file operation.
#[derive(Debug)]
pub enum FsError {
    /// An OS call on `path` failed; the error's kind decides the answer (missing, denied, other).
    Os { path: PathBuf, err: io::Error },
    /// The request cannot be carried out as asked; the text says why (`invalid mode format`,
    /// `cannot delete directory without recursive flag`, …).
    Refused(String),
    /// A path names the wrong kind of file (a directory where a file is needed, a FIFO); the text
    /// says which.
    WrongKind(String),
    /// The destination of a move already exists (moves never overwrite).
    Exists,
    /// A file was opened but could not be read.
    Read { path: PathBuf, err: io::Error },
}

impl FsError {
    /// An OS error on `path`, for `map_err`.
    pub fn os(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FsError {
        let path = path.into();
        move |err| FsError::Os { path, err }
    }
}
