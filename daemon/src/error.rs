//! The daemon's one error type and its single mapping to HTTP.
//!
//! The error type, the envelope and the layer that renders it live in the `toolbox-envelope`
//! crate, shared with the computer-use agent; this file names the daemon's codes. Services
//! return their own domain errors; an area's `api.rs` maps them to an [`ApiError`].

pub use toolbox_envelope::layer as envelope_layer;

/// The daemon's error: status, optional [`Code`], and the message the SDK shows its user.
pub type ApiError = toolbox_envelope::ApiError<Code>;

toolbox_envelope::error_codes! {
    /// Error codes of the clients' `DaemonErrorCode` enum that this daemon emits: the generic
    /// kinds (two of which, `PAYLOAD_TOO_LARGE` and `TOO_MANY_REQUESTS`, the clients do not know
    /// yet) and these.
    pub enum Code {
        // A missing or wrong token when DAYTONA_AUTH_TOKEN is set (401, crate::auth).
        Unauthorized => "UNAUTHORIZED",
        // Access denied; also a refused signed file URL (403: expired, signature mismatch, bad
        // scheme or encoding; the message says which).
        Forbidden => "FORBIDDEN",
        RequestTimeout => "REQUEST_TIMEOUT",
        UnprocessableEntity => "UNPROCESSABLE_ENTITY",
        ProcessExecutionTimeout => "PROCESS_EXECUTION_TIMEOUT",
        ProcessNotFound => "PROCESS_NOT_FOUND",
        SessionEnded => "SESSION_ENDED",
        CommandAlreadyCompleted => "COMMAND_ALREADY_COMPLETED",
        FileNotFound => "FILE_NOT_FOUND",
        FileAccessDenied => "FILE_ACCESS_DENIED",
        InvalidFilePath => "INVALID_FILE_PATH",
        FileReadFailed => "FILE_READ_FAILED",
        GitAuthFailed => "GIT_AUTH_FAILED",
        GitRepoNotFound => "GIT_REPO_NOT_FOUND",
        GitBranchNotFound => "GIT_BRANCH_NOT_FOUND",
        GitBranchExists => "GIT_BRANCH_EXISTS",
        GitPushRejected => "GIT_PUSH_REJECTED",
        GitDirtyWorktree => "GIT_DIRTY_WORKTREE",
        GitMergeConflict => "GIT_MERGE_CONFLICT",
        GitTransportFailed => "GIT_TRANSPORT_FAILED",
        GitRemoteRejected => "GIT_REMOTE_REJECTED",
        LspServerNotInitialized => "LSP_SERVER_NOT_INITIALIZED",
        // Ours: the clients know only the one above and map these by status.
        LspLanguageUnsupported => "LSP_LANGUAGE_UNSUPPORTED",
        LspServerMissing => "LSP_SERVER_MISSING",
        LspServerFailed => "LSP_SERVER_FAILED",
        LspRequestFailed => "LSP_REQUEST_FAILED",
        LspResponseTooLarge => "LSP_RESPONSE_TOO_LARGE",
        RecordingStillActive => "RECORDING_STILL_ACTIVE",
        RecordingFfmpegNotFound => "RECORDING_FFMPEG_NOT_FOUND",
        // Ours: no X server on the display to record (503), and ffmpeg could not record (500,
        // with its stderr); the clients map both by status.
        RecordingDisplayUnavailable => "RECORDING_DISPLAY_UNAVAILABLE",
        RecordingFailed => "RECORDING_FAILED",
        // Ours: the preview proxy's target did not answer (502; the reference sent no body).
        ProxyUpstreamFailed => "PROXY_UPSTREAM_FAILED",
        // Ours: a process, thread, pipe or file could not be made because the sandbox has used
        // up its processes, memory or descriptors (503; see `exhaust`).
        ResourceExhausted => "RESOURCE_EXHAUSTED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolbox_envelope::Generic;

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
