//! The daemon's one error type and its single mapping to HTTP.
//!
//! The error type, the envelope and the layer that renders it live in the `toolbox-envelope`
//! crate, shared with the computer-use agent; this file names the daemon's codes. Services
//! return their own domain errors; an area's `api.rs` maps them to an [`ApiError`].

pub use toolbox_envelope::layer as envelope_layer;
use toolbox_envelope::{ErrorCode, Generic};

/// The daemon's error: status, optional [`Code`], and the message the SDK shows its user.
pub type ApiError = toolbox_envelope::ApiError<Code>;

/// Error codes of the clients' `DaemonErrorCode` enum that this daemon emits, plus the two
/// generic ones the clients do not know yet (`PAYLOAD_TOO_LARGE`, `TOO_MANY_REQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    InvalidRequestBody,
    NotFound,
    Conflict,
    Unauthorized,
    Forbidden,
    Gone,
    RequestTimeout,
    PayloadTooLarge,
    TooManyRequests,
    UnprocessableEntity,
    InternalServerError,
    ProcessExecutionTimeout,
    ProcessNotFound,
    SessionEnded,
    CommandAlreadyCompleted,
    FileNotFound,
    FileAccessDenied,
    InvalidFilePath,
    FileReadFailed,
    GitAuthFailed,
    GitRepoNotFound,
    GitBranchNotFound,
    GitBranchExists,
    GitPushRejected,
    GitDirtyWorktree,
    GitMergeConflict,
    GitTransportFailed,
    GitRemoteRejected,
    LspServerNotInitialized,
    RecordingStillActive,
    RecordingFfmpegNotFound,
}

impl From<Generic> for Code {
    fn from(g: Generic) -> Self {
        match g {
            Generic::BadRequest => Code::BadRequest,
            Generic::InvalidRequestBody => Code::InvalidRequestBody,
            Generic::NotFound => Code::NotFound,
            Generic::Conflict => Code::Conflict,
            Generic::Gone => Code::Gone,
            Generic::PayloadTooLarge => Code::PayloadTooLarge,
            Generic::TooManyRequests => Code::TooManyRequests,
            Generic::InternalServerError => Code::InternalServerError,
        }
    }
}

impl ErrorCode for Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "BAD_REQUEST",
            Code::InvalidRequestBody => "INVALID_REQUEST_BODY",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Forbidden => "FORBIDDEN",
            Code::Gone => "GONE",
            Code::RequestTimeout => "REQUEST_TIMEOUT",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::TooManyRequests => "TOO_MANY_REQUESTS",
            Code::UnprocessableEntity => "UNPROCESSABLE_ENTITY",
            Code::InternalServerError => "INTERNAL_SERVER_ERROR",
            Code::ProcessExecutionTimeout => "PROCESS_EXECUTION_TIMEOUT",
            Code::ProcessNotFound => "PROCESS_NOT_FOUND",
            Code::SessionEnded => "SESSION_ENDED",
            Code::CommandAlreadyCompleted => "COMMAND_ALREADY_COMPLETED",
            Code::FileNotFound => "FILE_NOT_FOUND",
            Code::FileAccessDenied => "FILE_ACCESS_DENIED",
            Code::InvalidFilePath => "INVALID_FILE_PATH",
            Code::FileReadFailed => "FILE_READ_FAILED",
            Code::GitAuthFailed => "GIT_AUTH_FAILED",
            Code::GitRepoNotFound => "GIT_REPO_NOT_FOUND",
            Code::GitBranchNotFound => "GIT_BRANCH_NOT_FOUND",
            Code::GitBranchExists => "GIT_BRANCH_EXISTS",
            Code::GitPushRejected => "GIT_PUSH_REJECTED",
            Code::GitDirtyWorktree => "GIT_DIRTY_WORKTREE",
            Code::GitMergeConflict => "GIT_MERGE_CONFLICT",
            Code::GitTransportFailed => "GIT_TRANSPORT_FAILED",
            Code::GitRemoteRejected => "GIT_REMOTE_REJECTED",
            Code::LspServerNotInitialized => "LSP_SERVER_NOT_INITIALIZED",
            Code::RecordingStillActive => "RECORDING_STILL_ACTIVE",
            Code::RecordingFfmpegNotFound => "RECORDING_FFMPEG_NOT_FOUND",
        }
    }
}

impl Code {
    /// The code on the wire (also through [`ErrorCode`]; here so callers need no trait import).
    pub fn as_str(self) -> &'static str {
        ErrorCode::as_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_kinds_keep_their_wire_names() {
        use Generic::*;
        for g in [
            BadRequest,
            InvalidRequestBody,
            NotFound,
            Conflict,
            Gone,
            PayloadTooLarge,
            TooManyRequests,
            InternalServerError,
        ] {
            assert_eq!(Code::from(g).as_str(), g.as_str());
        }
        assert_eq!(Code::ProcessExecutionTimeout.as_str(), "PROCESS_EXECUTION_TIMEOUT");
        assert_eq!(Code::FileReadFailed.as_str(), "FILE_READ_FAILED");
    }
}
