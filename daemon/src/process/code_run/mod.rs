//! `POST /process/code-run`: run a Python, JavaScript or TypeScript program in a fresh shell,
//! exactly like `/process/execute` runs a command, and report matplotlib charts it shows.
//!
//! Python code that imports matplotlib runs under our chart wrapper (`chart_wrapper.py`), which
//! prints one artifact line per figure on `plt.show()`; [`chart`] turns those lines into the
//! typed `artifacts.charts` of the answer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tempfile::TempPath;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::execute::{self, ExecSpec};
use crate::env::is_portable_name;
use crate::error::ApiError;
use crate::extract::Json as JsonBody;
use crate::state::AppState;

pub mod chart;
pub mod detect;
pub mod script;

pub use chart::{Chart, ChartElement};

/// The chart wrapper program; the user code is prepended to it as `_DTN_CODE = "<base64>"`.
const CHART_WRAPPER: &str = include_str!("chart_wrapper.py");

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(code_run))
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct CodeRunRequest {
    /// The program text.
    // Absent is a validation failure like empty, not a decoding one.
    #[serde(default)]
    code: String,
    /// `python`, `javascript` or `typescript`.
    #[serde(default)]
    language: String,
    /// Arguments passed to the program.
    argv: Option<Vec<String>>,
    /// Extra environment variables; they win over inherited ones.
    envs: Option<BTreeMap<String, String>>,
    /// Seconds before the whole process group is killed; absent or 0 means no limit.
    timeout: Option<u32>,
}

#[derive(Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CodeRunResponse {
    exit_code: i32,
    /// Combined stdout and stderr, without the chart artifact lines.
    result: String,
    /// Absent when the program showed no chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<CodeRunArtifacts>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct CodeRunArtifacts {
    charts: Vec<Chart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
}

/// A validated request.
#[derive(Debug)]
pub struct CodeRun {
    pub language: Language,
    pub code: String,
    pub argv: Vec<String>,
    pub envs: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
}

/// Runs code and returns its exit code, combined output and the charts it showed.
#[utoipa::path(post, path = "/process/code-run", tag = "process", request_body = CodeRunRequest,
    responses((status = 200, body = CodeRunResponse),
        (status = 400, body = crate::openapi::ErrorResponse),
        (status = 408, description = "the program ran past its timeout and was killed", body = crate::openapi::ErrorResponse)))]
async fn code_run(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CodeRunRequest>,
) -> Result<Json<CodeRunResponse>, ApiError> {
    let run = validate(req)?;
    let (exit_code, output) = run_code(&state, run).await?;
    // Chart lines carry PNGs and can be large: decode them off the async workers.
    let (result, charts) =
        tokio::task::spawn_blocking(move || chart::extract(output)).await.map_err(ApiError::internal)?;
    let artifacts = (!charts.is_empty()).then_some(CodeRunArtifacts { charts });
    Ok(Json(CodeRunResponse { exit_code, result, artifacts }))
}

pub fn validate(req: CodeRunRequest) -> Result<CodeRun, ApiError> {
    if req.code.is_empty() {
        return Err(ApiError::invalid_body("code is required"));
    }
    if req.language.is_empty() {
        return Err(ApiError::invalid_body("language is required"));
    }
    let language = match req.language.as_str() {
        "python" => Language::Python,
        "javascript" => Language::JavaScript,
        "typescript" => Language::TypeScript,
        other => return Err(ApiError::bad_request(format!("unsupported language: {other}"))),
    };
    let envs = req.envs.unwrap_or_default();
    if let Some(bad) = envs.keys().find(|k| !is_portable_name(k)) {
        return Err(ApiError::bad_request(format!("invalid environment variable name: '{bad}'")));
    }
    Ok(CodeRun {
        language,
        code: req.code,
        argv: req.argv.unwrap_or_default(),
        envs,
        timeout: req.timeout.filter(|t| *t > 0).map(|t| Duration::from_secs(t.into())),
    })
}

/// The Python program to run: the user code itself, or the chart wrapper around it.
pub fn python_program(code: &str) -> String {
    if detect::uses_matplotlib(code) {
        format!("_DTN_CODE = \"{}\"\n{CHART_WRAPPER}", script::base64(code.as_bytes()))
    } else {
        code.to_string()
    }
}

/// Runs the program in a fresh shell in the daemon's work dir (see `execute::run`).
async fn run_code(state: &AppState, run: CodeRun) -> Result<(i32, String), ApiError> {
    let mut envs = run.envs;
    // Kept until the program is done (or killed), then removed.
    let mut ts_file: Option<TempPath> = None;
    let command = match run.language {
        Language::Python => script::piped(&python_program(&run.code), "python3 -u -", &run.argv),
        Language::JavaScript => script::piped(&script::with_argv_fix(&run.code), "node -", &run.argv),
        Language::TypeScript => {
            let program = script::with_argv_fix(&run.code);
            let dir = std::env::temp_dir();
            let written = {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || write_ts_file(&dir, &program))
                    .await
                    .map_err(ApiError::internal)?
            };
            // Like any other failure to start the program: a result, not an error.
            let path = match written {
                Ok(path) => path,
                Err(e) => {
                    let detail = execute::os_error_text(&e);
                    return Ok((-1, format!("cannot write the program to {}: {detail}", dir.display())));
                }
            };
            envs.entry("npm_config_loglevel".into()).or_insert_with(|| "error".into());
            let command = script::ts_node(&path, &run.argv);
            ts_file = Some(path);
            command
        }
    };
    let spec = ExecSpec { command, cwd: state.work_dir.to_path_buf(), timeout: run.timeout, envs };
    let outcome = execute::run(state.reaper, &state.env, spec).await;
    if let Some(path) = ts_file {
        // Unlinking is a filesystem call: keep it off the async workers, and do not wait for it.
        tokio::task::spawn_blocking(move || drop(path));
    }
    outcome
}

/// Writes the program to a new file `dtn_<random>.ts` in `dir`, created exclusively with mode
/// 0600, which is removed when the returned path is dropped.
fn write_ts_file(dir: &Path, program: &str) -> std::io::Result<TempPath> {
    use std::io::Write;
    let mut file = tempfile::Builder::new().prefix("dtn_").suffix(".ts").rand_bytes(12).tempfile_in(dir)?;
    file.write_all(program.as_bytes())?;
    file.flush()?;
    Ok(file.into_temp_path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use std::os::unix::fs::PermissionsExt;

    fn req(code: &str, language: &str, envs: &[(&str, &str)]) -> CodeRunRequest {
        CodeRunRequest {
            code: code.into(),
            language: language.into(),
            argv: None,
            envs: Some(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            timeout: Some(0),
        }
    }

    #[test]
    fn validation() {
        let e = validate(req("", "python", &[])).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Some(Code::InvalidRequestBody), "invalid body request: code is required")
        );
        let e = validate(req("print(1)", "", &[])).unwrap_err();
        assert_eq!(e.code, Some(Code::InvalidRequestBody));
        let e = validate(req("puts 1", "ruby", &[])).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Some(Code::BadRequest), "bad request: unsupported language: ruby")
        );
        let e = validate(req("print(1)", "python", &[("1X", "v")])).unwrap_err();
        assert_eq!(e.message, "bad request: invalid environment variable name: '1X'");
        let ok = validate(req("print(1)", "typescript", &[("X", "v")])).unwrap();
        assert_eq!((ok.language, ok.timeout, ok.argv.len()), (Language::TypeScript, None, 0));
        let mut r = req("x", "javascript", &[]);
        r.timeout = Some(3);
        assert_eq!(validate(r).unwrap().timeout, Some(Duration::from_secs(3)));
    }

    #[test]
    fn request_decoding_errors_are_invalid_body() {
        let e: ApiError = crate::extract::decode::<CodeRunRequest>(br#"{"code":1}"#).unwrap_err().into();
        assert_eq!(e.code, Some(Code::InvalidRequestBody));
        let e: ApiError =
            crate::extract::decode::<CodeRunRequest>(br#"{"code":"x","argv":"a"}"#).unwrap_err().into();
        assert_eq!(e.code, Some(Code::InvalidRequestBody));
    }

    #[test]
    fn wrapper_only_for_matplotlib() {
        assert_eq!(python_program("print(1)"), "print(1)");
        let wrapped = python_program("import matplotlib.pyplot as plt\n");
        assert!(
            wrapped.starts_with("_DTN_CODE = \"aW1wb3J0IG1hdHBsb3RsaWIucHlwbG90IGFzIHBsdAo=\"\n"),
            "{wrapped}"
        );
        assert!(wrapped.contains(chart::MARKER));
    }

    #[test]
    fn ts_file_is_private_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_ts_file(dir.path(), "let x = 1;").unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("dtn_") && name.ends_with(".ts"), "{name}");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "let x = 1;");
        let kept = path.to_path_buf();
        drop(path);
        assert!(!kept.exists());
    }
}
