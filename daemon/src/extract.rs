//! The daemon's request layer: every route takes its input through these extractors, which
//! reject with the JSON envelope (see `toolbox_envelope::extract` for the rules they share with
//! the computer-use agent). File paths come in raw, as bytes, through [`crate::fspath`].

pub use toolbox_envelope::extract::{
    Json, MAX_JSON_BODY, OptionalJson, Path, Query, Rejection, Ws, decode, parse_query, read_body,
};

use crate::error::ApiError;

/// A required body field: absent or empty is 400 `INVALID_REQUEST_BODY`, as the reference's
/// validator answers.
pub fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_body(format!("invalid request body: {field} is required")))
}
