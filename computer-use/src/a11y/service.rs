//! The accessibility service: tree, find, focus, invoke and set value on the desktop's AT-SPI
//! bus. Answers are the walked nodes; `api` turns them into the clients' JSON.

use super::bus::{Bus, CALL_TIMEOUT, Calls};
use super::error::A11yError;
use super::filter::Filter;
use super::node::{NODE_BUDGET, NodeRef};
use super::ops;
use super::scope::{self, Scope};
use super::walk::{self, Detail, Info, RawNode, Walk};
use crate::desktop_env::SharedDesktopEnv;

pub struct A11y {
    bus: Bus,
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
        A11y { bus: Bus::new(desktop_env) }
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
        Ok(Calls::new(self.bus.connection().await?, CALL_TIMEOUT))
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
        let calls = self.calls().await?;
        let root = scope::resolve(&calls, scope).await?;
        let id = root.id();
        // Walk reading only what the filter needs, then read the matches in full.
        let walk = Walk::new(&calls, filter.detail(), NODE_BUDGET);
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
            futures_util::future::join_all(hits.iter().map(|n| walk::read_info(&calls, n, Detail::Full)))
                .await;
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
}
