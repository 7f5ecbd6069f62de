//! Accessibility over AT-SPI (spec computer-use.md §7, sdk-0.226.md §2.6): tree, find, focus,
//! invoke, set value.
//!
//! `bus` owns the connection to the AT-SPI bus and bounded calls on it, `walk` the concurrent
//! tree walks, `scope` where a walk starts, `filter` the find filter, `ops` the node actions,
//! `node` ids, states and the node JSON, `error` the failure classes and their HTTP mapping.

mod bus;
mod error;
#[cfg(test)]
mod fake;
mod filter;
mod node;
mod ops;
mod scope;
mod walk;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Json};
use crate::state::{AppState, DesktopEnv};
use bus::{Bus, CALL_TIMEOUT, Calls};
pub use error::A11yError;
use filter::Filter;
use node::{NodeJson, NodeRef};
use scope::Scope;
use walk::{Detail, NODE_BUDGET, Walk};

/// The AT-SPI registry: its root's children are the applications.
pub const REGISTRY: &str = "org.a11y.atspi.Registry";
pub const ROOT_PATH: &str = "/org/a11y/atspi/accessible/root";

pub struct A11y {
    bus: Bus,
}

#[derive(Debug, Serialize)]
pub struct TreeResponse {
    pub root: NodeJson,
    pub truncated: bool,
}

#[derive(Debug, Serialize)]
pub struct FindResponse {
    pub matches: Vec<NodeJson>,
    pub truncated: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindRequest {
    pub scope: Option<String>,
    pub pid: Option<i64>,
    pub role: Option<String>,
    pub name: Option<String>,
    pub name_match: Option<String>,
    pub states: Option<Vec<String>>,
    pub limit: Option<i64>,
}

impl A11y {
    pub fn new(desktop_env: Arc<RwLock<DesktopEnv>>) -> A11y {
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
    pub async fn tree(&self, scope: Scope, max_depth: Option<u32>) -> Result<TreeResponse, A11yError> {
        let calls = self.calls().await?;
        let root = scope::resolve(&calls, scope).await?;
        let walk = Walk::new(&calls, Detail::Full, NODE_BUDGET);
        let id = root.id();
        match walk.run(root, max_depth).await.map_err(|e| e.into_a11y(&id))? {
            Some(raw) => Ok(TreeResponse { root: raw.into_json(), truncated: walk.truncated() }),
            None => Err(A11yError::NodeNotFound(id)),
        }
    }

    /// Nodes under (and including) the scope's root that pass the filter, in pre-order.
    pub async fn find(&self, req: &FindRequest) -> Result<FindResponse, A11yError> {
        let scope = Scope::parse(req.scope.as_deref(), req.pid)?;
        let filter = Filter::new(
            req.role.as_deref(),
            req.name.as_deref(),
            req.name_match.as_deref(),
            req.states.as_deref(),
        )?;
        let limit = filter::effective_limit(req.limit);
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
        for (node, info) in hits.iter().zip(infos) {
            match info {
                Ok(info) => matches.push(walk::info_json(node, info)),
                // Gone since the walk saw it.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into_a11y(&node.id())),
            }
        }
        Ok(FindResponse { matches, truncated })
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

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/a11y/tree", get(tree))
        .route("/computeruse/a11y/find", post(find))
        .route("/computeruse/a11y/node/focus", post(focus))
        .route("/computeruse/a11y/node/invoke", post(invoke))
        .route("/computeruse/a11y/node/value", post(set_value))
}

/// `maxDepth`: absent or negative → unbounded; `0` → the root only.
fn parse_tree_query(q: &HashMap<String, String>) -> Result<(Scope, Option<u32>), A11yError> {
    let int = |key: &str| -> Result<Option<i64>, A11yError> {
        match q.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| A11yError::InvalidRequest(format!("{key} must be an integer, got {v:?}"))),
        }
    };
    let pid = int("pid")?;
    let max_depth = int("maxDepth")?.and_then(|d| u32::try_from(d).ok());
    Ok((Scope::parse(q.get("scope").map(String::as_str), pid)?, max_depth))
}

async fn tree(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<TreeResponse>, ApiError> {
    let Query(q) = query.map_err(|e| A11yError::InvalidRequest(e.body_text()))?;
    let (scope, max_depth) = parse_tree_query(&q)?;
    Ok(Json(state.a11y.tree(scope, max_depth).await?))
}

async fn find(
    State(state): State<AppState>,
    ObjectBody(req): ObjectBody<FindRequest>,
) -> Result<Json<FindResponse>, ApiError> {
    Ok(Json(state.a11y.find(&req).await?))
}

#[derive(Debug, Deserialize)]
struct NodeRequest {
    #[serde(default)]
    id: String,
}

#[derive(Debug, Deserialize)]
struct InvokeRequest {
    #[serde(default)]
    id: String,
    action: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ValueRequest {
    #[serde(default)]
    id: String,
    #[serde(default)]
    value: String,
}

/// A JSON object body. serde would also accept an array for a struct (by position); the clients
/// only send objects, and anything else is a malformed body.
struct ObjectBody<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for ObjectBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(map) =
            Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, state).await?;
        serde_json::from_value(serde_json::Value::Object(map)).map(ObjectBody).map_err(ApiError::invalid_body)
    }
}

fn empty() -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}

async fn focus(
    State(state): State<AppState>,
    ObjectBody(req): ObjectBody<NodeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.a11y.focus(&req.id).await?;
    Ok(empty())
}

async fn invoke(
    State(state): State<AppState>,
    ObjectBody(req): ObjectBody<InvokeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.a11y.invoke(&req.id, req.action.as_deref()).await?;
    Ok(empty())
}

async fn set_value(
    State(state): State<AppState>,
    ObjectBody(req): ObjectBody<ValueRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.a11y.set_value(&req.id, &req.value).await?;
    Ok(empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tree_query_depths_and_scopes() {
        assert_eq!(parse_tree_query(&q(&[])).unwrap(), (Scope::Focused, None));
        assert_eq!(parse_tree_query(&q(&[("maxDepth", "0")])).unwrap(), (Scope::Focused, Some(0)));
        assert_eq!(
            parse_tree_query(&q(&[("maxDepth", "3"), ("scope", "all")])).unwrap(),
            (Scope::All, Some(3))
        );
        assert_eq!(parse_tree_query(&q(&[("maxDepth", "-1")])).unwrap().1, None);
        assert_eq!(parse_tree_query(&q(&[("scope", "pid"), ("pid", "12")])).unwrap().0, Scope::Pid(12));
        let e = parse_tree_query(&q(&[("maxDepth", "deep")])).unwrap_err();
        assert_eq!(e.to_string(), "invalid accessibility request: maxDepth must be an integer, got \"deep\"");
        assert!(matches!(
            parse_tree_query(&q(&[("scope", "pid"), ("pid", "x")])),
            Err(A11yError::InvalidRequest(_))
        ));
        assert!(matches!(parse_tree_query(&q(&[("scope", "desk")])), Err(A11yError::InvalidScope(_))));
    }

    async fn call(req: Request) -> (StatusCode, serde_json::Value) {
        // No session bus: anything that reaches the bus is 503; validation happens before that.
        let mut config = crate::config::Config::from_lookup(|_| None).unwrap();
        config.display = ":4242".into();
        let state = AppState::new(config);
        state.desktop_env.write().unwrap().dbus_session_bus_address =
            Some("unix:path=/nonexistent/bus".into());
        let app = crate::server::router(state);
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn post(path: &str, body: &str) -> Request {
        Request::post(path).body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn errors_map_to_the_0226_envelope() {
        let (s, v) =
            call(Request::get("/computeruse/a11y/tree?scope=desk").body(Body::empty()).unwrap()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("invalid accessibility scope: got \"desk\""), "{v}");

        let (s, v) =
            call(Request::get("/computeruse/a11y/tree?maxDepth=x").body(Body::empty()).unwrap()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")), "{v}");

        let (s, v) = call(post("/computeruse/a11y/find", "{\"limit\": \"many\"}")).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_REQUEST_BODY")), "{v}");

        let (s, v) = call(post("/computeruse/a11y/find", "{\"nameMatch\": \"fuzzy\"}")).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")), "{v}");

        let (s, v) = call(post("/computeruse/a11y/node/focus", "{}")).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("invalid node id \"\": missing object path"), "{v}");

        for body in ["not json", "[]", "{\"id\": 5}"] {
            let (s, v) = call(post("/computeruse/a11y/node/invoke", body)).await;
            assert_eq!(
                (s, v["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("INVALID_REQUEST_BODY")),
                "{body}: {v}"
            );
        }

        let (s, v) =
            call(post("/computeruse/a11y/node/value", "{\"id\": \":1.2:/a\", \"value\": \"x\"}")).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("A11Y_UNAVAILABLE")),
            "{v}"
        );
        assert!(
            v["message"].as_str().unwrap().starts_with("accessibility bus not reachable: session bus: "),
            "{v}"
        );

        let (s, v) = call(Request::get("/computeruse/a11y/tree").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("A11Y_UNAVAILABLE")),
            "{v}"
        );
    }

    #[tokio::test]
    async fn unhealthy_without_a_bus() {
        let env = DesktopEnv { display: ":4242".into(), dbus_session_bus_address: None };
        let a11y = A11y::new(Arc::new(RwLock::new(env)));
        assert!(!a11y.healthy().await);
        a11y.reset().await;
        assert!(matches!(a11y.tree(Scope::All, None).await, Err(A11yError::Unavailable(_))));
    }
}
