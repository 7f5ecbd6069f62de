//! How talking to the X server fails.

/// What kind of failure an [`XError`] is; it decides what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The server refused or could not do what was asked (a protocol error, a missing
    /// extension, a key with no keysym): the request's problem.
    Refused,
    /// The connection itself broke or never opened: the next call reconnects.
    Lost,
    /// Something on the agent's side failed (a worker thread died).
    Internal,
}

/// A failure talking to the X server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XError {
    pub message: String,
    pub fault: Fault,
}

impl XError {
    /// A refusal (the common case).
    pub fn new(message: impl Into<String>) -> XError {
        XError { message: message.into(), fault: Fault::Refused }
    }

    pub fn lost(message: impl Into<String>) -> XError {
        XError { message: message.into(), fault: Fault::Lost }
    }

    pub fn internal(message: impl Into<String>) -> XError {
        XError { message: message.into(), fault: Fault::Internal }
    }

    pub fn is_lost(&self) -> bool {
        self.fault == Fault::Lost
    }
}

impl std::fmt::Display for XError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<x11rb::errors::ConnectionError> for XError {
    fn from(e: x11rb::errors::ConnectionError) -> XError {
        XError::lost(format!("X11 connection: {e}"))
    }
}

impl From<x11rb::errors::ReplyError> for XError {
    fn from(e: x11rb::errors::ReplyError) -> XError {
        match e {
            x11rb::errors::ReplyError::ConnectionError(c) => c.into(),
            x11rb::errors::ReplyError::X11Error(x) => XError::new(format!("X11 error: {:?}", x.error_kind)),
        }
    }
}

impl From<x11rb::errors::ReplyOrIdError> for XError {
    fn from(e: x11rb::errors::ReplyOrIdError) -> XError {
        match e {
            x11rb::errors::ReplyOrIdError::ConnectionError(c) => c.into(),
            x11rb::errors::ReplyOrIdError::X11Error(x) => {
                XError::new(format!("X11 error: {:?}", x.error_kind))
            }
            x11rb::errors::ReplyOrIdError::IdsExhausted => XError::new("X11 ids exhausted"),
        }
    }
}
