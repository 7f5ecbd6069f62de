//! Request bodies decoded as JSON whatever their `Content-Type`.
//!
//! The sync Python client sends some JSON bodies without a `Content-Type` header, so axum's
//! `Json` extractor (which insists on one) cannot be used. Absent and `null` fields are the
//! same thing to serde's `Option`, which is what the clients need.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON body accepted. Commands travel in JSON (`/process/execute`), so this is generous;
/// files never come through here.
pub const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

/// A JSON request body.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|e| ApiError::invalid_body(format!("cannot read body: {e}")))?;
        decode(&bytes).map(JsonBody)
    }
}

/// Decodes a body, naming what is wrong when it cannot.
pub fn decode<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_body("the request body is empty; a JSON object is expected"));
    }
    serde_json::from_slice(bytes).map_err(ApiError::invalid_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Req {
        name: String,
        n: Option<u32>,
    }

    #[test]
    fn decodes_and_reports() {
        let r: Req = decode(&Bytes::from_static(br#"{"name":"a","n":null,"extra":1}"#)).unwrap();
        assert_eq!(r, Req { name: "a".into(), n: None });
        let e = decode::<Req>(&Bytes::from_static(b"")).unwrap_err();
        assert_eq!(e.code, Some(crate::error::Code::InvalidRequestBody));
        assert!(e.message.contains("empty"));
        let e = decode::<Req>(&Bytes::from_static(br#"{"name":1}"#)).unwrap_err();
        assert!(e.message.starts_with("invalid body request: invalid type"), "{}", e.message);
    }
}
