//! HTTP edge of `POST /process/code-run` (process.md §2): the request and answer shapes, their
//! validation, and the one mapping of the service's errors to HTTP answers.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::openapi::routes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use toolbox_envelope::Envelope;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::chart::Chart;
use super::service::{self, CodeRun, CodeRunError, Language};
use crate::env::is_portable_name;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(code_run))
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct CodeRunRequest {
    /// The program text.
    // Absent is a validation failure like empty, not a decoding one.
    #[serde(default)]
    #[schema(required = true)]
    code: String,
    /// `python`, `javascript` or `typescript`.
    #[serde(default)]
    #[schema(required = true)]
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

/// Runs code and returns its exit code, combined output and the charts it showed.
#[utoipa::path(post, path = "/process/code-run", tag = "process", request_body = CodeRunRequest,
    responses((status = 200, body = CodeRunResponse),
        (status = 400, description = "not a JSON object, no code or language, an unsupported \
            language, or an invalid environment variable name", body = Envelope),
        (status = 408, description = "the program ran past its timeout and was killed", body = Envelope),
        (status = 413, description = "the body is larger than the JSON limit", body = Envelope),
        (status = 500, description = "the program could not be started", body = Envelope)))]
async fn code_run(
    State(state): State<AppState>,
    Json(req): Json<CodeRunRequest>,
) -> Result<Json<CodeRunResponse>, ApiError> {
    let run = validate(req)?;
    let out = service::run(state.reaper, &state.env, &state.work_dir, run).await.map_err(|e| match e {
        CodeRunError::Exec(e) => ApiError::from(e),
        CodeRunError::Internal(e) => ApiError::internal(e),
    })?;
    let artifacts = (!out.charts.is_empty()).then_some(CodeRunArtifacts { charts: out.charts });
    Ok(Json(CodeRunResponse { exit_code: out.exit_code, result: out.result, artifacts }))
}

pub fn validate(req: CodeRunRequest) -> Result<CodeRun, ApiError> {
    if req.code.is_empty() {
        return Err(ApiError::invalid_body("code is required"));
    }
    if req.language.is_empty() {
        return Err(ApiError::invalid_body("language is required"));
    }
    let language = Language::parse(&req.language)
        .ok_or_else(|| ApiError::bad_request(format!("unsupported language: {}", req.language)))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

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
        for body in [&br#"{"code":1}"#[..], br#"{"code":"x","argv":"a"}"#, b"[]", b"[null,null]", b"null"] {
            let e: ApiError = crate::extract::decode::<CodeRunRequest>(body).unwrap_err().into();
            assert_eq!(e.code, Some(Code::InvalidRequestBody), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_document_lists_every_status_and_required_field() {
        let doc = serde_json::to_value(routes().split_for_parts().1).unwrap();
        let responses = doc["paths"]["/process/code-run"]["post"]["responses"].as_object().unwrap();
        assert_eq!(responses.keys().collect::<Vec<_>>(), ["200", "400", "408", "413", "500"]);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["CodeRunRequest"]["required"], serde_json::json!(["code", "language"]));
        assert_eq!(schemas["CodeRunResponse"]["required"], serde_json::json!(["exitCode", "result"]));
        assert_eq!(schemas["Chart"]["required"], serde_json::json!(["type", "elements"]));
    }
}
