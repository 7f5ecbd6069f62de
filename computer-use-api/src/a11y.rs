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
