//! Concurrent walks of the accessibility tree.
//!
//! At an application's root the walk reads the application's cache (`cache`): one call that
//! gives role, states, interfaces, name, description and children of every object it covers, so
//! those nodes are asked only for what it lacks (extents, action names). Other nodes' own calls
//! (role, state, interfaces, properties) go out together, then their children are listed when
//! they have any. The subtrees of all children are walked concurrently, so the cost of a walk is
//! bounded by how fast the applications answer rather than by round trips. [`Calls`] bounds the
//! number of calls in flight and gives each a deadline. Nodes are counted against one budget per
//! walk; when it runs out, descent stops and the walk reports itself truncated.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use zbus::zvariant::{OwnedValue, Value};

use super::bus::{ACCESSIBLE, ACTION, COMPONENT, Calls, to_nodes};
use super::cache::AppCache;
use super::error::CallError;
use super::node::{Bounds, NodeRef, REGISTRY, ROOT_PATH, States};
use crate::sync::lock;

// Re-exported: the walk's callers name them from here.
pub use super::node::{Detail, Info};

#[derive(Debug, Clone, PartialEq)]
pub struct RawNode {
    pub node: NodeRef,
    pub info: Info,
    pub children: Vec<RawNode>,
}

impl RawNode {
    /// Pre-order visit.
    pub fn visit<'a>(&'a self, f: &mut impl FnMut(&'a RawNode) -> bool) -> bool {
        if !f(self) {
            return false;
        }
        self.children.iter().all(|c| c.visit(f))
    }
}

/// Nodes a walk may still visit. Children are claimed before they are read, so the tree never
/// holds more nodes than the budget allowed.
pub struct Budget {
    remaining: AtomicUsize,
    truncated: AtomicBool,
}

impl Budget {
    pub fn new(nodes: usize) -> Budget {
        Budget { remaining: AtomicUsize::new(nodes), truncated: AtomicBool::new(false) }
    }

    /// Takes up to `n` nodes; returns how many were granted (fewer marks the walk truncated).
    pub fn claim(&self, n: usize) -> usize {
        let mut granted = 0;
        let _ = self.remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            granted = n.min(left);
            Some(left - granted)
        });
        if granted < n {
            self.truncated.store(true, Ordering::Relaxed);
        }
        granted
    }

    pub fn truncated(&self) -> bool {
        self.truncated.load(Ordering::Relaxed)
    }
}

pub struct Walk<'a> {
    calls: &'a Calls,
    detail: Detail,
    budget: Budget,
    /// Nodes already in the walk: a buggy application listing an ancestor as its child must
    /// not send the walk round in circles.
    seen: Mutex<HashSet<NodeRef>>,
}

/// Deeper than any real interface; it bounds the nesting of the walk's futures (and so the
/// stack used to poll them).
const MAX_LEVELS: u32 = 128;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<'a> Walk<'a> {
    pub fn new(calls: &'a Calls, detail: Detail, budget: usize) -> Walk<'a> {
        Walk { calls, detail, budget: Budget::new(budget), seen: Mutex::new(HashSet::new()) }
    }

    pub fn truncated(&self) -> bool {
        self.budget.truncated()
    }

    /// Walks the subtree at `root` down to `max_depth` levels below it (`None`: no limit).
    /// `Ok(None)` when the root itself does not exist.
    pub async fn run(&self, root: NodeRef, max_depth: Option<u32>) -> Result<Option<RawNode>, CallError> {
        if self.budget.claim(1) == 0 {
            return Ok(None);
        }
        lock(&self.seen).insert(root.clone());
        self.subtree(root, max_depth, 0, None).await
    }

    fn subtree(
        &self,
        node: NodeRef,
        depth_left: Option<u32>,
        level: u32,
        app: Option<Arc<AppCache>>,
    ) -> Boxed<'_, Result<Option<RawNode>, CallError>> {
        Box::pin(async move {
            if level >= MAX_LEVELS && depth_left != Some(0) {
                self.budget.truncated.store(true, Ordering::Relaxed);
            }
            let descend = depth_left != Some(0) && level < MAX_LEVELS;
            // At an application's root, one GetItems may describe the whole application.
            let app = if node.path == ROOT_PATH && node.bus != REGISTRY {
                AppCache::load(self.calls, &node.bus).await.map(Arc::new)
            } else {
                app
            };
            let cached = app.as_deref().and_then(|a| Some((a, a.get(&node)?)));
            let (mut info, interfaces, listed) = match cached {
                Some((app, entry)) => {
                    let (info, interfaces) = entry.info(self.detail);
                    (info, interfaces, app.children(&node))
                }
                None => match read_basic(self.calls, &node, self.detail).await {
                    Ok((info, interfaces)) => (info, interfaces, None),
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e),
                },
            };
            let kids = match listed {
                Some(kids) if descend => kids,
                Some(_) => Vec::new(),
                None => match self.list_children(&node, descend, info.child_count).await? {
                    Some(kids) => kids,
                    None => return Ok(None),
                },
            };
            let kids: Vec<NodeRef> = {
                let mut seen = lock(&self.seen);
                kids.into_iter().filter(|k| seen.insert(k.clone())).collect()
            };
            let granted = self.budget.claim(kids.len());
            let next = depth_left.map(|d| d.saturating_sub(1));
            // The cache gives a role number; the name comes from the table or the node.
            let role = async {
                match cached {
                    Some((app, entry)) if self.wants_role() => {
                        match app.role_name(self.calls, entry.role).await {
                            Some(name) => Ok(Some(name.to_owned())),
                            None => tolerate(
                                self.calls.call::<_, String>(&node, ACCESSIBLE, "GetRoleName", &()).await,
                            ),
                        }
                    }
                    _ => Ok(None),
                }
            };
            let children = join_all(
                kids.into_iter().take(granted).map(|k| self.subtree(k, next, level + 1, app.clone())),
            );
            // The node's remaining reads overlap the walk of its children.
            let (extra, role, results) = tokio::join!(
                read_geometry_and_actions(self.calls, &node, &interfaces, &mut info),
                role,
                children
            );
            match extra.and(role) {
                Ok(Some(role)) => info.role = role,
                Ok(None) => {}
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            }
            let mut children = Vec::with_capacity(results.len());
            for r in results {
                // Children that vanished mid-walk are skipped.
                if let Some(child) = r? {
                    children.push(child);
                }
            }
            Ok(Some(RawNode { node, info, children }))
        })
    }

    fn wants_role(&self) -> bool {
        matches!(self.detail, Detail::Full | Detail::Filter { role: true, .. })
    }

    /// The node's children, asked of the node; `None` when the node is gone.
    async fn list_children(
        &self,
        node: &NodeRef,
        descend: bool,
        child_count: Option<i32>,
    ) -> Result<Option<Vec<NodeRef>>, CallError> {
        // Children are listed only where the node says it has some: most nodes are leaves,
        // and on a busy bus every call saved is time (the bus daemon and the application
        // handle each one). Without a ChildCount (a filter walk, or a node that did not
        // give it), GetChildren decides as before.
        let kids =
            if !descend || child_count == Some(0) { Ok(Vec::new()) } else { self.calls.children(node).await };
        let kids = match kids {
            // An empty list from something that says it has children is a socket.
            Ok(kids) if kids.is_empty() && descend && child_count != Some(0) => {
                self.calls.children_by_index(node, child_count).await.map(to_nodes)
            }
            other => other,
        };
        match kids {
            Ok(kids) => Ok(Some(kids)),
            Err(CallError::NotFound(_)) => Ok(None),
            Err(e @ CallError::Disconnected(_)) => Err(e),
            // A node that cannot list its children (hung, not an Accessible after all, or
            // answering nonsense) is still reported, as a leaf.
            Err(CallError::Timeout(_) | CallError::NotSupported(_) | CallError::Other(_)) => {
                Ok(Some(Vec::new()))
            }
        }
    }
}

/// Reads a node's own fields. Fields the node cannot provide in time (or at all) keep their
/// defaults; a node that no longer exists is `NotFound`; a broken connection is an error.
pub async fn read_info(calls: &Calls, node: &NodeRef, detail: Detail) -> Result<Info, CallError> {
    let (mut info, interfaces) = read_basic(calls, node, detail).await?;
    read_geometry_and_actions(calls, node, &interfaces, &mut info).await?;
    Ok(info)
}

/// The first round of a node's reads: role, states, interfaces, name, description and child
/// count (what a filter needs, and what decides the second round).
async fn read_basic(calls: &Calls, node: &NodeRef, detail: Detail) -> Result<(Info, Vec<String>), CallError> {
    let (want_role, want_name, want_states, full) = match detail {
        Detail::Full => (true, true, true, true),
        Detail::Filter { role, name, states } => (role, name, states, false),
    };
    let role = async {
        if want_role {
            calls.call::<_, String>(node, ACCESSIBLE, "GetRoleName", &()).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let states = async {
        if want_states {
            calls.call::<_, Vec<u32>>(node, ACCESSIBLE, "GetState", &()).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let interfaces = async {
        if full {
            calls.call::<_, Vec<String>>(node, ACCESSIBLE, "GetInterfaces", &()).await.map(Some)
        } else {
            Ok(None)
        }
    };
    // Full reads take name and description in one GetAll; a name filter needs the name only.
    let props = async {
        if full {
            calls.all_properties(node, ACCESSIBLE).await.map(Some)
        } else if want_name {
            let name = calls.property(node, ACCESSIBLE, "Name").await?;
            Ok(Some(std::iter::once(("Name".to_owned(), name)).collect()))
        } else {
            Ok(None)
        }
    };
    let (role, states, interfaces, props) = tokio::join!(role, states, interfaces, props);
    let mut info = Info {
        role: tolerate(role)?.flatten().unwrap_or_default(),
        states: States::from_words(&tolerate(states)?.flatten().unwrap_or_default()),
        ..Info::default()
    };
    let props = tolerate(props)?.flatten();
    if let Some(props) = &props {
        info.name = string_prop(props, "Name");
        info.description = string_prop(props, "Description");
        if let Some(Value::I32(n)) = props.get("ChildCount").map(|v| &**v) {
            info.child_count = Some(*n);
        }
    }
    // Not every implementation answers GetAll with everything (the registry root leaves out its
    // name); ask for the two properties one by one then.
    if full && !props.is_some_and(|p| p.contains_key("Name")) {
        let (name, description) = tokio::join!(
            calls.property(node, ACCESSIBLE, "Name"),
            calls.property(node, ACCESSIBLE, "Description")
        );
        if let Some(Value::Str(s)) = tolerate(name)?.as_deref() {
            info.name = s.as_str().to_owned();
        }
        if let Some(Value::Str(s)) = tolerate(description)?.as_deref() {
            info.description = s.as_str().to_owned();
        }
    }
    Ok((info, tolerate(interfaces)?.flatten().unwrap_or_default()))
}

/// The second round, for nodes that have the interfaces: extents and action names.
async fn read_geometry_and_actions(
    calls: &Calls,
    node: &NodeRef,
    interfaces: &[String],
    info: &mut Info,
) -> Result<(), CallError> {
    let has = |iface: &str| interfaces.iter().any(|i| i == iface);
    let bounds = async {
        if has(COMPONENT) {
            calls.call::<_, (i32, i32, i32, i32)>(node, COMPONENT, "GetExtents", &(0u32,)).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let actions = async { if has(ACTION) { action_names(calls, node).await.map(Some) } else { Ok(None) } };
    let (bounds, actions) = tokio::join!(bounds, actions);
    if let Some((x, y, width, height)) = tolerate(bounds)?.flatten() {
        info.bounds = Bounds { x, y, width, height };
    }
    info.actions = tolerate(actions)?.flatten().unwrap_or_default();
    Ok(())
}

/// Most actions read from one node: real nodes have a handful, and a lying `NActions` must not
/// cost thousands of calls.
const MAX_ACTIONS: i32 = 64;

/// The node's action names in index order: AT-SPI's machine names (`Action.GetName`: `click`,
/// `press`, `activate`…), which are the same in every locale. `GetActions` would answer in one
/// call, but its names are the localized labels (`Click`, `Klicken`), which clients cannot match.
pub async fn action_names(calls: &Calls, node: &NodeRef) -> Result<Vec<String>, CallError> {
    let count = match &*calls.property(node, ACTION, "NActions").await? {
        Value::I32(n) => (*n).clamp(0, MAX_ACTIONS),
        _ => 0,
    };
    let names = join_all(
        (0..count).map(|i| async move { calls.call::<_, String>(node, ACTION, "GetName", &(i,)).await }),
    )
    .await;
    // All or nothing: a name missing from the middle would shift the indices invoke uses.
    names.into_iter().collect()
}

/// A field read that failed for a reason other than the node being gone or the bus breaking is
/// left empty (`Ok(None)`) rather than failing the whole walk.
fn tolerate<T>(r: Result<T, CallError>) -> Result<Option<T>, CallError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e @ (CallError::NotFound(_) | CallError::Disconnected(_))) => Err(e),
        Err(CallError::NotSupported(_) | CallError::Timeout(_) | CallError::Other(_)) => Ok(None),
    }
}

fn string_prop(props: &std::collections::HashMap<String, OwnedValue>, key: &str) -> String {
    match props.get(key).map(|v| &**v) {
        Some(Value::Str(s)) => s.as_str().to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(path: &str, role: &str) -> RawNode {
        RawNode {
            node: NodeRef::new(":1.5", path),
            info: Info { role: role.into(), ..Info::default() },
            children: vec![],
        }
    }

    #[test]
    fn visits_in_pre_order() {
        let mut root = leaf("/r", "frame");
        let mut a = leaf("/a", "panel");
        a.children.push(leaf("/a1", "label"));
        root.children = vec![a, leaf("/b", "push button")];
        let mut order = vec![];
        root.visit(&mut |n| {
            order.push(n.node.path.clone());
            true
        });
        assert_eq!(order, ["/r", "/a", "/a1", "/b"]);
    }

    #[test]
    fn visit_stops_when_told() {
        let mut root = leaf("/r", "frame");
        root.children = vec![leaf("/a", "x"), leaf("/b", "y")];
        let mut seen = 0;
        assert!(!root.visit(&mut |_| {
            seen += 1;
            seen < 2
        }));
        assert_eq!(seen, 2);
    }

    #[test]
    fn field_failures_are_tolerated_but_gone_nodes_are_not() {
        assert_eq!(tolerate::<u8>(Err(CallError::Timeout("t".into()))).unwrap(), None);
        assert_eq!(tolerate::<u8>(Err(CallError::NotSupported("t".into()))).unwrap(), None);
        assert!(tolerate::<u8>(Err(CallError::NotFound("t".into()))).is_err());
        assert!(tolerate::<u8>(Err(CallError::Disconnected("t".into()))).is_err());
    }

    mod live {
        use std::sync::atomic::Ordering::Relaxed;
        use std::time::{Duration, Instant};

        use super::super::*;
        use crate::a11y::fake::{
            CacheMode, FakeCache, FakeDirect, FakeNode, TestBus, node, serve, serve_cached,
        };

        fn preorder(tree: &RawNode) -> Vec<(String, String)> {
            let mut seen = vec![];
            tree.visit(&mut |n| {
                seen.push((n.info.role.clone(), n.info.name.clone()));
                true
            });
            seen
        }

        fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        }

        #[tokio::test]
        async fn cycles_vanished_children_sockets_depth_and_budget() {
            let bus = TestBus::start();
            let (_plug_conn, plug) = serve(&bus, vec![("p1", FakeNode::new("filler", "plug"))]).await;
            let socket = FakeNode { socket: true, ..FakeNode::new("filler", "socket").child(&plug, "p1") };
            let (_app_conn, app) = serve(
                &bus,
                vec![
                    ("root", FakeNode::new("application", "app").child("", "1").child("", "2")),
                    // /99 does not exist; :1.9999 is nobody.
                    ("1", FakeNode::new("frame", "win").child("", "3").child("", "99")),
                    ("2", socket),
                    // A buggy app listing its own root as a child.
                    ("3", FakeNode::new("push button", "OK").child("", "root").child(":1.9999", "1")),
                ],
            )
            .await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let full = [
                ("application", "app"),
                ("frame", "win"),
                ("push button", "OK"),
                ("filler", "socket"),
                ("filler", "plug"),
            ];

            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(preorder(&tree), pairs(&full));
            assert!(!walk.truncated());
            assert_eq!(tree.children[1].children[0].node, node(&plug, "p1"));

            let filter = Detail::Filter { role: true, name: true, states: false };
            let walk = Walk::new(&calls, filter, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(preorder(&tree), pairs(&full), "find walks see the same nodes");

            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), Some(1)).await.unwrap().unwrap();
            assert_eq!(
                preorder(&tree),
                pairs(&[("application", "app"), ("frame", "win"), ("filler", "socket")])
            );

            let walk = Walk::new(&calls, Detail::Full, 3);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(preorder(&tree).len(), 3);
            assert!(walk.truncated());

            let walk = Walk::new(&calls, Detail::Full, 100);
            assert!(walk.run(node(&app, "42"), None).await.unwrap().is_none(), "a missing root is None");
        }

        /// Every field of every node, pre-order, with bus names replaced by `names`' labels.
        fn shape(tree: &RawNode, names: &[(&str, &str)]) -> Vec<String> {
            let mut out = vec![];
            let mut depth = vec![(tree, 0)];
            while let Some((n, d)) = depth.pop() {
                let bus =
                    names.iter().find(|(b, _)| *b == n.node.bus).map_or(n.node.bus.as_str(), |(_, l)| l);
                out.push(format!("{}{bus}:{} {:?}", " ".repeat(d), n.node.path, n.info));
                depth.extend(n.children.iter().rev().map(|c| (c, d + 1)));
            }
            out
        }

        /// One application covering what the cache leaves to the per-node walk: a socket
        /// (its plug is another application's), a child that does not exist, a child listing
        /// its own root, a node of another application that is gone, and (with `omit`) nodes
        /// the cache leaves out.
        fn app_nodes(plug: &str) -> Vec<(&'static str, FakeNode)> {
            let enabled = |mut n: FakeNode| {
                n.states = vec![1 << 8 | 1 << 30, 1 << (39 - 32)];
                n
            };
            vec![
                ("root", FakeNode::new("application", "app").child("", "1").child("", "2").child("", "4")),
                ("1", enabled(FakeNode::new("frame", "win")).child("", "3").child("", "99")),
                ("2", FakeNode { socket: true, ..FakeNode::new("filler", "socket").child(plug, "p1") }),
                (
                    "3",
                    FakeNode::new("push button", "OK")
                        .action("click", "Klicken")
                        .child("", "root")
                        .child(":1.9999", "1"),
                ),
                ("4", FakeNode::new("panel", "list").child("", "5").child("", "6")),
                ("5", enabled(FakeNode::new("label", "five"))),
                ("6", enabled(FakeNode::new("label", "six")).child("", "7")),
                ("7", FakeNode::new("statusbar", "status")),
            ]
        }

        fn reads(nodes: &[(&'static str, FakeNode)]) -> Vec<(&'static str, usize)> {
            nodes.iter().map(|(s, n)| (*s, n.reads.load(Relaxed))).filter(|(_, r)| *r > 0).collect()
        }

        #[tokio::test]
        async fn the_cache_gives_the_per_node_walks_tree_with_fewer_calls() {
            let bus = TestBus::start();
            let (_plug_conn, plug) = serve(&bus, vec![("p1", FakeNode::new("filler", "plug"))]).await;
            let (_plain_conn, plain) = serve(&bus, app_nodes(&plug)).await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let walk = Walk::new(&calls, Detail::Full, 100);
            let expected = walk.run(node(&plain, "root"), None).await.unwrap().unwrap();
            let expected = shape(&expected, &[(&plain, "app"), (&plug, "plug")]);
            assert_eq!(expected.len(), 9, "{expected:#?}");

            for mode in [CacheMode::Ready, CacheMode::Inactive] {
                // 6 and its child stand for what the cache leaves out (the children of a node
                // managing its descendants).
                let cache = FakeCache { mode, omit: vec!["6".into(), "7".into()], ..FakeCache::default() };
                let asked = cache.asked.clone();
                let nodes = app_nodes(&plug);
                let (_conn, app) = serve_cached(&bus, nodes.clone(), cache).await;
                let walk = Walk::new(&calls, Detail::Full, 100);
                let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
                assert_eq!(shape(&tree, &[(&app, "app"), (&plug, "plug")]), expected, "{mode:?}");
                assert_eq!(asked.load(Relaxed), 1, "{mode:?}");
                // Cached nodes are not asked for role, states or interfaces, except three of
                // distinct roles whose role names check the table; 6 and 7 are read one by one.
                assert_eq!(reads(&nodes), [("1", 1), ("2", 1), ("4", 1), ("6", 3), ("7", 3)], "{mode:?}");
            }
        }

        #[tokio::test]
        async fn applications_without_a_usable_cache_are_walked_node_by_node() {
            let bus = TestBus::start();
            let (_plug_conn, plug) = serve(&bus, vec![("p1", FakeNode::new("filler", "plug"))]).await;
            let (_plain_conn, plain) = serve(&bus, app_nodes(&plug)).await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let walk = Walk::new(&calls, Detail::Full, 100);
            let expected = walk.run(node(&plain, "root"), None).await.unwrap().unwrap();
            let expected = shape(&expected, &[(&plain, "app"), (&plug, "plug")]);

            let broken = [
                FakeCache { mode: CacheMode::Fails, ..FakeCache::default() },
                FakeCache { mode: CacheMode::Legacy, ..FakeCache::default() },
                FakeCache { omit: vec!["root".into()], ..FakeCache::default() },
            ];
            for cache in broken {
                let what = format!("{:?} without {:?}", cache.mode, cache.omit);
                let asked = cache.asked.clone();
                let nodes = app_nodes(&plug);
                let (_conn, app) = serve_cached(&bus, nodes.clone(), cache).await;
                let walk = Walk::new(&calls, Detail::Full, 100);
                let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
                assert_eq!(shape(&tree, &[(&app, "app"), (&plug, "plug")]), expected, "{what}");
                assert!(asked.load(Relaxed) >= 1, "{what}");
                let read = reads(&nodes);
                assert_eq!(read.len(), 8, "every node is read: {what}: {read:?}");
                assert!(read.iter().all(|(_, r)| *r == 3), "{what}: {read:?}");
            }
        }

        fn direct_reads(nodes: &[(&'static str, FakeNode)]) -> usize {
            nodes.iter().map(|(_, n)| n.direct.load(Relaxed)).sum()
        }

        #[tokio::test]
        async fn applications_are_asked_over_their_own_socket_while_it_works() {
            let bus = TestBus::start();
            let (_plug_conn, plug) = serve(&bus, vec![("p1", FakeNode::new("filler", "plug"))]).await;
            let (_plain_conn, plain) = serve(&bus, app_nodes(&plug)).await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let walk = Walk::new(&calls, Detail::Full, 100);
            let expected = walk.run(node(&plain, "root"), None).await.unwrap().unwrap();
            let expected = shape(&expected, &[(&plain, "app"), (&plug, "plug")]);

            let omit = vec!["6".into(), "7".into()];
            let cache = FakeCache { direct: FakeDirect::Listening, omit, ..FakeCache::default() };
            let (asked, peers) = (cache.asked.clone(), cache.peers.clone());
            let nodes = app_nodes(&plug);
            let (_conn, app) = serve_cached(&bus, nodes.clone(), cache).await;
            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(shape(&tree, &[(&app, "app"), (&plug, "plug")]), expected);
            assert_eq!(asked.load(Relaxed), 1, "the cache is read (and was turned on over the bus)");
            let read: usize = reads(&nodes).iter().map(|(_, r)| r).sum();
            assert_eq!((read, direct_reads(&nodes)), (9, 9), "every node read peer to peer");

            // The application closes the socket: the next walk asks over the bus.
            for peer in peers.lock().await.drain(..) {
                peer.close().await.unwrap();
            }
            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(shape(&tree, &[(&app, "app"), (&plug, "plug")]), expected);
            let read: usize = reads(&nodes).iter().map(|(_, r)| r).sum();
            assert_eq!((read, direct_reads(&nodes)), (18, 9));
        }

        #[tokio::test]
        async fn an_application_socket_nobody_answers_or_not_local_leaves_the_bus() {
            let bus = TestBus::start();
            let (_plug_conn, plug) = serve(&bus, vec![("p1", FakeNode::new("filler", "plug"))]).await;
            let (_plain_conn, plain) = serve(&bus, app_nodes(&plug)).await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let walk = Walk::new(&calls, Detail::Full, 100);
            let expected = walk.run(node(&plain, "root"), None).await.unwrap().unwrap();
            let expected = shape(&expected, &[(&plain, "app"), (&plug, "plug")]);

            for direct in [FakeDirect::Nowhere, FakeDirect::Elsewhere] {
                let cache = FakeCache { direct, omit: vec!["6".into()], ..FakeCache::default() };
                let nodes = app_nodes(&plug);
                let (_conn, app) = serve_cached(&bus, nodes.clone(), cache).await;
                let walk = Walk::new(&calls, Detail::Full, 100);
                let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
                assert_eq!(shape(&tree, &[(&app, "app"), (&plug, "plug")]), expected, "{direct:?}");
                assert_eq!(reads(&nodes), [("1", 1), ("2", 1), ("4", 1), ("6", 3)], "{direct:?}");
                assert_eq!(direct_reads(&nodes), 0, "{direct:?}");
            }
        }

        #[tokio::test]
        async fn depth_budget_and_find_walks_are_the_same_over_the_cache() {
            let bus = TestBus::start();
            let (_plug_conn, plug) = serve(&bus, vec![("p1", FakeNode::new("filler", "plug"))]).await;
            let (_plain_conn, plain) = serve(&bus, app_nodes(&plug)).await;
            let cache = FakeCache { omit: vec!["6".into()], ..FakeCache::default() };
            let (_cached_conn, cached) = serve_cached(&bus, app_nodes(&plug), cache).await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let find = Detail::Filter { role: true, name: false, states: true };
            for (detail, depth, budget) in [
                (Detail::Full, Some(1), 100),
                (Detail::Full, Some(2), 100),
                (Detail::Full, None, 4),
                (find, None, 100),
            ] {
                let mut got = vec![];
                for app in [&plain, &cached] {
                    let walk = Walk::new(&calls, detail, budget);
                    let tree = walk.run(node(app, "root"), depth).await.unwrap().unwrap();
                    got.push((shape(&tree, &[(app.as_str(), "app"), (&plug, "plug")]), walk.truncated()));
                }
                assert_eq!(got[0], got[1], "{detail:?} {depth:?} {budget}");
            }
        }

        #[tokio::test]
        async fn role_names_come_from_the_nodes_where_the_table_would_name_them_wrong() {
            let bus = TestBus::start();
            // A toolkit with its own role names for AT-SPI's frame and push button.
            let roles = vec![("window".to_owned(), 23), ("button".to_owned(), 43)];
            let nodes = vec![
                ("root", FakeNode::new("application", "app").child("", "1")),
                ("1", FakeNode::new("window", "win").child("", "2").child("", "3")),
                ("2", FakeNode::new("button", "OK")),
                ("3", FakeNode::new("button", "Cancel")),
            ];
            let (_conn, app) = serve_cached(&bus, nodes, FakeCache { roles, ..FakeCache::default() }).await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(
                preorder(&tree),
                pairs(&[("application", "app"), ("window", "win"), ("button", "OK"), ("button", "Cancel")])
            );
        }

        #[tokio::test]
        async fn only_nodes_with_children_are_asked_for_them() {
            let bus = TestBus::start();
            let (root, frame, label) = (
                FakeNode::new("application", "app").child("", "1"),
                FakeNode::new("frame", "win").child("", "2"),
                FakeNode::new("label", "leaf"),
            );
            let counts = [root.listed.clone(), frame.listed.clone(), label.listed.clone()];
            let (_conn, app) = serve(&bus, vec![("root", root), ("1", frame), ("2", label)]).await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(
                preorder(&tree),
                pairs(&[("application", "app"), ("frame", "win"), ("label", "leaf")])
            );
            // The leaf said ChildCount 0 in its GetAll: listing its children is a call saved.
            assert_eq!(counts.each_ref().map(|c| c.load(Relaxed)), [1, 1, 0]);
            // A find walk reads no ChildCount, so GetChildren still decides there.
            let filter = Detail::Filter { role: true, name: false, states: false };
            let walk = Walk::new(&calls, filter, 100);
            assert_eq!(preorder(&walk.run(node(&app, "root"), None).await.unwrap().unwrap()).len(), 3);
            assert_eq!(counts.each_ref().map(|c| c.load(Relaxed)), [2, 2, 1]);
        }

        #[tokio::test]
        async fn actions_are_the_machine_names_not_the_localized_labels() {
            let bus = TestBus::start();
            let ok = FakeNode::new("push button", "OK").action("click", "Klicken").action("press", "Drücken");
            let (_conn, app) = serve(
                &bus,
                vec![
                    ("root", FakeNode::new("application", "app").child("", "1").child("", "2")),
                    ("1", ok),
                    ("2", FakeNode::new("label", "no actions")),
                ],
            )
            .await;
            let calls = bus.calls(Duration::from_secs(2)).await;
            // What GetActions would have given: the labels of the user's language.
            let labels: Vec<(String, String, String)> =
                calls.call(&node(&app, "1"), ACTION, "GetActions", &()).await.unwrap();
            assert_eq!(labels[0].0, "Klicken");

            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert_eq!(tree.children[0].info.actions, ["click", "press"]);
            assert!(tree.children[1].info.actions.is_empty());
            let info = read_info(&calls, &node(&app, "1"), Detail::Full).await.unwrap();
            assert_eq!(info.actions, ["click", "press"], "find reads matches the same way");
        }

        #[tokio::test]
        async fn a_hung_app_costs_one_timeout_and_is_reported_bare() {
            let bus = TestBus::start();
            let stuck = |role: &str| FakeNode { hang: true, ..FakeNode::new(role, "stuck") };
            let (_hung_conn, hung) =
                serve(&bus, vec![("root", stuck("application").child("", "1")), ("1", stuck("frame"))]).await;
            let (_app_conn, app) = serve(
                &bus,
                vec![
                    ("root", FakeNode::new("desktop frame", "main").child(&hung, "root").child("", "1")),
                    ("1", FakeNode::new("label", "fine")),
                ],
            )
            .await;
            let calls = bus.calls(Duration::from_millis(300)).await;
            let started = Instant::now();
            let walk = Walk::new(&calls, Detail::Full, 100);
            let tree = walk.run(node(&app, "root"), None).await.unwrap().unwrap();
            assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
            assert_eq!(tree.children.len(), 2);
            let bare = &tree.children[0];
            assert_eq!((bare.node.bus.as_str(), bare.info.role.as_str()), (hung.as_str(), ""));
            assert!(bare.children.is_empty());
            assert_eq!(tree.children[1].info.name, "fine");
        }
    }

    #[test]
    fn budget_grants_what_is_left_and_marks_truncation() {
        let b = Budget::new(5);
        assert_eq!(b.claim(1), 1);
        assert_eq!(b.claim(3), 3);
        assert!(!b.truncated());
        assert_eq!(b.claim(3), 1);
        assert!(b.truncated());
        assert_eq!(b.claim(2), 0);
        let b = Budget::new(2);
        assert_eq!(b.claim(0), 0);
        assert_eq!(b.claim(2), 2);
        assert!(!b.truncated(), "using the budget up exactly is not truncation");
    }

    #[test]
    fn string_props_default_to_empty() {
        let mut props = std::collections::HashMap::new();
        props.insert("Name".to_owned(), OwnedValue::from(zbus::zvariant::Str::from("OK")));
        props.insert("Description".to_owned(), OwnedValue::from(5u32));
        assert_eq!(string_prop(&props, "Name"), "OK");
        assert_eq!(string_prop(&props, "Description"), "");
        assert_eq!(string_prop(&props, "Missing"), "");
    }
}
