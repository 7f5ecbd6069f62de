//! How X11 failures reach clients, for every area that drives the X server (input,
//! screenshots, display). Automation failures are `400 bad request: <text>` (sdk-0.226 §2.6); a
//! display that cannot be reached is not the request's fault: 503, saying what to do about it.

use super::error::{Fault, XError};
use crate::error::{AgentErrors, ApiError};

impl From<XError> for ApiError {
    fn from(e: XError) -> ApiError {
        match e.fault {
            Fault::Refused => ApiError::bad_request(e.message),
            Fault::Lost => ApiError::unavailable(format!(
                "X display not available: {}; start the desktop with POST /computeruse/start",
                e.message
            )),
            Fault::Internal => ApiError::internal(e.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn faults_map_to_status() {
        let e: ApiError = XError::new("no keysym for key \"x\"").into();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::BAD_REQUEST, "bad request: no keysym for key \"x\"")
        );
        let e: ApiError = XError::lost("cannot open display :9").into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, None);
        assert_eq!(
            e.message,
            "X display not available: cannot open display :9; start the desktop with POST /computeruse/start"
        );
        let e: ApiError = XError::internal("X11 task failed: panicked").into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
