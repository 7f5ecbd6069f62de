//! One application's accessible objects in one call: `org.a11y.atspi.Cache.GetItems`.
//!
//! A walk asking every node for its role, states, interfaces and properties costs several
//! round trips per node, each handled by the bus daemon and the application. The bridge of ATK
//! applications (GTK3, and what else uses at-spi2-atk) answers `GetItems` with all of that for
//! every object it tracks, in one message. The walk takes what it can from here and asks the
//! nodes themselves only for what the cache lacks (extents, action names) and for the nodes the
//! cache does not cover.
//!
//! The cache is not the tree: at-spi2-atk leaves out transient objects, the children of nodes
//! managing their descendants (the items of a big list or icon view), menu items, and anything
//! of another process (the plug behind a socket). A node's children are taken from the cache
//! only when it holds exactly as many as the node's child count, at indices 0, 1, …; otherwise
//! they are listed the old way.

use std::collections::{HashMap, HashSet, VecDeque};

use futures_util::future::join_all;
use serde::Deserialize;
use zbus::zvariant::Type;

use super::bus::{ACCESSIBLE, Calls, ObjectRef, to_node};
use super::error::CallError;
use super::node::{Detail, Info, NodeRef, ROOT_PATH, States};

const CACHE_PATH: &str = "/org/a11y/atspi/cache";
const CACHE: &str = "org.a11y.atspi.Cache";
const APPLICATION: &str = "org.a11y.atspi.Application";

/// How many role names of an application are checked against [`ROLE_NAMES`] before the table
/// names the rest.
const ROLE_PROBES: usize = 3;

/// One object as `GetItems` describes it, `((so)(so)(so)iiassusau)` (at-spi2-atk 2.46; older
/// bridges sent a list of children instead of the index and count, and such replies do not
/// decode).
#[derive(Debug, Deserialize, Type)]
struct Item {
    object: ObjectRef,
    _application: ObjectRef,
    parent: ObjectRef,
    /// -1 where the bridge does not say (transient objects, GTK menu items).
    index: i32,
    /// -1 where the bridge does not cache the children (nodes managing their descendants,
    /// defunct nodes, GTK menus).
    child_count: i32,
    interfaces: Vec<String>,
    name: String,
    role: u32,
    description: String,
    states: Vec<u32>,
}

/// What the cache says about one node.
#[derive(Debug)]
pub struct Entry {
    /// The AT-SPI role number (`GetRole`), not the name the JSON shows.
    pub role: u32,
    name: String,
    description: String,
    states: States,
    interfaces: Vec<String>,
    child_count: i32,
}

impl Entry {
    /// The node's fields the detail asks for, except the role name (see
    /// [`AppCache::role_name`]), and its interfaces when the detail needs them for the second
    /// round of reads.
    pub fn info(&self, detail: Detail) -> (Info, Vec<String>) {
        let (name, states, full) = match detail {
            Detail::Full => (true, true, true),
            Detail::Filter { name, states, .. } => (name, states, false),
        };
        let info = Info {
            name: if name { self.name.clone() } else { String::new() },
            description: if full { self.description.clone() } else { String::new() },
            states: if states { self.states } else { States::default() },
            // What a full read's GetAll would have given, for listing children the old way.
            child_count: (full && self.child_count >= 0).then_some(self.child_count),
            ..Info::default()
        };
        (info, if full { self.interfaces.clone() } else { Vec::new() })
    }
}

/// One application's cache, read at the start of a walk of that application.
pub struct AppCache {
    entries: HashMap<NodeRef, Entry>,
    /// Cached children by parent, in index order.
    children: HashMap<NodeRef, Vec<(i32, NodeRef)>>,
    root: NodeRef,
    /// Whether the application names its roles as [`ROLE_NAMES`] does; checked once.
    table_names_roles: tokio::sync::OnceCell<bool>,
}

impl AppCache {
    /// The cache of the application on `bus`, or `None` when it has none the walk can use: no
    /// `Cache` object, a failed or unexpected reply, or no entry for the application's root.
    pub async fn load(calls: &Calls, bus: &str) -> Option<AppCache> {
        calls.connect_direct(bus).await;
        let cache = NodeRef::new(bus, CACHE_PATH);
        let reply = match calls.reply(&cache, CACHE, "GetItems", &()).await {
            Ok(reply) => reply,
            // A hung application already cost its timeout; a broken bus fails the walk anyway.
            Err(e @ (CallError::Timeout(_) | CallError::Disconnected(_))) => {
                tracing::debug!(bus, error = %e, "no accessibility cache");
                return None;
            }
            // at-spi2-atk exports its cache only once a client has made itself known, as
            // libatspi does first thing with every application it meets: by asking for the
            // application's bus address.
            Err(_) => {
                let root = NodeRef::new(bus, ROOT_PATH);
                // Over the bus: asked over a direct connection, at-spi2-atk learns of no client.
                let activated =
                    calls.call_on_bus::<_, String>(&root, APPLICATION, "GetApplicationBusAddress", &()).await;
                match activated {
                    Ok(_) => calls.reply(&cache, CACHE, "GetItems", &()).await,
                    Err(e) => Err(e),
                }
                .inspect_err(|e| tracing::debug!(bus, error = %e, "no accessibility cache"))
                .ok()?
            }
        };
        let items: Vec<Item> = reply
            .body()
            .deserialize()
            .inspect_err(|e| tracing::debug!(bus, error = %e, "accessibility cache of an unknown shape"))
            .ok()?;
        let cache = AppCache::from_items(bus, items);
        if cache.is_none() {
            tracing::debug!(bus, "accessibility cache without the application's root");
        }
        cache
    }

    fn from_items(bus: &str, items: Vec<Item>) -> Option<AppCache> {
        let mut entries = HashMap::with_capacity(items.len());
        let mut children: HashMap<NodeRef, Vec<(i32, NodeRef)>> = HashMap::new();
        for item in items {
            let Some(node) = to_node(item.object) else { continue };
            if let Some(parent) = to_node(item.parent) {
                children.entry(parent).or_default().push((item.index, node.clone()));
            }
            let entry = Entry {
                role: item.role,
                name: item.name,
                description: item.description,
                states: States::from_words(&item.states),
                interfaces: item.interfaces,
                child_count: item.child_count,
            };
            entries.insert(node, entry);
        }
        let root = NodeRef::new(bus, ROOT_PATH);
        if !entries.contains_key(&root) {
            return None;
        }
        for kids in children.values_mut() {
            kids.sort_by_key(|(index, _)| *index);
        }
        Some(AppCache { entries, children, root, table_names_roles: tokio::sync::OnceCell::new() })
    }

    pub fn get(&self, node: &NodeRef) -> Option<&Entry> {
        self.entries.get(node)
    }

    /// The node's children in index order, when the cache holds all of them: as many as its
    /// child count, at indices 0, 1, … (`None`: list them the old way).
    pub fn children(&self, node: &NodeRef) -> Option<Vec<NodeRef>> {
        let count = usize::try_from(self.entries.get(node)?.child_count).ok()?;
        let kids = self.children.get(node).map(Vec::as_slice).unwrap_or_default();
        let complete = kids.len() == count
            && kids.iter().enumerate().all(|(i, (index, _))| usize::try_from(*index).is_ok_and(|x| x == i));
        complete.then(|| kids.iter().map(|(_, kid)| kid.clone()).collect())
    }

    /// The name `GetRoleName` would give for `role` on a node of this application, when the
    /// table knows it for this application; `None`: ask the node.
    pub async fn role_name(&self, calls: &Calls, role: u32) -> Option<&'static str> {
        let name = table_role_name(role)?;
        let by_table = *self.table_names_roles.get_or_init(|| self.probe_role_names(calls)).await;
        by_table.then_some(name)
    }

    /// Whether the application's own role names agree with the table, asked of a few nodes of
    /// different roles (top-level windows first). The table holds ATK's names, which every
    /// application on at-spi2-atk gives; other toolkits (GTK4) name roles their own way.
    async fn probe_role_names(&self, calls: &Calls) -> bool {
        let mut probes: Vec<(&NodeRef, &'static str)> = Vec::new();
        let mut roles = HashSet::new();
        let mut queue: VecDeque<&NodeRef> = VecDeque::from([&self.root]);
        let mut visited = HashSet::from([&self.root]);
        while let Some(node) = queue.pop_front() {
            if probes.len() == ROLE_PROBES {
                break;
            }
            if let Some(entry) = self.entries.get(node)
                && *node != self.root
                && let Some(name) = table_role_name(entry.role)
                && roles.insert(entry.role)
            {
                probes.push((node, name));
            }
            let kids = self.children.get(node).into_iter().flatten().map(|(_, kid)| kid);
            queue.extend(kids.filter(|kid| visited.insert(*kid)));
        }
        let answers = join_all(
            probes.iter().map(|(node, _)| calls.call::<_, String>(node, ACCESSIBLE, "GetRoleName", &())),
        )
        .await;
        let agree = probes.iter().zip(&answers).all(|((_, name), answer)| answer.as_deref() == Ok(*name));
        if !agree {
            tracing::debug!(bus = self.root.bus, "role names not ATK's; asking every node");
        }
        agree
    }
}

/// ATK's role names (what `GetRoleName` gives on at-spi2-atk: the nick of the ATK role, dashes
/// as spaces) by the AT-SPI role number the bridge maps each ATK role to (`GetRole`, and the
/// role of a cache item). Three differ from libatspi's own names: "statusbar", "tear off menu
/// item", "edit bar". Empty: no ATK role maps there (focus traversable, extended: an
/// application-defined role whose name only the node knows).
const ROLE_NAMES: [&str; 130] = [
    "invalid",
    "accelerator label",
    "alert",
    "animation",
    "arrow",
    "calendar",
    "canvas",
    "check box",
    "check menu item",
    "color chooser",
    "column header",
    "combo box",
    "date editor",
    "desktop icon",
    "desktop frame",
    "dial",
    "dialog",
    "directory pane",
    "drawing area",
    "file chooser",
    "filler",
    "",
    "font chooser",
    "frame",
    "glass pane",
    "html container",
    "icon",
    "image",
    "internal frame",
    "label",
    "layered pane",
    "list",
    "list item",
    "menu",
    "menu bar",
    "menu item",
    "option pane",
    "page tab",
    "page tab list",
    "panel",
    "password text",
    "popup menu",
    "progress bar",
    "push button",
    "radio button",
    "radio menu item",
    "root pane",
    "row header",
    "scroll bar",
    "scroll pane",
    "separator",
    "slider",
    "spin button",
    "split pane",
    "statusbar",
    "table",
    "table cell",
    "table column header",
    "table row header",
    "tear off menu item",
    "terminal",
    "text",
    "toggle button",
    "tool bar",
    "tool tip",
    "tree",
    "tree table",
    "unknown",
    "viewport",
    "window",
    "",
    "header",
    "footer",
    "paragraph",
    "ruler",
    "application",
    "autocomplete",
    "edit bar",
    "embedded",
    "entry",
    "chart",
    "caption",
    "document frame",
    "heading",
    "page",
    "section",
    "redundant object",
    "form",
    "link",
    "input method window",
    "table row",
    "tree item",
    "document spreadsheet",
    "document presentation",
    "document text",
    "document web",
    "document email",
    "comment",
    "list box",
    "grouping",
    "image map",
    "notification",
    "info bar",
    "level bar",
    "title bar",
    "block quote",
    "audio",
    "video",
    "definition",
    "article",
    "landmark",
    "log",
    "marquee",
    "math",
    "rating",
    "timer",
    "static",
    "math fraction",
    "math root",
    "subscript",
    "superscript",
    "description list",
    "description term",
    "description value",
    "footnote",
    "content deletion",
    "content insertion",
    "mark",
    "suggestion",
    "push button menu",
];

fn table_role_name(role: u32) -> Option<&'static str> {
    ROLE_NAMES.get(usize::try_from(role).ok()?).copied().filter(|name| !name.is_empty())
}

/// The role number of an ATK role name (tests build caches from role names).
#[cfg(test)]
pub fn role_number(name: &str) -> Option<u32> {
    ROLE_NAMES.iter().position(|n| *n == name).and_then(|i| u32::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::OwnedObjectPath;

    fn oref(bus: &str, path: &str) -> ObjectRef {
        (bus.to_owned(), OwnedObjectPath::try_from(path).unwrap())
    }

    fn item(path: &str, parent: &str, index: i32, child_count: i32, role: &str) -> Item {
        Item {
            object: oref(":1.5", path),
            _application: oref(":1.5", ROOT_PATH),
            parent: if parent.is_empty() { oref("", "/org/a11y/atspi/null") } else { oref(":1.5", parent) },
            index,
            child_count,
            interfaces: vec![ACCESSIBLE.to_owned()],
            name: path.rsplit('/').next().unwrap().to_owned(),
            role: role_number(role).unwrap(),
            description: String::new(),
            states: vec![1 << 8, 0],
        }
    }

    #[test]
    fn role_names_are_atks_by_atspi_number() {
        // Numbers from AtspiRole, names from atk_role_get_name.
        for (number, name) in [
            (0, "invalid"),
            (1, "accelerator label"),
            (14, "desktop frame"),
            (20, "filler"),
            (23, "frame"),
            (39, "panel"),
            (43, "push button"),
            (54, "statusbar"),
            (59, "tear off menu item"),
            (62, "toggle button"),
            (69, "window"),
            (75, "application"),
            (77, "edit bar"),
            (79, "entry"),
            (98, "list box"),
            (129, "push button menu"),
        ] {
            assert_eq!(table_role_name(number), Some(name), "role {number}");
        }
        for unnamed in [21, 70, 130, 1000, u32::MAX] {
            assert_eq!(table_role_name(unnamed), None, "role {unnamed}");
        }
    }

    #[test]
    fn children_come_from_the_cache_only_when_all_are_there() {
        let root = ROOT_PATH;
        let cache = AppCache::from_items(
            ":1.5",
            vec![
                item(root, "", -1, 3, "application"),
                // Out of order in the reply; index order counts.
                item("/a/2", root, 2, 0, "frame"),
                item("/a/0", root, 0, 2, "frame"),
                item("/a/1", root, 1, 0, "frame"),
                // One of two children cached.
                item("/b/0", "/a/0", 0, 0, "label"),
                // Not cached: the count says so.
                item("/c", "/a/1", -1, -1, "menu"),
            ],
        )
        .unwrap();
        let node = |p: &str| NodeRef::new(":1.5", p);
        let kids = cache.children(&node(root)).unwrap();
        assert_eq!(kids, [node("/a/0"), node("/a/1"), node("/a/2")]);
        assert_eq!(cache.children(&node("/a/0")), None, "one child missing");
        assert_eq!(cache.children(&node("/a/1")), None, "a child the count does not cover");
        assert_eq!(cache.children(&node("/a/2")), Some(vec![]));
        assert_eq!(cache.children(&node("/c")), None, "children not cached");
        assert_eq!(cache.children(&node("/elsewhere")), None);
        let (info, interfaces) = cache.get(&node("/b/0")).unwrap().info(Detail::Full);
        assert_eq!(
            (info.name.as_str(), info.child_count, info.states.names()),
            ("0", Some(0), vec!["enabled"])
        );
        assert_eq!(interfaces, [ACCESSIBLE]);
        let filter = Detail::Filter { role: true, name: false, states: true };
        let (info, interfaces) = cache.get(&node("/b/0")).unwrap().info(filter);
        assert_eq!((info.name.as_str(), info.states.names()), ("", vec!["enabled"]));
        assert!(interfaces.is_empty(), "a filter walk reads no extents or actions");
        assert_eq!(cache.get(&node("/c")).unwrap().info(Detail::Full).0.child_count, None);
    }

    #[test]
    fn a_cache_without_the_root_is_not_used() {
        assert!(AppCache::from_items(":1.5", vec![item("/a", ROOT_PATH, 0, 0, "frame")]).is_none());
        assert!(AppCache::from_items(":1.5", vec![]).is_none());
    }

    #[test]
    fn duplicate_indices_are_not_a_complete_list() {
        let cache = AppCache::from_items(
            ":1.5",
            vec![
                item(ROOT_PATH, "", -1, 2, "application"),
                item("/a", ROOT_PATH, 0, 0, "frame"),
                item("/b", ROOT_PATH, 0, 0, "frame"),
            ],
        )
        .unwrap();
        assert_eq!(cache.children(&NodeRef::new(":1.5", ROOT_PATH)), None);
    }
}
