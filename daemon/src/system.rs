//! Version, directories, `/init` and `/env`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::env::{EnvError, EnvUpdate};
use crate::error::ApiError;
use crate::extract::Json as JsonBody;
use crate::state::{AppState, VERSION};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(work_dir))
        .routes(routes!(user_home_dir))
        .routes(routes!(project_dir))
        .routes(routes!(initialize))
        .routes(routes!(update_env))
}

#[derive(Serialize, ToSchema)]
pub struct VersionResponse {
    version: String,
}

#[derive(Serialize, ToSchema)]
pub struct WorkDirResponse {
    dir: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserHomeDirResponse {
    dir: String,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    message: String,
}

#[derive(Deserialize, ToSchema)]
pub struct InitializeRequest {
    /// Stored and used only as the authentication header of telemetry exports.
    token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEnvRequest {
    /// Variables to assign, applied last.
    set: Option<BTreeMap<String, String>>,
    /// Variables to remove, applied first.
    unset: Option<Vec<String>>,
    /// Removes every variable whose value starts with this prefix, except those in `set`.
    unset_value_prefix: Option<String>,
}

/// The daemon's version.
#[utoipa::path(get, path = "/version", tag = "info", responses((status = 200, body = VersionResponse)))]
async fn version() -> Json<VersionResponse> {
    Json(VersionResponse { version: VERSION.to_string() })
}

/// The daemon's working directory at start: the default cwd of processes and relative paths.
#[utoipa::path(get, path = "/work-dir", tag = "info", responses((status = 200, body = WorkDirResponse)))]
async fn work_dir(State(state): State<AppState>) -> Json<WorkDirResponse> {
    Json(WorkDirResponse { dir: state.work_dir.to_string_lossy().into_owned() })
}

/// The sandbox user's home directory (`$HOME` as children see it).
#[utoipa::path(get, path = "/user-home-dir", tag = "info", responses((status = 200, body = UserHomeDirResponse)))]
async fn user_home_dir(State(state): State<AppState>) -> Result<Json<UserHomeDirResponse>, ApiError> {
    home_dir(&state).map(|dir| Json(UserHomeDirResponse { dir }))
}

/// Legacy alias of `/user-home-dir` kept for old clients.
#[utoipa::path(get, path = "/project-dir", tag = "info", responses((status = 200, body = UserHomeDirResponse)))]
async fn project_dir(State(state): State<AppState>) -> Result<Json<UserHomeDirResponse>, ApiError> {
    home_dir(&state).map(|dir| Json(UserHomeDirResponse { dir }))
}

fn home_dir(state: &AppState) -> Result<String, ApiError> {
    state
        .env
        .get("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| h.to_string_lossy().into_owned())
        .ok_or_else(|| ApiError::internal("$HOME is not set"))
}

/// Stores the runner's token (telemetry only) and answers with a fixed message.
#[utoipa::path(post, path = "/init", tag = "server", request_body = InitializeRequest,
    responses((status = 200, body = MessageResponse), (status = 400, body = crate::openapi::ErrorResponse)))]
async fn initialize(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<InitializeRequest>,
) -> Json<MessageResponse> {
    *state.init_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(req.token.unwrap_or_default());
    Json(MessageResponse { message: "Auth token set and telemetry initialized successfully".into() })
}

/// Changes the environment of processes started from now on. Running processes, including
/// existing session shells, keep theirs.
#[utoipa::path(post, path = "/env", tag = "server", request_body = UpdateEnvRequest,
    responses((status = 200, body = BTreeMap<String, String>), (status = 400, body = crate::openapi::ErrorResponse)))]
async fn update_env(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<UpdateEnvRequest>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let update = EnvUpdate {
        set: req.set.unwrap_or_default(),
        unset: req.unset.unwrap_or_default(),
        unset_value_prefix: req.unset_value_prefix,
    };
    state.env.apply(&update).map_err(|e: EnvError| ApiError::bad_request(e))?;
    // The client parses the answer as a string map; an empty body would fail it.
    Ok(Json(BTreeMap::new()))
}
