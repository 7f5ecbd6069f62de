//! The accessibility bus connection (spec computer-use.md §7.1) and bounded D-Bus calls on it.
//!
//! The AT-SPI bus is found through `org.a11y.Bus.GetAddress` on the desktop's session bus (the
//! address comes from the shared desktop environment, not from the agent's own environment, so
//! the agent sees the same bus the supervised apps use). The connection is cached and re-dialled
//! when it closed or when the desktop's session bus changed. Applications that offer one get a
//! direct (peer-to-peer) connection besides, opened when a walk first reaches them and kept with
//! the bus connection; calls to them take it while it works.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use zbus::zvariant::{DynamicType, Type};
use zbus::{Connection, Message};

use super::error::{A11yError, CallError};
use super::node::{NODE_BUDGET, NodeRef, ROOT_PATH};
use crate::desktop_env::SharedDesktopEnv;
use crate::sync::lock;

/// Connecting to the session bus, asking for the address and connecting to the AT-SPI bus.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// The health probe's budget for listing the registry's children (spec §7.1).
const PROBE_TIMEOUT: Duration = Duration::from_millis(100);
/// The health probe's budget for dialling when no connection is cached.
const PROBE_DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a health answer is reused.
const HEALTH_TTL: Duration = Duration::from_secs(2);

pub struct Bus {
    desktop_env: SharedDesktopEnv,
    cached: tokio::sync::Mutex<Option<Cached>>,
    health: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

struct Cached {
    session_address: String,
    conn: Connection,
    /// Direct connections to the applications on this bus (their names mean nothing on
    /// another bus).
    direct: Arc<Direct>,
}

impl Bus {
    pub fn new(desktop_env: SharedDesktopEnv) -> Bus {
        Bus { desktop_env, cached: tokio::sync::Mutex::new(None), health: tokio::sync::Mutex::new(None) }
    }

    /// The live connection to the AT-SPI bus, dialling it when needed.
    pub async fn connection(&self) -> Result<Connection, A11yError> {
        Ok(self.connected().await?.0)
    }

    /// Calls for one request, over the live connection and the applications' direct ones.
    pub async fn calls(&self, timeout: Duration) -> Result<Calls, A11yError> {
        let (conn, direct) = self.connected().await?;
        Ok(Calls::with_direct(conn, timeout, direct))
    }

    /// The live connection to the AT-SPI bus and the direct connections to its applications.
    pub async fn connected(&self) -> Result<(Connection, Arc<Direct>), A11yError> {
        let session_address = self.desktop_env.session_bus().ok_or_else(|| {
            A11yError::Unavailable("session bus: DBUS_SESSION_BUS_ADDRESS is not set".into())
        })?;
        // One dialler at a time: concurrent requests wait for the same connection.
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.session_address == session_address
            && !c.conn.is_closed()
        {
            return Ok((c.conn.clone(), c.direct.clone()));
        }
        *cached = None;
        let conn = match tokio::time::timeout(DIAL_TIMEOUT, dial(&session_address)).await {
            Ok(r) => r?,
            Err(_) => return Err(A11yError::Unavailable(format!("timed out after {DIAL_TIMEOUT:?}"))),
        };
        let direct = Arc::new(Direct::default());
        *cached = Some(Cached { session_address, conn: conn.clone(), direct: direct.clone() });
        Ok((conn, direct))
    }

    /// Drops the cached connection (stop, or a connection found broken).
    pub async fn reset(&self) {
        *self.cached.lock().await = None;
        *self.health.lock().await = None;
    }

    /// Whether the registry answers on the accessibility bus; cached for two seconds.
    pub async fn healthy(&self) -> bool {
        let mut health = self.health.lock().await;
        if let Some((at, ok)) = *health
            && at.elapsed() < HEALTH_TTL
        {
            return ok;
        }
        let ok = self.probe().await;
        *health = Some((Instant::now(), ok));
        ok
    }

    async fn probe(&self) -> bool {
        // A first dial may take longer than the probe's budget, but not long.
        let Ok(Ok(conn)) = tokio::time::timeout(PROBE_DIAL_TIMEOUT, self.connection()).await else {
            return false;
        };
        let calls = Calls::new(conn, PROBE_TIMEOUT);
        calls.children(&NodeRef::registry_root()).await.is_ok()
    }
}

async fn dial(session_address: &str) -> Result<Connection, A11yError> {
    let unavailable = |what: String| A11yError::Unavailable(what);
    let session = zbus::connection::Builder::address(session_address)
        .map_err(|e| unavailable(format!("session bus: {e}")))?
        .build()
        .await
        .map_err(|e| unavailable(format!("session bus: {e}")))?;
    let reply = session
        .call_method(Some("org.a11y.Bus"), "/org/a11y/bus", Some("org.a11y.Bus"), "GetAddress", &())
        .await
        .map_err(|e| unavailable(format!("GetAddress: {e}")))?;
    let address: String = reply.body().deserialize().map_err(|e| unavailable(format!("GetAddress: {e}")))?;
    if address.is_empty() {
        return Err(unavailable("GetAddress returned empty address".into()));
    }
    let conn = zbus::connection::Builder::address(address.as_str())
        .map_err(|e| unavailable(format!("dial {address}: {e}")))?
        .build()
        .await
        .map_err(|e| unavailable(format!("dial {address}: {e}")))?;
    Ok(conn)
}

/// D-Bus calls for one request: every call has a deadline, at most [`MAX_IN_FLIGHT`] are
/// outstanding, and an application that let one call time out is not asked again within the
/// same request, so one hung app costs one timeout, not one per node. Calls to an application
/// with a direct connection go over it.
pub struct Calls {
    conn: Connection,
    direct: Arc<Direct>,
    permits: Semaphore,
    timeout: Duration,
    hung: Mutex<HashSet<String>>,
}

/// Peer-to-peer connections to applications, by bus name. at-spi2-atk listens on a socket of
/// its own (the address `GetApplicationBusAddress` gives, as libatspi's clients use it): a call
/// over it skips the bus daemon, which otherwise routes every call and its reply, and in a
/// whole-tree walk spent more time on that than the applications spent answering.
#[derive(Default)]
pub struct Direct {
    /// `None`: the application has none (or it failed); it is asked over the bus.
    peers: Mutex<HashMap<String, Option<Connection>>>,
}

/// Applications remembered without a direct connection before those entries are dropped
/// (bus names are not reused, so entries of applications gone are never asked for again).
const MAX_WITHOUT_DIRECT: usize = 256;

impl Direct {
    fn peer(&self, bus: &str) -> Option<Connection> {
        lock(&self.peers).get(bus).cloned().flatten()
    }

    fn known(&self, bus: &str) -> bool {
        lock(&self.peers).contains_key(bus)
    }

    fn remember(&self, bus: &str, peer: Option<Connection>) {
        let mut peers = lock(&self.peers);
        peers.retain(|_, p| p.as_ref().is_none_or(|p| !p.is_closed()));
        if peers.values().filter(|p| p.is_none()).count() > MAX_WITHOUT_DIRECT {
            peers.retain(|_, p| p.is_some());
        }
        peers.insert(bus.to_owned(), peer);
    }
}

const APPLICATION: &str = "org.a11y.atspi.Application";
const PEER: &str = "org.freedesktop.DBus.Peer";

/// Enough to keep every application and the bus daemon busy without flooding them.
pub const MAX_IN_FLIGHT: usize = 64;
/// Calls slower than this are logged (at debug level).
const SLOW_CALL: Duration = Duration::from_millis(100);
/// Per-call deadline for requests.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

pub const ACCESSIBLE: &str = "org.a11y.atspi.Accessible";
pub const COMPONENT: &str = "org.a11y.atspi.Component";
pub const ACTION: &str = "org.a11y.atspi.Action";
pub const EDITABLE_TEXT: &str = "org.a11y.atspi.EditableText";
pub const VALUE: &str = "org.a11y.atspi.Value";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const NULL_PATH: &str = "/org/a11y/atspi/null";

/// An AT-SPI object reference on the wire: `(so)`.
pub type ObjectRef = (String, zbus::zvariant::OwnedObjectPath);

/// Null references (empty bus name or the null path) are placeholders, not children.
pub fn to_nodes(refs: Vec<ObjectRef>) -> Vec<NodeRef> {
    refs.into_iter().filter_map(to_node).collect()
}

/// The node a reference names; `None` for a null reference.
pub fn to_node((bus, path): ObjectRef) -> Option<NodeRef> {
    (!bus.is_empty() && path.as_str() != NULL_PATH).then(|| NodeRef::new(bus, path.as_str()))
}

/// Which connection a call may take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The application's direct connection when it has one.
    Any,
    Bus,
}

/// Whether an application's address is a local socket. The address comes from the application:
/// another transport would have the agent dial out to the network, or run a program
/// (`unixexec:`).
fn local_socket(address: &str) -> bool {
    (address.starts_with("unix:path=") || address.starts_with("unix:abstract=")) && !address.contains(';')
}

/// A connection to the socket an application listens on; it answers Ping once it serves.
async fn dial_peer(address: &str) -> zbus::Result<Connection> {
    let peer = zbus::connection::Builder::address(address)?.p2p().build().await?;
    peer.call_method(None::<&str>, ROOT_PATH, Some(PEER), "Ping", &()).await?;
    Ok(peer)
}

impl Calls {
    pub fn new(conn: Connection, timeout: Duration) -> Calls {
        Calls::with_direct(conn, timeout, Arc::new(Direct::default()))
    }

    pub fn with_direct(conn: Connection, timeout: Duration, direct: Arc<Direct>) -> Calls {
        Calls {
            conn,
            direct,
            permits: Semaphore::new(MAX_IN_FLIGHT),
            timeout,
            hung: Mutex::new(HashSet::new()),
        }
    }

    /// Opens the direct connection to the application on `bus`, once per bus connection. The
    /// call asking for its address goes over the bus: it is also how at-spi2-atk learns of a
    /// client, which turns its cache on.
    pub async fn connect_direct(&self, bus: &str) {
        if self.direct.known(bus) {
            return;
        }
        let root = NodeRef::new(bus, ROOT_PATH);
        let address: Result<String, _> =
            self.call_via(Route::Bus, &root, APPLICATION, "GetApplicationBusAddress", &()).await;
        let peer = match address {
            Ok(address) if local_socket(&address) => {
                match tokio::time::timeout(self.timeout, dial_peer(&address)).await {
                    Ok(Ok(peer)) => Some(peer),
                    Ok(Err(e)) => {
                        tracing::debug!(bus, address, error = %e, "no direct connection");
                        None
                    }
                    Err(_) => None,
                }
            }
            // A hung application is not remembered as one without: it may answer later.
            Err(CallError::Timeout(_) | CallError::Disconnected(_)) => return,
            _ => None,
        };
        self.direct.remember(bus, peer);
    }

    /// Calls `iface.method(body)` on `node` over the bus, not a direct connection.
    pub async fn call_on_bus<B, R>(
        &self,
        node: &NodeRef,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, CallError>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + Type,
    {
        self.call_via(Route::Bus, node, iface, method, body).await
    }

    async fn call_via<B, R>(
        &self,
        route: Route,
        node: &NodeRef,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, CallError>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + Type,
    {
        let (bus, path) = (node.bus.as_str(), node.path.as_str());
        let reply = self.reply_on(route, bus, path, iface, method, body).await?;
        reply
            .body()
            .deserialize::<R>()
            .map_err(|e| CallError::Other(format!("{iface}.{method} on {bus}{path}: unexpected reply: {e}")))
    }

    fn is_hung(&self, bus: &str) -> bool {
        lock(&self.hung).contains(bus)
    }

    /// Calls `iface.method(body)` on `node` and decodes the reply.
    pub async fn call<B, R>(
        &self,
        node: &NodeRef,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, CallError>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + Type,
    {
        self.call_on(&node.bus, &node.path, iface, method, body).await
    }

    async fn call_on<B, R>(
        &self,
        bus: &str,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, CallError>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + Type,
    {
        let reply = self.reply_on(Route::Any, bus, path, iface, method, body).await?;
        reply
            .body()
            .deserialize::<R>()
            .map_err(|e| CallError::Other(format!("{iface}.{method} on {bus}{path}: unexpected reply: {e}")))
    }

    /// Calls `iface.method(body)` on `node` and returns the reply undecoded, for replies whose
    /// shape decides what the caller does (a reply that does not decode is not a failed call).
    pub async fn reply<B>(
        &self,
        node: &NodeRef,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<Message, CallError>
    where
        B: Serialize + DynamicType,
    {
        self.reply_on(Route::Any, &node.bus, &node.path, iface, method, body).await
    }

    async fn reply_on<B>(
        &self,
        route: Route,
        bus: &str,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<Message, CallError>
    where
        B: Serialize + DynamicType,
    {
        if self.is_hung(bus) {
            return Err(CallError::Timeout(format!("{bus} did not answer earlier")));
        }
        let _permit = self.permits.acquire().await.map_err(|e| CallError::Other(e.to_string()))?;
        if self.is_hung(bus) {
            return Err(CallError::Timeout(format!("{bus} did not answer earlier")));
        }
        let started = Instant::now();
        let peer = if route == Route::Any { self.direct.peer(bus) } else { None };
        let result = match peer {
            Some(peer) => {
                let call = peer.call_method(None::<&str>, path, Some(iface), method, body);
                match tokio::time::timeout(self.timeout, call).await {
                    // The direct connection broke (a D-Bus error is an answer): forget it and
                    // ask over the bus, which knows whether the application is still there.
                    Ok(Err(e)) if !matches!(e, zbus::Error::MethodError(..) | zbus::Error::FDO(_)) => {
                        tracing::debug!(bus, error = %e, "direct connection lost");
                        self.direct.remember(bus, None);
                        let call = self.conn.call_method(Some(bus), path, Some(iface), method, body);
                        tokio::time::timeout(self.timeout, call).await
                    }
                    other => other,
                }
            }
            None => {
                let call = self.conn.call_method(Some(bus), path, Some(iface), method, body);
                tokio::time::timeout(self.timeout, call).await
            }
        };
        if started.elapsed() > SLOW_CALL {
            tracing::debug!(bus, path, iface, method, elapsed = ?started.elapsed(), "slow accessibility call");
        }
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(CallError::from_zbus(&e)),
            Err(_) => {
                lock(&self.hung).insert(bus.to_owned());
                Err(CallError::Timeout(format!(
                    "{iface}.{method} on {bus}{path}: no reply within {:?}",
                    self.timeout
                )))
            }
        }
    }

    pub async fn children(&self, node: &NodeRef) -> Result<Vec<NodeRef>, CallError> {
        let refs = match self.call::<_, Vec<ObjectRef>>(node, ACCESSIBLE, "GetChildren", &()).await {
            Ok(refs) => refs,
            Err(CallError::NotSupported(_) | CallError::Other(_)) => {
                self.children_by_index(node, None).await?
            }
            Err(e) => return Err(e),
        };
        Ok(to_nodes(refs))
    }

    /// Children one by one: `ChildCount` (unless known) and `GetChildAtIndex`. at-spi2-atk
    /// answers GetChildren on a socket (a widget embedding another process's plug, as the xfce4
    /// panel does for its plugins) with an empty list, but GetChildAtIndex gives the plug.
    pub async fn children_by_index(
        &self,
        node: &NodeRef,
        count: Option<i32>,
    ) -> Result<Vec<ObjectRef>, CallError> {
        let count = match count {
            Some(n) => n,
            None => match &*self.property(node, ACCESSIBLE, "ChildCount").await? {
                zbus::zvariant::Value::I32(n) => *n,
                _ => 0,
            },
        };
        let count = usize::try_from(count).unwrap_or(0);
        // A lying ChildCount must not cost more calls than a whole walk may make.
        let count = count.min(NODE_BUDGET);
        let refs = futures_util::future::join_all((0..count as i32).map(|i| async move {
            self.call::<_, ObjectRef>(node, ACCESSIBLE, "GetChildAtIndex", &(i,)).await
        }))
        .await;
        let mut out = Vec::with_capacity(count);
        for r in refs {
            match r {
                Ok(r) => out.push(r),
                Err(e @ (CallError::NotFound(_) | CallError::Disconnected(_))) => return Err(e),
                // One child that cannot be read does not hide its siblings.
                Err(_) => {}
            }
        }
        Ok(out)
    }

    pub async fn property(
        &self,
        node: &NodeRef,
        iface: &str,
        name: &str,
    ) -> Result<zbus::zvariant::OwnedValue, CallError> {
        self.call(node, PROPERTIES, "Get", &(iface, name)).await
    }

    pub async fn all_properties(
        &self,
        node: &NodeRef,
        iface: &str,
    ) -> Result<std::collections::HashMap<String, zbus::zvariant::OwnedValue>, CallError> {
        self.call(node, PROPERTIES, "GetAll", &(iface,)).await
    }

    pub async fn set_property(
        &self,
        node: &NodeRef,
        iface: &str,
        name: &str,
        value: zbus::zvariant::Value<'_>,
    ) -> Result<(), CallError> {
        self.call(node, PROPERTIES, "Set", &(iface, name, value)).await
    }

    /// The unix pid owning `bus` (a connection on the accessibility bus).
    pub async fn pid_of(&self, bus: &str) -> Result<u32, CallError> {
        self.call_on(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetConnectionUnixProcessID",
            &(bus,),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_sockets_are_dialled() {
        for ok in ["unix:path=/run/user/1000/at-spi2-XyZ/socket", "unix:abstract=/tmp/dbus-abc"] {
            assert!(local_socket(ok), "{ok}");
        }
        for not in [
            "",
            "tcp:host=10.0.0.1,port=1234",
            "unixexec:path=/bin/sh,argv1=-c",
            "unix:path=/tmp/a;tcp:host=10.0.0.1,port=1",
            "launchd:env=X",
        ] {
            assert!(!local_socket(not), "{not}");
        }
    }
}
