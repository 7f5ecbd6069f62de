//! Test support: fake AT-SPI applications on a private `dbus-daemon`, so the walker's handling
//! of cycles, vanished children, sockets, budgets, hung applications, actions and application
//! caches is tested without a desktop.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::Connection;
use zbus::message::Header;
use zbus::zvariant::OwnedObjectPath;

use super::bus::Calls;
use super::cache::role_number;
use super::node::{NodeRef, REGISTRY, ROOT_PATH};

pub const PREFIX: &str = "/org/a11y/atspi/accessible/";

/// A private bus; the daemon is killed on drop.
pub struct TestBus {
    daemon: Child,
    pub address: String,
}

impl TestBus {
    pub fn start() -> TestBus {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1", "--address=unix:tmpdir=/tmp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is needed for these tests (package dbus)");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut line).unwrap();
        TestBus { daemon, address: line.trim().to_owned() }
    }

    pub async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str()).unwrap().build().await.unwrap()
    }

    pub async fn calls(&self, timeout: Duration) -> Calls {
        Calls::new(self.connect().await, timeout)
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// One fake accessible object. `children` lists (bus name, path suffix) pairs; an empty bus name
/// means the object's own application. `socket` makes GetChildren answer `[]` while
/// ChildCount and GetChildAtIndex tell the truth, as at-spi2-atk does for sockets. `actions`
/// are (machine name, localized name) pairs, served on the Action interface the way
/// at-spi2-atk does: `GetName` gives the first, `GetLocalizedName` and `GetActions` the second;
/// `DoAction` indices land in `done`. Like at-spi2-atk, every object answers on the Action
/// interface, and one without actions fails reading `NActions` with a generic error.
/// `listed` counts the GetChildren calls the object answered, `reads` its GetRoleName,
/// GetState and GetInterfaces calls, and `direct` those of them made peer to peer.
#[derive(Clone, Default)]
pub struct FakeNode {
    pub role: String,
    pub name: String,
    pub states: Vec<u32>,
    pub children: Vec<(String, OwnedObjectPath)>,
    pub socket: bool,
    pub hang: bool,
    pub actions: Vec<(String, String)>,
    pub done: Arc<Mutex<Vec<i32>>>,
    pub listed: Arc<AtomicUsize>,
    pub reads: Arc<AtomicUsize>,
    pub direct: Arc<AtomicUsize>,
}

impl FakeNode {
    pub fn new(role: &str, name: &str) -> FakeNode {
        FakeNode { role: role.into(), name: name.into(), states: vec![0, 0], ..FakeNode::default() }
    }

    pub fn action(mut self, name: &str, localized: &str) -> FakeNode {
        self.actions.push((name.to_owned(), localized.to_owned()));
        self
    }

    pub fn child(mut self, bus: &str, suffix: &str) -> FakeNode {
        self.children.push((bus.to_owned(), OwnedObjectPath::try_from(format!("{PREFIX}{suffix}")).unwrap()));
        self
    }

    /// Calls over a peer-to-peer connection come from no bus name.
    fn count_read(&self, header: &Header<'_>) {
        self.reads.fetch_add(1, Relaxed);
        if header.sender().is_none() {
            self.direct.fetch_add(1, Relaxed);
        }
    }

    fn interfaces(&self) -> Vec<String> {
        let mut interfaces = vec!["org.a11y.atspi.Accessible".to_owned()];
        if !self.actions.is_empty() {
            interfaces.push("org.a11y.atspi.Action".into());
        }
        interfaces
    }

    async fn wait_if_hung(&self) {
        if self.hang {
            std::future::pending::<()>().await;
        }
    }
}

#[zbus::interface(name = "org.a11y.atspi.Accessible")]
impl FakeNode {
    async fn get_children(&self) -> Vec<(String, OwnedObjectPath)> {
        self.wait_if_hung().await;
        self.listed.fetch_add(1, Relaxed);
        if self.socket { Vec::new() } else { self.children.clone() }
    }

    async fn get_child_at_index(&self, i: i32) -> (String, OwnedObjectPath) {
        self.children[i as usize].clone()
    }

    async fn get_role_name(&self, #[zbus(header)] header: Header<'_>) -> String {
        self.wait_if_hung().await;
        self.count_read(&header);
        self.role.clone()
    }

    async fn get_state(&self, #[zbus(header)] header: Header<'_>) -> Vec<u32> {
        self.wait_if_hung().await;
        self.count_read(&header);
        self.states.clone()
    }

    async fn get_interfaces(&self, #[zbus(header)] header: Header<'_>) -> Vec<String> {
        self.wait_if_hung().await;
        self.count_read(&header);
        self.interfaces()
    }

    #[zbus(property)]
    async fn name(&self) -> String {
        self.name.clone()
    }

    #[zbus(property)]
    async fn description(&self) -> String {
        String::new()
    }

    #[zbus(property)]
    async fn child_count(&self) -> i32 {
        self.children.len() as i32
    }
}

/// The Action interface of a [`FakeNode`].
struct FakeAction {
    actions: Vec<(String, String)>,
    done: Arc<Mutex<Vec<i32>>>,
}

impl FakeAction {
    fn at(&self, i: i32) -> zbus::fdo::Result<&(String, String)> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.actions.get(i))
            .ok_or_else(|| zbus::fdo::Error::InvalidArgs(format!("no action {i}")))
    }
}

#[zbus::interface(name = "org.a11y.atspi.Action")]
impl FakeAction {
    /// at-spi2-atk serves the interface on every object and fails at run time on those that
    /// do not implement it (which `GetInterfaces` leaves out).
    #[zbus(property, name = "NActions")]
    async fn n_actions(&self) -> zbus::fdo::Result<i32> {
        if self.actions.is_empty() {
            return Err(zbus::fdo::Error::Failed("Get failed".into()));
        }
        Ok(self.actions.len() as i32)
    }

    async fn get_name(&self, i: i32) -> zbus::fdo::Result<String> {
        Ok(self.at(i)?.0.clone())
    }

    async fn get_localized_name(&self, i: i32) -> zbus::fdo::Result<String> {
        Ok(self.at(i)?.1.clone())
    }

    async fn get_description(&self, _i: i32) -> String {
        String::new()
    }

    /// (localized name, description, key binding), as at-spi2-atk answers.
    async fn get_actions(&self) -> Vec<(String, String, String)> {
        self.actions.iter().map(|(_, localized)| (localized.clone(), String::new(), String::new())).collect()
    }

    async fn do_action(&self, i: i32) -> zbus::fdo::Result<bool> {
        self.at(i)?;
        self.done.lock().unwrap().push(i);
        Ok(true)
    }
}

/// Serves `nodes` (path suffix, node) on a new connection; children with an empty bus name
/// are given this connection's name. Returns the connection (keep it alive) and its name.
pub async fn serve(bus: &TestBus, nodes: Vec<(&str, FakeNode)>) -> (Connection, String) {
    let conn = bus.connect().await;
    let me = conn.unique_name().unwrap().to_string();
    for (suffix, mut node) in nodes {
        for (b, _) in node.children.iter_mut() {
            if b.is_empty() {
                *b = me.clone();
            }
        }
        let path = format!("{PREFIX}{suffix}");
        let action = FakeAction { actions: node.actions.clone(), done: node.done.clone() };
        conn.object_server().at(path.as_str(), action).await.unwrap();
        conn.object_server().at(path, node).await.unwrap();
    }
    wait_serving(&conn, &me).await;
    (conn, me)
}

/// zbus starts a connection's object server in a task of its own, and calls arriving before it
/// listens go unanswered: wait until it answers one.
async fn wait_serving(conn: &Connection, me: &str) {
    loop {
        let ping = conn.call_method(Some(me), "/", Some("org.freedesktop.DBus.Peer"), "Ping", &());
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), ping).await {
            return;
        }
    }
}

/// How a fake application answers `org.a11y.atspi.Cache.GetItems`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// With every served node but the omitted ones.
    #[default]
    Ready,
    /// As at-spi2-atk before a client made itself known: `UnknownMethod` until the
    /// application's `GetApplicationBusAddress` is called.
    Inactive,
    /// The older reply: children lists instead of index and child count.
    Legacy,
    /// An error.
    Fails,
}

/// Where a fake application's `GetApplicationBusAddress` points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FakeDirect {
    /// Nowhere: the empty address (as from an application using libatspi itself).
    #[default]
    None,
    /// A socket serving the same objects peer to peer, as at-spi2-atk's does.
    Listening,
    /// A socket nobody listens on.
    Nowhere,
    /// Not a local socket.
    Elsewhere,
}

/// The cache a fake application serves (see [`serve_cached`]).
#[derive(Clone, Default)]
pub struct FakeCache {
    pub mode: CacheMode,
    /// Path suffixes left out, as at-spi2-atk leaves out transient objects and the children of
    /// nodes managing their descendants.
    pub omit: Vec<String>,
    /// Role numbers for role names the AT-SPI numbering does not name that way (a toolkit with
    /// its own role names).
    pub roles: Vec<(String, u32)>,
    /// The GetItems calls answered.
    pub asked: Arc<AtomicUsize>,
    pub direct: FakeDirect,
    /// The GetApplicationBusAddress calls answered over the bus.
    pub addressed: Arc<AtomicUsize>,
    /// The peer-to-peer connections the application accepted (close them to break them).
    pub peers: Arc<tokio::sync::Mutex<Vec<Connection>>>,
}

/// A cache item on the wire, `((so)(so)(so)iiassusau)`.
type WireItem = (Ref, Ref, Ref, i32, i32, Vec<String>, String, u32, String, Vec<u32>);
/// The older item, `((so)(so)(so)a(so)assusau)`.
type LegacyItem = (Ref, Ref, Ref, Vec<Ref>, Vec<String>, String, u32, String, Vec<u32>);
type Ref = (String, OwnedObjectPath);

#[derive(Clone)]
struct FakeCacheObject {
    items: Vec<WireItem>,
    fails: bool,
    active: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
}

#[zbus::interface(name = "org.a11y.atspi.Cache")]
impl FakeCacheObject {
    async fn get_items(&self) -> zbus::fdo::Result<Vec<WireItem>> {
        if !self.active.load(Relaxed) {
            return Err(zbus::fdo::Error::UnknownMethod("no cache yet".into()));
        }
        self.asked.fetch_add(1, Relaxed);
        if self.fails {
            return Err(zbus::fdo::Error::Failed("cache broken".into()));
        }
        Ok(self.items.clone())
    }
}

#[derive(Clone)]
struct FakeLegacyCacheObject {
    items: Vec<LegacyItem>,
    asked: Arc<AtomicUsize>,
}

#[zbus::interface(name = "org.a11y.atspi.Cache")]
impl FakeLegacyCacheObject {
    async fn get_items(&self) -> Vec<LegacyItem> {
        self.asked.fetch_add(1, Relaxed);
        self.items.clone()
    }
}

/// The Application interface of a fake application's root: asked over the bus for its
/// address, it turns the cache on, as at-spi2-atk's bridge does.
#[derive(Clone)]
struct FakeApplication {
    active: Arc<AtomicBool>,
    address: String,
    addressed: Arc<AtomicUsize>,
}

#[zbus::interface(name = "org.a11y.atspi.Application")]
impl FakeApplication {
    async fn get_application_bus_address(&self, #[zbus(header)] header: Header<'_>) -> String {
        if header.sender().is_some() {
            self.active.store(true, Relaxed);
            self.addressed.fetch_add(1, Relaxed);
        }
        self.address.clone()
    }
}

/// [`serve`], plus the application's cache of the served nodes: each node's parent and index
/// are where the first node listing it has it (the root's parent is the registry's root).
pub async fn serve_cached(
    bus: &TestBus,
    nodes: Vec<(&str, FakeNode)>,
    cache: FakeCache,
) -> (Connection, String) {
    let (conn, me) = serve(bus, nodes.clone()).await;
    let own =
        |(b, p): &(String, OwnedObjectPath)| (if b.is_empty() { me.clone() } else { b.clone() }, p.clone());
    let nodes: Vec<(OwnedObjectPath, FakeNode)> = nodes
        .into_iter()
        .map(|(suffix, mut node)| {
            node.children = node.children.iter().map(own).collect();
            (OwnedObjectPath::try_from(format!("{PREFIX}{suffix}")).unwrap(), node)
        })
        .collect();
    let omitted = |p: &OwnedObjectPath| cache.omit.iter().any(|o| p.as_str() == format!("{PREFIX}{o}"));
    let items: Vec<&(OwnedObjectPath, FakeNode)> = nodes.iter().filter(|(p, _)| !omitted(p)).collect();
    let mut parents: Vec<(OwnedObjectPath, (Ref, i32))> = Vec::new();
    for (path, node) in &items {
        for (i, (b, p)) in node.children.iter().enumerate() {
            if *b == me && !parents.iter().any(|(known, _)| known == p) {
                parents.push((p.clone(), ((me.clone(), path.clone()), i as i32)));
            }
        }
    }
    let registry = (REGISTRY.to_owned(), OwnedObjectPath::try_from(ROOT_PATH).unwrap());
    let null = (me.clone(), OwnedObjectPath::try_from("/org/a11y/atspi/null").unwrap());
    let root = (me.clone(), OwnedObjectPath::try_from(ROOT_PATH).unwrap());
    let wire: Vec<WireItem> = items
        .iter()
        .map(|(path, node)| {
            let (parent, index) = if path.as_str() == ROOT_PATH {
                (registry.clone(), -1)
            } else {
                let at = parents.iter().find(|(known, _)| known == path).map(|(_, at)| at.clone());
                at.unwrap_or((null.clone(), -1))
            };
            let role = cache.roles.iter().find(|(name, _)| *name == node.role).map(|(_, n)| *n);
            let role = role.or_else(|| role_number(&node.role)).expect("a role the table names");
            (
                (me.clone(), path.clone()),
                root.clone(),
                parent,
                index,
                node.children.len() as i32,
                node.interfaces(),
                node.name.clone(),
                role,
                String::new(),
                node.states.clone(),
            )
        })
        .collect();
    let cache_object = if cache.mode == CacheMode::Legacy {
        let legacy = wire
            .into_iter()
            .zip(&items)
            .map(|((object, app, parent, _, _, interfaces, name, role, description, states), (_, node))| {
                (object, app, parent, node.children.clone(), interfaces, name, role, description, states)
            })
            .collect();
        CacheObject::Legacy(FakeLegacyCacheObject { items: legacy, asked: cache.asked.clone() })
    } else {
        CacheObject::Current(FakeCacheObject {
            items: wire,
            fails: cache.mode == CacheMode::Fails,
            active: Arc::new(AtomicBool::new(cache.mode != CacheMode::Inactive)),
            asked: cache.asked.clone(),
        })
    };
    let active = match &cache_object {
        CacheObject::Current(c) => c.active.clone(),
        CacheObject::Legacy(_) => Arc::new(AtomicBool::new(true)),
    };
    let socket = std::env::temp_dir().join(format!(
        "fake-atspi-{}-{}.sock",
        std::process::id(),
        SOCKETS.fetch_add(1, Relaxed)
    ));
    let address = match cache.direct {
        FakeDirect::None => String::new(),
        FakeDirect::Listening | FakeDirect::Nowhere => format!("unix:path={}", socket.display()),
        FakeDirect::Elsewhere => "tcp:host=127.0.0.1,port=9".to_owned(),
    };
    let application = FakeApplication { active, address, addressed: cache.addressed.clone() };
    let server = conn.object_server();
    server.at(ROOT_PATH, application.clone()).await.unwrap();
    match &cache_object {
        CacheObject::Current(c) => server.at(CACHE_PATH, c.clone()).await.unwrap(),
        CacheObject::Legacy(c) => server.at(CACHE_PATH, c.clone()).await.unwrap(),
    };
    if cache.direct == FakeDirect::Listening {
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let peers = cache.peers.clone();
        tokio::spawn(async move {
            let _unlink = Unlink(socket);
            while let Ok((stream, _)) = listener.accept().await {
                let mut peer = zbus::connection::Builder::unix_stream(stream)
                    .server(zbus::Guid::generate())
                    .unwrap()
                    .p2p()
                    .serve_at(ROOT_PATH, application.clone())
                    .unwrap();
                peer = match &cache_object {
                    CacheObject::Current(c) => peer.serve_at(CACHE_PATH, c.clone()).unwrap(),
                    CacheObject::Legacy(c) => peer.serve_at(CACHE_PATH, c.clone()).unwrap(),
                };
                for (path, node) in &nodes {
                    let action = FakeAction { actions: node.actions.clone(), done: node.done.clone() };
                    peer = peer.serve_at(path, action).unwrap().serve_at(path, node.clone()).unwrap();
                }
                if let Ok(peer) = peer.build().await {
                    peers.lock().await.push(peer);
                }
            }
        });
    }
    (conn, me)
}

enum CacheObject {
    Current(FakeCacheObject),
    Legacy(FakeLegacyCacheObject),
}

static SOCKETS: AtomicUsize = AtomicUsize::new(0);

/// Removes a fake application's socket when its listener goes (at the end of the test).
struct Unlink(std::path::PathBuf);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const CACHE_PATH: &str = "/org/a11y/atspi/cache";

pub fn node(bus: &str, suffix: &str) -> NodeRef {
    NodeRef::new(bus, format!("{PREFIX}{suffix}"))
}

/// A registry that records the events listeners register and deregister (`+event`, `-event`).
#[derive(Clone, Default)]
pub struct FakeRegistry {
    pub calls: Arc<Mutex<Vec<String>>>,
    /// How long each `RegisterEvent` takes to be answered (a busy or hung registry); recorded
    /// once answered.
    pub register_delay: Arc<Mutex<Duration>>,
}

#[zbus::interface(name = "org.a11y.atspi.Registry")]
impl FakeRegistry {
    async fn register_event(&self, event: String) {
        let delay = *self.register_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.calls.lock().unwrap().push(format!("+{event}"));
    }

    async fn deregister_event(&self, event: String) {
        self.calls.lock().unwrap().push(format!("-{event}"));
    }
}

/// `org.a11y.Bus` on the session bus: here the accessibility bus is the same test bus.
struct FakeA11yBus {
    address: String,
}

#[zbus::interface(name = "org.a11y.Bus")]
impl FakeA11yBus {
    async fn get_address(&self) -> String {
        self.address.clone()
    }
}

/// Makes `bus` a whole desktop's buses: `org.a11y.Bus` answers with the bus's own address, and
/// the registry (its event registrations, and a root listing `apps`) is served. Returns the
/// registry's connection (keep it alive) and its recorded registrations.
pub async fn serve_desktop(
    bus: &TestBus,
    apps: Vec<(String, OwnedObjectPath)>,
) -> (Connection, Arc<Mutex<Vec<String>>>) {
    serve_desktop_with(bus, apps, FakeRegistry::default()).await
}

/// [`serve_desktop`] with a registry of the test's making (a slow one).
pub async fn serve_desktop_with(
    bus: &TestBus,
    apps: Vec<(String, OwnedObjectPath)>,
    registry: FakeRegistry,
) -> (Connection, Arc<Mutex<Vec<String>>>) {
    let conn = bus.connect().await;
    let calls = registry.calls.clone();
    conn.object_server().at("/org/a11y/atspi/registry", registry).await.unwrap();
    conn.object_server().at("/org/a11y/bus", FakeA11yBus { address: bus.address.clone() }).await.unwrap();
    let mut root = FakeNode::new("desktop frame", "main");
    root.children = apps;
    conn.object_server().at(format!("{PREFIX}root"), root).await.unwrap();
    conn.request_name("org.a11y.Bus").await.unwrap();
    conn.request_name("org.a11y.atspi.Registry").await.unwrap();
    (conn, calls)
}

/// Sends one `object:state-changed` event from `conn`.
pub async fn emit_event(conn: &Connection) {
    conn.emit_signal(
        None::<&str>,
        format!("{PREFIX}1"),
        "org.a11y.atspi.Event.Object",
        "StateChanged",
        &(
            "showing",
            1i32,
            0i32,
            zbus::zvariant::Value::from(0i32),
            std::collections::HashMap::<String, zbus::zvariant::Value>::new(),
        ),
    )
    .await
    .unwrap();
}

/// Sends one `object:children-changed:add` event from `conn`'s root, adding `bus`'s `suffix`.
pub async fn emit_child_added(conn: &Connection, bus: &str, suffix: &str) {
    let child = zbus::zvariant::Structure::from((
        bus.to_owned(),
        OwnedObjectPath::try_from(format!("{PREFIX}{suffix}")).unwrap(),
    ));
    conn.emit_signal(
        None::<&str>,
        format!("{PREFIX}root"),
        "org.a11y.atspi.Event.Object",
        "ChildrenChanged",
        &(
            "add",
            0i32,
            0i32,
            zbus::zvariant::Value::from(child),
            std::collections::HashMap::<String, zbus::zvariant::Value>::new(),
        ),
    )
    .await
    .unwrap();
}
