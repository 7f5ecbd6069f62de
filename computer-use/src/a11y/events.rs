//! AT-SPI events as wake-ups for waits (extension: not in Daytona's daemon).
//!
//! Applications only send accessibility events once some listener registered for them with the
//! registry (`RegisterEvent`), and the bus only delivers signals a connection asked for (match
//! rules). The hub does both once for all current waits: every wait holds a [`Subscription`]
//! (a broadcast of the nodes the events concern; a wait takes a whole burst at once), and when
//! the last one is dropped the events are deregistered again, so idle applications do not keep
//! sending events nobody reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::time::Instant;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, MatchRule, MessageStream};

use super::error::CallError;
use super::node::NodeRef;
use crate::sync::lock;

/// The registry and its interface, where listeners register.
const REGISTRY_BUS: &str = "org.a11y.atspi.Registry";
const REGISTRY_PATH: &str = "/org/a11y/atspi/registry";
const REGISTRY_IFACE: &str = "org.a11y.atspi.Registry";

/// What a wait's condition can depend on: states (focused, showing…), nodes appearing and
/// disappearing, names and other properties, and windows.
pub const EVENTS: [&str; 4] =
    ["object:state-changed", "object:children-changed", "object:property-change", "window:"];

/// The signal interfaces those events arrive on.
const EVENT_INTERFACES: [&str; 2] = ["org.a11y.atspi.Event.Object", "org.a11y.atspi.Event.Window"];

/// Signals queued per match rule before the oldest are dropped (the pump reads them at once).
const QUEUE: usize = 256;
/// Events a wait may fall behind by; a wait that fell further behind re-checks everything.
const BACKLOG: usize = 1024;

/// What an event points a wait at: the node whose subtree may now hold a match (the node the
/// event is about, or the child an `object:children-changed:add` added), or nothing (a child
/// removed, an application leaving the bus).
pub type Item = Option<NodeRef>;

/// The events since a wait last looked.
#[derive(Debug, Default)]
pub struct Burst {
    /// The nodes to look at, each once, in arrival order.
    pub nodes: Vec<NodeRef>,
    /// Some events were lost (the wait fell behind): only a full check can tell.
    pub lost: bool,
    /// How many events arrived (one is enough to wake a wait).
    pub events: usize,
}

impl Burst {
    fn add(&mut self, item: Item) {
        self.events += 1;
        if let Some(node) = item
            && !self.nodes.contains(&node)
        {
            self.nodes.push(node);
        }
    }
}

/// Bound on the registry calls when the last wait ends (all of them, made at once).
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on setting the subscription up (the match rules and the registrations, whatever the
/// waits' timeouts). The calls are not cut at a wait's deadline: a `RegisterEvent` abandoned
/// half-way may still reach the registry after the `DeregisterEvent` meant to undo it.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared event subscription.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Serializes setting up and tearing down, so that a teardown's `DeregisterEvent` never
    /// overtakes a newer `RegisterEvent`. Only the setup and teardown tasks take it, and every
    /// registry call under it is bounded; waits never queue on it.
    setup: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    active: Option<Active>,
    next_id: u64,
}

struct Active {
    id: u64,
    conn: Connection,
    tx: broadcast::Sender<Item>,
    users: usize,
    pump: tokio::task::JoinHandle<()>,
}

/// One wait's view of the events; dropping it releases the wait's share.
pub struct Subscription {
    inner: Arc<Inner>,
    id: u64,
    rx: broadcast::Receiver<Item>,
    /// What arrived since the last [`Subscription::take`].
    burst: Burst,
    /// The pump ended (connection closed): no more events will come.
    ended: bool,
}

impl Subscription {
    fn new(inner: Arc<Inner>, id: u64, rx: broadcast::Receiver<Item>) -> Subscription {
        Subscription { inner, id, rx, burst: Burst::default(), ended: false }
    }

    /// Resolves once an event arrived that this subscription has not taken; never, once the
    /// events stopped. Cancel-safe.
    pub async fn changed(&mut self) {
        if self.burst.events > 0 || self.burst.lost {
            return;
        }
        if self.ended {
            return std::future::pending().await;
        }
        match self.rx.recv().await {
            Ok(item) => self.burst.add(item),
            Err(broadcast::error::RecvError::Lagged(_)) => self.burst.lost = true,
            Err(broadcast::error::RecvError::Closed) => {
                self.ended = true;
                std::future::pending::<()>().await
            }
        }
    }

    /// Everything that arrived so far (after a burst settled), emptying the queue.
    pub fn take(&mut self) -> Burst {
        loop {
            match self.rx.try_recv() {
                Ok(item) => self.burst.add(item),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.burst.lost = true,
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.ended = true;
                    break;
                }
            }
        }
        std::mem::take(&mut self.burst)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = lock(&self.inner.state);
        let Some(active) = state.active.as_mut().filter(|a| a.id == self.id) else { return };
        active.users = active.users.saturating_sub(1);
        if active.users == 0
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(teardown(self.inner.clone(), self.id));
        }
    }
}

impl Hub {
    /// A share of the subscription on `conn`, setting it up when no wait holds one (or the one
    /// held is on a connection that closed); a `Timeout` error once `deadline` passed first.
    ///
    /// The setup runs in a task of its own, bounded by [`SETUP_TIMEOUT`]: a wait that stops
    /// waiting (its deadline, its condition met, the request dropped) does not cut registry
    /// calls short and leave registrations behind. A subscription the task made for a wait that
    /// left is dropped with the task's output, which tears it down again.
    pub async fn subscribe(&self, conn: &Connection, deadline: Instant) -> Result<Subscription, CallError> {
        if let Some(sub) = share(&self.inner, conn) {
            return Ok(sub);
        }
        let task = tokio::spawn(set_up(self.inner.clone(), conn.clone()));
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(CallError::Other(format!("subscribing to accessibility events failed: {e}"))),
            Err(_) => Err(CallError::Timeout(
                "subscribing to accessibility events took longer than the wait".into(),
            )),
        }
    }

    /// Whether a subscription is set up (tests).
    #[cfg(test)]
    pub fn is_active(&self) -> bool {
        lock(&self.inner.state).active.is_some()
    }
}

/// A share of the live subscription on `conn`, if there is one. Needs no setup lock: a teardown
/// only ends a subscription nobody shares, as it checks under the state lock.
fn share(inner: &Arc<Inner>, conn: &Connection) -> Option<Subscription> {
    let mut state = lock(&inner.state);
    let a = state.active.as_mut()?;
    if !same_connection(&a.conn, conn) || a.pump.is_finished() {
        return None;
    }
    a.users += 1;
    Some(Subscription::new(inner.clone(), a.id, a.tx.subscribe()))
}

/// Sets the subscription up (or shares one a setup before this one made), under the setup lock.
async fn set_up(inner: Arc<Inner>, conn: Connection) -> Result<Subscription, CallError> {
    let _setup = inner.setup.lock().await;
    if let Some(sub) = share(&inner, &conn) {
        return Ok(sub);
    }
    // A subscription on a dead connection: its registrations died with the connection.
    if let Some(old) = lock(&inner.state).active.take() {
        old.pump.abort();
    }
    let (tx, rx) = broadcast::channel(BACKLOG);
    let started = match tokio::time::timeout(SETUP_TIMEOUT, start(&conn, tx.clone())).await {
        Ok(r) => r,
        Err(_) => Err(CallError::Timeout(format!(
            "the accessibility registry did not take the event registrations within {}s",
            SETUP_TIMEOUT.as_secs()
        ))),
    };
    let pump = match started {
        Ok(pump) => pump,
        Err(e) => {
            // Some registrations may have been made before the failure (or the cut): undone,
            // still under the lock, so no later setup's registrations are undone instead.
            deregister(&conn).await;
            return Err(e);
        }
    };
    let mut state = lock(&inner.state);
    state.next_id += 1;
    let id = state.next_id;
    state.active = Some(Active { id, conn, tx, users: 1, pump });
    Ok(Subscription::new(inner.clone(), id, rx))
}

fn same_connection(a: &Connection, b: &Connection) -> bool {
    !a.is_closed() && a.unique_name().is_some() && a.unique_name() == b.unique_name()
}

/// Adds the match rules, registers the events, and spawns the task counting the signals.
async fn start(
    conn: &Connection,
    tx: broadcast::Sender<Item>,
) -> Result<tokio::task::JoinHandle<()>, CallError> {
    let zerr = |e: zbus::Error| CallError::from_zbus(&e);
    let mut streams = Vec::new();
    for iface in EVENT_INTERFACES {
        let rule = MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(iface)
            .map_err(zerr)?
            .build();
        streams.push(MessageStream::for_match_rule(rule, conn, Some(QUEUE)).await.map_err(zerr)?);
    }
    // Applications leaving the bus: a node of theirs is gone without any event of its own.
    let rule = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.DBus")
        .map_err(zerr)?
        .interface("org.freedesktop.DBus")
        .map_err(zerr)?
        .member("NameOwnerChanged")
        .map_err(zerr)?
        .build();
    streams.push(MessageStream::for_match_rule(rule, conn, Some(QUEUE)).await.map_err(zerr)?);
    // The rules are in place before the registrations: no event sent because of them is lost.
    // The registrations go out at once; their order does not matter.
    let registrations = EVENTS.map(|event| async move {
        conn.call_method(Some(REGISTRY_BUS), REGISTRY_PATH, Some(REGISTRY_IFACE), "RegisterEvent", &(event,))
            .await
    });
    futures_util::future::try_join_all(registrations).await.map_err(zerr)?;
    let mut all = futures_util::stream::select_all(streams);
    Ok(tokio::spawn(async move {
        while let Some(msg) = all.next().await {
            let Ok(msg) = msg else { continue };
            // No receivers between two waits is not an error.
            let _ = tx.send(item(&msg));
        }
    }))
}

/// The node an event points at (see [`Item`]).
fn item(msg: &zbus::Message) -> Item {
    let header = msg.header();
    if header.interface().is_some_and(|i| i.as_str() == "org.freedesktop.DBus") {
        return None;
    }
    let bus = header.sender()?.to_string();
    let path = header.path()?.to_string();
    if header.member().is_some_and(|m| m.as_str() == "ChildrenChanged") {
        // (operation, index, 0, child (so), properties)
        let (op, _, _, child, _): (
            String,
            i32,
            i32,
            OwnedValue,
            std::collections::HashMap<String, OwnedValue>,
        ) = msg.body().deserialize().ok()?;
        if !op.starts_with("add") {
            return None;
        }
        return child_ref(&child);
    }
    Some(NodeRef::new(bus, path))
}

/// An `(so)` object reference inside a variant.
fn child_ref(v: &Value<'_>) -> Option<NodeRef> {
    let Value::Structure(s) = v else { return None };
    match s.fields() {
        [Value::Str(bus), Value::ObjectPath(path)] if !bus.is_empty() => {
            Some(NodeRef::new(bus.as_str(), path.as_str()))
        }
        _ => None,
    }
}

/// Ends the subscription `id` if no wait took a share since its last one was dropped.
async fn teardown(inner: Arc<Inner>, id: u64) {
    let _setup = inner.setup.lock().await;
    let active = {
        let mut state = lock(&inner.state);
        match state.active.as_ref() {
            Some(a) if a.id == id && a.users == 0 => state.active.take(),
            _ => None,
        }
    };
    let Some(active) = active else { return };
    active.pump.abort();
    deregister(&active.conn).await;
}

/// Deregisters every event, all calls at once under one [`DEREGISTER_TIMEOUT`] (so the setup
/// lock is never held longer). Deregistering an event that was not registered is harmless.
async fn deregister(conn: &Connection) {
    let calls = EVENTS.map(|event| async move {
        let body = (event,);
        let call = conn.call_method(
            Some(REGISTRY_BUS),
            REGISTRY_PATH,
            Some(REGISTRY_IFACE),
            "DeregisterEvent",
            &body,
        );
        if let Err(e) = call.await {
            tracing::debug!(event, error = %e, "deregistering an accessibility event failed");
        }
    });
    if tokio::time::timeout(DEREGISTER_TIMEOUT, futures_util::future::join_all(calls)).await.is_err() {
        tracing::debug!("deregistering the accessibility events timed out");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a11y::fake::{FakeRegistry, PREFIX, TestBus, emit_child_added, emit_event as emit};

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn concurrent_waits_share_one_registration_released_by_the_last() {
        let bus = TestBus::start();
        let registry_conn = bus.connect().await;
        let registry = FakeRegistry::default();
        let calls = registry.calls.clone();
        registry_conn.object_server().at(REGISTRY_PATH, registry).await.unwrap();
        registry_conn.request_name(REGISTRY_BUS).await.unwrap();
        let app = bus.connect().await;
        let conn = bus.connect().await;

        let hub = Hub::default();
        let mut a = hub.subscribe(&conn, soon()).await.unwrap();
        let mut b = hub.subscribe(&conn, soon()).await.unwrap();
        let registered: Vec<String> = EVENTS.iter().map(|e| format!("+{e}")).collect();
        assert_eq!(*calls.lock().unwrap(), registered, "registered once for both waits");

        // A burst of events is seen by both, and taken at once; each node once.
        for _ in 0..3 {
            emit(&app).await;
        }
        let me = app.unique_name().unwrap().to_string();
        emit_child_added(&app, &me, "7").await;
        tokio::time::timeout(Duration::from_secs(5), a.changed()).await.expect("a woke");
        tokio::time::timeout(Duration::from_secs(5), b.changed()).await.expect("b woke");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let burst = a.take();
        assert_eq!(burst.events, 4);
        assert!(!burst.lost);
        let ids: Vec<String> = burst.nodes.iter().map(|n| n.id()).collect();
        // The event's own node, and the child the children-changed event added.
        assert_eq!(ids, [format!("{me}:{PREFIX}1"), format!("{me}:{PREFIX}7")]);
        assert!(tokio::time::timeout(Duration::from_millis(100), a.changed()).await.is_err(), "nothing new");
        assert_eq!(b.take().events, 4);

        drop(a);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(hub.is_active(), "b still waits");
        assert_eq!(calls.lock().unwrap().len(), EVENTS.len());
        drop(b);
        until("deregistered after the last wait", || calls.lock().unwrap().len() == 2 * EVENTS.len()).await;
        assert!(!hub.is_active());
        let deregistered: Vec<String> = EVENTS.iter().map(|e| format!("-{e}")).collect();
        assert_eq!(calls.lock().unwrap()[EVENTS.len()..], deregistered[..]);

        // The next wait sets it up again.
        let mut c = hub.subscribe(&conn, soon()).await.unwrap();
        assert_eq!(calls.lock().unwrap().len(), 3 * EVENTS.len());
        emit(&app).await;
        tokio::time::timeout(Duration::from_secs(5), c.changed()).await.expect("c woke");
    }

    #[tokio::test]
    async fn an_application_leaving_the_bus_wakes_the_waits() {
        let bus = TestBus::start();
        let registry_conn = bus.connect().await;
        registry_conn.object_server().at(REGISTRY_PATH, FakeRegistry::default()).await.unwrap();
        registry_conn.request_name(REGISTRY_BUS).await.unwrap();
        let conn = bus.connect().await;
        let hub = Hub::default();
        let mut sub = hub.subscribe(&conn, soon()).await.unwrap();
        let app = bus.connect().await;
        // Joining is already a NameOwnerChanged; see it, then the leaving.
        tokio::time::timeout(Duration::from_secs(5), sub.changed()).await.expect("join seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let joined = sub.take();
        assert!(joined.events > 0 && joined.nodes.is_empty(), "{joined:?}");
        drop(app);
        tokio::time::timeout(Duration::from_secs(5), sub.changed()).await.expect("leave seen");
    }

    #[tokio::test]
    async fn no_registry_is_an_error_not_a_hang() {
        let bus = TestBus::start();
        let conn = bus.connect().await;
        let hub = Hub::default();
        let r = tokio::time::timeout(Duration::from_secs(5), hub.subscribe(&conn, soon()))
            .await
            .expect("no hang");
        assert!(matches!(r, Err(CallError::NotFound(_))), "{:?}", r.err());
        assert!(!hub.is_active());
    }

    /// A registry answering each `RegisterEvent` only after `delay`.
    async fn slow_registry(bus: &TestBus, delay: Duration) -> (Connection, Arc<Mutex<Vec<String>>>) {
        let registry_conn = bus.connect().await;
        let registry = FakeRegistry::default();
        *registry.register_delay.lock().unwrap() = delay;
        let calls = registry.calls.clone();
        registry_conn.object_server().at(REGISTRY_PATH, registry).await.unwrap();
        registry_conn.request_name(REGISTRY_BUS).await.unwrap();
        (registry_conn, calls)
    }

    fn balanced(calls: &[String]) -> bool {
        let add = calls.iter().filter(|c| c.starts_with('+')).count();
        let del = calls.iter().filter(|c| c.starts_with('-')).count();
        add == EVENTS.len() && del == EVENTS.len()
    }

    #[tokio::test]
    async fn a_slow_registry_bounds_the_wait_not_the_setup_which_is_undone_after() {
        let bus = TestBus::start();
        let (_registry, calls) = slow_registry(&bus, Duration::from_millis(800)).await;
        let conn = bus.connect().await;
        let hub = Hub::default();
        let started = Instant::now();
        let r = hub.subscribe(&conn, Instant::now() + Duration::from_millis(200)).await;
        let took = started.elapsed();
        assert!(matches!(r, Err(CallError::Timeout(_))), "{:?}", r.err());
        assert!(took < Duration::from_millis(600), "answered at the wait's deadline: {took:?}");
        // The setup went on without the wait, and what it registered was deregistered after
        // (in that order: a deregistration overtaking its registration would leave it behind).
        until("registered then deregistered", || balanced(&calls.lock().unwrap())).await;
        let calls = calls.lock().unwrap().clone();
        assert!(calls[..EVENTS.len()].iter().all(|c| c.starts_with('+')), "{calls:?}");
        assert!(!hub.is_active());
    }

    #[tokio::test]
    async fn a_subscribe_dropped_mid_way_leaves_no_registration_behind() {
        let bus = TestBus::start();
        let (_registry, calls) = slow_registry(&bus, Duration::from_millis(300)).await;
        let conn = bus.connect().await;
        let hub = Hub::default();
        // The wait is cancelled (its condition met, the request dropped) while registering.
        let r = tokio::time::timeout(Duration::from_millis(100), hub.subscribe(&conn, soon())).await;
        assert!(r.is_err(), "still registering when dropped");
        until("registered then deregistered", || balanced(&calls.lock().unwrap())).await;
        assert!(!hub.is_active());
        // Nothing pending keeps the next wait from subscribing.
        *calls.lock().unwrap() = Vec::new();
        let sub = hub.subscribe(&conn, soon()).await.unwrap();
        assert!(hub.is_active());
        drop(sub);
        until("released again", || balanced(&calls.lock().unwrap())).await;
    }
}
