//! Which node a tree or find starts from (spec computer-use.md §7.3).

use futures_util::future::join_all;

use super::bus::{ACCESSIBLE, Calls};
use super::error::{A11yError, CallError};
use super::node::{NodeRef, STATE_ACTIVE, States};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The application owning the active top-level window (else the first application).
    Focused,
    /// The registry root: every application.
    All,
    /// The application whose bus connection belongs to this process.
    Pid(u32),
}

impl Scope {
    pub fn parse(scope: Option<&str>, pid: Option<i64>) -> Result<Scope, A11yError> {
        let raw = scope.unwrap_or_default().trim();
        match raw.to_lowercase().as_str() {
            "" | "focused" => Ok(Scope::Focused),
            "all" => Ok(Scope::All),
            "pid" => match pid {
                Some(p) if p > 0 => u32::try_from(p)
                    .map(Scope::Pid)
                    .map_err(|_| A11yError::InvalidRequest(format!("pid {p} is out of range"))),
                _ => Err(A11yError::InvalidRequest("pid must be positive".into())),
            },
            _ => Err(A11yError::InvalidScope(raw.to_owned())),
        }
    }
}

fn registry_error(e: CallError) -> A11yError {
    match e {
        CallError::Disconnected(d) => A11yError::Unavailable(format!("connection lost: {d}")),
        other => A11yError::Unavailable(format!("registry: {other}")),
    }
}

/// The node the scope names.
pub async fn resolve(calls: &Calls, scope: Scope) -> Result<NodeRef, A11yError> {
    let root = NodeRef::registry_root();
    if scope == Scope::All {
        return Ok(root);
    }
    let apps = calls.children(&root).await.map_err(registry_error)?;
    match scope {
        Scope::All => unreachable!(),
        Scope::Focused => {
            let active = join_all(apps.iter().map(|app| has_active_window(calls, app))).await;
            let pick = apps.iter().zip(active).find(|(_, a)| *a).map(|(app, _)| app).or(apps.first());
            pick.cloned().ok_or(A11yError::NoRoot)
        }
        Scope::Pid(pid) => {
            let pids = join_all(apps.iter().map(|app| calls.pid_of(&app.bus))).await;
            apps.into_iter()
                .zip(pids)
                .find(|(_, p)| matches!(p, Ok(p) if *p == pid))
                .map(|(app, _)| app)
                .ok_or(A11yError::NoRoot)
        }
    }
}

/// Whether one of the application's top-level windows has the `active` state. Applications
/// that do not answer count as inactive.
async fn has_active_window(calls: &Calls, app: &NodeRef) -> bool {
    let Ok(windows) = calls.children(app).await else { return false };
    let states =
        join_all(windows.iter().map(|w| calls.call::<_, Vec<u32>>(w, ACCESSIBLE, "GetState", &()))).await;
    states.into_iter().any(|s| s.is_ok_and(|words| States::from_words(&words).has(STATE_ACTIVE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_trimmed_and_case_insensitively() {
        assert_eq!(Scope::parse(None, None).unwrap(), Scope::Focused);
        assert_eq!(Scope::parse(Some(""), None).unwrap(), Scope::Focused);
        assert_eq!(Scope::parse(Some(" Focused "), None).unwrap(), Scope::Focused);
        assert_eq!(Scope::parse(Some("ALL"), Some(-3)).unwrap(), Scope::All);
        assert_eq!(Scope::parse(Some("pid"), Some(42)).unwrap(), Scope::Pid(42));
    }

    #[test]
    fn pid_scope_needs_a_positive_pid() {
        for pid in [None, Some(0), Some(-1)] {
            let e = Scope::parse(Some("pid"), pid).unwrap_err();
            assert_eq!(e.to_string(), "invalid accessibility request: pid must be positive");
        }
        assert!(matches!(Scope::parse(Some("pid"), Some(1 << 40)), Err(A11yError::InvalidRequest(_))));
    }

    #[test]
    fn unknown_scopes_are_named() {
        let e = Scope::parse(Some(" window "), None).unwrap_err();
        assert_eq!(e.to_string(), "invalid accessibility scope: got \"window\", expected focused|pid|all");
    }
}
