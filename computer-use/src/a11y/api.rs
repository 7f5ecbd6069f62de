//! `/computeruse/a11y/*`: the routes, the clients' node JSON, and how accessibility failures
//! reach HTTP (spec computer-use.md §7.5, sdk-0.226.md §2.6: the class decides status and code,
//! never the text).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use computer_use_api::Empty;
use computer_use_api::a11y::{
    AccessibilityBounds, AccessibilityInvokeRequest, AccessibilityNodeRequest, AccessibilityNodesResponse,
    AccessibilitySetValueRequest, AccessibilityTreeResponse, AccessibilityWaitRequest,
    AccessibilityWaitResponse, ComputerUseAccessibilityNode, FindAccessibilityNodesRequest,
    WAIT_DEFAULT_RECHECK_MS, WAIT_DEFAULT_TIMEOUT_MS, WAIT_MAX_RECHECK_MS, WAIT_MAX_TIMEOUT_MS,
    WAIT_MIN_RECHECK_MS,
};
use serde::Deserialize;

use super::error::A11yError;
use super::filter::{self, Filter};
use super::node::{NodeRef, state_index};
use super::scope::Scope;
use super::service::A11y;
use super::wait::{Condition, Target, WaitSpec, state_list};
use super::walk::{Info, RawNode};
use crate::error::{AgentErrors, ApiError, Code, Json, Query};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/a11y/tree", get(tree))
        .route("/computeruse/a11y/find", post(find))
        .route("/computeruse/a11y/node/focus", post(focus))
        .route("/computeruse/a11y/node/invoke", post(invoke))
        .route("/computeruse/a11y/node/value", post(set_value))
        // Extension: not in Daytona's daemon.
        .route("/computeruse/a11y/wait", post(wait))
}

impl From<A11yError> for ApiError {
    fn from(e: A11yError) -> ApiError {
        let message = e.to_string();
        match e {
            A11yError::Unavailable(_) => ApiError::a11y_unavailable(message),
            A11yError::NodeNotFound(_) | A11yError::NoRoot => ApiError::not_found(message),
            A11yError::NotSupported(_) | A11yError::InvalidScope(_) | A11yError::InvalidRequest(_) => {
                ApiError::bad_request(message)
            }
            A11yError::Internal(_) => ApiError::internal(message),
            A11yError::WaitTimeout(_) => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, Code::A11yWaitTimeout, message)
            }
            A11yError::NodeGone(_) => ApiError::new(StatusCode::NOT_FOUND, Code::A11yNodeGone, message),
            A11yError::NotVisible(_) => {
                ApiError::new(StatusCode::CONFLICT, Code::A11yNodeNotVisible, message)
            }
        }
    }
}

fn node_json(node: &NodeRef, info: Info) -> ComputerUseAccessibilityNode {
    ComputerUseAccessibilityNode {
        id: node.id(),
        role: info.role,
        name: info.name,
        description: info.description,
        bounds: AccessibilityBounds {
            x: info.bounds.x,
            y: info.bounds.y,
            width: info.bounds.width,
            height: info.bounds.height,
        },
        states: info.states.names().into_iter().map(str::to_owned).collect(),
        actions: info.actions,
        children: Vec::new(),
    }
}

fn tree_json(raw: RawNode) -> ComputerUseAccessibilityNode {
    let mut json = node_json(&raw.node, raw.info);
    json.children = raw.children.into_iter().map(tree_json).collect();
    json
}

/// The tree's query, read as text so that an empty value means "absent" and a bad one is named
/// in the reference's words.
#[derive(Debug, Default, Deserialize)]
struct TreeQuery {
    scope: Option<String>,
    pid: Option<String>,
    #[serde(rename = "maxDepth")]
    max_depth: Option<String>,
}

/// `maxDepth`: absent or negative → unbounded; `0` → the root only.
fn parse_tree_query(q: &TreeQuery) -> Result<(Scope, Option<u32>), A11yError> {
    let int = |key: &str, value: &Option<String>| -> Result<Option<i64>, A11yError> {
        match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| A11yError::InvalidRequest(format!("{key} must be an integer, got {v:?}"))),
        }
    };
    let pid = int("pid", &q.pid)?;
    let max_depth = int("maxDepth", &q.max_depth)?.and_then(|d| u32::try_from(d).ok());
    Ok((Scope::parse(q.scope.as_deref(), pid)?, max_depth))
}

async fn tree(
    State(state): State<AppState>,
    Query(q): Query<TreeQuery>,
) -> Result<Json<AccessibilityTreeResponse>, ApiError> {
    let (scope, max_depth) = parse_tree_query(&q)?;
    let tree = state.a11y.tree(scope, max_depth).await?;
    Ok(Json(AccessibilityTreeResponse { root: tree_json(tree.root), truncated: tree.truncated }))
}

async fn find(
    State(state): State<AppState>,
    Json(req): Json<FindAccessibilityNodesRequest>,
) -> Result<Json<AccessibilityNodesResponse>, ApiError> {
    let scope = Scope::parse(req.scope.as_deref(), req.pid)?;
    let filter = Filter::new(
        req.role.as_deref(),
        req.name.as_deref(),
        req.name_match.as_deref(),
        req.states.as_deref(),
    )?;
    let found = state.a11y.find(scope, &filter, filter::effective_limit(req.limit)).await?;
    let matches = found.matches.into_iter().map(|(node, info)| node_json(&node, info)).collect();
    Ok(Json(AccessibilityNodesResponse { matches, truncated: found.truncated }))
}

async fn focus(
    State(state): State<AppState>,
    Json(req): Json<AccessibilityNodeRequest>,
) -> Result<Json<Empty>, ApiError> {
    state.a11y.focus(&req.id).await?;
    Ok(Json(Empty {}))
}

async fn invoke(
    State(state): State<AppState>,
    Json(req): Json<AccessibilityInvokeRequest>,
) -> Result<Json<Empty>, ApiError> {
    state.a11y.invoke(&req.id, req.action.as_deref()).await?;
    Ok(Json(Empty {}))
}

async fn set_value(
    State(state): State<AppState>,
    Json(req): Json<AccessibilitySetValueRequest>,
) -> Result<Json<Empty>, ApiError> {
    state.a11y.set_value(&req.id, &req.value).await?;
    Ok(Json(Empty {}))
}

/// A millisecond field: absent or 0 → the default; otherwise within `min..=max`.
fn millis(key: &str, v: Option<i64>, default: u64, min: u64, max: u64) -> Result<Duration, A11yError> {
    let ms = match v {
        None | Some(0) => default,
        Some(ms) if ms >= min as i64 && ms <= max as i64 => ms as u64,
        Some(ms) => {
            return Err(A11yError::InvalidRequest(format!(
                "{key} must be between {min} and {max} milliseconds (0 or absent: {default}), got {ms}"
            )));
        }
    };
    Ok(Duration::from_millis(ms))
}

/// Checks a wait body and turns it into the service's spec.
fn wait_spec(req: AccessibilityWaitRequest) -> Result<WaitSpec, A11yError> {
    let condition = Condition::parse(req.condition.as_deref())?;
    let timeout = millis("timeout", req.timeout, WAIT_DEFAULT_TIMEOUT_MS, 1, WAIT_MAX_TIMEOUT_MS)?;
    let recheck = millis(
        "pollIntervalMs",
        req.poll_interval_ms,
        WAIT_DEFAULT_RECHECK_MS,
        WAIT_MIN_RECHECK_MS,
        WAIT_MAX_RECHECK_MS,
    )?;

    // The condition's states: `states` and `state` for state/not_state. With the other
    // conditions, top-level `states` belong to a top-level query.
    let mut wanted: Vec<String> = req.state.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
    let mut query_states = None;
    if condition.needs_states() {
        wanted.extend(req.states.iter().flatten().filter(|s| !s.trim().is_empty()).cloned());
    } else {
        if !wanted.is_empty() {
            return Err(A11yError::InvalidRequest(format!(
                "state is for the state and not_state conditions, not {}",
                condition.name()
            )));
        }
        query_states = req.states.clone();
    }
    let mut bits = Vec::new();
    for name in &wanted {
        let bit = state_index(name)
            .ok_or_else(|| A11yError::InvalidRequest(format!("unknown state {:?}", name.trim())))?;
        if !bits.contains(&bit) {
            bits.push(bit);
        }
    }
    if condition.needs_states() && bits.is_empty() {
        return Err(A11yError::InvalidRequest(format!(
            "the {} condition needs the states to wait for (state or states)",
            condition.name()
        )));
    }

    let id = req.id.as_deref().map(str::trim).filter(|i| !i.is_empty());
    let flat = req.scope.is_some()
        || req.pid.is_some()
        || req.role.is_some()
        || req.name.is_some()
        || req.name_match.is_some()
        || req.limit.is_some()
        || query_states.is_some();
    let query = match (req.query, flat) {
        (Some(_), true) => {
            return Err(A11yError::InvalidRequest(
                "give the node query either as query or as top-level fields, not both".into(),
            ));
        }
        (Some(q), false) => Some(q),
        (None, true) => Some(FindAccessibilityNodesRequest {
            scope: req.scope,
            pid: req.pid,
            role: req.role,
            name: req.name,
            name_match: req.name_match,
            states: query_states,
            limit: req.limit,
        }),
        (None, false) => None,
    };
    let (target, what) = match (id, query) {
        (Some(_), Some(_)) => {
            return Err(A11yError::InvalidRequest("give either id or a node query, not both".into()));
        }
        (None, None) => {
            return Err(A11yError::InvalidRequest("a node id or a node query is required".into()));
        }
        (Some(id), None) => (Target::Node(NodeRef::parse(id)?), format!("node {id}")),
        (None, Some(q)) => {
            let scope = Scope::parse(q.scope.as_deref(), q.pid)?;
            let filter = Filter::new(
                q.role.as_deref(),
                q.name.as_deref(),
                q.name_match.as_deref(),
                q.states.as_deref(),
            )?;
            let what = describe_query(&q);
            (Target::Query { scope, filter, limit: filter::effective_limit(q.limit) }, what)
        }
    };
    let describe = match condition {
        Condition::Exists => format!("{what} to exist"),
        Condition::Gone => format!("{what} to be gone"),
        Condition::State => format!("{what} to be {}", state_list(&bits)),
        Condition::NotState => format!("{what} not to be {}", state_list(&bits)),
    };
    Ok(WaitSpec {
        condition,
        target,
        states: bits,
        timeout,
        recheck,
        describe: format!("{} ({describe})", condition.name()),
    })
}

/// The query in words: `nodes with role "push button", name "OK" in scope all`.
fn describe_query(q: &FindAccessibilityNodesRequest) -> String {
    let mut parts = Vec::new();
    if let Some(r) = q.role.as_deref().filter(|r| !r.trim().is_empty()) {
        parts.push(format!("role {r:?}"));
    }
    if let Some(n) = q.name.as_deref().filter(|n| !n.is_empty()) {
        let mode = q.name_match.as_deref().filter(|m| !m.is_empty()).unwrap_or("substring");
        parts.push(format!("name {n:?} ({mode})"));
    }
    if let Some(s) = q.states.as_deref().filter(|s| !s.is_empty()) {
        parts.push(format!("states [{}]", s.join(", ")));
    }
    let scope = match (q.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()), q.pid) {
        (Some(s), Some(pid)) if s.eq_ignore_ascii_case("pid") => format!("pid {pid}"),
        (Some(s), _) => s.to_lowercase(),
        (None, _) => "focused".into(),
    };
    if parts.is_empty() {
        format!("a node in scope {scope}")
    } else {
        format!("a node with {} in scope {scope}", parts.join(", "))
    }
}

async fn wait(
    State(state): State<AppState>,
    Json(req): Json<AccessibilityWaitRequest>,
) -> Result<Json<AccessibilityWaitResponse>, ApiError> {
    let spec = wait_spec(req)?;
    let waited = state.a11y.wait(&spec).await?;
    let matches: Vec<ComputerUseAccessibilityNode> =
        waited.met.nodes.into_iter().map(|(node, info)| node_json(&node, info)).collect();
    Ok(Json(AccessibilityWaitResponse {
        matched: true,
        timed_out: false,
        elapsed_ms: u64::try_from(waited.elapsed.as_millis()).unwrap_or(u64::MAX),
        node: matches.first().cloned(),
        matches,
        truncated: waited.met.truncated,
    }))
}

/// For element-targeted input (the input area): the screen point at the centre of the node's
/// current bounds, or the error answer (400 bad id, 404 `A11Y_NODE_GONE`, 409
/// `A11Y_NODE_NOT_VISIBLE`, 503 `A11Y_UNAVAILABLE`).
pub async fn element_point(a11y: &A11y, id: &str) -> Result<(i32, i32), ApiError> {
    Ok(a11y.element_point(id).await?)
}

/// For element-targeted typing: focuses the node (on screen, taking the focus).
pub async fn focus_element(a11y: &A11y, id: &str) -> Result<(), ApiError> {
    Ok(a11y.focus_element(id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a11y::node::{Bounds, States};
    use axum::http::StatusCode;

    fn q(scope: Option<&str>, pid: Option<&str>, max_depth: Option<&str>) -> TreeQuery {
        TreeQuery {
            scope: scope.map(str::to_owned),
            pid: pid.map(str::to_owned),
            max_depth: max_depth.map(str::to_owned),
        }
    }

    #[test]
    fn tree_query_depths_and_scopes() {
        assert_eq!(parse_tree_query(&q(None, None, None)).unwrap(), (Scope::Focused, None));
        assert_eq!(parse_tree_query(&q(None, None, Some("0"))).unwrap(), (Scope::Focused, Some(0)));
        assert_eq!(parse_tree_query(&q(Some("all"), None, Some("3"))).unwrap(), (Scope::All, Some(3)));
        assert_eq!(parse_tree_query(&q(None, None, Some("-1"))).unwrap().1, None);
        assert_eq!(parse_tree_query(&q(None, Some(""), Some(" "))).unwrap(), (Scope::Focused, None));
        assert_eq!(parse_tree_query(&q(Some("pid"), Some("12"), None)).unwrap().0, Scope::Pid(12));
        let e = parse_tree_query(&q(None, None, Some("deep"))).unwrap_err();
        assert_eq!(e.to_string(), "invalid accessibility request: maxDepth must be an integer, got \"deep\"");
        assert!(matches!(
            parse_tree_query(&q(Some("pid"), Some("x"), None)),
            Err(A11yError::InvalidRequest(_))
        ));
        assert!(matches!(parse_tree_query(&q(Some("desk"), None, None)), Err(A11yError::InvalidScope(_))));
    }

    #[test]
    fn classes_map_to_status_and_code() {
        let cases = [
            (
                A11yError::Unavailable("dial x: refused".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                "A11Y_UNAVAILABLE",
            ),
            (A11yError::NodeNotFound(":1.2:/a".into()), StatusCode::NOT_FOUND, "NOT_FOUND"),
            (A11yError::NoRoot, StatusCode::NOT_FOUND, "NOT_FOUND"),
            (A11yError::NotSupported(String::new()), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (A11yError::InvalidScope("x".into()), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (A11yError::InvalidRequest("y".into()), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            (A11yError::Internal("z".into()), StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
        ];
        for (e, status, code) in cases {
            let api: ApiError = e.clone().into();
            assert_eq!(api.status, status, "{e}");
            assert_eq!(api.code.map(|c| c.as_str()), Some(code), "{e}");
            assert!(api.message.contains(&e.to_string()), "{} vs {e}", api.message);
        }
        // A later mention of another sentinel does not change the class: the variant decides.
        let api: ApiError = A11yError::Internal("accessibility node not found: later".into()).into();
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn nodes_become_the_clients_json_in_order_without_empty_optionals() {
        let info = |role: &str, name: &str| Info { role: role.into(), name: name.into(), ..Info::default() };
        let leaf = |path: &str, role: &str, name: &str| RawNode {
            node: NodeRef::new(":1.5", path),
            info: info(role, name),
            children: vec![],
        };
        let mut button = leaf("/b", "push button", "OK");
        button.info.actions = vec!["click".into()];
        button.info.bounds = Bounds { x: 1, y: 2, width: 3, height: 4 };
        button.info.states = States(1 << 8 | 1 << 25);
        button.info.description = "confirms".into();
        let mut root = leaf("/r", "frame", "win");
        root.children = vec![leaf("/l", "label", "Type"), button];
        let v = serde_json::to_value(tree_json(root)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": ":1.5:/r", "role": "frame", "name": "win",
                "bounds": {"x": 0, "y": 0, "width": 0, "height": 0}, "states": [],
                "children": [
                    {"id": ":1.5:/l", "role": "label", "name": "Type",
                     "bounds": {"x": 0, "y": 0, "width": 0, "height": 0}, "states": []},
                    {"id": ":1.5:/b", "role": "push button", "name": "OK", "description": "confirms",
                     "bounds": {"x": 1, "y": 2, "width": 3, "height": 4},
                     "states": ["enabled", "showing"], "actions": ["click"]},
                ]
            })
        );
    }

    fn body(json: serde_json::Value) -> AccessibilityWaitRequest {
        serde_json::from_value(json).unwrap()
    }

    fn spec(json: serde_json::Value) -> Result<WaitSpec, String> {
        wait_spec(body(json)).map_err(|e| e.to_string())
    }

    #[test]
    fn wait_bodies_in_the_proposals_shape_and_ours() {
        use serde_json::json;
        // The upstream proposal: a nested query, timeoutMs, pollIntervalMs.
        let s = spec(
            json!({"condition": "exists", "query": {"scope": "all", "name": "Saved", "nameMatch": "exact"},
                            "timeoutMs": 2500, "pollIntervalMs": 100}),
        )
        .unwrap();
        assert_eq!(
            (s.condition, s.timeout, s.recheck),
            (Condition::Exists, Duration::from_millis(2500), Duration::from_millis(100))
        );
        assert!(matches!(&s.target, Target::Query { scope: Scope::All, limit: 500, .. }));
        assert_eq!(s.describe, "exists (a node with name \"Saved\" (exact) in scope all to exist)");
        // Ours: flat query fields, timeout, one state.
        let s = spec(json!({"role": "push button", "scope": "pid", "pid": 7, "condition": "state", "state": "Focused", "timeout": 300}))
            .unwrap();
        assert_eq!(s.states, [12]);
        assert!(matches!(&s.target, Target::Query { scope: Scope::Pid(7), .. }));
        assert_eq!(s.describe, "state (a node with role \"push button\" in scope pid 7 to be focused)");
        // Proposal's state conditions: states beside a query or an id.
        let s = spec(json!({"condition": "not_state", "id": ":1.5:/org/a11y/atspi/accessible/3", "states": ["enabled", "showing", "enabled"]}))
            .unwrap();
        assert_eq!(s.states, [8, 25]);
        assert!(matches!(&s.target, Target::Node(n) if n.path == "/org/a11y/atspi/accessible/3"));
        assert_eq!(
            s.describe,
            "not_state (node :1.5:/org/a11y/atspi/accessible/3 not to be enabled, showing)"
        );
        // Defaults: exists, 10 s, re-checked every second; top-level states filter the query.
        let s = spec(json!({"name": "OK", "states": ["showing"], "timeout": 0})).unwrap();
        assert_eq!(
            (s.condition, s.timeout, s.recheck),
            (Condition::Exists, Duration::from_secs(10), Duration::from_secs(1))
        );
        assert!(s.states.is_empty());
        assert_eq!(
            s.describe,
            "exists (a node with name \"OK\" (substring), states [showing] in scope focused to exist)"
        );
        let s = spec(json!({"condition": "gone", "id": ":1.5:/a"})).unwrap();
        assert_eq!(s.describe, "gone (node :1.5:/a to be gone)");
        // Blank ids count as absent.
        assert!(spec(json!({"id": " ", "role": "frame"})).is_ok());
    }

    #[test]
    fn bad_wait_bodies_are_named() {
        use serde_json::json;
        let bad = |v: serde_json::Value| spec(v).unwrap_err();
        let pre = "invalid accessibility request: ";
        assert_eq!(bad(json!({})), format!("{pre}a node id or a node query is required"));
        assert_eq!(
            bad(json!({"condition": "appears", "role": "x"})),
            format!("{pre}unknown wait condition \"appears\", want exists|gone|state|not_state")
        );
        assert_eq!(
            bad(json!({"id": ":1.2:/a", "role": "x"})),
            format!("{pre}give either id or a node query, not both")
        );
        assert_eq!(
            bad(json!({"query": {"role": "x"}, "name": "y"})),
            format!("{pre}give the node query either as query or as top-level fields, not both")
        );
        assert_eq!(
            bad(json!({"condition": "state", "role": "x"})),
            format!("{pre}the state condition needs the states to wait for (state or states)")
        );
        assert_eq!(
            bad(json!({"condition": "state", "role": "x", "state": "shiny"})),
            format!("{pre}unknown state \"shiny\"")
        );
        assert_eq!(
            bad(json!({"condition": "not_state", "role": "x", "states": ["focused", "glowing"]})),
            format!("{pre}unknown state \"glowing\"")
        );
        assert_eq!(
            bad(json!({"role": "x", "state": "focused"})),
            format!("{pre}state is for the state and not_state conditions, not exists")
        );
        assert_eq!(
            bad(json!({"role": "x", "timeout": 100_001})),
            format!(
                "{pre}timeout must be between 1 and 100000 milliseconds (0 or absent: 10000), got 100001"
            )
        );
        assert_eq!(
            bad(json!({"role": "x", "timeoutMs": -5})),
            format!("{pre}timeout must be between 1 and 100000 milliseconds (0 or absent: 10000), got -5")
        );
        assert_eq!(
            bad(json!({"role": "x", "pollIntervalMs": 10})),
            format!(
                "{pre}pollIntervalMs must be between 50 and 10000 milliseconds (0 or absent: 1000), got 10"
            )
        );
        assert!(bad(json!({"id": "nope"})).contains("invalid node id"));
        assert!(bad(json!({"scope": "window"})).starts_with("invalid accessibility scope"));
        assert!(bad(json!({"name": "(", "nameMatch": "regex"})).contains("invalid regex"));
        // Both spellings of the timeout at once is a malformed body.
        assert!(
            serde_json::from_value::<AccessibilityWaitRequest>(json!({"timeout": 1, "timeoutMs": 2}))
                .is_err()
        );
    }

    #[test]
    fn wait_and_element_errors_have_their_own_codes() {
        for (e, status, code) in [
            (A11yError::WaitTimeout("timed out".into()), StatusCode::REQUEST_TIMEOUT, "A11Y_WAIT_TIMEOUT"),
            (A11yError::NodeGone(":1.2:/a".into()), StatusCode::NOT_FOUND, "A11Y_NODE_GONE"),
            (A11yError::NotVisible(":1.2:/a".into()), StatusCode::CONFLICT, "A11Y_NODE_NOT_VISIBLE"),
        ] {
            let api: ApiError = e.clone().into();
            assert_eq!((api.status, api.code.map(|c| c.as_str())), (status, Some(code)), "{e}");
            assert_eq!(api.message, e.to_string());
        }
    }

    mod router {
        use axum::body::Body;
        use axum::extract::Request;
        use axum::http::StatusCode;
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        use crate::config::Config;
        use crate::state::AppState;

        /// The agent's router with no desktop: a display and a session bus nobody serves.
        pub fn app() -> axum::Router {
            let mut config = Config::from_lookup(|_| None).unwrap();
            config.display = ":4242".into();
            let state = AppState::new(config);
            state
                .desktop_env
                .update(|e| e.dbus_session_bus_address = Some("unix:path=/nonexistent/bus".into()));
            crate::server::router(state)
        }

        pub async fn post(app: &axum::Router, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
            let req = Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice(&bytes).unwrap())
        }

        #[tokio::test]
        async fn wait_checks_its_body_first_then_needs_the_bus() {
            let app = app();
            let (status, v) =
                post(&app, "/computeruse/a11y/wait", r#"{"condition": "later", "role": "x"}"#).await;
            assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")), "{v}");
            assert!(v["message"].as_str().unwrap().contains("unknown wait condition"), "{v}");
            let (status, v) = post(&app, "/computeruse/a11y/wait", r#"{"timeout": "soon"}"#).await;
            assert_eq!(
                (status, v["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("INVALID_REQUEST_BODY")),
                "{v}"
            );
            let (status, v) = post(&app, "/computeruse/a11y/wait", r#"{"role": "x", "timeout": 200}"#).await;
            assert_eq!(
                (status, v["code"].as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, Some("A11Y_UNAVAILABLE")),
                "{v}"
            );
            assert_eq!(v["path"], "/computeruse/a11y/wait");
        }
    }
}
