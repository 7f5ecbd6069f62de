//! The accessibility layer's failures (spec computer-use.md §7.5).
//!
//! Each class keeps the reference's message sentinel as its prefix, so the text users see stays
//! recognisable; `api` maps the class (never the text) to a status and code.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum A11yError {
    /// The session bus, `GetAddress` or the accessibility bus itself failed.
    #[error("accessibility bus not reachable: {0}")]
    Unavailable(String),
    #[error("accessibility node not found: {0}")]
    NodeNotFound(String),
    #[error("no accessible root for focused window")]
    NoRoot,
    /// The node lacks the interface, method or action asked for (detail may be empty).
    #[error("action not supported by node{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    NotSupported(String),
    #[error("invalid accessibility scope: got {0:?}, expected focused|pid|all")]
    InvalidScope(String),
    #[error("invalid accessibility request: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Internal(String),
    /// A wait's condition did not hold in time (the text names the condition).
    #[error("{0}")]
    WaitTimeout(String),
    /// An element-targeted input names a node that no longer exists.
    #[error("accessibility node is gone: {0}")]
    NodeGone(String),
    /// An element-targeted input names a node that is not on screen.
    #[error("accessibility node is not visible: {0}")]
    NotVisible(String),
}

/// How a failed D-Bus call is treated by the walkers and the node operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The object, or the application owning it, is gone.
    #[error("{0}")]
    NotFound(String),
    /// The object does not implement the interface, method or property.
    #[error("{0}")]
    NotSupported(String),
    /// No reply in time (or the application already timed out earlier in this request).
    #[error("{0}")]
    Timeout(String),
    /// The connection to the accessibility bus broke; the cached connection must be re-dialled.
    #[error("{0}")]
    Disconnected(String),
    #[error("{0}")]
    Other(String),
}

impl CallError {
    /// Classifies a zbus failure by the D-Bus error name (spec §7.1).
    pub fn from_zbus(e: &zbus::Error) -> CallError {
        match e {
            zbus::Error::MethodError(name, detail, _) => {
                let short = name.as_str().rsplit('.').next().unwrap_or_default();
                let text = match detail {
                    Some(d) if !d.is_empty() => format!("{}: {d}", name.as_str()),
                    _ => name.as_str().to_owned(),
                };
                classify_error_name(short, text)
            }
            zbus::Error::FDO(fdo) => {
                let text = fdo.to_string();
                match fdo.as_ref() {
                    zbus::fdo::Error::UnknownMethod(_)
                    | zbus::fdo::Error::UnknownInterface(_)
                    | zbus::fdo::Error::UnknownProperty(_)
                    | zbus::fdo::Error::NotSupported(_) => CallError::NotSupported(text),
                    zbus::fdo::Error::ServiceUnknown(_)
                    | zbus::fdo::Error::NameHasNoOwner(_)
                    | zbus::fdo::Error::UnknownObject(_) => CallError::NotFound(text),
                    zbus::fdo::Error::Timeout(_)
                    | zbus::fdo::Error::TimedOut(_)
                    | zbus::fdo::Error::NoReply(_) => CallError::Timeout(text),
                    _ => CallError::Other(text),
                }
            }
            zbus::Error::InputOutput(io) => CallError::Disconnected(io.to_string()),
            other => CallError::Other(other.to_string()),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::NotFound(_))
    }
}

fn classify_error_name(short: &str, text: String) -> CallError {
    match short {
        "UnknownMethod" | "UnknownInterface" | "UnknownProperty" | "NotSupported" => {
            CallError::NotSupported(text)
        }
        "ServiceUnknown" | "NameHasNoOwner" | "UnknownObject" => CallError::NotFound(text),
        "NoReply" | "Timeout" | "TimedOut" => CallError::Timeout(text),
        _ => CallError::Other(text),
    }
}

impl CallError {
    /// The request-level error for a call on node `id` that could not be completed.
    pub fn into_a11y(self, id: &str) -> A11yError {
        match self {
            CallError::NotFound(d) => A11yError::NodeNotFound(format!("{id}: {d}")),
            CallError::NotSupported(d) => A11yError::NotSupported(d),
            CallError::Timeout(d) => A11yError::Internal(format!("node {id} did not answer: {d}")),
            CallError::Disconnected(d) => A11yError::Unavailable(format!("connection lost: {d}")),
            CallError::Other(d) => A11yError::Internal(format!("node {id}: {d}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_the_reference_sentinels() {
        assert_eq!(A11yError::NotSupported(String::new()).to_string(), "action not supported by node");
        assert_eq!(
            A11yError::NotSupported("DoAction(0) returned false".into()).to_string(),
            "action not supported by node: DoAction(0) returned false"
        );
        assert_eq!(
            A11yError::InvalidScope("window".into()).to_string(),
            "invalid accessibility scope: got \"window\", expected focused|pid|all"
        );
        assert_eq!(A11yError::NoRoot.to_string(), "no accessible root for focused window");
        assert!(
            A11yError::Unavailable("session bus: x".into())
                .to_string()
                .starts_with("accessibility bus not reachable: ")
        );
    }

    #[test]
    fn dbus_error_names_are_classified() {
        let c = |n: &str| classify_error_name(n.rsplit('.').next().unwrap(), n.into());
        assert!(matches!(c("org.freedesktop.DBus.Error.UnknownMethod"), CallError::NotSupported(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.UnknownInterface"), CallError::NotSupported(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.UnknownProperty"), CallError::NotSupported(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.NotSupported"), CallError::NotSupported(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.ServiceUnknown"), CallError::NotFound(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.NameHasNoOwner"), CallError::NotFound(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.UnknownObject"), CallError::NotFound(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.NoReply"), CallError::Timeout(_)));
        assert!(matches!(c("org.freedesktop.DBus.Error.AccessDenied"), CallError::Other(_)));
        let e = CallError::NotFound("x".into()).into_a11y(":1.4:/p");
        assert_eq!(e.to_string(), "accessibility node not found: :1.4:/p: x");
    }
}
