//! Mouse and keyboard bodies (`/computeruse/mouse/*`, `/computeruse/keyboard/*`).
//!
//! Every field the clients may leave out has a default, as the agent has always treated them:
//! coordinates 0, the left button, no modifiers. What the agent checks beyond the types (button
//! and key names, ranges) is refused with 400 and a message naming the value.
//!
//! Element targeting (extension: not in Daytona's daemon): `mouse/move`, `mouse/click`,
//! `mouse/drag` and `keyboard/type` also take an accessibility node id (`elementId`, or
//! `element_id` as the upstream proposal spells it) instead of coordinates; the agent acts on
//! the centre of the node's current bounds (for `type`: focuses the node first). Coordinates and
//! an id together are refused.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most wheel clicks one scroll sends.
pub const MAX_SCROLL_AMOUNT: i64 = 1000;
/// Most clicks one click request sends.
pub const MAX_CLICKS: i64 = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct MouseMoveRequest {
    /// Absent: 0 (unless an element is given).
    #[schema(nullable = false)]
    pub x: Option<i32>,
    /// Absent: 0 (unless an element is given).
    #[schema(nullable = false)]
    pub y: Option<i32>,
    /// Extension: an accessibility node id to move to (the centre of its bounds), instead of
    /// `x`/`y`.
    #[serde(rename = "elementId", alias = "element_id")]
    #[schema(nullable = false)]
    pub element_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct MouseClickRequest {
    /// Absent: 0 (unless an element is given).
    #[schema(nullable = false)]
    pub x: Option<i32>,
    /// Absent: 0 (unless an element is given).
    #[schema(nullable = false)]
    pub y: Option<i32>,
    /// Extension: an accessibility node id to click (the centre of its bounds), instead of
    /// `x`/`y`.
    #[serde(rename = "elementId", alias = "element_id")]
    #[schema(nullable = false)]
    pub element_id: Option<String>,
    /// `left` (default), `right` or `middle`, case-insensitive.
    pub button: String,
    /// A double click, unless `clicks` says otherwise.
    pub double: bool,
    /// How many clicks; overrides `double`. An explicit 0 is refused rather than defaulted.
    #[schema(minimum = 1, maximum = 10)]
    pub clicks: Option<i64>,
    /// Held during the click: `ctrl`, `alt`, `shift`, `cmd`/`super`/`meta`.
    pub modifiers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, rename_all = "camelCase")]
pub struct MouseDragRequest {
    /// Absent: 0 (unless an element is given for this end).
    #[schema(nullable = false)]
    pub start_x: Option<i32>,
    /// Absent: 0 (unless an element is given for this end).
    #[schema(nullable = false)]
    pub start_y: Option<i32>,
    /// Absent: 0 (unless an element is given for this end).
    #[schema(nullable = false)]
    pub end_x: Option<i32>,
    /// Absent: 0 (unless an element is given for this end).
    #[schema(nullable = false)]
    pub end_y: Option<i32>,
    /// Extension: the node where the drag starts (the centre of its bounds), instead of
    /// `startX`/`startY`.
    #[serde(alias = "start_element_id")]
    #[schema(nullable = false)]
    pub start_element_id: Option<String>,
    /// Extension: the node where the drag ends, instead of `endX`/`endY`.
    #[serde(alias = "end_element_id")]
    #[schema(nullable = false)]
    pub end_element_id: Option<String>,
    /// `left` (default), `right` or `middle`.
    pub button: String,
    pub modifiers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct MouseScrollRequest {
    pub x: i32,
    pub y: i32,
    /// `up`, `down`, `left` or `right`, case-insensitive.
    pub direction: String,
    /// Wheel clicks; absent or 0 means one.
    #[schema(minimum = 0, maximum = 1000)]
    pub amount: Option<i64>,
    pub modifiers: Option<Vec<String>>,
}

/// `mouse/down` and `mouse/up`: the pointer moves to `x`,`y` first when both are given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct MouseDownRequest {
    /// `left` (default), `right` or `middle`.
    pub button: String,
    pub x: Option<i32>,
    pub y: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct MouseUpRequest {
    /// `left` (default), `right` or `middle`.
    pub button: String,
    pub x: Option<i32>,
    pub y: Option<i32>,
}

/// Where the pointer is (after the action).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MousePositionResponse {
    pub x: i32,
    pub y: i32,
}

/// Where the pointer is after the click.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MouseClickResponse {
    pub x: i32,
    pub y: i32,
}

/// Where the pointer is after the drag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MouseDragResponse {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScrollResponse {
    pub success: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct KeyboardTypeRequest {
    pub text: String,
    /// Milliseconds between keystrokes.
    pub delay: Option<i64>,
    /// Extension: an accessibility node to focus before typing.
    #[serde(rename = "elementId", alias = "element_id")]
    #[schema(nullable = false)]
    pub element_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct KeyboardPressRequest {
    /// A key name (`enter`, `f5`, `a`…).
    pub key: String,
    /// `ctrl`, `alt`, `shift`, `cmd`.
    pub modifiers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct KeyboardHotkeyRequest {
    /// Keys joined by `+`, e.g. `ctrl+c`, `cmd+v`.
    pub keys: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyboardKeyDownRequest {
    /// The key to hold until a matching `keyboard/up`, e.g. `ctrl`, `shift`, `a`.
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyboardKeyUpRequest {
    /// The held key to release.
    pub key: String,
}
