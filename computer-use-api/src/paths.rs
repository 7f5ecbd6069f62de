//! The OpenAPI description of every `/computeruse/*` route the daemon relays to the agent.
//!
//! These functions are never called: each one only carries a route's description, because the
//! handlers live in the agent, which the daemon does not link. Every route answers 503 when the
//! agent cannot run (without a code, the message naming what is missing); a wrong method on any
//! of them is 404 `NOT_FOUND`, like everywhere in the API. Error bodies are the envelope.
#![allow(dead_code)]

use crate::a11y::{
    AccessibilityInvokeRequest, AccessibilityNodeRequest, AccessibilityNodesResponse,
    AccessibilitySetValueRequest, AccessibilityTreeResponse, AccessibilityWaitRequest,
    AccessibilityWaitResponse, FindAccessibilityNodesRequest,
};
use crate::clipboard::{ClipboardResponse, SetClipboardRequest};
use crate::common::Empty;
use crate::display::{DisplayInfoResponse, WindowsResponse};
use crate::input::{
    KeyboardHotkeyRequest, KeyboardKeyDownRequest, KeyboardKeyUpRequest, KeyboardPressRequest,
    KeyboardTypeRequest, MouseClickRequest, MouseClickResponse, MouseDownRequest, MouseDragRequest,
    MouseDragResponse, MouseMoveRequest, MousePositionResponse, MouseScrollRequest, MouseUpRequest,
    ScrollResponse,
};
use crate::process::{
    ComputerUseStartResponse, ComputerUseStatusResponse, ComputerUseStopResponse, ProcessErrorsResponse,
    ProcessLogsResponse, ProcessRestartResponse, ProcessStatusResponse,
};
use crate::screenshot::ScreenshotResponse;

// ------------------------------------------------------------------------------ processes

/// Start computer use processes
///
/// Starts the session bus, Xvfb, xfce4, the AT-SPI bus, x11vnc and noVNC (those not running
/// yet) and answers once each required one is ready.
#[utoipa::path(post, path = "/computeruse/start", tag = "computer-use",
    responses(
        (status = 200, description = "Every required process is ready; the status of each", body = ComputerUseStartResponse),
        (status = 503, description = "A desktop process did not come up (`failed to start computer use: <process>: <why>`), or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn start_computer_use() {}

/// Stop computer use processes
///
/// Releases held keys and buttons and stops every desktop process.
#[utoipa::path(post, path = "/computeruse/stop", tag = "computer-use",
    responses(
        (status = 200, description = "Every process is stopped; the status of each", body = ComputerUseStopResponse),
        (status = 503, description = "A process could not be stopped, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn stop_computer_use() {}

/// Get computer use status
#[utoipa::path(get, path = "/computeruse/status", tag = "computer-use",
    responses(
        (status = 200, description = "The desktop as a whole", body = ComputerUseStatusResponse),
        (status = 503, description = "The agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_computer_use_system_status() {}

/// Get computer use process status
///
/// The same answer as `/computeruse/status`.
#[utoipa::path(get, path = "/computeruse/process-status", tag = "computer-use",
    responses(
        (status = 200, description = "The desktop as a whole", body = ComputerUseStatusResponse),
        (status = 503, description = "The agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_computer_use_status() {}

/// Get specific process status
///
/// Whether the process's supervision runs (for `atspi`: whether the accessibility bus answers).
#[utoipa::path(get, path = "/computeruse/process/{processName}/status", tag = "computer-use",
    params(("processName" = String, Path, description = "`xvfb`, `xfce4`, `atspi`, `x11vnc` or `novnc`")),
    responses(
        (status = 200, description = "Whether the process runs", body = ProcessStatusResponse),
        (status = 400, description = "The name is not valid UTF-8 (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "No such process (`failed to get process status: process <name> not found`, as the reference answers), or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_process_status() {}

/// Restart specific process
#[utoipa::path(post, path = "/computeruse/process/{processName}/restart", tag = "computer-use",
    params(("processName" = String, Path, description = "`xvfb`, `xfce4`, `atspi`, `x11vnc` or `novnc`")),
    responses(
        (status = 200, description = "The process was restarted", body = ProcessRestartResponse),
        (status = 400, description = "No such process (`process <name> not found`), an undecodable name, or the process could not be stopped (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn restart_process() {}

/// Get process logs
#[utoipa::path(get, path = "/computeruse/process/{processName}/logs", tag = "computer-use",
    params(("processName" = String, Path, description = "`xvfb`, `xfce4`, `atspi`, `x11vnc` or `novnc`")),
    responses(
        (status = 200, description = "The end of the process's stdout log", body = ProcessLogsResponse),
        (status = 400, description = "No such process, an undecodable name, or no log to read (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "Reading the log failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_process_logs() {}

/// Get process errors
#[utoipa::path(get, path = "/computeruse/process/{processName}/errors", tag = "computer-use",
    params(("processName" = String, Path, description = "`xvfb`, `xfce4`, `atspi`, `x11vnc` or `novnc`")),
    responses(
        (status = 200, description = "The end of the process's stderr log", body = ProcessErrorsResponse),
        (status = 400, description = "No such process, an undecodable name, or no error log to read (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "Reading the log failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_process_errors() {}

// ---------------------------------------------------------------------------------- mouse

/// Get mouse position
#[utoipa::path(get, path = "/computeruse/mouse/position", tag = "computer-use",
    responses(
        (status = 200, description = "Where the pointer is", body = MousePositionResponse),
        (status = 400, description = "The X server refused the request (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached (`X display not available: …; start the desktop with POST /computeruse/start`), or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_mouse_position() {}

/// Move mouse cursor
///
/// To `x`,`y`, or (extension: not in Daytona's daemon) to the centre of the current bounds of the
/// accessibility node `elementId`.
#[utoipa::path(post, path = "/computeruse/mouse/move", tag = "computer-use", request_body = MouseMoveRequest,
    responses(
        (status = 200, description = "Where the pointer is", body = MousePositionResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); the X server refused the request, an invalid `elementId`, or both `elementId` and coordinates (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "Extension: the `elementId` node no longer exists (`A11Y_NODE_GONE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 409, description = "Extension: the `elementId` node is not showing on screen or has empty bounds (`A11Y_NODE_NOT_VISIBLE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available (no code); extension: the accessibility bus cannot be reached for an `elementId` (`A11Y_UNAVAILABLE`)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn move_mouse() {}

/// Click mouse button
///
/// At `x`,`y`, or (extension: not in Daytona's daemon) at the centre of the current bounds of the
/// accessibility node `elementId`.
#[utoipa::path(post, path = "/computeruse/mouse/click", tag = "computer-use", request_body = MouseClickRequest,
    responses(
        (status = 200, description = "Clicked; where the pointer is", body = MouseClickResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown button or modifier, `clicks` out of range, a refusal of the X server, an invalid `elementId`, or both `elementId` and coordinates (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "Extension: the `elementId` node no longer exists (`A11Y_NODE_GONE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 409, description = "Extension: the `elementId` node is not showing on screen or has empty bounds (`A11Y_NODE_NOT_VISIBLE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available (no code); extension: the accessibility bus cannot be reached for an `elementId` (`A11Y_UNAVAILABLE`)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn click() {}

/// Drag mouse
///
/// Each end is coordinates or (extension: not in Daytona's daemon) the centre of an accessibility
/// node's current bounds (`startElementId`, `endElementId`).
#[utoipa::path(post, path = "/computeruse/mouse/drag", tag = "computer-use", request_body = MouseDragRequest,
    responses(
        (status = 200, description = "Dragged; where the pointer is", body = MouseDragResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown button or modifier, a refusal of the X server, an invalid element id, or an end given both as a node and as coordinates (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "Extension: the `elementId` node no longer exists (`A11Y_NODE_GONE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 409, description = "Extension: the `elementId` node is not showing on screen or has empty bounds (`A11Y_NODE_NOT_VISIBLE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available (no code); extension: the accessibility bus cannot be reached for an `elementId` (`A11Y_UNAVAILABLE`)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn drag() {}

/// Scroll mouse wheel
#[utoipa::path(post, path = "/computeruse/mouse/scroll", tag = "computer-use", request_body = MouseScrollRequest,
    responses(
        (status = 200, description = "Scrolled", body = ScrollResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown direction or modifier, `amount` out of range, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn scroll() {}

/// Press mouse button
///
/// Presses and holds a button (released by `mouse/up`, or when the desktop stops).
#[utoipa::path(post, path = "/computeruse/mouse/down", tag = "computer-use", request_body = MouseDownRequest,
    responses(
        (status = 200, description = "Where the pointer is", body = MousePositionResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown button, only one of `x` and `y`, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn mouse_down() {}

/// Release mouse button
#[utoipa::path(post, path = "/computeruse/mouse/up", tag = "computer-use", request_body = MouseUpRequest,
    responses(
        (status = 200, description = "Where the pointer is", body = MousePositionResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown button, only one of `x` and `y`, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn mouse_up() {}

// ------------------------------------------------------------------------------- keyboard

/// Type text
///
/// Into whatever has the keyboard focus, or (extension: not in Daytona's daemon) into the
/// accessibility node `elementId`, focused first.
#[utoipa::path(post, path = "/computeruse/keyboard/type", tag = "computer-use", request_body = KeyboardTypeRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); text that cannot be typed, a refusal of the X server, an invalid `elementId`, or an element that cannot take the focus (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "Extension: the `elementId` node no longer exists (`A11Y_NODE_GONE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 409, description = "Extension: the `elementId` node is not showing on screen or has empty bounds (`A11Y_NODE_NOT_VISIBLE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available (no code); extension: the accessibility bus cannot be reached for an `elementId` (`A11Y_UNAVAILABLE`)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn type_text() {}

/// Press key
#[utoipa::path(post, path = "/computeruse/keyboard/key", tag = "computer-use", request_body = KeyboardPressRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown key or modifier, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn press_key() {}

/// Press hotkey
#[utoipa::path(post, path = "/computeruse/keyboard/hotkey", tag = "computer-use", request_body = KeyboardHotkeyRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown key, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn press_hotkey() {}

/// Press and hold a keyboard key
///
/// Held until `keyboard/up`, or until the desktop stops.
#[utoipa::path(post, path = "/computeruse/keyboard/down", tag = "computer-use", request_body = KeyboardKeyDownRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body or no `key` (`INVALID_REQUEST_BODY`); an unknown key, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn key_down() {}

/// Release a held keyboard key
#[utoipa::path(post, path = "/computeruse/keyboard/up", tag = "computer-use", request_body = KeyboardKeyUpRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body or no `key` (`INVALID_REQUEST_BODY`); an unknown key, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn key_up() {}

// ---------------------------------------------------------------------------- screenshots

/// Take a screenshot
///
/// The first screen, as PNG.
#[utoipa::path(get, path = "/computeruse/screenshot", tag = "computer-use",
    params(
        ("showCursor" = Option<bool>, Query, description = "Draw the pointer into the image"),
        ("If-None-Match" = Option<String>, Header, description = "Ours (not in Daytona's daemon): the `ETag` of a frame the client has; when the screen, the parameters and (with `showCursor`) the pointer are unchanged since, the answer is 304 without a body"),
        ("ifNoneMatch" = Option<String>, Query, description = "Ours: the same as `If-None-Match`, for clients that cannot set headers (quotes optional)"),
    ),
    responses(
        (status = 200, description = "The image", body = ScreenshotResponse, headers(("ETag" = String, description = "Ours (not in Daytona's daemon): names this frame, for `If-None-Match`"))),
        (status = 304, description = "Ours (not in Daytona's daemon): the screen is unchanged since the frame `If-None-Match` names; no body, nothing encoded", headers(("ETag" = String, description = "The unchanged frame's tag"))),
        (status = 400, description = "A parameter that is not what it must be, named in the message, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "Capturing or encoding failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn take_screenshot() {}

/// Take a region screenshot
#[utoipa::path(get, path = "/computeruse/screenshot/region", tag = "computer-use",
    params(
        ("x" = i32, Query, description = "Left edge, root coordinates"),
        ("y" = i32, Query, description = "Top edge, root coordinates"),
        ("width" = i32, Query, minimum = 1, description = "At most 64 Mi pixels in all"),
        ("height" = i32, Query, minimum = 1),
        ("showCursor" = Option<bool>, Query, description = "Draw the pointer into the image"),
        ("If-None-Match" = Option<String>, Header, description = "Ours (not in Daytona's daemon): the `ETag` of a frame the client has; when the screen, the parameters and (with `showCursor`) the pointer are unchanged since, the answer is 304 without a body"),
        ("ifNoneMatch" = Option<String>, Query, description = "Ours: the same as `If-None-Match`, for clients that cannot set headers (quotes optional)"),
    ),
    responses(
        (status = 200, description = "The image", body = ScreenshotResponse, headers(("ETag" = String, description = "Ours (not in Daytona's daemon): names this frame, for `If-None-Match`"))),
        (status = 304, description = "Ours (not in Daytona's daemon): the screen is unchanged since the frame `If-None-Match` names; no body, nothing encoded", headers(("ETag" = String, description = "The unchanged frame's tag"))),
        (status = 400, description = "A missing or malformed parameter, a region that is empty or too large, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "Capturing or encoding failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn take_region_screenshot() {}

/// Take a compressed screenshot
#[utoipa::path(get, path = "/computeruse/screenshot/compressed", tag = "computer-use",
    params(
        ("showCursor" = Option<bool>, Query, description = "Draw the pointer into the image"),
        ("format" = Option<String>, Query, description = "`png` (default) or `jpeg`; anything else gives an unscaled PNG"),
        ("quality" = Option<i32>, Query, minimum = 1, maximum = 100, description = "JPEG quality, default 85"),
        ("scale" = Option<f64>, Query, minimum = 0.1, maximum = 1.0, description = "Scale factor, default 1"),
        ("If-None-Match" = Option<String>, Header, description = "Ours (not in Daytona's daemon): the `ETag` of a frame the client has; when the screen, the parameters and (with `showCursor`) the pointer are unchanged since, the answer is 304 without a body"),
        ("ifNoneMatch" = Option<String>, Query, description = "Ours: the same as `If-None-Match`, for clients that cannot set headers (quotes optional)"),
    ),
    responses(
        (status = 200, description = "The image", body = ScreenshotResponse, headers(("ETag" = String, description = "Ours (not in Daytona's daemon): names this frame, for `If-None-Match`"))),
        (status = 304, description = "Ours (not in Daytona's daemon): the screen is unchanged since the frame `If-None-Match` names; no body, nothing encoded", headers(("ETag" = String, description = "The unchanged frame's tag"))),
        (status = 400, description = "A malformed or out-of-range parameter, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "Capturing or encoding failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn take_compressed_screenshot() {}

/// Take a compressed region screenshot
#[utoipa::path(get, path = "/computeruse/screenshot/region/compressed", tag = "computer-use",
    params(
        ("x" = i32, Query, description = "Left edge, root coordinates"),
        ("y" = i32, Query, description = "Top edge, root coordinates"),
        ("width" = i32, Query, minimum = 1, description = "At most 64 Mi pixels in all"),
        ("height" = i32, Query, minimum = 1),
        ("showCursor" = Option<bool>, Query, description = "Draw the pointer into the image"),
        ("format" = Option<String>, Query, description = "`png` (default) or `jpeg`; anything else gives an unscaled PNG"),
        ("quality" = Option<i32>, Query, minimum = 1, maximum = 100, description = "JPEG quality, default 85"),
        ("scale" = Option<f64>, Query, minimum = 0.1, maximum = 1.0, description = "Scale factor, default 1"),
        ("If-None-Match" = Option<String>, Header, description = "Ours (not in Daytona's daemon): the `ETag` of a frame the client has; when the screen, the parameters and (with `showCursor`) the pointer are unchanged since, the answer is 304 without a body"),
        ("ifNoneMatch" = Option<String>, Query, description = "Ours: the same as `If-None-Match`, for clients that cannot set headers (quotes optional)"),
    ),
    responses(
        (status = 200, description = "The image", body = ScreenshotResponse, headers(("ETag" = String, description = "Ours (not in Daytona's daemon): names this frame, for `If-None-Match`"))),
        (status = 304, description = "Ours (not in Daytona's daemon): the screen is unchanged since the frame `If-None-Match` names; no body, nothing encoded", headers(("ETag" = String, description = "The unchanged frame's tag"))),
        (status = 400, description = "A missing, malformed or out-of-range parameter, a region that is empty or too large, or a refusal of the X server (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "Capturing or encoding failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn take_compressed_region_screenshot() {}

// -------------------------------------------------------------------------------- display

/// Get display information
#[utoipa::path(get, path = "/computeruse/display/info", tag = "computer-use",
    responses(
        (status = 200, description = "The screens of the display", body = DisplayInfoResponse),
        (status = 400, description = "The X server refused the request (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_display_info() {}

/// Get windows information
#[utoipa::path(get, path = "/computeruse/display/windows", tag = "computer-use",
    responses(
        (status = 200, description = "The top-level windows", body = WindowsResponse),
        (status = 400, description = "The X server refused the request (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The X request failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_windows() {}

// -------------------------------------------------------------------------- accessibility

/// Get accessibility tree
///
/// The AT-SPI tree of the focused application, of one process's application, or of all
/// applications, walked to at most 20 000 nodes.
#[utoipa::path(get, path = "/computeruse/a11y/tree", tag = "computer-use",
    params(
        ("scope" = Option<String>, Query, description = "`focused` (default), `pid` or `all`"),
        ("pid" = Option<i64>, Query, description = "The application's process, with `scope=pid` (then it must be positive)"),
        ("maxDepth" = Option<i64>, Query, description = "Levels below the root (absent or negative: all; 0: the root only)"),
    ),
    responses(
        (status = 200, description = "The subtree at the scope's root", body = AccessibilityTreeResponse),
        (status = 400, description = "An unknown scope, a missing or non-positive pid with `scope=pid`, a non-integer or repeated parameter (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "No application for the scope, or the root vanished (`NOT_FOUND`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "An application answered nonsense or not at all (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The accessibility bus cannot be reached (`A11Y_UNAVAILABLE`), or the agent is not available (no code)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_accessibility_tree() {}

/// Find accessibility nodes
///
/// Nodes under (and including) the scope's root that pass every filter, in tree order.
#[utoipa::path(post, path = "/computeruse/a11y/find", tag = "computer-use", request_body = FindAccessibilityNodesRequest,
    responses(
        (status = 200, description = "The matching nodes", body = AccessibilityNodesResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown scope or name-match mode, an invalid regex, a missing pid with `scope=pid` (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "No application for the scope (`NOT_FOUND`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "An application answered nonsense or not at all (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The accessibility bus cannot be reached (`A11Y_UNAVAILABLE`), or the agent is not available (no code)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn find_accessibility_nodes() {}

/// Focus an accessibility node
#[utoipa::path(post, path = "/computeruse/a11y/node/focus", tag = "computer-use", request_body = AccessibilityNodeRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an invalid node id, or a node that cannot take the focus (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "The node does not exist (`NOT_FOUND`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The application answered nonsense or not at all (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The accessibility bus cannot be reached (`A11Y_UNAVAILABLE`), or the agent is not available (no code)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn focus_accessibility_node() {}

/// Invoke an action on an accessibility node
///
/// Calls the named action (by its machine name, e.g. `click`), or the node's first one.
#[utoipa::path(post, path = "/computeruse/a11y/node/invoke", tag = "computer-use", request_body = AccessibilityInvokeRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an invalid node id, a node without that action, or an action that did not run (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "The node does not exist (`NOT_FOUND`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The application answered nonsense or not at all (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The accessibility bus cannot be reached (`A11Y_UNAVAILABLE`), or the agent is not available (no code)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn invoke_accessibility_node() {}

/// Set the value of an accessibility node
///
/// Text for nodes with EditableText, else a number for nodes with Value.
#[utoipa::path(post, path = "/computeruse/a11y/node/value", tag = "computer-use", request_body = AccessibilitySetValueRequest,
    responses(
        (status = 200, description = "Done", body = Empty),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an invalid node id, or a value the node cannot take (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "The node does not exist (`NOT_FOUND`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The application answered nonsense or not at all (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The accessibility bus cannot be reached (`A11Y_UNAVAILABLE`), or the agent is not available (no code)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn set_accessibility_node_value() {}

/// Wait for an accessibility condition
///
/// Extension: not in Daytona's daemon. Answers as soon as the condition holds: `exists` (a node
/// matches), `gone` (none does), `state` / `not_state` (a matching node has all / none of the
/// states). The nodes are named by `id` or by a find query. The condition is checked at once,
/// again on every burst of AT-SPI events (window and state changes, nodes added or removed), and
/// at `pollIntervalMs` for applications that send no events.
#[utoipa::path(post, path = "/computeruse/a11y/wait", tag = "computer-use", request_body = AccessibilityWaitRequest,
    responses(
        (status = 200, description = "The condition holds; the matching nodes and how long it took", body = AccessibilityWaitResponse),
        (status = 400, description = "A malformed body (`INVALID_REQUEST_BODY`); an unknown condition or state name, no states for `state`/`not_state`, neither or both of `id` and a query, an invalid node id, scope, name-match mode or regex, or `timeout`/`pollIntervalMs` out of range (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 404, description = "`state`/`not_state` for an `id` whose node does not exist (`NOT_FOUND`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 408, description = "The condition did not hold within `timeout`; the message names it (`A11Y_WAIT_TIMEOUT`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The body is over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "An application answered nonsense (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The accessibility bus cannot be reached (`A11Y_UNAVAILABLE`), or the agent is not available (no code)", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn wait_accessibility() {}

// ------------------------------------------------------ clipboard (ours: not in Daytona's daemon)

/// Get the clipboard's text
///
/// Extension: not in Daytona's daemon. The X11 CLIPBOARD selection as UTF-8 text: the agent's
/// own value when it owns the selection, else converted from the owner (`UTF8_STRING`, then
/// `STRING` as Latin-1; INCR transfers are read). Empty text when no client owns the clipboard.
#[utoipa::path(get, path = "/computeruse/clipboard", tag = "computer-use",
    responses(
        (status = 200, description = "The clipboard's text (empty when nobody owns it)", body = ClipboardResponse),
        (status = 400, description = "The X server refused a request (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 409, description = "The owner holds something that is not text (`CONFLICT`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The owner's text is over 16 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The clipboard worker failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
        (status = 504, description = "The clipboard's owner did not answer within 5 s; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn get_clipboard() {}

/// Set the clipboard's text
///
/// Extension: not in Daytona's daemon. The agent takes the X11 CLIPBOARD selection and serves
/// the text to every paste (`UTF8_STRING`, `TEXT`, `STRING` when it is Latin-1, INCR for large
/// values) after the call returned, until another client takes the selection.
#[utoipa::path(post, path = "/computeruse/clipboard", tag = "computer-use", request_body = SetClipboardRequest,
    responses(
        (status = 200, description = "The agent owns the clipboard with this text", body = Empty),
        (status = 400, description = "A malformed body or no `text` (`INVALID_REQUEST_BODY`), or the X server refused (`BAD_REQUEST`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 413, description = "The text is over 16 MiB, or the body over 64 MiB (`PAYLOAD_TOO_LARGE`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 500, description = "The clipboard worker failed unexpectedly (`INTERNAL_SERVER_ERROR`)", body = ref("#/components/schemas/ErrorResponse")),
        (status = 503, description = "The X display cannot be reached, or the agent is not available; no code", body = ref("#/components/schemas/ErrorResponse")),
    ))]
fn set_clipboard() {}
