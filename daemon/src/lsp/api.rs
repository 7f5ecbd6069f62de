//! `/lsp/*`: start, stop and query language servers. Handlers, bodies and routes; the work is in
//! [`super::service`].

use std::path::{Path, PathBuf};

use crate::openapi::routes;
use axum::extract::State;
use axum::http::StatusCode;
use lsp_bridge::lsp_types as lsp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::error::{LspError, PathProblem};
use crate::error::{ApiError, Code};
use crate::extract::{Json, required};
use crate::fspath::{FilePath, RawQuery};
use crate::state::AppState;
use toolbox_envelope::Envelope;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(did_open))
        .routes(routes!(did_close))
        .routes(routes!(completions))
        .routes(routes!(document_symbols))
        .routes(routes!(workspace_symbols))
}

impl From<LspError> for ApiError {
    fn from(e: LspError) -> Self {
        let msg = e.to_string();
        match &e {
            LspError::Exhausted(x) => x.clone().into(),
            LspError::InvalidLanguage(_) | LspError::BadUri(_) => ApiError::bad_request(msg),
            LspError::Unsupported { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, Code::LspLanguageUnsupported, msg)
            }
            LspError::NotInstalled { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, Code::LspServerMissing, msg)
            }
            LspError::TooMany { .. } => ApiError::too_many_requests(msg),
            LspError::BadProject { kind, .. } | LspError::BadFile { kind, .. } => match kind {
                PathProblem::Missing => ApiError::new(StatusCode::NOT_FOUND, Code::FileNotFound, msg),
                PathProblem::Denied => ApiError::new(StatusCode::FORBIDDEN, Code::FileAccessDenied, msg),
                PathProblem::Invalid => ApiError::bad_request(msg),
                PathProblem::TooLarge => ApiError::payload_too_large(msg),
            },
            LspError::NotStarted { .. } | LspError::Exited { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, Code::LspServerNotInitialized, msg)
            }
            LspError::StartFailed { .. } | LspError::BadAnswer { .. } | LspError::Stalled { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, Code::LspServerFailed, msg)
            }
            LspError::Timeout { .. } => ApiError::new(StatusCode::REQUEST_TIMEOUT, Code::RequestTimeout, msg),
            LspError::TooLarge { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, Code::LspResponseTooLarge, msg)
            }
            LspError::Request { .. } | LspError::NotSupported { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, Code::LspRequestFailed, msg)
            }
        }
    }
}

/// Which server: the key is the pair of strings as sent.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LspServerRequest {
    /// `python`, `typescript`, `javascript`, or a language configured with `DAYTONA_LSP_SERVERS`.
    #[schema(value_type = String)]
    language_id: Option<String>,
    /// The project directory (relative paths resolve against the daemon's working directory).
    #[schema(value_type = String)]
    path_to_project: Option<String>,
}

/// A document of a server.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LspDocumentRequest {
    #[schema(value_type = String)]
    language_id: Option<String>,
    #[schema(value_type = String)]
    path_to_project: Option<String>,
    /// `file://` followed by the file's path, not percent-encoded (what the SDKs send).
    #[schema(value_type = String)]
    uri: Option<String>,
}

/// A position in a document: zero-based line and UTF-16 character offset, as LSP counts.
#[derive(Deserialize, ToSchema, Clone, Copy)]
pub struct Position {
    line: u32,
    character: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionContext {
    /// 1 invoked, 2 trigger character, 3 re-trigger of an incomplete list.
    #[schema(minimum = 1, maximum = 3)]
    trigger_kind: i32,
    trigger_character: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LspCompletionParams {
    #[schema(value_type = String)]
    language_id: Option<String>,
    #[schema(value_type = String)]
    path_to_project: Option<String>,
    #[schema(value_type = String)]
    uri: Option<String>,
    #[schema(value_type = Position)]
    position: Option<Position>,
    context: Option<CompletionContext>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionList {
    is_incomplete: bool,
    items: Vec<CompletionItem>,
}

/// The fields of an LSP completion item the clients model; edits and server data are dropped.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionItem {
    label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// Always `{kind, value}`: a plain string from the server becomes `plaintext` (the Python
    /// client models documentation as an object).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    documentation: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    insert_text: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LspPosition {
    line: u32,
    character: u32,
}

#[derive(Serialize, ToSchema)]
pub struct LspRange {
    start: LspPosition,
    end: LspPosition,
}

#[derive(Serialize, ToSchema)]
pub struct LspLocation {
    uri: String,
    range: LspRange,
}

#[derive(Serialize, ToSchema)]
pub struct LspSymbol {
    /// The LSP SymbolKind number (5 class, 6 method, 12 function, 13 variable, …).
    kind: i64,
    location: LspLocation,
    name: String,
}

fn key(
    state: &AppState,
    language: &Option<String>,
    project: &Option<String>,
) -> Result<(String, String, PathBuf), ApiError> {
    let language = required("languageId", language)?.to_string();
    let project = required("pathToProject", project)?.to_string();
    let root = project_root(state, &project)?;
    Ok((language, project, root))
}

/// The project directory a `pathToProject` names (relative to the daemon's working directory).
fn project_root(state: &AppState, project: &str) -> Result<PathBuf, ApiError> {
    Ok(FilePath::parse_str(project, &state.work_dir, "pathToProject is required")?.abs)
}

/// The file a `file://` URI names. The SDKs send `file://` and the path as it is, so nothing
/// is percent-decoded; a relative path resolves against the project, as the SDKs document.
fn document(uri: &str, project: &Path) -> Result<PathBuf, ApiError> {
    let path = uri.strip_prefix("file://").ok_or_else(|| LspError::BadUri(uri.to_string()))?;
    Ok(FilePath::parse_str(path, project, "uri has no path")?.abs)
}

/// A server's `file:` URI as the clients write them: `file://` and the path, not encoded, so a
/// location can be compared with the uri that was sent. Other URIs, and paths that do not
/// decode to UTF-8, are left as the server wrote them.
fn client_uri(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("file://") else { return uri.to_string() };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(path) if !path.contains('\0') => format!("file://{path}"),
        _ => uri.to_string(),
    }
}

/// Starts the language server of a language and project, or does nothing when it runs.
#[utoipa::path(post, path = "/lsp/start", tag = "lsp", request_body = LspServerRequest,
    responses((status = 200, description = "Running"),
        (status = 400, description = "Missing field, unsupported language (LSP_LANGUAGE_UNSUPPORTED), no server installed for it (LSP_SERVER_MISSING), or pathToProject is not a directory", body = Envelope),
        (status = 403, description = "pathToProject cannot be read (FILE_ACCESS_DENIED)", body = Envelope),
        (status = 404, description = "pathToProject does not exist (FILE_NOT_FOUND)", body = Envelope),
        (status = 429, description = "DAYTONA_LSP_MAX_SERVERS servers run already", body = Envelope),
        (status = 502, description = "The server exited or failed during initialize (LSP_SERVER_FAILED)", body = Envelope)))]
async fn start(
    State(state): State<AppState>,
    Json(req): Json<LspServerRequest>,
) -> Result<StatusCode, ApiError> {
    let (language, project, root) = key(&state, &req.language_id, &req.path_to_project)?;
    state.lsp.start(&language, &project, &root).await?;
    Ok(StatusCode::OK)
}

/// Stops a language server: `shutdown`, `exit`, then its process group is killed. Stopping a
/// server that does not run does nothing.
#[utoipa::path(post, path = "/lsp/stop", tag = "lsp", request_body = LspServerRequest,
    responses((status = 200, description = "Not running any more"),
        (status = 400, description = "Missing field", body = Envelope)))]
async fn stop(
    State(state): State<AppState>,
    Json(req): Json<LspServerRequest>,
) -> Result<StatusCode, ApiError> {
    let language = required("languageId", &req.language_id)?;
    let project = required("pathToProject", &req.path_to_project)?;
    state.lsp.stop(language, project).await;
    Ok(StatusCode::OK)
}

/// Opens a document in a server, reading it from disk; for a document already open, sends what
/// changed on disk since.
#[utoipa::path(post, path = "/lsp/did-open", tag = "lsp", request_body = LspDocumentRequest,
    responses((status = 200, description = "Open"),
        (status = 400, description = "Missing field, a uri that is not file://, not a regular file, or no running server (LSP_SERVER_NOT_INITIALIZED)", body = Envelope),
        (status = 403, description = "The file cannot be read (FILE_ACCESS_DENIED)", body = Envelope),
        (status = 404, description = "The file does not exist (FILE_NOT_FOUND)", body = Envelope),
        (status = 413, description = "The file is over 32 MiB", body = Envelope)))]
async fn did_open(
    State(state): State<AppState>,
    Json(req): Json<LspDocumentRequest>,
) -> Result<StatusCode, ApiError> {
    let (language, project, root) = key(&state, &req.language_id, &req.path_to_project)?;
    let file = document(required("uri", &req.uri)?, &root)?;
    state.lsp.did_open(&language, &project, &file).await?;
    Ok(StatusCode::OK)
}

/// Closes a document; one that is not open is left alone.
#[utoipa::path(post, path = "/lsp/did-close", tag = "lsp", request_body = LspDocumentRequest,
    responses((status = 200, description = "Closed"),
        (status = 400, description = "Missing field, a uri that is not file://, or no running server (LSP_SERVER_NOT_INITIALIZED)", body = Envelope)))]
async fn did_close(
    State(state): State<AppState>,
    Json(req): Json<LspDocumentRequest>,
) -> Result<StatusCode, ApiError> {
    let (language, project, root) = key(&state, &req.language_id, &req.path_to_project)?;
    let file = document(required("uri", &req.uri)?, &root)?;
    state.lsp.did_close(&language, &project, &file).await?;
    Ok(StatusCode::OK)
}

const QUERY_ERRORS: &str = "Missing parameter, a uri that is not file://, no running server (LSP_SERVER_NOT_INITIALIZED), an error from the server or a request it does not support (LSP_REQUEST_FAILED) or an answer over 16 MiB (LSP_RESPONSE_TOO_LARGE)";

/// Completions at a position. The document is opened first if it is not open, and sent again
/// if it changed on disk since, so the answer is about the file as it is now.
#[utoipa::path(post, path = "/lsp/completions", tag = "lsp", request_body = LspCompletionParams,
    responses((status = 200, body = CompletionList),
        (status = 400, description = QUERY_ERRORS, body = Envelope),
        (status = 403, description = "The file cannot be read (FILE_ACCESS_DENIED)", body = Envelope),
        (status = 404, description = "The file does not exist (FILE_NOT_FOUND)", body = Envelope),
        (status = 408, description = "The server did not answer within DAYTONA_LSP_REQUEST_TIMEOUT, 30 s by default (REQUEST_TIMEOUT)", body = Envelope),
        (status = 413, description = "The file is over 32 MiB", body = Envelope),
        (status = 502, description = "The server's answer could not be read, or it stopped reading its input (LSP_SERVER_FAILED)", body = Envelope)))]
async fn completions(
    State(state): State<AppState>,
    Json(req): Json<LspCompletionParams>,
) -> Result<Json<CompletionList>, ApiError> {
    let (language, project, root) = key(&state, &req.language_id, &req.path_to_project)?;
    let file = document(required("uri", &req.uri)?, &root)?;
    let position =
        req.position.ok_or_else(|| ApiError::invalid_body("invalid request body: position is required"))?;
    let context = match req.context {
        None => None,
        Some(c) => Some(lsp::CompletionContext {
            trigger_kind: serde_json::from_value(Value::from(c.trigger_kind))
                .ok()
                .filter(|_| (1..=3).contains(&c.trigger_kind))
                .ok_or_else(|| {
                    ApiError::invalid_body("invalid request body: context.triggerKind must be 1, 2 or 3")
                })?,
            trigger_character: c.trigger_character,
        }),
    };
    let position = lsp::Position { line: position.line, character: position.character };
    let answer = state.lsp.completion(&language, &project, &file, position, context).await?;
    Ok(Json(completion_list(answer)))
}

fn completion_list(answer: Option<lsp::CompletionResponse>) -> CompletionList {
    let (is_incomplete, items) = match answer {
        None => (false, Vec::new()),
        Some(lsp::CompletionResponse::Array(items)) => (false, items),
        Some(lsp::CompletionResponse::List(list)) => (list.is_incomplete, list.items),
    };
    CompletionList { is_incomplete, items: items.into_iter().map(completion_item).collect() }
}

fn completion_item(i: lsp::CompletionItem) -> CompletionItem {
    let documentation = i.documentation.map(|d| match d {
        lsp::Documentation::String(s) => serde_json::json!({"kind": "plaintext", "value": s}),
        lsp::Documentation::MarkupContent(m) => serde_json::json!({"kind": m.kind, "value": m.value}),
    });
    CompletionItem {
        label: i.label,
        kind: i.kind.and_then(number),
        detail: i.detail,
        documentation,
        sort_text: i.sort_text,
        filter_text: i.filter_text,
        insert_text: i.insert_text,
    }
}

/// The number behind one of lsp-types' open enums (their field is private; serde knows it).
fn number(v: impl Serialize) -> Option<i64> {
    serde_json::to_value(v).ok()?.as_i64()
}

/// The symbols of a document, flat: a server's outline (DocumentSymbol) is flattened parents
/// first, each located by its whole range in the requested uri.
#[utoipa::path(get, path = "/lsp/document-symbols", tag = "lsp",
    params(("languageId" = String, Query), ("pathToProject" = String, Query), ("uri" = String, Query)),
    responses((status = 200, body = Vec<LspSymbol>),
        (status = 400, description = QUERY_ERRORS, body = Envelope),
        (status = 403, description = "The file cannot be read (FILE_ACCESS_DENIED)", body = Envelope),
        (status = 404, description = "The file does not exist (FILE_NOT_FOUND)", body = Envelope),
        (status = 408, description = "The server did not answer within DAYTONA_LSP_REQUEST_TIMEOUT, 30 s by default (REQUEST_TIMEOUT)", body = Envelope),
        (status = 413, description = "The file is over 32 MiB", body = Envelope),
        (status = 502, description = "The server's answer could not be read, or it stopped reading its input (LSP_SERVER_FAILED)", body = Envelope)))]
async fn document_symbols(
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<Vec<LspSymbol>>, ApiError> {
    let language = query_text(&query, "languageId")?;
    let project = query_text(&query, "pathToProject")?;
    let uri = query_text(&query, "uri")?;
    let file = document(&uri, &project_root(&state, &project)?)?;
    let answer = state.lsp.document_symbols(&language, &project, &file).await?;
    let mut out = Vec::new();
    match answer {
        None => {}
        Some(lsp::DocumentSymbolResponse::Flat(list)) => out.extend(list.into_iter().map(symbol_information)),
        Some(lsp::DocumentSymbolResponse::Nested(tree)) => flatten(&uri, tree, &mut out),
    }
    Ok(Json(out))
}

/// Symbols matching a query across the project, where the server supports it.
#[utoipa::path(get, path = "/lsp/workspacesymbols", tag = "lsp",
    params(("query" = String, Query, description = "May be empty: every symbol, as the server sees fit"),
        ("languageId" = String, Query), ("pathToProject" = String, Query)),
    responses((status = 200, body = Vec<LspSymbol>),
        (status = 400, description = QUERY_ERRORS, body = Envelope),
        (status = 408, description = "The server did not answer within DAYTONA_LSP_REQUEST_TIMEOUT, 30 s by default (REQUEST_TIMEOUT)", body = Envelope),
        (status = 502, description = "The server's answer could not be read, or it stopped reading its input (LSP_SERVER_FAILED)", body = Envelope)))]
async fn workspace_symbols(
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<Vec<LspSymbol>>, ApiError> {
    // Present but possibly empty: LSP lets an empty query ask for every symbol.
    let text = query
        .get("query")
        .map(crate::fspath::display)
        .ok_or_else(|| ApiError::bad_request("query is required"))?;
    let language = query_text(&query, "languageId")?;
    let project = query_text(&query, "pathToProject")?;
    let answer = state.lsp.workspace_symbols(&language, &project, &text).await?;
    let out = match answer {
        None => Vec::new(),
        Some(lsp::WorkspaceSymbolResponse::Flat(list)) => list.into_iter().map(symbol_information).collect(),
        Some(lsp::WorkspaceSymbolResponse::Nested(list)) => list
            .into_iter()
            .map(|s| {
                let (uri, range) = match s.location {
                    lsp::OneOf::Left(l) => (l.uri.to_string(), l.range),
                    lsp::OneOf::Right(w) => (w.uri.to_string(), lsp::Range::default()),
                };
                LspSymbol { kind: number(s.kind).unwrap_or(0), location: location(uri, range), name: s.name }
            })
            .collect(),
    };
    Ok(Json(out))
}

/// A required, non-empty query parameter.
fn query_text(query: &RawQuery, name: &str) -> Result<String, ApiError> {
    query
        .text(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

/// A location with the uri in the clients' spelling.
fn location(uri: String, range: lsp::Range) -> LspLocation {
    let pos = |p: lsp::Position| LspPosition { line: p.line, character: p.character };
    LspLocation { uri: client_uri(&uri), range: LspRange { start: pos(range.start), end: pos(range.end) } }
}

fn symbol_information(s: lsp::SymbolInformation) -> LspSymbol {
    LspSymbol {
        kind: number(s.kind).unwrap_or(0),
        location: location(s.location.uri.to_string(), s.location.range),
        name: s.name,
    }
}

fn flatten(uri: &str, symbols: Vec<lsp::DocumentSymbol>, out: &mut Vec<LspSymbol>) {
    for s in symbols {
        out.push(LspSymbol {
            kind: number(s.kind).unwrap_or(0),
            location: location(uri.to_string(), s.range),
            name: s.name,
        });
        if let Some(children) = s.children {
            flatten(uri, children, out);
        }
    }
}

#[cfg(test)]
mod tests;
