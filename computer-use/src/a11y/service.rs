//! The accessibility service: tree, find, focus, invoke and set value on the desktop's AT-SPI
//! bus. Answers are the walked nodes; `api` turns them into the clients' JSON.

use std::time::Duration;

use tokio::time::Instant;

use super::bus::{Bus, CALL_TIMEOUT, Calls};
use super::error::{A11yError, CallError};
use super::events::Hub;
use super::filter::Filter;
use super::node::{NODE_BUDGET, NodeRef};
use super::ops;
use super::scope::{self, Scope};
use super::wait::{self, Candidates, Met, Target, WaitSpec};
use super::walk::{self, Detail, Info, RawNode, Walk};
use crate::desktop_env::SharedDesktopEnv;

pub struct A11y {
    bus: Bus,
    /// The AT-SPI event subscription waits share.
    events: Hub,
}

/// A wait that ended with its condition met.
#[derive(Debug)]
pub struct Waited {
    pub met: Met,
    pub elapsed: Duration,
}

/// A walked subtree.
#[derive(Debug)]
pub struct Tree {
    pub root: RawNode,
    /// The walk stopped at its node budget.
    pub truncated: bool,
}

/// The nodes a find matched, in pre-order, each read in full.
#[derive(Debug)]
pub struct Found {
    pub matches: Vec<(NodeRef, Info)>,
    /// The limit was reached or the walk stopped at its node budget.
    pub truncated: bool,
}

impl A11y {
    pub fn new(desktop_env: SharedDesktopEnv) -> A11y {
        A11y { bus: Bus::new(desktop_env), events: Hub::default() }
    }

    /// Drops the cached accessibility-bus connection (on `/computeruse/stop`).
    pub async fn reset(&self) {
        self.bus.reset().await
    }

    /// Whether the accessibility bus answers (cached briefly); the supervisor reports it as the
    /// `atspi` process's `running`.
    pub async fn healthy(&self) -> bool {
        self.bus.healthy().await
    }

    async fn calls(&self) -> Result<Calls, A11yError> {
        self.bus.calls(CALL_TIMEOUT).await
    }

    /// The subtree at the scope's root, `max_depth` levels deep (`None`: unbounded).
    pub async fn tree(&self, scope: Scope, max_depth: Option<u32>) -> Result<Tree, A11yError> {
        let calls = self.calls().await?;
        let root = scope::resolve(&calls, scope).await?;
        let walk = Walk::new(&calls, Detail::Full, NODE_BUDGET);
        let id = root.id();
        match walk.run(root, max_depth).await.map_err(|e| e.into_a11y(&id))? {
            Some(root) => Ok(Tree { root, truncated: walk.truncated() }),
            None => Err(A11yError::NodeNotFound(id)),
        }
    }

    /// Nodes under (and including) the scope's root that pass the filter, in pre-order, at most
    /// `limit` of them.
    pub async fn find(&self, scope: Scope, filter: &Filter, limit: usize) -> Result<Found, A11yError> {
        find_on(&self.calls().await?, scope, filter, limit).await
    }

    pub async fn focus(&self, id: &str) -> Result<(), A11yError> {
        let node = NodeRef::parse(id)?;
        ops::focus(&self.calls().await?, &node).await
    }

    pub async fn invoke(&self, id: &str, action: Option<&str>) -> Result<(), A11yError> {
        let node = NodeRef::parse(id)?;
        ops::invoke(&self.calls().await?, &node, action).await
    }

    pub async fn set_value(&self, id: &str, value: &str) -> Result<(), A11yError> {
        let node = NodeRef::parse(id)?;
        ops::set_value(&self.calls().await?, &node, value).await
    }

    /// Waits until the condition holds (see `wait`). The connection, the event subscription
    /// and every check are bounded by the time left.
    pub async fn wait(&self, spec: &WaitSpec) -> Result<Waited, A11yError> {
        let started = Instant::now();
        let deadline = started + spec.timeout;
        let (conn, direct) = match tokio::time::timeout_at(deadline, self.bus.connected()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(spec.timeout_error()),
        };
        let calls_for =
            |left: Duration| Calls::with_direct(conn.clone(), left.min(CALL_TIMEOUT), direct.clone());
        // The first check runs beside the event subscription, not after it: a condition that
        // already holds answers at once however slow the registry is. The subscription is
        // bounded by the time left (a slow one only costs the events, not the answer).
        let mut subscribing = std::pin::pin!(self.events.subscribe(&conn, deadline));
        let mut subscribed = None;
        let first = {
            let calls = calls_for(deadline.saturating_duration_since(Instant::now()));
            let mut check = std::pin::pin!(tokio::time::timeout_at(deadline, look(&calls, spec)));
            loop {
                tokio::select! {
                    r = &mut check => break r,
                    s = &mut subscribing, if subscribed.is_none() => subscribed = Some(s),
                }
            }
        };
        match first {
            Err(_) => return Err(spec.timeout_error()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(found)) => {
                if let Some(met) = wait::decide(spec.condition, &spec.states, found) {
                    return Ok(Waited { met, elapsed: started.elapsed() });
                }
            }
        }
        let subscribed = match subscribed {
            Some(s) => s,
            None => subscribing.await,
        };
        // Without events (no registry answering in time) the slow re-check still finds the
        // change. `wait::run` checks once more first, now subscribed: a change between the first
        // check and the subscription is not missed.
        let events = match subscribed {
            Ok(sub) => Some(sub),
            Err(CallError::Disconnected(d)) => {
                return Err(A11yError::Unavailable(format!("connection lost: {d}")));
            }
            Err(e) => {
                tracing::warn!(error = %e, "no accessibility events; waits fall back to re-checking");
                None
            }
        };
        let met = wait::run(
            spec,
            deadline,
            events,
            |left| {
                let calls = calls_for(left);
                async move { look(&calls, spec).await }
            },
            |left, nodes| {
                let calls = calls_for(left);
                async move { look_at(&calls, spec, nodes).await }
            },
        )
        .await?;
        Ok(Waited { met, elapsed: started.elapsed() })
    }

    /// The screen point an element-targeted input acts on: the centre of the node's current
    /// bounds.
    pub async fn element_point(&self, id: &str) -> Result<(i32, i32), A11yError> {
        let node = NodeRef::parse(id)?;
        ops::on_screen_centre(&self.calls().await?, &node).await
    }

    /// Focuses a node before typing into it: it must be on screen, and take the focus.
    pub async fn focus_element(&self, id: &str) -> Result<(), A11yError> {
        let node = NodeRef::parse(id)?;
        let calls = self.calls().await?;
        ops::on_screen_centre(&calls, &node).await?;
        ops::focus(&calls, &node).await.map_err(|e| match e {
            A11yError::NodeNotFound(d) => A11yError::NodeGone(d),
            other => other,
        })
    }
}

/// Nodes under (and including) the scope's root that pass the filter, in pre-order, at most
/// `limit` of them, with `calls`.
async fn find_on(calls: &Calls, scope: Scope, filter: &Filter, limit: usize) -> Result<Found, A11yError> {
    let root = scope::resolve(calls, scope).await?;
    let id = root.id();
    // Walk reading only what the filter needs, then read the matches in full.
    let walk = Walk::new(calls, filter.detail(), NODE_BUDGET);
    let Some(tree) = walk.run(root, None).await.map_err(|e| e.into_a11y(&id))? else {
        return Err(A11yError::NodeNotFound(id));
    };
    let mut truncated = walk.truncated();
    let mut hits = Vec::new();
    tree.visit(&mut |n| {
        if filter.matches(&n.info) {
            hits.push(n.node.clone());
            if hits.len() >= limit {
                truncated = true;
                return false;
            }
        }
        true
    });
    let infos =
        futures_util::future::join_all(hits.iter().map(|n| walk::read_info(calls, n, Detail::Full))).await;
    let mut matches = Vec::with_capacity(hits.len());
    for (node, info) in hits.into_iter().zip(infos) {
        match info {
            Ok(info) => matches.push((node, info)),
            // Gone since the walk saw it.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into_a11y(&node.id())),
        }
    }
    Ok(Found { matches, truncated })
}

/// One check of a wait: the nodes its target names now. A query whose scope has no
/// application yet finds nothing (an application may be about to start); a node that is gone
/// is absent for `exists`/`gone`, and a 404 for the state conditions, which it can never meet.
/// Other failures of single applications (no answer in time) count as "not yet".
async fn look(calls: &Calls, spec: &WaitSpec) -> Result<Candidates, A11yError> {
    let found = match &spec.target {
        Target::Query { scope, filter, limit } => find_on(calls, *scope, filter, *limit)
            .await
            .map(|f| Candidates { nodes: f.matches, truncated: f.truncated }),
        Target::Node(node) => match walk::read_info(calls, node, Detail::Full).await {
            Ok(info) => Ok(Candidates { nodes: vec![(node.clone(), info)], truncated: false }),
            Err(e) if e.is_not_found() && !spec.condition.needs_states() => Ok(Candidates::default()),
            Err(e) => Err(e.into_a11y(&node.id())),
        },
    };
    match found {
        Ok(found) => Ok(found),
        Err(A11yError::NoRoot) => Ok(Candidates::default()),
        Err(A11yError::NodeNotFound(_)) if matches!(spec.target, Target::Query { .. }) => {
            Ok(Candidates::default())
        }
        Err(A11yError::Internal(e)) => {
            tracing::debug!(error = %e, "wait check failed; trying again");
            Ok(Candidates { nodes: Vec::new(), truncated: true })
        }
        Err(e) => Err(e),
    }
}

/// A check of a query's wait that looks only at the subtrees of `nodes` (those events
/// concerned) in the query's scope: the nodes found there that pass the filter. Best effort:
/// what cannot be read is left out (the full re-checks still see it).
async fn look_at(calls: &Calls, spec: &WaitSpec, nodes: Vec<NodeRef>) -> Result<Candidates, A11yError> {
    let Target::Query { scope, filter, limit } = &spec.target else { return look(calls, spec).await };
    let buses: Vec<String> = {
        let mut b: Vec<String> = nodes.iter().map(|n| n.bus.clone()).collect();
        b.sort();
        b.dedup();
        b
    };
    let in_scope: Vec<String> = match scope {
        Scope::All => buses,
        Scope::Pid(pid) => {
            let pids = futures_util::future::join_all(buses.iter().map(|b| calls.pid_of(b))).await;
            buses
                .into_iter()
                .zip(pids)
                .filter(|(_, p)| matches!(p, Ok(p) if p == pid))
                .map(|(b, _)| b)
                .collect()
        }
        Scope::Focused => match scope::resolve(calls, Scope::Focused).await {
            Ok(root) => buses.into_iter().filter(|b| *b == root.bus).collect(),
            Err(A11yError::NoRoot) => Vec::new(),
            Err(e) => return Err(e),
        },
    };
    let roots: Vec<NodeRef> = nodes.into_iter().filter(|n| in_scope.contains(&n.bus)).collect();
    if roots.is_empty() {
        return Ok(Candidates::default());
    }
    let walk = Walk::new(calls, filter.detail(), NODE_BUDGET);
    let trees = futures_util::future::join_all(roots.into_iter().map(|r| walk.run(r, None))).await;
    let mut hits: Vec<NodeRef> = Vec::new();
    for tree in trees.into_iter().flatten().flatten() {
        tree.visit(&mut |n| {
            if filter.matches(&n.info) && !hits.contains(&n.node) {
                hits.push(n.node.clone());
            }
            hits.len() < *limit
        });
    }
    let infos =
        futures_util::future::join_all(hits.iter().map(|n| walk::read_info(calls, n, Detail::Full))).await;
    let nodes = hits.into_iter().zip(infos).filter_map(|(n, i)| i.ok().map(|i| (n, i))).collect();
    Ok(Candidates { nodes, truncated: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desktop_env::DesktopEnv;

    #[tokio::test]
    async fn unhealthy_and_unavailable_without_a_bus() {
        let a11y = A11y::new(SharedDesktopEnv::new(DesktopEnv {
            display: ":4242".into(),
            dbus_session_bus_address: None,
        }));
        assert!(!a11y.healthy().await);
        a11y.reset().await;
        assert!(matches!(a11y.tree(Scope::All, None).await, Err(A11yError::Unavailable(_))));
        assert!(matches!(a11y.focus(":1.2:/a").await, Err(A11yError::Unavailable(_))));
        // Ids are checked before the bus is needed.
        assert!(matches!(a11y.invoke("nope", None).await, Err(A11yError::InvalidRequest(_))));
    }

    #[tokio::test]
    async fn requests_share_the_direct_connections_of_the_bus_connection() {
        use std::sync::atomic::Ordering::Relaxed;

        use crate::a11y::fake::{
            FakeCache, FakeDirect, FakeNode, PREFIX, TestBus, serve_cached, serve_desktop,
        };
        use zbus::zvariant::OwnedObjectPath;

        let bus = TestBus::start();
        let button = FakeNode::new("push button", "OK");
        let nodes = vec![("root", FakeNode::new("application", "app").child("", "1")), ("1", button.clone())];
        // The button is not cached, so it is read node by node.
        let cache =
            FakeCache { direct: FakeDirect::Listening, omit: vec!["1".into()], ..FakeCache::default() };
        let (addressed, asked) = (cache.addressed.clone(), cache.asked.clone());
        let (_app, me) = serve_cached(&bus, nodes, cache).await;
        let app_root = (me.clone(), OwnedObjectPath::try_from(format!("{PREFIX}root")).unwrap());
        let (_registry, _) = serve_desktop(&bus, vec![app_root]).await;
        let a11y = A11y::new(SharedDesktopEnv::new(DesktopEnv {
            display: ":4242".into(),
            dbus_session_bus_address: Some(bus.address.clone()),
        }));
        for _ in 0..2 {
            let tree = a11y.tree(Scope::All, None).await.unwrap();
            let app = &tree.root.children[0];
            assert_eq!((app.info.name.as_str(), app.children[0].info.name.as_str()), ("app", "OK"));
        }
        assert_eq!(addressed.load(Relaxed), 1, "the address is asked for once per bus connection");
        assert_eq!(asked.load(Relaxed), 2);
        assert_eq!((button.reads.load(Relaxed), button.direct.load(Relaxed)), (6, 6));
        a11y.reset().await;
        a11y.tree(Scope::All, None).await.unwrap();
        assert_eq!(addressed.load(Relaxed), 2, "a new bus connection, new direct connections");
    }

    #[tokio::test]
    async fn waits_wake_on_events_not_the_recheck_and_time_out_at_the_deadline() {
        use crate::a11y::fake::{FakeNode, PREFIX, TestBus, emit_child_added, emit_event, serve_desktop};
        use crate::a11y::wait::Condition;
        use zbus::zvariant::OwnedObjectPath;

        let bus = TestBus::start();
        let app = bus.connect().await;
        let me = app.unique_name().unwrap().to_string();
        let app_root = (me.clone(), OwnedObjectPath::try_from(format!("{PREFIX}root")).unwrap());
        let (_registry, registrations) = serve_desktop(&bus, vec![app_root]).await;
        // The application lists a button that is not there yet.
        app.object_server()
            .at(format!("{PREFIX}root"), FakeNode::new("application", "app").child(&me, "1"))
            .await
            .unwrap();
        let a11y = A11y::new(SharedDesktopEnv::new(DesktopEnv {
            display: ":4242".into(),
            dbus_session_bus_address: Some(bus.address.clone()),
        }));
        let spec = |condition, name: &str, timeout_ms| WaitSpec {
            condition,
            target: Target::Query {
                scope: Scope::All,
                filter: Filter::new(Some("push button"), Some(name), Some("exact"), None).unwrap(),
                limit: 10,
            },
            states: Vec::new(),
            timeout: Duration::from_millis(timeout_ms),
            // Far beyond the test: only an event can wake these waits in time.
            recheck: Duration::from_secs(60),
            describe: format!("{name} {condition:?}"),
        };

        let exists = spec(Condition::Exists, "OK", 10_000);
        let appear = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            app.object_server().at(format!("{PREFIX}1"), FakeNode::new("push button", "OK")).await.unwrap();
            emit_event(&app).await;
        };
        let (waited, ()) = tokio::join!(a11y.wait(&exists), appear);
        let waited = waited.unwrap();
        assert!(waited.elapsed >= Duration::from_millis(300), "{:?}", waited.elapsed);
        assert!(waited.elapsed < Duration::from_secs(3), "woken by the event: {:?}", waited.elapsed);
        assert_eq!(waited.met.nodes[0].0.id(), format!("{me}:{PREFIX}1"));
        assert_eq!(waited.met.nodes[0].1.name, "OK");

        // Already true: at once.
        let waited = a11y.wait(&exists).await.unwrap();
        assert!(waited.elapsed < Duration::from_millis(500), "{:?}", waited.elapsed);

        let gone = spec(Condition::Gone, "OK", 10_000);
        let vanish = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            app.object_server().remove::<FakeNode, _>(format!("{PREFIX}1")).await.unwrap();
            emit_event(&app).await;
        };
        let (waited, ()) = tokio::join!(a11y.wait(&gone), vanish);
        let waited = waited.unwrap();
        assert!(waited.met.nodes.is_empty());
        assert!(waited.elapsed < Duration::from_secs(3), "{:?}", waited.elapsed);

        // An event names the node to look at: a child added is found from the event alone,
        // without a walk of the scope (which does not reach it here: nothing lists it).
        let late = spec(Condition::Exists, "Late", 10_000);
        let add = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            app.object_server().at(format!("{PREFIX}9"), FakeNode::new("push button", "Late")).await.unwrap();
            emit_child_added(&app, &me, "9").await;
        };
        let (waited, ()) = tokio::join!(a11y.wait(&late), add);
        let waited = waited.unwrap();
        assert_eq!(waited.met.nodes[0].0.id(), format!("{me}:{PREFIX}9"));
        assert!(waited.elapsed < Duration::from_secs(3), "{:?}", waited.elapsed);

        let never = spec(Condition::Exists, "Nope", 400);
        let started = Instant::now();
        let e = a11y.wait(&never).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(e, A11yError::WaitTimeout(_)), "{e}");
        assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(700), "{took:?}");

        // The events were registered while waits ran (a wait starting right after another may
        // reuse its registration) and released once none runs.
        let balanced = || {
            let calls = registrations.lock().unwrap();
            let (add, del) = (
                calls.iter().filter(|c| c.starts_with('+')).count(),
                calls.iter().filter(|c| c.starts_with('-')).count(),
            );
            add > 0 && add == del
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !balanced() {
            assert!(Instant::now() < deadline, "{:?}", registrations.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_condition_already_true_answers_at_once_however_slow_the_registry() {
        use crate::a11y::fake::{FakeNode, FakeRegistry, PREFIX, TestBus, serve_desktop_with};
        use crate::a11y::wait::Condition;
        use zbus::zvariant::OwnedObjectPath;

        let bus = TestBus::start();
        let app = bus.connect().await;
        let me = app.unique_name().unwrap().to_string();
        let app_root = (me.clone(), OwnedObjectPath::try_from(format!("{PREFIX}root")).unwrap());
        // Registrations take longer than the waits' timeouts.
        let registry = FakeRegistry::default();
        *registry.register_delay.lock().unwrap() = Duration::from_secs(2);
        let (_registry, registrations) = serve_desktop_with(&bus, vec![app_root], registry).await;
        app.object_server()
            .at(format!("{PREFIX}root"), FakeNode::new("application", "app").child(&me, "1"))
            .await
            .unwrap();
        app.object_server().at(format!("{PREFIX}1"), FakeNode::new("push button", "OK")).await.unwrap();
        let a11y = A11y::new(SharedDesktopEnv::new(DesktopEnv {
            display: ":4242".into(),
            dbus_session_bus_address: Some(bus.address.clone()),
        }));
        let spec = |name: &str| WaitSpec {
            condition: Condition::Exists,
            target: Target::Query {
                scope: Scope::All,
                filter: Filter::new(Some("push button"), Some(name), Some("exact"), None).unwrap(),
                limit: 10,
            },
            states: Vec::new(),
            timeout: Duration::from_millis(1000),
            recheck: Duration::from_millis(100),
            describe: name.to_owned(),
        };
        // Two at once: neither queues behind the other's subscription.
        let ok = spec("OK");
        let started = Instant::now();
        let (a, b) = tokio::join!(a11y.wait(&ok), a11y.wait(&ok));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(started.elapsed() < Duration::from_millis(800), "{:?}", started.elapsed());
        assert_eq!(a.met.nodes[0].1.name, "OK");
        assert_eq!(b.met.nodes[0].1.name, "OK");
        // A condition never met still times out at its deadline, found by re-checking.
        let e = a11y.wait(&spec("Nope")).await.unwrap_err();
        assert!(matches!(e, A11yError::WaitTimeout(_)), "{e}");
        // The registrations the abandoned setups made are undone.
        let balanced = || {
            let calls = registrations.lock().unwrap();
            let add = calls.iter().filter(|c| c.starts_with('+')).count();
            add > 0 && add == calls.iter().filter(|c| c.starts_with('-')).count()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !balanced() {
            assert!(Instant::now() < deadline, "{:?}", registrations.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
