//! Waiting for an accessibility condition (extension: not in Daytona's daemon).
//!
//! The condition is checked in full once at the start, again whenever AT-SPI events arrived (a
//! burst settles for [`SETTLE`] first, and events during a check make the next check start at
//! once), and at a slow interval for applications that send no events. Waiting for a query's
//! nodes to exist, an event only needs a look at the nodes it concerns (their subtrees), not a
//! walk of the whole scope: that look answers a dialog appearing within milliseconds. Every check
//! is bounded by the time left, so the answer comes at the deadline, not a check later.

use std::time::Duration;

use tokio::time::Instant;

use super::error::A11yError;
use super::events::{Burst, Subscription};
use super::filter::Filter;
use super::node::{NodeRef, STATE_DEFUNCT, STATE_NAMES, States};
use super::scope::Scope;
use super::walk::Info;

/// How long a burst of events may go on before the condition is re-checked: a window mapping
/// sends tens of events within a few milliseconds.
pub const SETTLE: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Exists,
    Gone,
    State,
    NotState,
}

impl Condition {
    pub fn parse(raw: Option<&str>) -> Result<Condition, A11yError> {
        match raw.map(|c| c.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("exists") => Ok(Condition::Exists),
            Some("gone") => Ok(Condition::Gone),
            Some("state") => Ok(Condition::State),
            Some("not_state") => Ok(Condition::NotState),
            Some(_) => Err(A11yError::InvalidRequest(format!(
                "unknown wait condition {:?}, want exists|gone|state|not_state",
                raw.unwrap_or_default()
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Condition::Exists => "exists",
            Condition::Gone => "gone",
            Condition::State => "state",
            Condition::NotState => "not_state",
        }
    }

    /// Whether a node matching now is enough (the nodes events concern can be looked at alone).
    pub fn is_positive(self) -> bool {
        self == Condition::Exists
    }

    pub fn needs_states(self) -> bool {
        matches!(self, Condition::State | Condition::NotState)
    }
}

/// Which nodes the condition is about.
#[derive(Debug)]
pub enum Target {
    Node(NodeRef),
    Query { scope: Scope, filter: Filter, limit: usize },
}

#[derive(Debug)]
pub struct WaitSpec {
    pub condition: Condition,
    pub target: Target,
    /// State bits for `state` / `not_state`.
    pub states: Vec<usize>,
    pub timeout: Duration,
    /// The re-check without events.
    pub recheck: Duration,
    /// The condition in words, for the timeout's message.
    pub describe: String,
}

impl WaitSpec {
    /// Whether an event's nodes can be looked at alone: a query that must come to match.
    fn looks_at_events(&self) -> bool {
        self.condition.is_positive() && matches!(self.target, Target::Query { .. })
    }

    pub fn timeout_error(&self) -> A11yError {
        A11yError::WaitTimeout(format!(
            "timed out after {} ms waiting for {}",
            self.timeout.as_millis(),
            self.describe
        ))
    }
}

/// The state names of `bits`, for messages.
pub fn state_list(bits: &[usize]) -> String {
    bits.iter().map(|&b| STATE_NAMES[b]).collect::<Vec<_>>().join(", ")
}

/// What one look at the desktop found.
#[derive(Debug, Default)]
pub struct Candidates {
    pub nodes: Vec<(NodeRef, Info)>,
    /// The query's walk stopped early: absence cannot be concluded.
    pub truncated: bool,
}

/// The condition held, with the nodes that make it hold (none for `gone`).
#[derive(Debug)]
pub struct Met {
    pub nodes: Vec<(NodeRef, Info)>,
    pub truncated: bool,
}

/// Whether the condition holds for what a check found. A defunct node counts as absent.
pub fn decide(condition: Condition, states: &[usize], found: Candidates) -> Option<Met> {
    let truncated = found.truncated;
    let live: Vec<(NodeRef, Info)> =
        found.nodes.into_iter().filter(|(_, info)| !info.states.has(STATE_DEFUNCT)).collect();
    let keep = |pred: &dyn Fn(States) -> bool| -> Vec<(NodeRef, Info)> {
        live.iter().filter(|(_, i)| pred(i.states)).cloned().collect()
    };
    let nodes = match condition {
        Condition::Exists => live.clone(),
        Condition::Gone => {
            return (live.is_empty() && !truncated).then_some(Met { nodes: Vec::new(), truncated });
        }
        Condition::State => keep(&|s| s.has_every(states)),
        Condition::NotState => keep(&|s| s.has_none(states)),
    };
    (!nodes.is_empty()).then_some(Met { nodes, truncated })
}

/// The next check a wait makes.
enum Next {
    /// Everything the target names.
    Full,
    /// Only these nodes' subtrees (what a burst of events concerned).
    Nodes(Vec<NodeRef>),
}

/// Waits until a check finds the condition met, the deadline passes, or a check fails for good.
/// `full` looks at everything the target names; `nodes` only at the subtrees of the nodes
/// events concerned (used for [`WaitSpec::looks_at_events`]). Both get the time left, to bound
/// their calls by.
pub async fn run<F, FFut, N, NFut>(
    spec: &WaitSpec,
    deadline: Instant,
    mut events: Option<Subscription>,
    mut full: F,
    mut nodes: N,
) -> Result<Met, A11yError>
where
    F: FnMut(Duration) -> FFut,
    FFut: Future<Output = Result<Candidates, A11yError>>,
    N: FnMut(Duration, Vec<NodeRef>) -> NFut,
    NFut: Future<Output = Result<Candidates, A11yError>>,
{
    let mut next = Next::Full;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(spec.timeout_error());
        }
        let checked = match std::mem::replace(&mut next, Next::Full) {
            Next::Full => tokio::time::timeout_at(deadline, full(left)).await,
            Next::Nodes(list) => tokio::time::timeout_at(deadline, nodes(left, list)).await,
        };
        match checked {
            Err(_) => return Err(spec.timeout_error()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(found)) => {
                if let Some(met) = decide(spec.condition, &spec.states, found) {
                    return Ok(met);
                }
            }
        }
        let recheck = Instant::now() + spec.recheck;
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return Err(spec.timeout_error()),
            () = tokio::time::sleep_until(recheck) => {}
            () = changed(&mut events) => {
                tokio::time::sleep_until((Instant::now() + SETTLE).min(deadline)).await;
                let burst = events.as_mut().map(Subscription::take).unwrap_or_default();
                next = next_check(spec, burst);
            }
        }
    }
}

/// After a burst of events: the nodes they concern, when that is enough, else everything.
fn next_check(spec: &WaitSpec, burst: Burst) -> Next {
    if spec.looks_at_events() && !burst.lost { Next::Nodes(burst.nodes) } else { Next::Full }
}

async fn changed(events: &mut Option<Subscription>) {
    match events {
        Some(sub) => sub.changed().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a11y::node::state_index;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn node(path: &str, states: &[&str]) -> (NodeRef, Info) {
        let mut bits = 0u64;
        for s in states {
            bits |= 1 << state_index(s).unwrap();
        }
        (NodeRef::new(":1.5", path), Info { states: States(bits), ..Info::default() })
    }

    fn found(nodes: Vec<(NodeRef, Info)>, truncated: bool) -> Candidates {
        Candidates { nodes, truncated }
    }

    fn paths(met: Option<Met>) -> Option<Vec<String>> {
        met.map(|m| m.nodes.into_iter().map(|(n, _)| n.path).collect())
    }

    #[test]
    fn conditions_parse() {
        assert_eq!(Condition::parse(None).unwrap(), Condition::Exists);
        assert_eq!(Condition::parse(Some(" ")).unwrap(), Condition::Exists);
        assert_eq!(Condition::parse(Some("Gone")).unwrap(), Condition::Gone);
        assert_eq!(Condition::parse(Some("state")).unwrap(), Condition::State);
        assert_eq!(Condition::parse(Some("NOT_STATE")).unwrap(), Condition::NotState);
        let e = Condition::parse(Some("appears")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid accessibility request: unknown wait condition \"appears\", want exists|gone|state|not_state"
        );
    }

    #[test]
    fn exists_and_gone() {
        let a = node("/a", &["showing"]);
        assert_eq!(
            paths(decide(Condition::Exists, &[], found(vec![a.clone()], false))),
            Some(vec!["/a".into()])
        );
        assert!(decide(Condition::Exists, &[], found(vec![], false)).is_none());
        assert!(decide(Condition::Gone, &[], found(vec![a.clone()], false)).is_none());
        assert_eq!(paths(decide(Condition::Gone, &[], found(vec![], false))), Some(vec![]));
        // A walk cut short proves nothing about absence.
        assert!(decide(Condition::Gone, &[], found(vec![], true)).is_none());
        // Defunct nodes are gone.
        let dead = node("/d", &["defunct"]);
        assert!(decide(Condition::Exists, &[], found(vec![dead.clone()], false)).is_none());
        assert!(decide(Condition::Gone, &[], found(vec![dead], false)).is_some());
    }

    #[test]
    fn state_and_not_state() {
        let focused = state_index("focused").unwrap();
        let enabled = state_index("enabled").unwrap();
        let a = node("/a", &["enabled", "focused"]);
        let b = node("/b", &["enabled"]);
        let both = || found(vec![a.clone(), b.clone()], false);
        assert_eq!(paths(decide(Condition::State, &[focused], both())), Some(vec!["/a".into()]));
        assert_eq!(paths(decide(Condition::State, &[focused, enabled], both())), Some(vec!["/a".into()]));
        assert_eq!(paths(decide(Condition::NotState, &[focused], both())), Some(vec!["/b".into()]));
        assert!(decide(Condition::NotState, &[enabled], both()).is_none());
        assert!(decide(Condition::State, &[focused], found(vec![b.clone()], false)).is_none());
        assert!(decide(Condition::State, &[focused], found(vec![], false)).is_none());
    }

    async fn no_nodes(_: Duration, _: Vec<NodeRef>) -> Result<Candidates, A11yError> {
        panic!("no events in these tests")
    }

    #[test]
    fn only_a_query_that_must_come_to_match_looks_at_the_events_nodes() {
        let query = |condition| WaitSpec {
            target: Target::Query {
                scope: Scope::All,
                filter: Filter::new(None, None, None, None).unwrap(),
                limit: 5,
            },
            ..spec(condition, 1000, 1000)
        };
        let burst = |lost| Burst { nodes: vec![NodeRef::new(":1.5", "/b")], lost, events: 3 };
        assert!(
            matches!(next_check(&query(Condition::Exists), burst(false)), Next::Nodes(n) if n.len() == 1)
        );
        // Events were lost: only everything tells.
        assert!(matches!(next_check(&query(Condition::Exists), burst(true)), Next::Full));
        // Absence and states of a query's nodes need the whole scope; a node id is one node.
        for c in [Condition::Gone, Condition::State, Condition::NotState] {
            assert!(matches!(next_check(&query(c), burst(false)), Next::Full));
        }
        assert!(matches!(next_check(&spec(Condition::Exists, 1000, 1000), burst(false)), Next::Full));
    }

    fn spec(condition: Condition, timeout_ms: u64, recheck_ms: u64) -> WaitSpec {
        WaitSpec {
            condition,
            target: Target::Node(NodeRef::new(":1.5", "/a")),
            states: Vec::new(),
            timeout: Duration::from_millis(timeout_ms),
            recheck: Duration::from_millis(recheck_ms),
            describe: "condition exists of node :1.5:/a".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn already_true_answers_at_once_and_the_recheck_finds_a_silent_change() {
        let s = spec(Condition::Exists, 10_000, 1_000);
        let started = Instant::now();
        let met = run(
            &s,
            started + s.timeout,
            None,
            |_| async { Ok(found(vec![node("/a", &[])], false)) },
            no_nodes,
        )
        .await;
        assert!(met.is_ok() && started.elapsed() < Duration::from_millis(1));

        // No events: the third check (after two re-check intervals) sees it.
        let checks = Arc::new(AtomicUsize::new(0));
        let c = checks.clone();
        let started = Instant::now();
        let met = run(
            &s,
            started + s.timeout,
            None,
            move |_| {
                let n = c.fetch_add(1, Ordering::SeqCst);
                async move { Ok(found(if n >= 2 { vec![node("/a", &[])] } else { vec![] }, false)) }
            },
            no_nodes,
        )
        .await;
        assert!(met.is_ok());
        assert_eq!(checks.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_millis(2_000));
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_comes_at_the_deadline_even_mid_check() {
        let s = spec(Condition::Gone, 2_500, 1_000);
        let started = Instant::now();
        let e = run(
            &s,
            started + s.timeout,
            None,
            |_| async { Ok(found(vec![node("/a", &[])], false)) },
            no_nodes,
        )
        .await
        .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(2_500));
        assert_eq!(e.to_string(), "timed out after 2500 ms waiting for condition exists of node :1.5:/a");
        assert!(matches!(e, A11yError::WaitTimeout(_)));

        // A check that hangs is cut at the deadline, and was told how long it had.
        let started = Instant::now();
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let t = told.clone();
        let e = run(
            &s,
            started + s.timeout,
            None,
            move |left| {
                t.lock().unwrap().push(left);
                async {
                    std::future::pending::<()>().await;
                    Ok(Candidates::default())
                }
            },
            no_nodes,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, A11yError::WaitTimeout(_)));
        assert_eq!(started.elapsed(), Duration::from_millis(2_500));
        assert_eq!(*told.lock().unwrap(), [Duration::from_millis(2_500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_end_the_wait() {
        let s = spec(Condition::Exists, 10_000, 1_000);
        let e = run(
            &s,
            Instant::now() + s.timeout,
            None,
            |_| async { Err::<Candidates, _>(A11yError::Unavailable("gone".into())) },
            no_nodes,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, A11yError::Unavailable(_)));
    }
}
