//! Clipboard bodies (`/computeruse/clipboard`; an extension: not in Daytona's daemon).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most text the clipboard routes move either way, in UTF-8 bytes.
pub const MAX_CLIPBOARD_BYTES: usize = 16 * 1024 * 1024;

/// The CLIPBOARD selection's text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClipboardResponse {
    /// UTF-8 text; empty when no client owns the clipboard. A Latin-1 (`STRING`) value of an
    /// owner that offers no UTF-8 is converted.
    pub text: String,
}

/// What to put on the clipboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetClipboardRequest {
    /// UTF-8 text, at most 16 MiB. The agent owns the selection and serves it (as
    /// `UTF8_STRING`, `TEXT`, and `STRING` when it is Latin-1) until another client takes it.
    pub text: String,
}
