//! The `/files` routes: handlers, wire types, OpenAPI annotations, and the one mapping of the
//! area's errors to HTTP. The work itself is done by the services next door (`info`, `ops`,
//! `search`, `download`, `upload`, `watch`), which take plain paths and return [`FsError`]s or
//! their own outcomes.
//!
//! Every path comes in through [`crate::fspath`]: raw bytes (`%FF` in the query is the byte
//! 0xFF, so every route sees the same name), checked (a NUL byte, a name over 255 bytes or a
//! path over 4095 bytes is a 400 `INVALID_FILE_PATH` before the file system is touched), and
//! repeated query keys are refused. JSON bodies carry text, so only query parameters and
//! multipart parts can name a file that is not UTF-8.
//!
//! Paths are used as the client gave them unless a route says otherwise: a relative path is
//! resolved by the OS against the daemon's current directory, which is its work directory
//! (the daemon never changes directory after start); `~` is not expanded. Download, move and
//! permissions make the path absolute and clean it first, as the reference does.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::openapi::routes;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::download::{self, BulkError, BulkItem};
use super::error::FsError;
use super::search::{self, Limits};
use super::upload::{self, SingleError};
use super::watch::{Session, WatchEvent};
use super::{info, ops};
use crate::error::{ApiError, Code};
use crate::extract::{Json, Rejection, Ws};
use crate::fspath::{self, FilePath, RawQuery};
use crate::openapi::ErrorResponse;
use crate::state::AppState;
use crate::text::os_error_text;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_files))
        .routes(routes!(file_info))
        .routes(routes!(create_folder))
        .routes(routes!(move_file))
        .routes(routes!(set_permissions))
        .routes(routes!(replace_in_files))
        .routes(routes!(delete_file))
        .routes(routes!(find_in_files))
        .routes(routes!(search_files))
        .routes(routes!(download_file))
        .routes(routes!(bulk_download))
        .routes(routes!(bulk_upload))
        .routes(routes!(upload_v2))
        .routes(routes!(upload_legacy))
        .routes(routes!(watch_files))
        // The reference registers the slash form too (clients call both); without this route
        // the router would answer it with a redirect.
        .route("/files/", axum::routing::get(list_files).delete(delete_file))
}

// ------------------------------------------------------------------------------- errors

impl From<FsError> for ApiError {
    fn from(e: FsError) -> Self {
        match e {
            FsError::Os { path, err } => os_error(&err, &path),
            FsError::Refused(why) => ApiError::bad_request(why),
            FsError::WrongKind(why) => ApiError::new(StatusCode::BAD_REQUEST, Code::InvalidFilePath, why),
            FsError::Exists => ApiError::conflict("destination already exists"),
            FsError::Read { path, err } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::FileReadFailed,
                format!("failed to read file: read {}: {}", shown(&path), os_error_text(&err)),
            ),
        }
    }
}

/// Classifies an OS error on `path` the way the clients expect: a missing path is 404
/// `FILE_NOT_FOUND`, a permission problem 403 `FILE_ACCESS_DENIED`, anything else 400.
pub fn os_error(err: &io::Error, path: &Path) -> ApiError {
    let detail = format!("{}: {}", shown(path), os_error_text(err));
    match err.kind() {
        io::ErrorKind::NotFound => ApiError::new(StatusCode::NOT_FOUND, Code::FileNotFound, detail),
        io::ErrorKind::PermissionDenied => {
            ApiError::new(StatusCode::FORBIDDEN, Code::FileAccessDenied, detail)
        }
        _ => ApiError::bad_request(detail),
    }
}

/// A path in a message, byte for byte (invalid UTF-8 as one U+FFFD per byte).
fn shown(path: &Path) -> String {
    fspath::display(path.as_os_str().as_bytes())
}

/// The path as the client gave it, for the file system: a relative one is resolved by the OS
/// against the current directory, which is the work directory.
fn as_given(path: &FilePath) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&path.raw))
}

/// Runs blocking file-system work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

// ------------------------------------------------------------------------- list and info

/// Metadata of one file, as the clients' `FileInfo` model requires it.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// Base name (listings: the entry name).
    pub name: String,
    /// `st_size` of the link-followed target.
    pub size: u64,
    /// Go `FileMode.String()`, e.g. `drwxr-xr-x`.
    pub mode: String,
    /// Deprecated: Go `time.Time.String()` layout in the daemon's local zone.
    pub mod_time: String,
    /// RFC 3339 with nanoseconds, daemon's local zone.
    pub modified_at: String,
    pub is_dir: bool,
    /// Numeric uid as decimal text.
    pub owner: String,
    /// Numeric gid as decimal text.
    pub group: String,
    /// Permission bits as 4-digit octal, e.g. `0644`.
    pub permissions: String,
    /// Listings only: the listed directory joined (and cleaned) with the entry's relative path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl FileInfo {
    /// Renders `meta` (from a link-following stat) under `name`, times in `tz`.
    pub fn from_metadata(name: &[u8], meta: &Metadata, tz: &TimeZone) -> Self {
        let mtime = Timestamp::new(meta.mtime(), meta.mtime_nsec() as i32).unwrap_or(Timestamp::UNIX_EPOCH);
        FileInfo {
            name: fspath::display(name),
            size: meta.size(),
            mode: info::mode_string(meta.mode()),
            mod_time: info::go_time_string(mtime, tz),
            modified_at: crate::timefmt::format_rfc3339(mtime, tz),
            is_dir: meta.is_dir(),
            owner: meta.uid().to_string(),
            group: meta.gid().to_string(),
            permissions: info::permissions(meta.mode()),
            path: None,
        }
    }
}

/// Parses the `depth` query value: absent or empty means 1; anything but an integer >= 1 is
/// refused (a huge value simply lists everything).
pub fn parse_depth(value: Option<&[u8]>) -> Result<usize, ApiError> {
    let Some(raw) = value.filter(|v| !v.is_empty()) else { return Ok(1) };
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|d| *d >= 1)
        .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
        .ok_or_else(|| ApiError::bad_request("depth must be an integer >= 1"))
}

/// Lists a directory; with `depth` > 1 a flat, pre-order list of the whole subtree.
///
/// Entries are sorted by name (bytes), stat'ed through symbolic links (entries whose stat fails
/// are left out), and symbolic links to directories are not descended into.
#[utoipa::path(get, path = "/files", tag = "files",
    params(("path" = Option<String>, Query, description = "directory to list; the work dir when absent or empty"),
        ("depth" = Option<i64>, Query, minimum = 1,
            description = "levels to list (default 1); a non-integer or a value below 1 is a 400")),
    responses((status = 200, body = Vec<FileInfo>),
        (status = 400, description = "bad `path` or `depth`, or not a directory", body = ErrorResponse),
        (status = 403, description = "permission denied", body = ErrorResponse),
        (status = 404, description = "no such directory", body = ErrorResponse)))]
async fn list_files(query: RawQuery, headers: HeaderMap) -> Result<Json<Vec<FileInfo>>, ApiError> {
    let depth = parse_depth(query.get("depth"))?;
    let requested = match query.get("path").filter(|p| !p.is_empty()) {
        Some(raw) => {
            fspath::check(raw)?;
            raw.to_vec()
        }
        None => b".".to_vec(),
    };
    let strict = crate::client::is_strict_go_client(&headers);
    let entries = blocking(move || {
        let root = Path::new(OsStr::from_bytes(&requested));
        info::list_dir(root, &requested, depth).map_err(|e| os_error(&e, root))
    })
    .await?;
    let tz = TimeZone::system();
    let list = entries
        .into_iter()
        .map(|e| FileInfo {
            // Clients older than `path` refuse unknown fields.
            path: (!strict).then(|| fspath::display(&e.path)),
            ..FileInfo::from_metadata(&e.name, &e.meta, &tz)
        })
        .collect();
    Ok(Json(list))
}

/// Metadata of one file or directory (symlinks followed).
#[utoipa::path(get, path = "/files/info", tag = "files",
    params(("path" = String, Query, description = "file or directory")),
    responses((status = 200, body = FileInfo),
        (status = 400, description = "missing or invalid `path`", body = ErrorResponse),
        (status = 403, description = "permission denied", body = ErrorResponse),
        (status = 404, description = "no such file", body = ErrorResponse)))]
async fn file_info(path: FilePath) -> Result<Json<FileInfo>, ApiError> {
    blocking(move || {
        let given = as_given(&path);
        let meta = std::fs::metadata(&given).map_err(|e| os_error(&e, &given))?;
        Ok(Json(FileInfo::from_metadata(fspath::base(&path.raw), &meta, &TimeZone::system())))
    })
    .await
}

// ----------------------------------------------------------------------------- operations

/// Creates a directory and its missing parents (`mkdir -p`); an existing directory is success.
#[utoipa::path(post, path = "/files/folder", tag = "files",
    params(("path" = String, Query, description = "directory to create"),
        ("mode" = Option<String>, Query, description = "octal permissions, default 0755 (umask applies)")),
    responses((status = 201, description = "created or already there"),
        (status = 400, description = "missing or invalid `path` or `mode`, or a component is not a directory", body = ErrorResponse),
        (status = 403, description = "permission denied", body = ErrorResponse)))]
async fn create_folder(query: RawQuery, State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let path = query.file_path("path", &state.work_dir, "path is required")?;
    let mode = match query.get("mode").filter(|m| !m.is_empty()) {
        Some(m) => ops::parse_mode(m)?,
        None => 0o755,
    };
    blocking(move || Ok(ops::make_dir(&as_given(&path), mode)?)).await?;
    Ok(StatusCode::CREATED)
}

/// Body of a move whose copy succeeded but whose source could not be removed.
#[derive(Serialize, ToSchema, Debug, PartialEq, Eq)]
pub struct PartialMove {
    message: String,
    error: String,
}

/// Renames `source` to `destination`, never overwriting; across file systems (or whenever the
/// rename fails) it copies and then deletes the source. Both paths are made absolute and
/// cleaned first.
#[utoipa::path(post, path = "/files/move", tag = "files",
    params(("source" = String, Query), ("destination" = String, Query, description = "must not exist")),
    responses((status = 200, description = "moved; a JSON body when the source could not be removed after copying", body = Option<PartialMove>),
        (status = 400, description = "missing or invalid paths, or the move failed", body = ErrorResponse),
        (status = 403, description = "permission denied", body = ErrorResponse),
        (status = 404, description = "no such source, or no destination directory", body = ErrorResponse),
        (status = 409, description = "the destination already exists", body = ErrorResponse)))]
async fn move_file(query: RawQuery, State(state): State<AppState>) -> Result<Response, ApiError> {
    let required = "source and destination paths are required";
    let (Some(source), Some(destination)) =
        (query.get("source").filter(|p| !p.is_empty()), query.get("destination").filter(|p| !p.is_empty()))
    else {
        return Err(ApiError::bad_request(required));
    };
    let source = FilePath::parse(source, &state.work_dir, required)?;
    let destination = FilePath::parse(destination, &state.work_dir, required)?;
    let kept = blocking(move || Ok(ops::move_path(&source.abs, &destination.abs)?)).await?;
    Ok(match kept {
        None => StatusCode::OK.into_response(),
        Some(error) => Json(PartialMove {
            message: "file copied successfully but source could not be deleted".into(),
            error,
        })
        .into_response(),
    })
}

/// Changes mode and/or ownership (following symlinks). Mode first, so a failing chown leaves
/// the mode changed, as in the reference.
#[utoipa::path(post, path = "/files/permissions", tag = "files",
    params(("path" = String, Query),
        ("mode" = Option<String>, Query, description = "octal; only the permission bits are applied"),
        ("owner" = Option<String>, Query, description = "uid or user name"),
        ("group" = Option<String>, Query, description = "gid or group name")),
    responses((status = 200, description = "changed"),
        (status = 400, description = "missing or invalid `path`, bad mode, unknown user or group, or the change failed", body = ErrorResponse),
        (status = 403, description = "permission denied", body = ErrorResponse),
        (status = 404, description = "no such file", body = ErrorResponse)))]
async fn set_permissions(query: RawQuery, State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let path = query.file_path("path", &state.work_dir, "path is required")?;
    let mode = query.get("mode").filter(|m| !m.is_empty()).map(<[u8]>::to_vec);
    let (owner, group) = (query.text("owner"), query.text("group"));
    blocking(move || {
        Ok(ops::set_permissions(&path.abs, mode.as_deref(), owner.as_deref(), group.as_deref())?)
    })
    .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplaceRequest {
    /// Files to edit, in order; may be empty but not absent.
    #[schema(required = true, nullable = false)]
    files: Option<Vec<String>>,
    /// Literal text to find (not a regular expression); must not be empty.
    #[schema(required = true, nullable = false, min_length = 1)]
    pattern: Option<String>,
    /// Replacement text; may be empty but not absent.
    #[schema(required = true, nullable = false)]
    new_value: Option<String>,
}

#[derive(Serialize, ToSchema, Debug, PartialEq, Eq)]
pub struct ReplaceResult {
    file: String,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Replaces every occurrence of a literal pattern in each file; one result per file (a file
/// that cannot be edited, or whose path is invalid, fails alone).
#[utoipa::path(post, path = "/files/replace", tag = "files", request_body = ReplaceRequest,
    responses((status = 200, body = Vec<ReplaceResult>),
        (status = 400, description = "not a JSON object, or a field missing", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse)))]
async fn replace_in_files(Json(req): Json<ReplaceRequest>) -> Result<Json<Vec<ReplaceResult>>, ApiError> {
    let missing = |field: &str| ApiError::bad_request(format!("invalid request body: {field} is required"));
    let files = req.files.ok_or_else(|| missing("files"))?;
    let pattern = req.pattern.filter(|p| !p.is_empty()).ok_or_else(|| missing("pattern"))?;
    let new_value = req.new_value.ok_or_else(|| missing("newValue"))?;
    let results = blocking(move || {
        Ok(files
            .into_iter()
            .map(|file| {
                let done = fspath::check(file.as_bytes()).map_err(|e| e.message).and_then(|()| {
                    ops::replace_in_file(Path::new(&file), pattern.as_bytes(), new_value.as_bytes())
                });
                ReplaceResult { success: done.is_ok(), file, error: done.err() }
            })
            .collect())
    })
    .await?;
    Ok(Json(results))
}

/// Deletes a file, or a directory tree with `recursive=true`. The existence check follows
/// symlinks (a dangling link is "not found"); the removal never does (a link to a directory is
/// removed itself).
#[utoipa::path(delete, path = "/files", tag = "files",
    params(("path" = String, Query), ("recursive" = Option<bool>, Query, description = "required for directories; only `true` counts")),
    responses((status = 204, description = "deleted"),
        (status = 400, description = "missing or invalid `path`, a directory without `recursive=true`, or the removal failed", body = ErrorResponse),
        (status = 403, description = "permission denied", body = ErrorResponse),
        (status = 404, description = "no such file", body = ErrorResponse)))]
async fn delete_file(query: RawQuery, State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let path = query.file_path("path", &state.work_dir, "path is required")?;
    let recursive = query.get("recursive") == Some(b"true");
    blocking(move || Ok(ops::delete_path(&as_given(&path), recursive)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --------------------------------------------------------------------------------- search

const SEARCH_REQUIRED: &str = "path and pattern are required";

/// One line containing the pattern.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The walk path: the `path` parameter as given for the root, the cleaned join below it.
    #[serde(serialize_with = "as_str")]
    #[schema(value_type = String)]
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u64,
    /// The whole line, without its `\n` and one trailing `\r`.
    pub content: String,
}

fn as_str<S: Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

impl From<search::Match> for Match {
    fn from(m: search::Match) -> Self {
        Match { file: m.file, line: m.line, content: m.content }
    }
}

#[derive(Serialize, ToSchema, Debug)]
pub struct SearchFilesResponse {
    /// Matching paths (files, directories, links, the root itself), in walk order.
    pub files: Vec<String>,
}

/// The `path` and `pattern` of a find or search, both required.
fn search_params(query: &RawQuery, work_dir: &Path) -> Result<(FilePath, Vec<u8>), ApiError> {
    let path = query.file_path("path", work_dir, SEARCH_REQUIRED)?;
    let pattern = query
        .get("pattern")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request(SEARCH_REQUIRED))?;
    Ok((path, pattern.to_vec()))
}

fn json_answer<T: Serialize>(body: &T, truncated: bool) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    let mut res = ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], bytes).into_response();
    if truncated {
        res.headers_mut()
            .insert(HeaderName::from_static(search::TRUNCATED_HEADER), HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// Searches file contents for a literal text, like `grep -rnF`.
///
/// Walks `path` without following symbolic links and reports every line of a regular file
/// that contains `pattern` (case-sensitive; raw bytes, `%FF` is the byte 0xFF). Files whose
/// first 512 bytes contain a NUL are skipped as binary; a line longer than 64 KiB ends the scan
/// of its file. A missing `path` gives `[]`. At most 100 000 matches and 128 MiB of paths and
/// lines are returned: the first ones in walk order, with the header
/// `X-Daytona-Results-Truncated: true` when more were found.
#[utoipa::path(get, path = "/files/find", tag = "files",
    params(("path" = String, Query, description = "file or directory to search; relative paths resolve against the work dir"),
        ("pattern" = String, Query, description = "literal, case-sensitive text")),
    responses((status = 200, body = Vec<Match>,
            headers(("X-Daytona-Results-Truncated" = String, description = "`true` when the result bound cut the list"))),
        (status = 400, description = "`path` or `pattern` missing, or `path` invalid", body = ErrorResponse)))]
async fn find_in_files(query: RawQuery, State(state): State<AppState>) -> Result<Response, ApiError> {
    let (path, pattern) = search_params(&query, &state.work_dir)?;
    let found =
        blocking(move || Ok(search::find(&path.raw, &as_given(&path), &pattern, Limits::FIND))).await?;
    let items: Vec<Match> = found.items.into_iter().map(Match::from).collect();
    json_answer(&items, found.truncated)
}

/// Lists the entries whose base name matches a glob.
///
/// Walks `path` without following symbolic links; every entry (files, directories, links and
/// the root itself) whose base name matches `pattern` is reported. Glob syntax is Go's
/// `filepath.Match`: `*`, `?`, `[...]`, `[^...]`, ranges and `\` escapes; a malformed pattern
/// matches nothing. A missing `path` gives no files. At most 1 000 000 paths (128 MiB) are
/// returned: the first ones in walk order, with the header `X-Daytona-Results-Truncated: true`
/// when more were found.
#[utoipa::path(get, path = "/files/search", tag = "files",
    params(("path" = String, Query, description = "directory to search; relative paths resolve against the work dir"),
        ("pattern" = String, Query, description = "Go `filepath.Match` glob on base names")),
    responses((status = 200, body = SearchFilesResponse,
            headers(("X-Daytona-Results-Truncated" = String, description = "`true` when the result bound cut the list"))),
        (status = 400, description = "`path` or `pattern` missing, or `path` invalid", body = ErrorResponse)))]
async fn search_files(query: RawQuery, State(state): State<AppState>) -> Result<Response, ApiError> {
    let (path, pattern) = search_params(&query, &state.work_dir)?;
    let found =
        blocking(move || Ok(search::search(&path.raw, &as_given(&path), &pattern, Limits::SEARCH))).await?;
    json_answer(&SearchFilesResponse { files: found.items }, found.truncated)
}

// ------------------------------------------------------------------------------ downloads

/// Downloads one file with static-file semantics (ranges, conditionals, `HEAD`). The path is
/// made absolute and cleaned; `Content-Disposition` names its last element.
#[utoipa::path(get, path = "/files/download", tag = "files",
    params(("path" = String, Query, description = "file to download; relative paths resolve against the work dir")),
    responses(
        (status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range(s)"),
        (status = 304, description = "not modified since `If-Modified-Since`"),
        (status = 400, description = "missing or invalid `path`, or not a regular file (`INVALID_FILE_PATH`)", body = ErrorResponse),
        (status = 403, description = "permission denied", body = ErrorResponse),
        (status = 404, description = "no such file", body = ErrorResponse),
        (status = 412, description = "`If-Unmodified-Since`/`If-Match` failed"),
        (status = 416, description = "no requested range overlaps the file"),
        (status = 500, description = "the file opened but cannot be read (`FILE_READ_FAILED`)", body = ErrorResponse)))]
async fn download_file(path: FilePath, method: Method, headers: HeaderMap) -> Result<Response, ApiError> {
    let name = fspath::display(fspath::base(path.abs.as_os_str().as_bytes()));
    let opened = blocking(move || Ok(download::open_single(&path.abs)?)).await?;
    Ok(download::single_response(opened, &name, &method, &headers))
}

const BULK_BODY_ERROR: &str = r#"request body must be {"paths": [ ... ]} and non-empty"#;

#[derive(Deserialize, ToSchema)]
pub struct FilesDownloadRequest {
    /// Files to download, in answer order; each path is echoed as its part's filename.
    #[schema(required = true, nullable = false, min_items = 1)]
    paths: Option<Vec<String>>,
}

/// The requested paths of a bulk download: anything but a non-empty list of strings is refused
/// with the one message the clients know (a body over the limit keeps its 413).
fn bulk_paths(body: Result<Json<FilesDownloadRequest>, Rejection>) -> Result<Vec<String>, ApiError> {
    match body {
        Ok(Json(FilesDownloadRequest { paths: Some(paths) })) if !paths.is_empty() => Ok(paths),
        Err(r) if r.status == StatusCode::PAYLOAD_TOO_LARGE => Err(r.into()),
        _ => Err(ApiError::bad_request(BULK_BODY_ERROR)),
    }
}

/// One requested path, checked: the file to open, or why it gets an error part.
fn bulk_item(path: String) -> BulkItem {
    let full = if path.is_empty() {
        Err(BulkError::Invalid("invalid file path: path is empty".into()))
    } else {
        match fspath::check(path.as_bytes()) {
            Ok(()) => Ok(PathBuf::from(&path)),
            Err(e) => Err(BulkError::Invalid(e.message)),
        }
    };
    (path, full)
}

/// The error of one bulk-download part, with the codes the clients know for them.
fn bulk_error(path: &str, err: &BulkError) -> ApiError {
    let invalid = |message: String| ApiError::new(StatusCode::BAD_REQUEST, Code::InvalidFilePath, message);
    match err {
        BulkError::Invalid(why) => invalid(why.clone()),
        BulkError::Directory => invalid(format!("invalid file path: path points to a directory: {path}")),
        BulkError::NotRegular => invalid(format!("invalid file path: not a regular file: {path}")),
        BulkError::Os { op, err } => match err.raw_os_error() {
            Some(libc::ENOENT) => {
                ApiError::new(StatusCode::NOT_FOUND, Code::FileNotFound, format!("file not found: {path}"))
            }
            Some(libc::EACCES | libc::EPERM) => ApiError::new(
                StatusCode::FORBIDDEN,
                Code::FileAccessDenied,
                format!("permission denied: {path}"),
            ),
            Some(libc::EINVAL) => invalid(format!("invalid file path: {path}")),
            None if err.kind() == io::ErrorKind::InvalidInput => {
                invalid(format!("invalid file path: {path}"))
            }
            _ => {
                let what = if *op == "open" { "failed to open file" } else { "failed to access file" };
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Code::FileReadFailed,
                    format!("{what}: {op} {path}: {}", os_error_text(err)),
                )
            }
        },
    }
}

/// The body of an `error` part: the error envelope, with the *file* path as its `path` and the
/// timestamp in UTC, as the reference writes it.
fn bulk_error_part(path: &str, err: &BulkError) -> Vec<u8> {
    let mut envelope = bulk_error(path, err).envelope("POST", path);
    envelope.timestamp = crate::timefmt::format_rfc3339(Timestamp::now(), &TimeZone::UTC);
    envelope.to_json()
}

/// Downloads many files as one `multipart/form-data` stream, one part per requested path (as
/// given), in request order: `file` parts with the content, `error` parts with the error
/// envelope for paths that cannot be read.
#[utoipa::path(post, path = "/files/bulk-download", tag = "files", request_body = FilesDownloadRequest,
    responses(
        (status = 200, description = "one `file` or `error` part per path, in request order",
            content_type = "multipart/form-data"),
        (status = 400, description = "the body is not `{\"paths\": [...]}` with at least one path", body = ErrorResponse),
        (status = 413, description = "the body is larger than the JSON limit", body = ErrorResponse)))]
async fn bulk_download(body: Result<Json<FilesDownloadRequest>, Rejection>) -> Result<Response, ApiError> {
    let items = bulk_paths(body)?.into_iter().map(bulk_item).collect();
    let mut res = Response::new(download::bulk_body(items, bulk_error_part));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/form-data; boundary={}", download::BULK_BOUNDARY))
            .expect("ascii"),
    );
    Ok(res)
}

// -------------------------------------------------------------------------------- uploads

/// One uploaded file in the bulk answer.
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq, Eq)]
pub struct FileResult {
    path: String,
    bytes: u64,
}

/// The bulk-upload answer; `errors` is present (and the status 400) when anything failed.
#[derive(Serialize, ToSchema, Debug, Default, PartialEq, Eq)]
pub struct UploadFilesResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<String>>,
    files: Vec<FileResult>,
}

/// The upload-v2 answer.
#[derive(Serialize, ToSchema, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    /// Last element of the path.
    name: String,
    /// The path exactly as given.
    path: String,
    /// Always `file`.
    r#type: String,
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// Uploads many files in one streamed `multipart/form-data` body: for each file a part
/// `files[i].path` (the destination, raw bytes) followed by a part `files[i].file` (the
/// content).
#[utoipa::path(post, path = "/files/bulk-upload", tag = "file-system",
    request_body(content_type = "multipart/form-data", description = "parts `files[i].path` then `files[i].file`"),
    responses((status = 200, body = UploadFilesResponse),
        (status = 400, description = "some files failed (the others are listed), or the body is not multipart", body = UploadFilesResponse)))]
async fn bulk_upload(headers: HeaderMap, body: Body) -> Response {
    let answer = match upload::bulk_upload(content_type(&headers), body).await {
        Some(outcome) => UploadFilesResponse {
            errors: (!outcome.errors.is_empty()).then_some(outcome.errors),
            files: outcome.files.into_iter().map(|f| FileResult { path: f.path, bytes: f.bytes }).collect(),
        },
        None => {
            UploadFilesResponse { errors: Some(vec!["invalid multipart form".into()]), files: Vec::new() }
        }
    };
    let status = if answer.errors.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    (status, Json(answer)).into_response()
}

/// Stores one uploaded file at the `path` parameter; the body is read to its end whatever
/// happens, so the answer never races a client still sending.
async fn single_upload(
    path: Result<FilePath, ApiError>,
    headers: &HeaderMap,
    body: Body,
    dir_mode: u32,
) -> Result<FilePath, ApiError> {
    let path = match path {
        Ok(path) => path,
        Err(e) => {
            upload::drain(body).await;
            return Err(e);
        }
    };
    let dest = as_given(&path);
    match upload::single(dest.clone(), &dest, content_type(headers), body, dir_mode).await {
        Ok(_) => Ok(path),
        Err(SingleError::Refused(why)) => Err(ApiError::bad_request(why)),
        Err(SingleError::CloseFailed(why)) => Err(ApiError::internal(why)),
    }
}

/// Uploads one file: multipart field `file`, or the raw request body for any other content type.
/// Missing parent directories are made (0755 before umask); an existing file is replaced.
#[utoipa::path(post, path = "/files/upload-v2", tag = "file-system",
    params(("path" = String, Query, description = "destination file; relative paths resolve against the work dir")),
    request_body(content_type = "application/octet-stream", description = "the file content, or multipart/form-data with field `file`"),
    responses((status = 200, body = UploadedFile),
        (status = 400, description = "missing or invalid `path`, no `file` field, or the file could not be written", body = ErrorResponse),
        (status = 500, description = "the file could not be closed", body = ErrorResponse)))]
async fn upload_v2(
    path: Result<FilePath, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<UploadedFile>, ApiError> {
    let path = single_upload(path, &headers, body, upload::DIR_MODE).await?;
    Ok(Json(UploadedFile {
        name: fspath::display(fspath::base(&path.raw)),
        path: path.shown(),
        r#type: "file".into(),
    }))
}

/// Legacy single-file upload, kept for old clients: like upload-v2 (parents made 0750), answers
/// `{}`.
#[utoipa::path(post, path = "/files/upload", tag = "file-system",
    params(("path" = String, Query, description = "destination file; relative paths resolve against the work dir")),
    request_body(content_type = "multipart/form-data", description = "field `file` (a raw body works too)"),
    responses((status = 200, description = "an empty JSON object"),
        (status = 400, description = "missing or invalid `path`, no `file` field, or the file could not be written", body = ErrorResponse),
        (status = 500, description = "the file could not be closed", body = ErrorResponse)))]
async fn upload_legacy(
    path: Result<FilePath, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    single_upload(path, &headers, body, upload::LEGACY_DIR_MODE).await?;
    Ok(Json(serde_json::json!({})))
}

// ---------------------------------------------------------------------------------- watch

/// The sub-protocol prefix browsers' SDKs offer; it is echoed back (spec §8.6).
const SDK_PROTOCOL_PREFIX: &str = "X-Daytona-SDK-Version~";

/// Go's `strconv.ParseBool` spellings; absent is `false`.
fn parse_bool(v: Option<&[u8]>) -> Option<bool> {
    match v {
        None | Some(b"") => Some(false),
        Some(b"1" | b"t" | b"T" | b"true" | b"TRUE" | b"True") => Some(true),
        Some(b"0" | b"f" | b"F" | b"false" | b"FALSE" | b"False") => Some(false),
        Some(_) => None,
    }
}

/// The offered sub-protocol to echo back, if any (spec §8.6).
fn select_protocol<'a>(mut offered: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    offered.find(|p| p.trim().starts_with(SDK_PROTOCOL_PREFIX)).map(str::trim)
}

fn watch_error(err: notify::Error, requested: &Path) -> ApiError {
    match err.kind {
        notify::ErrorKind::PathNotFound => os_error(&io::Error::from_raw_os_error(libc::ENOENT), requested),
        notify::ErrorKind::Io(e) => {
            match crate::exhaust::Exhausted::of(format_args!("{}: cannot watch", shown(requested)), &e) {
                Some(x) => x.into(),
                None => os_error(&e, requested),
            }
        }
        notify::ErrorKind::MaxFilesWatch => ApiError::bad_request(format!(
            "{}: the inotify watch limit (fs.inotify.max_user_watches) is reached; \
             watch a smaller tree or use recursive=false",
            shown(requested)
        )),
        other => ApiError::internal(format!("{}: cannot watch: {other:?}", shown(requested))),
    }
}

/// Streams changes under a file or directory over a WebSocket.
///
/// The path is checked and the watch installed before the upgrade, so a missing `path` is a
/// 400, a non-existent one 404 `FILE_NOT_FOUND` and an unreadable one 403 — plain HTTP answers;
/// a request that is not a WebSocket upgrade is a 400.
/// After `101 Switching Protocols` the server sends one JSON text frame per event (schema
/// `WatchEvent`):
///
/// * `created`, `modified`, `deleted`: the entry at `path`. Repeated `modified` of one path within
///   50 ms, or right after its `created`, are sent once; a `modified` followed within 50 ms by
///   `deleted` is dropped. Events of one path are never reordered; overall order is kept.
/// * `renamed`: a move inside the watched tree (`oldPath` → `path`). A move out of the tree is
///   `deleted`, a move into it `created`.
/// * `overflow`: changes were lost, either dropped by the daemon while the client read too slowly
///   (`dropped` = how many, sent once room returns) or lost by the kernel's queue (no `dropped`).
///   Re-list the tree if you need an exact view.
/// * `error`: the watch degraded (e.g. the inotify watch limit stopped a new directory being
///   watched); the stream goes on.
///
/// With `recursive=true`, directories created later are watched too; entries already inside a
/// new directory when its watch starts are reported as `created` (up to 10 000 per directory).
/// Symbolic links inside the tree are not followed. When the watched file or directory itself
/// is deleted or moved away, the server sends `deleted` for it and closes with code 1000.
/// Client pings are answered; the server sends no pings. A sub-protocol offered as
/// `X-Daytona-SDK-Version~…` is selected.
#[utoipa::path(get, path = "/files/watch", tag = "files",
    params(("path" = String, Query, description = "file or directory to watch; relative paths resolve against the work dir"),
        ("recursive" = Option<bool>, Query, description = "also watch everything below a directory, including directories created later; `true`/`false` (also `1`/`0`), default `false`")),
    responses(
        (status = 101, description = "WebSocket; then one JSON text frame per event", body = WatchEvent),
        (status = 400, description = "missing or invalid parameter, or not a WebSocket request", body = ErrorResponse),
        (status = 403, description = "the path cannot be watched: permission denied", body = ErrorResponse),
        (status = 404, description = "the path does not exist", body = ErrorResponse)))]
async fn watch_files(
    query: RawQuery,
    State(state): State<AppState>,
    ws: Result<Ws, Rejection>,
) -> Result<Response, ApiError> {
    let path = query.file_path("path", &state.work_dir, "path is required")?;
    let recursive = parse_bool(query.get("recursive"))
        .ok_or_else(|| ApiError::bad_request("recursive must be true or false"))?;
    let requested = as_given(&path);
    let root = state.work_dir.join(&requested);
    let meta = {
        let (root, requested) = (root.clone(), requested.clone());
        blocking(move || std::fs::metadata(&root).map_err(|e| os_error(&e, &requested))).await?
    };
    // Only now: a request for a missing path answers 404 whether or not it is an upgrade.
    let Ws(ws) = ws?;
    let session = blocking(move || {
        Session::start(&path.raw, root, meta.is_dir(), recursive).map_err(|e| watch_error(e, &requested))
    })
    .await?;
    let protocol =
        select_protocol(ws.requested_protocols().filter_map(|v| v.to_str().ok())).map(str::to_owned);
    let ws = match protocol {
        Some(p) => ws.protocols([p]),
        None => ws,
    };
    Ok(ws.on_upgrade(move |socket| session.run(socket)))
}

#[cfg(test)]
mod tests;
