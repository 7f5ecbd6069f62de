//! `POST /process/execute`: run one command in a fresh shell and return its combined output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::openapi::routes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::{ExecError, ExecSpec, run_script};
use crate::env::is_portable_name;
use crate::error::{ApiError, Code};
use crate::extract::Json;
use crate::openapi::ErrorResponse;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(execute))
}

#[derive(Deserialize, ToSchema)]
pub struct ExecuteRequest {
    /// Shell command text; written to the shell's stdin, so it may be any length.
    // Absent is a validation failure like empty, not a decoding one.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    command: String,
    /// Working directory; the daemon's work dir when absent.
    cwd: Option<String>,
    /// Seconds before the whole process group is killed; absent or 0 means no limit.
    #[schema(minimum = 0)]
    timeout: Option<u32>,
    /// Extra environment variables; they win over inherited ones. Names match
    /// `^[A-Za-z_][A-Za-z0-9_]*$`.
    envs: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResponse {
    /// The shell's exit status; -1 when it was killed by a signal or could not be started.
    exit_code: i32,
    /// stdout and stderr together, in the order they were written.
    result: String,
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Timeout => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, Code::ProcessExecutionTimeout, e.to_string())
            }
            ExecError::Exhausted(x) => x.into(),
            ExecError::Io(_) => ApiError::internal(e),
        }
    }
}

/// Runs a command in a new shell and returns its exit code and combined output.
#[utoipa::path(post, path = "/process/execute", tag = "process", request_body = ExecuteRequest,
    responses((status = 200, body = ExecuteResponse),
        (status = 400, description = "the body is not an ExecuteRequest, the command is empty, or an env name is invalid", body = ErrorResponse),
        (status = 408, description = "the command ran past its timeout and was killed", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse)))]
async fn execute(
    State(state): State<AppState>,
    Json(req): Json<ExecuteRequest>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    let spec = validate(req, &state.work_dir)?;
    let (exit_code, result) = run_script(state.reaper, &state.env, spec).await?;
    Ok(Json(ExecuteResponse { exit_code, result }))
}

fn validate(req: ExecuteRequest, work_dir: &Path) -> Result<ExecSpec, ApiError> {
    if req.command.is_empty() {
        return Err(ApiError::bad_request("invalid request body: command is required"));
    }
    if req.command.trim().is_empty() {
        return Err(ApiError::bad_request("command cannot be empty or whitespace-only"));
    }
    let envs = req.envs.unwrap_or_default();
    if let Some(bad) = envs.keys().find(|k| !is_portable_name(k)) {
        return Err(ApiError::bad_request(format!("invalid environment variable name: '{bad}'")));
    }
    Ok(ExecSpec {
        command: req.command,
        cwd: req.cwd.filter(|c| !c.is_empty()).map_or_else(|| work_dir.to_path_buf(), PathBuf::from),
        timeout: req.timeout.filter(|t| *t > 0).map(|t| Duration::from_secs(t.into())),
        envs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let req = |command: &str, envs: &[(&str, &str)]| ExecuteRequest {
            command: command.into(),
            cwd: None,
            timeout: Some(0),
            envs: Some(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        };
        let wd = Path::new("/w");
        assert_eq!(validate(req("", &[]), wd).unwrap_err().code, Some(Code::BadRequest));
        assert_eq!(
            validate(req(" \n\t", &[]), wd).unwrap_err().message,
            "bad request: command cannot be empty or whitespace-only"
        );
        assert_eq!(
            validate(req("ls", &[("1BAD", "x")]), wd).unwrap_err().message,
            "bad request: invalid environment variable name: '1BAD'"
        );
        let s = validate(req("ls", &[("OK", "x")]), wd).unwrap();
        assert_eq!((s.cwd.as_path(), s.timeout), (wd, None));
    }

    #[test]
    fn errors_map_to_the_documented_statuses() {
        let e = ApiError::from(ExecError::Timeout);
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (StatusCode::REQUEST_TIMEOUT, Some(Code::ProcessExecutionTimeout), "command execution timeout")
        );
        let e = ApiError::from(ExecError::Io(std::io::Error::from_raw_os_error(libc::EMFILE)));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        let eagain = std::io::Error::from_raw_os_error(libc::EAGAIN);
        let x = crate::exhaust::Exhausted::of("cannot start /bin/sh", &eagain).unwrap();
        let e = ApiError::from(ExecError::Exhausted(x));
        assert_eq!((e.status, e.code), (StatusCode::SERVICE_UNAVAILABLE, Some(Code::ResourceExhausted)));
        assert!(
            e.message.starts_with("cannot start /bin/sh: the sandbox has reached its limit"),
            "{}",
            e.message
        );
    }

    mod router {
        use axum::http::StatusCode;

        use super::super::routes;
        use crate::testing::TestApp;

        #[tokio::test]
        async fn bodies_must_be_objects_of_the_schema() {
            let app = TestApp::new(routes());
            for body in [
                "",
                "[]",
                "[null]",
                "null",
                "\"echo\"",
                r#"{"command": 1}"#,
                r#"{"command":"x","envs":{"A":1}}"#,
                r#"{"command":"x","timeout":-1}"#,
            ] {
                let a = app.send("POST", "/process/execute", body).await;
                a.envelope(StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY");
            }
            let a = app.send("POST", "/process/execute", "{}").await;
            assert_eq!(
                a.envelope(StatusCode::BAD_REQUEST, "BAD_REQUEST"),
                "bad request: invalid request body: command is required"
            );
            let req = axum::http::Request::post("/process/execute")
                .header("content-length", (crate::extract::MAX_JSON_BODY + 1).to_string())
                .body(axum::body::Body::empty())
                .unwrap();
            app.request(req).await.envelope(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn runs_and_times_out() {
            let app = TestApp::new(routes());
            let a = app.send("POST", "/process/execute", r#"{"command":"echo hi; exit 2"}"#).await;
            assert_eq!(
                (a.status, a.json()),
                (StatusCode::OK, serde_json::json!({ "exitCode": 2, "result": "hi\n" }))
            );
            let a = app.send("POST", "/process/execute", r#"{"command":"sleep 30","timeout":1}"#).await;
            a.envelope(StatusCode::REQUEST_TIMEOUT, "PROCESS_EXECUTION_TIMEOUT");
        }

        #[test]
        fn the_document_tells_the_statuses() {
            let doc = serde_json::to_value(routes().split_for_parts().1).unwrap();
            let responses = &doc["paths"]["/process/execute"]["post"]["responses"];
            for code in ["200", "400", "408", "413"] {
                assert!(responses.get(code).is_some(), "{code}");
            }
            assert_eq!(
                doc["components"]["schemas"]["ExecuteRequest"]["required"],
                serde_json::json!(["command"])
            );
        }
    }
}
