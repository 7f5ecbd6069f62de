//! Desktop supervision bodies (`/computeruse/start`, `stop`, `status`, `process/*`), and the
//! agent's answer to the daemon's own question about the desktop's environment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One desktop process in the start and stop answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStatus {
    pub running: bool,
    /// Start order: lower starts first.
    pub priority: u32,
    pub auto_restart: bool,
    /// `null` when the process does not run (always for `atspi`, whose launcher exits).
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComputerUseStartResponse {
    pub message: String,
    /// By process name: `xvfb`, `xfce4`, `atspi`, `x11vnc`, `novnc`.
    pub status: BTreeMap<String, ProcessStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComputerUseStopResponse {
    pub message: String,
    /// By process name, after the stop.
    pub status: BTreeMap<String, ProcessStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComputerUseStatusResponse {
    /// `active` (every required process runs), `partial` or `inactive`.
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStatusResponse {
    pub process_name: String,
    pub running: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRestartResponse {
    pub message: String,
    pub process_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessLogsResponse {
    pub process_name: String,
    /// The end of the process's stdout log (at most 4 MiB).
    pub logs: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessErrorsResponse {
    pub process_name: String,
    /// The end of the process's stderr log (at most 4 MiB).
    pub errors: String,
}

/// What the daemon adds to the environment of the processes it starts once the desktop runs.
/// Asked for on the agent's own `/internal/desktop-env`, which clients never reach; not part of
/// the published document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesktopEnvResponse {
    pub display: String,
    pub dbus_session_bus_address: Option<String>,
    pub status: String,
}
