//! Version, directories, `/init` and `/env`: handlers, bodies and routes.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::env::{EnvError, EnvUpdate};
use crate::error::ApiError;
use crate::extract::Json;
use crate::openapi::ErrorResponse;
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

/// A JSON object; unknown keys are ignored.
#[derive(Deserialize, ToSchema)]
pub struct InitializeRequest {
    /// Stored and used only as the authentication header of telemetry exports.
    token: Option<String>,
}

/// A JSON object; unknown keys are ignored. Nothing is applied when any part is invalid.
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
#[utoipa::path(get, path = "/user-home-dir", tag = "info",
    responses((status = 200, body = UserHomeDirResponse), (status = 500, description = "$HOME is not set", body = ErrorResponse)))]
async fn user_home_dir(State(state): State<AppState>) -> Result<Json<UserHomeDirResponse>, ApiError> {
    home_dir(&state).map(|dir| Json(UserHomeDirResponse { dir }))
}

/// Legacy alias of `/user-home-dir` kept for old clients.
#[utoipa::path(get, path = "/project-dir", tag = "info",
    responses((status = 200, body = UserHomeDirResponse), (status = 500, description = "$HOME is not set", body = ErrorResponse)))]
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
    responses((status = 200, body = MessageResponse),
        (status = 400, description = "the body is not an InitializeRequest object", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse)))]
async fn initialize(
    State(state): State<AppState>,
    Json(req): Json<InitializeRequest>,
) -> Json<MessageResponse> {
    let token = req.token.unwrap_or_default();
    *toolbox_envelope::sync::lock(&state.init_token) = Some(token.clone());
    if state.telemetry.init(&token) {
        let sessions = state.sessions.clone();
        state.telemetry.follow_entrypoint(move |sink| crate::entrypoint::export_output(sessions, sink));
    }
    Json(MessageResponse { message: "Auth token set and telemetry initialized successfully".into() })
}

/// Changes the environment of processes started from now on. Running processes, including
/// existing session shells, keep theirs.
#[utoipa::path(post, path = "/env", tag = "server", request_body = UpdateEnvRequest,
    responses((status = 200, description = "Applied; the body is an empty object", body = BTreeMap<String, String>),
        (status = 400, description = "the body is not an UpdateEnvRequest object, or a name or value is invalid", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse)))]
async fn update_env(
    State(state): State<AppState>,
    Json(req): Json<UpdateEnvRequest>,
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::routes;
    use crate::testing::TestApp;

    #[tokio::test]
    async fn init_takes_an_object_with_an_optional_string_token() {
        let app = TestApp::new(routes());
        for body in ["", "[]", "[null]", "null", "\"t\"", "1", r#"{"token": 1}"#, r#"{"token": ["t"]}"#] {
            let a = app.send("POST", "/init", body).await;
            a.envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
        }
        assert_eq!(*app.state.init_token.lock().unwrap(), None, "a refused body stored a token");
        for body in [r#"{"token":"t"}"#, "{}", r#"{"token": null, "other": 1}"#] {
            let a = app.send("POST", "/init", body).await;
            assert_eq!(a.status, StatusCode::OK, "{body}");
            assert_eq!(a.json()["message"], "Auth token set and telemetry initialized successfully");
        }
    }

    #[tokio::test]
    async fn env_takes_an_update_env_request_object() {
        let app = TestApp::new(routes());
        for body in [
            "[null]",
            "[]",
            "null",
            "\"A=1\"",
            r#"{"set": null, "unset": "A"}"#,
            r#"{"set": []}"#,
            r#"{"set": {"A": 1}}"#,
            r#"{"set": {"A": null}}"#,
            r#"{"unset": [1]}"#,
            r#"{"unsetValuePrefix": 1}"#,
        ] {
            let a = app.send("POST", "/env", body).await;
            a.envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
        }
        assert_eq!(app.state.env.get("A"), None);
        let a =
            app.send("POST", "/env", r#"{"set": {"A": "1"}, "unset": [], "unsetValuePrefix": null}"#).await;
        assert_eq!((a.status, &a.body[..]), (StatusCode::OK, &b"{}"[..]));
        assert_eq!(app.state.env.get("A"), Some("1".into()));
        let a = app.send("POST", "/env", r#"{"set": {"B=C": "1"}}"#).await;
        a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let req = axum::http::Request::post("/env")
            .header("content-length", (crate::extract::MAX_JSON_BODY + 1).to_string())
            .body(axum::body::Body::empty())
            .unwrap();
        app.request(req).await.envelope(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    }

    #[tokio::test]
    async fn info_routes() {
        let app = TestApp::new(routes());
        let home = app.home.path().to_string_lossy().into_owned();
        assert_eq!(app.get("/work-dir").await.json(), serde_json::json!({ "dir": home }));
        assert_eq!(app.get("/user-home-dir").await.json(), serde_json::json!({ "dir": home }));
        assert_eq!(app.get("/project-dir").await.json(), serde_json::json!({ "dir": home }));
        assert!(app.get("/version").await.json()["version"].is_string());
    }

    #[test]
    fn the_document_tells_the_statuses() {
        let doc = serde_json::to_value(routes().split_for_parts().1).unwrap();
        for path in ["/init", "/env"] {
            let responses = &doc["paths"][path]["post"]["responses"];
            for code in ["200", "400", "413"] {
                assert!(responses.get(code).is_some(), "{path} {code}");
            }
        }
    }
}
