//! Nodes: ids, the registry root, state names, bounds (spec computer-use.md §7.2), and how
//! many of them one walk may visit.

use super::error::A11yError;

/// The AT-SPI registry: its root's children are the applications.
pub const REGISTRY: &str = "org.a11y.atspi.Registry";
pub const ROOT_PATH: &str = "/org/a11y/atspi/accessible/root";

/// The most nodes one walk visits (spec computer-use.md §7.4).
pub const NODE_BUDGET: usize = 20_000;

/// One accessible object: the bus name of the application owning it and its object path. Its
/// text form `<bus name>:<object path>` is the node id clients send back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeRef {
    pub bus: String,
    pub path: String,
}

impl NodeRef {
    pub fn new(bus: impl Into<String>, path: impl Into<String>) -> NodeRef {
        NodeRef { bus: bus.into(), path: path.into() }
    }

    pub fn registry_root() -> NodeRef {
        NodeRef::new(REGISTRY, ROOT_PATH)
    }

    pub fn id(&self) -> String {
        format!("{}:{}", self.bus, self.path)
    }

    /// Parses a node id. The separator is the `:` right before the first `/`, because unique bus
    /// names contain colons themselves (`:1.42:/org/a11y/atspi/accessible/12`).
    pub fn parse(id: &str) -> Result<NodeRef, A11yError> {
        let bad = |why: &str| A11yError::InvalidRequest(format!("invalid node id {id:?}: {why}"));
        let slash = id.find('/').ok_or_else(|| bad("missing object path"))?;
        if slash == 0 || id.as_bytes()[slash - 1] != b':' {
            return Err(bad("missing ':' separator before object path"));
        }
        let (bus, path) = (&id[..slash - 1], &id[slash..]);
        if bus.is_empty() {
            return Err(bad("empty bus name"));
        }
        if zbus::zvariant::ObjectPath::try_from(path).is_err() {
            return Err(bad("malformed object path"));
        }
        if zbus::names::BusName::try_from(bus).is_err() {
            return Err(bad("malformed bus name"));
        }
        Ok(NodeRef::new(bus, path))
    }
}

/// AT-SPI state names by bit index (`AtspiStateType`, indices 0–43).
pub const STATE_NAMES: [&str; 44] = [
    "invalid",
    "active",
    "armed",
    "busy",
    "checked",
    "collapsed",
    "defunct",
    "editable",
    "enabled",
    "expandable",
    "expanded",
    "focusable",
    "focused",
    "has_tooltip",
    "horizontal",
    "iconified",
    "modal",
    "multi_line",
    "multiselectable",
    "opaque",
    "pressed",
    "resizable",
    "selectable",
    "selected",
    "sensitive",
    "showing",
    "single_line",
    "stale",
    "transient",
    "vertical",
    "visible",
    "manages_descendants",
    "indeterminate",
    "required",
    "truncated",
    "animated",
    "invalid_entry",
    "supports_autocompletion",
    "selectable_text",
    "is_default",
    "visited",
    "checkable",
    "has_popup",
    "read_only",
];

pub const STATE_ACTIVE: usize = 1;
pub const STATE_DEFUNCT: usize = 6;
pub const STATE_SHOWING: usize = 25;
pub const STATE_VISIBLE: usize = 30;

/// The bit index of a state name (case-insensitive, trimmed).
pub fn state_index(name: &str) -> Option<usize> {
    STATE_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name.trim()))
}

/// The 64-bit state set of `GetState` (two 32-bit words, low word first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct States(pub u64);

impl States {
    pub fn from_words(words: &[u32]) -> States {
        let lo = words.first().copied().unwrap_or(0) as u64;
        let hi = words.get(1).copied().unwrap_or(0) as u64;
        States(lo | hi << 32)
    }

    pub fn has(self, bit: usize) -> bool {
        bit < 64 && self.0 & (1 << bit) != 0
    }

    /// Known state names in index order; unknown bits are ignored.
    pub fn names(self) -> Vec<&'static str> {
        STATE_NAMES.iter().enumerate().filter(|(i, _)| self.has(*i)).map(|(_, n)| *n).collect()
    }

    /// Whether every named state is set. Names are matched case-insensitively; an unknown name
    /// can never be present.
    pub fn has_all(self, names: &[String]) -> bool {
        names.iter().all(|want| state_index(want).is_some_and(|i| self.has(i)))
    }

    /// Whether every bit is set.
    pub fn has_every(self, bits: &[usize]) -> bool {
        bits.iter().all(|&b| self.has(b))
    }

    /// Whether no bit is set.
    pub fn has_none(self, bits: &[usize]) -> bool {
        !bits.iter().any(|&b| self.has(b))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// What to read of each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything the node JSON shows.
    Full,
    /// Only what a find filter looks at.
    Filter { role: bool, name: bool, states: bool },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Info {
    pub role: String,
    pub name: String,
    pub description: String,
    pub states: States,
    pub bounds: Bounds,
    pub actions: Vec<String>,
    /// `ChildCount`, when a full read got it.
    pub child_count: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in
            [":1.42:/org/a11y/atspi/accessible/12", "org.a11y.atspi.Registry:/org/a11y/atspi/accessible/root"]
        {
            let r = NodeRef::parse(id).unwrap();
            assert_eq!(r.id(), id);
        }
        let r = NodeRef::parse(":1.42:/org/a11y/atspi/accessible/12").unwrap();
        assert_eq!((r.bus.as_str(), r.path.as_str()), (":1.42", "/org/a11y/atspi/accessible/12"));
    }

    #[test]
    fn bad_ids_are_named() {
        let msg = |id: &str| NodeRef::parse(id).unwrap_err().to_string();
        assert_eq!(msg(""), "invalid accessibility request: invalid node id \"\": missing object path");
        assert_eq!(
            msg(":1.42"),
            "invalid accessibility request: invalid node id \":1.42\": missing object path"
        );
        assert!(msg("/org/x").ends_with("missing ':' separator before object path"));
        assert!(msg(":1.2/org/x").ends_with("missing ':' separator before object path"));
        assert!(msg(":/org/x").ends_with("empty bus name"));
        assert!(msg(":1.2:/org//x").ends_with("malformed object path"));
        assert!(msg(":1.2:/org/x-y").ends_with("malformed object path"));
        assert!(msg("no dots:/org/x").ends_with("malformed bus name"));
        for id in ["", "/x", ":/x"] {
            assert!(msg(id).starts_with("invalid accessibility request: "));
        }
    }

    #[test]
    fn states_decode_in_index_order() {
        // active(1), enabled(8), focusable(11), sensitive(24), showing(25), visible(30),
        // is_default(39) in the high word, plus an unknown bit 50.
        let lo = 1 << 1 | 1 << 8 | 1 << 11 | 1 << 24 | 1 << 25 | 1 << 30;
        let hi = 1 << (39 - 32) | 1 << (50 - 32);
        let s = States::from_words(&[lo, hi]);
        assert_eq!(
            s.names(),
            ["active", "enabled", "focusable", "sensitive", "showing", "visible", "is_default"]
        );
        assert!(s.has(STATE_ACTIVE));
        assert!(s.has_all(&["enabled".into(), "SHOWING".into()]));
        assert!(!s.has_all(&["focused".into()]));
        assert!(!s.has_all(&["no_such_state".into()]));
        assert!(s.has_all(&[]));
        assert_eq!(States::from_words(&[]).names(), Vec::<&str>::new());
        assert_eq!(STATE_NAMES[43], "read_only");
        assert_eq!(STATE_NAMES[STATE_DEFUNCT], "defunct");
        assert_eq!(STATE_NAMES[STATE_SHOWING], "showing");
        assert_eq!(STATE_NAMES[STATE_VISIBLE], "visible");
        assert_eq!(state_index(" Focused "), Some(12));
        assert_eq!(state_index("shiny"), None);
        assert!(s.has_every(&[1, 8]) && !s.has_every(&[1, 12]) && s.has_every(&[]));
        assert!(s.has_none(&[12, 27]) && !s.has_none(&[12, 8]) && s.has_none(&[]));
    }
}
