//! The start/stop/status/process routes (spec computer-use.md §2.3, sdk-0.226 §2.6 messages),
//! and the daemon-only `/internal/desktop-env`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::MAX_LOG_BYTES;
use crate::error::{AgentErrors, ApiError};
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

async fn start(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .supervisor
        .start()
        .await
        .map_err(|e| ApiError::unavailable(format!("failed to start computer use: {e}")))?;
    let healthy = state.a11y.healthy().await;
    Ok(Json(json!({
        "message": "Computer use processes started successfully",
        "status": state.supervisor.statuses(healthy),
    })))
}

async fn stop(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "message": "Computer use processes stopped successfully",
        "status": state.supervisor.statuses(false),
    })))
}

async fn status(State(state): State<AppState>) -> Json<Value> {
    let healthy = state.a11y.healthy().await;
    Json(json!({ "status": state.supervisor.overall(healthy) }))
}

async fn process_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let running = if name == "atspi" && state.supervisor.knows(&name) {
        state.a11y.healthy().await
    } else {
        state.supervisor.loop_active(&name).ok_or_else(|| {
            ApiError::unavailable(format!("failed to get process status: process {name} not found"))
        })?
    };
    Ok(Json(json!({ "processName": name, "running": running })))
}

fn unknown(name: &str) -> ApiError {
    ApiError::bad_request(format!("process {name} not found"))
}

async fn restart(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    match state.supervisor.restart(&name).await {
        None => Err(unknown(&name)),
        Some(Err(e)) => Err(ApiError::bad_request(e)),
        Some(Ok(())) => Ok(Json(json!({
            "message": format!("Process {name} restarted successfully"),
            "processName": name,
        }))),
    }
}

async fn logs(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let text = read_log(&state, &name, false).await?;
    Ok(Json(json!({ "processName": name, "logs": text })))
}

async fn errors(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let text = read_log(&state, &name, true).await?;
    Ok(Json(json!({ "processName": name, "errors": text })))
}

async fn read_log(state: &AppState, name: &str, errors: bool) -> Result<String, ApiError> {
    let path = state.supervisor.log_path(name, errors).ok_or_else(|| unknown(name))?;
    let what = if errors { "error" } else { "log" };
    tokio::task::spawn_blocking(move || super::read_tail(&path, MAX_LOG_BYTES))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad_request(format!("failed to read {what} file for {name}: {e}")))
}

/// What the daemon adds to the environment of the processes it starts once the desktop runs.
async fn desktop_env(State(state): State<AppState>) -> Json<Value> {
    let env = state.desktop_env();
    let healthy = state.a11y.healthy().await;
    Json(json!({
        "display": env.display,
        "dbusSessionBusAddress": state.supervisor.bus_address(),
        "status": state.supervisor.overall(healthy),
    }))
}
