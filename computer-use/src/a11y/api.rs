//! `/computeruse/a11y/*`: the routes, the clients' node JSON, and how accessibility failures
//! reach HTTP (spec computer-use.md §7.5, sdk-0.226.md §2.6: the class decides status and code,
//! never the text).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use computer_use_api::Empty;
use computer_use_api::a11y::{
    AccessibilityBounds, AccessibilityInvokeRequest, AccessibilityNodeRequest, AccessibilityNodesResponse,
    AccessibilitySetValueRequest, AccessibilityTreeResponse, ComputerUseAccessibilityNode,
    FindAccessibilityNodesRequest,
};
use serde::Deserialize;

use super::error::A11yError;
use super::filter::{self, Filter};
use super::node::NodeRef;
use super::scope::Scope;
use super::walk::{Info, RawNode};
use crate::error::{AgentErrors, ApiError, Json, Query};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/a11y/tree", get(tree))
        .route("/computeruse/a11y/find", post(find))
        .route("/computeruse/a11y/node/focus", post(focus))
        .route("/computeruse/a11y/node/invoke", post(invoke))
        .route("/computeruse/a11y/node/value", post(set_value))
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
}
