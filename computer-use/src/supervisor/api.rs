//! The start/stop/status/process routes (spec computer-use.md §2.3, sdk-0.226 §2.6 messages),
//! and the daemon-only `/internal/desktop-env`.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use computer_use_api::process::{
    self as dto, ComputerUseStartResponse, ComputerUseStatusResponse, ComputerUseStopResponse,
    DesktopEnvResponse, ProcessErrorsResponse, ProcessLogsResponse, ProcessRestartResponse,
    ProcessStatusResponse,
};

use super::logs::{MAX_LOG_BYTES, read_tail};
use super::service::ProcessStatus;
use crate::error::{AgentErrors, ApiError, Json, Path};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/computeruse/start", post(start))
        .route("/computeruse/stop", post(stop))
        .route("/computeruse/status", get(status))
        .route("/computeruse/process-status", get(status))
        .route("/computeruse/process/{name}/status", get(process_status))
        .route("/computeruse/process/{name}/restart", post(restart))
        .route("/computeruse/process/{name}/logs", get(logs))
        .route("/computeruse/process/{name}/errors", get(errors))
        .route("/internal/desktop-env", get(desktop_env))
}

fn statuses(map: BTreeMap<String, ProcessStatus>) -> BTreeMap<String, dto::ProcessStatus> {
    map.into_iter()
        .map(|(name, s)| {
            let s = dto::ProcessStatus {
                running: s.running,
                priority: s.priority,
                auto_restart: s.auto_restart,
                pid: s.pid,
            };
            (name, s)
        })
        .collect()
}

async fn start(State(state): State<AppState>) -> Result<Json<ComputerUseStartResponse>, ApiError> {
    state
        .supervisor
        .start()
        .await
        .map_err(|e| ApiError::unavailable(format!("failed to start computer use: {e}")))?;
    let healthy = state.a11y.healthy().await;
    Ok(Json(ComputerUseStartResponse {
        message: "Computer use processes started successfully".into(),
        status: statuses(state.supervisor.statuses(healthy)),
    }))
}

async fn stop(State(state): State<AppState>) -> Result<Json<ComputerUseStopResponse>, ApiError> {
    // Nothing may stay pressed once the session is over, and the accessibility connection
    // points at a bus that is about to go away.
    let x11 = state.x11.clone();
    let _ = tokio::task::spawn_blocking(move || x11.release_all()).await;
    state.a11y.reset().await;
    state
        .supervisor
        .stop()
        .await
        .map_err(|e| ApiError::unavailable(format!("failed to stop computer use: {e}")))?;
    Ok(Json(ComputerUseStopResponse {
        message: "Computer use processes stopped successfully".into(),
        status: statuses(state.supervisor.statuses(false)),
    }))
}

async fn status(State(state): State<AppState>) -> Json<ComputerUseStatusResponse> {
    let healthy = state.a11y.healthy().await;
    Json(ComputerUseStatusResponse { status: state.supervisor.overall(healthy).into() })
}

async fn process_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProcessStatusResponse>, ApiError> {
    let running = if name == "atspi" && state.supervisor.knows(&name) {
        state.a11y.healthy().await
    } else {
        // The reference answers an unknown name with 503, and the clients expect it.
        state.supervisor.loop_active(&name).ok_or_else(|| {
            ApiError::unavailable(format!("failed to get process status: process {name} not found"))
        })?
    };
    Ok(Json(ProcessStatusResponse { process_name: name, running }))
}

fn unknown(name: &str) -> ApiError {
    ApiError::bad_request(format!("process {name} not found"))
}

async fn restart(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProcessRestartResponse>, ApiError> {
    match state.supervisor.restart(&name).await {
        None => Err(unknown(&name)),
        Some(Err(e)) => Err(ApiError::bad_request(e)),
        Some(Ok(())) => Ok(Json(ProcessRestartResponse {
            message: format!("Process {name} restarted successfully"),
            process_name: name,
        })),
    }
}

async fn logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProcessLogsResponse>, ApiError> {
    let logs = read_log(&state, &name, false).await?;
    Ok(Json(ProcessLogsResponse { process_name: name, logs }))
}

async fn errors(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProcessErrorsResponse>, ApiError> {
    let errors = read_log(&state, &name, true).await?;
    Ok(Json(ProcessErrorsResponse { process_name: name, errors }))
}

async fn read_log(state: &AppState, name: &str, errors: bool) -> Result<String, ApiError> {
    let path = state.supervisor.log_path(name, errors).ok_or_else(|| unknown(name))?;
    let what = if errors { "error" } else { "log" };
    tokio::task::spawn_blocking(move || read_tail(&path, MAX_LOG_BYTES))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad_request(format!("failed to read {what} file for {name}: {e}")))
}

/// What the daemon adds to the environment of the processes it starts once the desktop runs.
async fn desktop_env(State(state): State<AppState>) -> Json<DesktopEnvResponse> {
    let healthy = state.a11y.healthy().await;
    Json(DesktopEnvResponse {
        display: state.desktop_env.display(),
        dbus_session_bus_address: state.supervisor.bus_address(),
        status: state.supervisor.overall(healthy).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_use_the_clients_names() {
        let map = [(
            "xvfb".to_string(),
            ProcessStatus { running: false, priority: 100, auto_restart: true, pid: None },
        )]
        .into_iter()
        .collect();
        assert_eq!(
            serde_json::to_value(statuses(map)).unwrap(),
            serde_json::json!({"xvfb": {"running": false, "priority": 100, "autoRestart": true, "pid": null}})
        );
    }
}
