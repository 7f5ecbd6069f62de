//! Display and window bodies (`/computeruse/display/*`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One screen (RandR monitor) of the display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisplayInfo {
    pub id: usize,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub is_active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DisplayInfoResponse {
    pub displays: Vec<DisplayInfo>,
}

/// One top-level window of the window manager's client list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowInfo {
    /// The owner's pid (`_NET_WM_PID`, 0 when unknown), as the reference reports it.
    pub id: u32,
    pub title: String,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub is_active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WindowsResponse {
    pub windows: Vec<WindowInfo>,
}
