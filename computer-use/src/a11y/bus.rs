//! The accessibility bus connection (spec computer-use.md §7.1) and bounded D-Bus calls on it.
//!
//! The AT-SPI bus is found through `org.a11y.Bus.GetAddress` on the desktop's session bus (the
//! address comes from the shared desktop environment, not from the agent's own environment, so
//! the agent sees the same bus the supervised apps use). The connection is cached and re-dialled
//! when it closed or when the desktop's session bus changed.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use zbus::zvariant::{DynamicType, Type};
use zbus::{Connection, Message};

use super::error::{A11yError, CallError};
use super::node::{NODE_BUDGET, NodeRef};
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
}

impl Bus {
    pub fn new(desktop_env: SharedDesktopEnv) -> Bus {
        Bus { desktop_env, cached: tokio::sync::Mutex::new(None), health: tokio::sync::Mutex::new(None) }
    }

    /// The live connection to the AT-SPI bus, dialling it when needed.
    pub async fn connection(&self) -> Result<Connection, A11yError> {
        let session_address = self.desktop_env.session_bus().ok_or_else(|| {
            A11yError::Unavailable("session bus: DBUS_SESSION_BUS_ADDRESS is not set".into())
        })?;
        // One dialler at a time: concurrent requests wait for the same connection.
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.session_address == session_address
            && !c.conn.is_closed()
        {
            return Ok(c.conn.clone());
        }
        *cached = None;
        let conn = match tokio::time::timeout(DIAL_TIMEOUT, dial(&session_address)).await {
            Ok(r) => r?,
            Err(_) => return Err(A11yError::Unavailable(format!("timed out after {DIAL_TIMEOUT:?}"))),
        };
        *cached = Some(Cached { session_address, conn: conn.clone() });
        Ok(conn)
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
/// same request, so one hung app costs one timeout, not one per node.
pub struct Calls {
    conn: Connection,
    permits: Semaphore,
    timeout: Duration,
    hung: Mutex<HashSet<String>>,
}

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

impl Calls {
    pub fn new(conn: Connection, timeout: Duration) -> Calls {
        Calls { conn, permits: Semaphore::new(MAX_IN_FLIGHT), timeout, hung: Mutex::new(HashSet::new()) }
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
        let reply = self.reply_on(bus, path, iface, method, body).await?;
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
        self.reply_on(&node.bus, &node.path, iface, method, body).await
    }

    async fn reply_on<B>(
        &self,
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
        let call = self.conn.call_method(Some(bus), path, Some(iface), method, body);
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, call).await;
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
