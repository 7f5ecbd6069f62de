//! Version, directories, `/init` and `/env`: handlers, bodies and routes.

use std::collections::BTreeMap;

use crate::openapi::routes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

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
        .routes(routes!(system_metrics))
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

/// A live resource snapshot of the sandbox. Limits, not the host's totals, where the sandbox's
/// cgroup sets them; a figure that cannot be read is 0.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    /// Whole CPUs the sandbox may use: the CPU quota rounded up, else the CPUs available.
    #[schema(minimum = 1)]
    cpu_count: u64,
    /// CPU utilisation over the last second, in percent (0..=100) of the CPU limit.
    #[schema(minimum = 0, maximum = 100)]
    cpu_used_pct: f64,
    /// The memory limit in bytes, else the machine's memory.
    mem_total: u64,
    /// Memory charged to the sandbox in bytes, page cache included.
    mem_used: u64,
    /// Page cache in bytes, part of `memUsed`.
    mem_cache: u64,
    /// Size of the root file system in bytes.
    disk_total: u64,
    /// Allocated bytes on the root file system.
    disk_used: u64,
    /// Bytes still available to unprivileged users on the root file system.
    disk_free: u64,
    /// When the snapshot was taken: UTC, RFC 3339, whole seconds.
    #[schema(example = "2026-06-22T10:00:00Z")]
    timestamp: String,
    /// The same instant in Unix seconds.
    timestamp_unix: i64,
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

/// CPU, memory and disk of the sandbox right now. Answers at once: CPU utilisation is sampled
/// in the background every second.
#[utoipa::path(get, path = "/system/metrics", tag = "system",
    responses((status = 200, body = SystemMetrics)))]
async fn system_metrics(State(state): State<AppState>) -> Json<SystemMetrics> {
    // The sampler normally starts with the daemon; a state built without it starts it here.
    state.metrics.start();
    let metrics = state.metrics.clone();
    // A handful of small /proc and /sys reads and a statvfs: blocking, but short.
    let s = tokio::task::spawn_blocking(move || metrics.snapshot())
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    Json(SystemMetrics {
        cpu_count: s.cpu_count,
        cpu_used_pct: s.cpu_used_pct,
        mem_total: s.mem_total,
        mem_used: s.mem_used,
        mem_cache: s.mem_cache,
        disk_total: s.disk_total,
        disk_used: s.disk_used,
        disk_free: s.disk_free,
        timestamp: s.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        timestamp_unix: s.timestamp.as_second(),
    })
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

    #[tokio::test]
    async fn system_metrics_has_every_field_as_the_client_types_it() {
        // A fake cgroup: 1.5 CPUs and 512 MiB, so the answer is the limit, not the machine.
        let root = tempfile::tempdir().unwrap();
        for (path, content) in [
            ("proc/self/cgroup", "0::/box\n"),
            ("proc/self/mountinfo", "30 23 0:26 / /cg rw - cgroup2 cgroup2 rw\n"),
            ("proc/meminfo", "MemTotal: 4000000 kB\nMemFree: 1000000 kB\n"),
            ("cg/box/cpu.max", "150000 100000\n"),
            ("cg/box/cpu.stat", "usage_usec 10\n"),
            ("cg/box/memory.max", "536870912\n"),
            ("cg/box/memory.current", "1048576\n"),
            ("cg/box/memory.stat", "file 4096\n"),
        ] {
            let p = root.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let metrics =
            std::sync::Arc::new(crate::system::metrics::Metrics::with_root(root.path(), root.path()));
        let app = TestApp::with(routes(), &[], |s| s.metrics = metrics);
        let a = app.get("/system/metrics").await;
        assert_eq!(a.status, StatusCode::OK);
        let v = a.json();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "cpuCount",
                "cpuUsedPct",
                "diskFree",
                "diskTotal",
                "diskUsed",
                "memCache",
                "memTotal",
                "memUsed",
                "timestamp",
                "timestampUnix"
            ]
        );
        if crate::cgroup::host_cpus() >= 2 {
            assert_eq!(v["cpuCount"], 2);
        }
        assert_eq!(
            (v["memTotal"].as_u64(), v["memUsed"].as_u64(), v["memCache"].as_u64()),
            (Some(512 << 20), Some(1 << 20), Some(4096))
        );
        assert!(v["cpuUsedPct"].is_f64(), "{v}");
        for k in ["diskFree", "diskTotal", "diskUsed", "timestampUnix"] {
            assert!(v[k].is_u64() && v[k].as_u64() > Some(0), "{k}: {v}");
        }
        // RFC 3339 in UTC with whole seconds, the same instant as timestampUnix.
        let ts = v["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-06-22T10:00:00Z".len(), "{ts}");
        let parsed: jiff::Timestamp = ts.parse().unwrap();
        assert_eq!(Some(parsed.as_second()), v["timestampUnix"].as_i64());
    }
}
