//! Accessibility bodies (`/computeruse/a11y/*`): nodes of the AT-SPI tree and what to do with
//! them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessibilityBounds {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// One accessible object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComputerUseAccessibilityNode {
    /// `<bus name>:<object path>`, e.g. `:1.42:/org/a11y/atspi/accessible/12`; what the node
    /// actions take.
    pub id: String,
    /// The AT-SPI role name (`push button`, `text`, `frame`…).
    pub role: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Screen coordinates; zeros for nodes without the Component interface.
    pub bounds: AccessibilityBounds,
    /// AT-SPI state names (`enabled`, `focused`, `showing`…), in state order.
    pub states: Vec<String>,
    /// The node's actions by their machine names (`click`, `press`, `activate`…), the same in
    /// every locale, in index order; omitted when the node has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// Tree answers only; omitted for leaves and in find answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<ComputerUseAccessibilityNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessibilityTreeResponse {
    pub root: ComputerUseAccessibilityNode,
    /// The walk stopped at its node budget (20 000 nodes).
    pub truncated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessibilityNodesResponse {
    /// In tree order, without children.
    pub matches: Vec<ComputerUseAccessibilityNode>,
    /// The limit was reached, or the walk stopped at its node budget.
    pub truncated: bool,
}

/// Filters are AND-ed; empty ones are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct FindAccessibilityNodesRequest {
    /// `focused` (default: the application owning the active window), `pid` or `all`.
    pub scope: Option<String>,
    /// The application's process, with `scope=pid`.
    pub pid: Option<i64>,
    /// Role name, case-insensitive.
    pub role: Option<String>,
    pub name: Option<String>,
    /// `substring` (default, case-sensitive), `exact` or `regex` (unanchored).
    pub name_match: Option<String>,
    /// State names that must all be set.
    pub states: Option<Vec<String>>,
    /// Most matches (absent or ≤ 0: 500; capped at 5000).
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AccessibilityNodeRequest {
    /// The node id from a tree or find answer.
    #[schema(required = true)]
    pub id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AccessibilityInvokeRequest {
    #[schema(required = true)]
    pub id: String,
    /// The action's name, case-insensitive; absent or empty invokes the first action.
    pub action: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AccessibilitySetValueRequest {
    #[schema(required = true)]
    pub id: String,
    /// Text for editable text nodes; a number for value nodes (sliders, spin buttons).
    pub value: String,
}

// ---------------------------------------------------------------------------------- wait
// Extension: not in Daytona's daemon. The shape follows the upstream proposal for
// `POST /computeruse/a11y/wait` (condition, query or id, states, timeoutMs), so clients written
// for it work; `timeout` and `state` are accepted as the shorter spellings.

/// Waits are answered at the latest after this long when no timeout is given (ms).
pub const WAIT_DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The longest wait (ms). The daemon waits 120 s for the agent's answer, so a wait must end
/// well before that.
pub const WAIT_MAX_TIMEOUT_MS: u64 = 100_000;
/// How often the condition is re-checked for applications that send no events (ms), unless
/// `pollIntervalMs` says otherwise.
pub const WAIT_DEFAULT_RECHECK_MS: u64 = 1_000;
/// Bounds of `pollIntervalMs` (ms).
pub const WAIT_MIN_RECHECK_MS: u64 = 50;
pub const WAIT_MAX_RECHECK_MS: u64 = 10_000;

/// The node query of a wait, when given as an object.
pub type AccessibilityWaitQuery = FindAccessibilityNodesRequest;

/// Wait for an accessibility condition (extension: not in Daytona's daemon).
///
/// The nodes are named either by `id` or by a query: the `query` object (the find body) or the
/// same fields at the top level (`scope`, `pid`, `role`, `name`, `nameMatch`, `limit`; and
/// `states` as a filter for `exists` and `gone`). For `state` and `not_state`, `states` (or
/// `state`) are the states waited for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct AccessibilityWaitRequest {
    /// `exists` (default): a node matches; `gone`: none matches (or the `id` no longer exists);
    /// `state`: a matching node has every state in `states`; `not_state`: a matching node has
    /// none of them.
    pub condition: Option<String>,
    /// The node, instead of a query.
    pub id: Option<String>,
    /// The node query (the find body). Not together with the top-level query fields.
    pub query: Option<AccessibilityWaitQuery>,
    /// `focused` (default), `pid` or `all`.
    pub scope: Option<String>,
    pub pid: Option<i64>,
    pub role: Option<String>,
    pub name: Option<String>,
    /// `substring` (default), `exact` or `regex`.
    pub name_match: Option<String>,
    /// Most matches returned (as in find).
    pub limit: Option<i64>,
    /// `state`/`not_state`: the states waited for (AT-SPI names: `focused`, `showing`…);
    /// `exists`/`gone` with top-level query fields: states the nodes must have.
    pub states: Option<Vec<String>>,
    /// One state waited for, added to `states`.
    pub state: Option<String>,
    /// Milliseconds (absent or 0: 10 000; at most 100 000).
    #[serde(alias = "timeoutMs")]
    #[schema(minimum = 0, maximum = 100_000)]
    pub timeout: Option<i64>,
    /// How often the condition is also re-checked without events, in milliseconds (absent or
    /// 0: 1000; at least 50, at most 10 000). Events trigger checks at once regardless.
    #[schema(minimum = 0, maximum = 10_000)]
    pub poll_interval_ms: Option<i64>,
}

/// The condition held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessibilityWaitResponse {
    /// Always true here (a timeout is a 408).
    pub matched: bool,
    /// Always false here; kept for clients of the upstream proposal.
    pub timed_out: bool,
    /// How long the wait took, in milliseconds.
    pub elapsed_ms: u64,
    /// The first matching node; absent for `gone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ComputerUseAccessibilityNode>,
    /// The matching nodes found (for `state`/`not_state`, those in the state; when an event
    /// answered an `exists` query, those in the part of the tree the event concerned); empty
    /// for `gone`.
    pub matches: Vec<ComputerUseAccessibilityNode>,
    /// The query's walk stopped at its limit or node budget.
    pub truncated: bool,
}
