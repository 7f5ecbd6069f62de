//! What can go wrong with a recording, in the service's terms; the daemon maps each case to a
//! status and code.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("{}", crate::label::LABEL_RULES)]
    InvalidLabel,
    #[error(
        "ffmpeg was not found on PATH; install ffmpeg to record the screen (FFmpeg must be installed and available in PATH to use screen recording)"
    )]
    FfmpegNotFound,
    #[error(
        "cannot record display {display}: {detail}; start the desktop (computer_use.start()) or set DISPLAY"
    )]
    DisplayUnavailable { display: String, detail: String },
    #[error("recording not found")]
    NotFound,
    #[error("recording file not found")]
    FileMissing,
    #[error("recording {0} is still active, stop it first")]
    StillActive(String),
    #[error("{0} recordings are running, the most allowed; stop one first")]
    TooMany(usize),
    #[error("the daemon is shutting down; no recording can start")]
    ShuttingDown,
    /// ffmpeg could not record; the recording is listed as failed with the same reason.
    #[error("recording failed: {0}")]
    Failed(String),
    #[error("{what} {}: {err}", path.display())]
    Io { what: &'static str, path: PathBuf, err: std::io::Error },
}

impl RecorderError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RecorderError {
        let path = path.into();
        move |err| RecorderError::Io { what, path, err }
    }
}
