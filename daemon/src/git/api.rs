//! The HTTP side of `/git`: handlers, DTOs, routes and their OpenAPI description, and the one
//! mapping of [`GitError`] to [`ApiError`]. Inputs come through the typed extractors; every
//! path (`path`, a local clone source, a config repository) goes through [`FilePath`], so a NUL
//! byte or an over-long name is refused before libgit2 sees it. Wire names follow the python
//! client (`commit_id`, `insecure_skip_tls`, `set_upstream` in bodies; camelCase in status
//! answers).

use std::path::PathBuf;

use crate::openapi::routes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use toolbox_envelope::Envelope;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use super::config::{self as gitconfig, ConfigEnv};
use super::creds::{Auth, Creds, StoredCred};
use super::error::{GitError, Kind};
use super::locks::run;
use super::url::{self as giturl, Location};
use super::{remote, repo};
use crate::client::is_strict_go_client as strict_go_client;
use crate::error::{ApiError, Code};
use crate::extract::{Json, required};
use crate::fspath::{self, FilePath, RawQuery};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(clone))
        .routes(routes!(status))
        .routes(routes!(add))
        .routes(routes!(commit))
        .routes(routes!(list_branches, create_branch, delete_branch))
        .routes(routes!(checkout))
        .routes(routes!(history))
        .routes(routes!(pull))
        .routes(routes!(push))
        .routes(routes!(init))
        .routes(routes!(get_config, set_config))
        .routes(routes!(configure_user))
        .routes(routes!(credentials))
        .routes(routes!(list_remotes, add_remote))
        .routes(routes!(reset))
        .routes(routes!(restore))
}

/// The status and code the clients expect for each kind of git failure. Git codes carry the
/// bare text; the generic ones keep the reference's prefixes ("not found: …").
impl From<GitError> for ApiError {
    fn from(e: GitError) -> Self {
        let typed = |status, code| ApiError::new(status, code, e.message.clone());
        match e.kind {
            Kind::BadRequest => ApiError::bad_request(&e.message),
            Kind::InvalidBody => ApiError::invalid_body(&e.message),
            Kind::InvalidPath => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::InvalidFilePath,
                format!("invalid file path: {}", e.message),
            ),
            Kind::AuthFailed => typed(StatusCode::UNAUTHORIZED, Code::GitAuthFailed),
            Kind::Forbidden => {
                ApiError::new(StatusCode::FORBIDDEN, Code::Forbidden, format!("forbidden: {}", e.message))
            }
            Kind::RepoNotFound => typed(StatusCode::NOT_FOUND, Code::GitRepoNotFound),
            Kind::BranchNotFound => typed(StatusCode::NOT_FOUND, Code::GitBranchNotFound),
            Kind::BranchExists => typed(StatusCode::CONFLICT, Code::GitBranchExists),
            Kind::PushRejected => typed(StatusCode::CONFLICT, Code::GitPushRejected),
            Kind::DirtyWorktree => typed(StatusCode::CONFLICT, Code::GitDirtyWorktree),
            Kind::MergeConflict => typed(StatusCode::CONFLICT, Code::GitMergeConflict),
            Kind::NotFound => ApiError::not_found(&e.message),
            Kind::Conflict => ApiError::conflict(&e.message),
            Kind::Transport => typed(StatusCode::BAD_GATEWAY, Code::GitTransportFailed),
            Kind::RemoteRejected => typed(StatusCode::UNPROCESSABLE_ENTITY, Code::GitRemoteRejected),
            Kind::Internal => ApiError::internal(&e.message),
        }
    }
}

/// Text fields reach libgit2 as C strings, which cannot hold a NUL byte; say which field has one
/// instead of letting git2 fail without naming it.
fn no_nul(fields: &[(&str, Option<&str>)]) -> Result<(), ApiError> {
    match fields.iter().find(|(_, v)| v.is_some_and(|v| v.contains('\0'))) {
        Some((name, _)) => Err(ApiError::bad_request(format!("{name} must not contain a NUL byte"))),
        None => Ok(()),
    }
}

/// File names inside the repository (`files` of add, reset, restore): the same checks as any
/// requested path.
fn check_files(files: &[String]) -> Result<(), ApiError> {
    files.iter().try_for_each(|f| fspath::check(f.as_bytes()))
}

/// The required `path` of a body: the repository, resolved against the daemon's work dir. Its
/// absolute form is also the lock key, so `a/../r` and `r` share one lock.
fn body_path(state: &AppState, value: &Option<String>) -> Result<FilePath, ApiError> {
    let raw = required("path", value)?;
    FilePath::parse_str(raw, &state.work_dir, "path is required")
}

/// An optional repository path (config scopes); empty means none.
fn optional_path(state: &AppState, value: Option<&str>) -> Result<Option<PathBuf>, ApiError> {
    value
        .filter(|p| !p.is_empty())
        .map(|p| FilePath::parse_str(p, &state.work_dir, "path is required").map(|f| f.abs))
        .transpose()
}

fn config_env(state: &AppState) -> ConfigEnv {
    ConfigEnv::from_child_env(&state.env)
}

/// Credentials of the request, plus the credential store when the global config names the
/// `store` helper (as `POST /git/credentials` sets it up).
fn auth_for(env: &ConfigEnv, username: Option<String>, password: Option<String>, insecure: bool) -> Auth {
    let store_configured = gitconfig::get(&env.global_file(), "credential.helper")
        .ok()
        .flatten()
        .is_some_and(|h| h.split_whitespace().next() == Some("store"));
    Auth {
        creds: Creds::from_request(username, password),
        store: store_configured.then(|| env.credential_store()),
        insecure_skip_tls: insecure,
    }
}

// ---------------------------------------------------------------------------------------------
// clone

#[derive(Deserialize, ToSchema)]
pub struct GitCloneRequest {
    /// `http(s)://`, `git://`, `file://`, or an existing local directory.
    #[schema(value_type = String)]
    url: Option<String>,
    /// Destination; relative to the daemon's work dir. Created if missing, must be empty.
    #[schema(value_type = String)]
    path: Option<String>,
    branch: Option<String>,
    commit_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    insecure_skip_tls: Option<bool>,
    /// Shallow clone of this many commits; 0 or absent clones the full history.
    #[schema(minimum = 0, maximum = 2147483647)]
    depth: Option<i64>,
}

/// Clones a repository (optionally one branch, one commit, shallow, with basic credentials).
#[utoipa::path(post, path = "/git/clone", tag = "git", request_body = GitCloneRequest,
    responses((status = 200, description = "Cloned"),
        (status = 400, description = "Missing field, unparsable URL, unsupported scheme, invalid path or branch name", body = Envelope),
        (status = 401, description = "The remote refused the credentials (GIT_AUTH_FAILED)", body = Envelope),
        (status = 403, description = "The remote or the file system forbids it", body = Envelope),
        (status = 404, description = "Remote repository, branch or commit not found", body = Envelope),
        (status = 409, description = "The destination is a repository or a non-empty directory", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope),
        (status = 502, description = "The remote could not be reached (GIT_TRANSPORT_FAILED)", body = Envelope)))]
async fn clone(
    State(state): State<AppState>,
    Json(req): Json<GitCloneRequest>,
) -> Result<StatusCode, ApiError> {
    let raw_url = required("url", &req.url)?;
    // The URL is judged before anything else happens: no directory is created and no
    // connection attempted for a location that cannot be one.
    let location = giturl::parse(raw_url)?;
    let url = match location {
        Location::Path => FilePath::parse_str(raw_url, &state.work_dir, "url is required")?
            .abs
            .into_os_string()
            .into_string()
            .map_err(|_| ApiError::bad_request("the resolved source path is not valid UTF-8"))?,
        _ => raw_url.to_string(),
    };
    let path = body_path(&state, &req.path)?.abs;
    no_nul(&[
        ("branch", req.branch.as_deref()),
        ("commit_id", req.commit_id.as_deref()),
        ("username", req.username.as_deref()),
        ("password", req.password.as_deref()),
    ])?;
    let depth = req.depth.unwrap_or(0);
    if depth < 0 {
        return Err(ApiError::invalid_body(format!("depth must be non-negative, got {depth}")));
    }
    // libgit2 takes the depth as a C int.
    let depth = u32::try_from(depth).ok().filter(|d| *d <= i32::MAX as u32).ok_or_else(|| {
        ApiError::invalid_body(format!("depth is too large: {depth} (at most {})", i32::MAX))
    })?;
    let env = config_env(&state);
    let key = path.clone();
    run(&key, move || {
        let auth = auth_for(&env, req.username, req.password, req.insecure_skip_tls.unwrap_or(false));
        let spec = remote::CloneSpec {
            url,
            location,
            path,
            branch: req.branch.filter(|b| !b.is_empty()),
            commit_id: req.commit_id,
            depth,
            auth,
        };
        remote::clone(&spec)
    })
    .await?;
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// status

#[derive(Serialize, ToSchema)]
pub struct FileStatus {
    name: String,
    extra: String,
    staging: String,
    worktree: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitStatus {
    current_branch: String,
    file_status: Vec<FileStatus>,
    branch_published: bool,
    ahead: usize,
    behind: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    detached: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
}

/// Branch, file statuses, and ahead/behind counts against the upstream.
#[utoipa::path(get, path = "/git/status", tag = "git",
    params(("path" = String, Query, description = "Repository work tree; relative to the daemon's work dir")),
    responses((status = 200, body = GitStatus),
        (status = 400, description = "Missing or invalid path (NUL byte, name too long, symbolic-link loop)", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository (GIT_REPO_NOT_FOUND)", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 500, body = Envelope)))]
async fn status(headers: HeaderMap, path: FilePath) -> Result<Json<GitStatus>, ApiError> {
    let strict = strict_go_client(&headers);
    let key = path.abs.clone();
    let s = run(&key, move || repo::status(&path.abs)).await?;
    Ok(Json(GitStatus {
        current_branch: s.current_branch,
        file_status: s
            .files
            .into_iter()
            .map(|f| FileStatus {
                name: f.name,
                extra: String::new(),
                staging: f.staging.into(),
                worktree: f.worktree.into(),
            })
            .collect(),
        branch_published: s.upstream.is_some(),
        ahead: s.ahead,
        behind: s.behind,
        // Old Go clients decode strictly and do not know these keys.
        detached: (s.detached && !strict).then_some(true),
        upstream: s.upstream.filter(|_| !strict),
    }))
}

// ---------------------------------------------------------------------------------------------
// add / commit

#[derive(Deserialize, ToSchema)]
pub struct GitAddRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    /// Files or directories to stage, relative to the repository root (`.` for everything).
    #[schema(value_type = Vec<String>)]
    files: Option<Vec<String>>,
}

/// Stages files or directories (relative to the repository root).
#[utoipa::path(post, path = "/git/add", tag = "git", request_body = GitAddRequest,
    responses((status = 200, description = "Staged"),
        (status = 400, description = "Missing field or invalid path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository, or a file matched nothing", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn add(State(state): State<AppState>, Json(req): Json<GitAddRequest>) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    let files = req.files.ok_or_else(|| ApiError::invalid_body("invalid request body: files is required"))?;
    check_files(&files)?;
    let key = path.clone();
    run(&key, move || repo::add(&path, &files)).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitCommitRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    #[schema(value_type = String)]
    message: Option<String>,
    #[schema(value_type = String)]
    author: Option<String>,
    #[schema(value_type = String)]
    email: Option<String>,
    allow_empty: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct GitCommitResponse {
    hash: String,
}

/// Commits the index; author and committer are the given person, now.
#[utoipa::path(post, path = "/git/commit", tag = "git", request_body = GitCommitRequest,
    responses((status = 200, body = GitCommitResponse),
        (status = 400, description = "Missing field, invalid path or author", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository", body = Envelope),
        (status = 409, description = "Nothing to commit, or unresolved conflicts", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn commit(
    State(state): State<AppState>,
    Json(req): Json<GitCommitRequest>,
) -> Result<Json<GitCommitResponse>, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    let message = required("message", &req.message)?.to_string();
    let author = required("author", &req.author)?.to_string();
    let email = required("email", &req.email)?.to_string();
    no_nul(&[("message", Some(&message)), ("author", Some(&author)), ("email", Some(&email))])?;
    let allow_empty = req.allow_empty.unwrap_or(false);
    let key = path.clone();
    let oid = run(&key, move || repo::commit(&path, &message, &author, &email, allow_empty)).await?;
    Ok(Json(GitCommitResponse { hash: oid.to_string() }))
}

// ---------------------------------------------------------------------------------------------
// branches / checkout / history

#[derive(Serialize, ToSchema)]
pub struct ListBranchResponse {
    branches: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<String>,
}

/// Local branches and the one HEAD names.
#[utoipa::path(get, path = "/git/branches", tag = "git",
    params(("path" = String, Query, description = "Repository work tree; relative to the daemon's work dir")),
    responses((status = 200, body = ListBranchResponse),
        (status = 400, description = "Missing or invalid path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository (GIT_REPO_NOT_FOUND)", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 500, body = Envelope)))]
async fn list_branches(headers: HeaderMap, path: FilePath) -> Result<Json<ListBranchResponse>, ApiError> {
    let strict = strict_go_client(&headers);
    let key = path.abs.clone();
    let b = run(&key, move || repo::branches(&path.abs)).await?;
    Ok(Json(ListBranchResponse { branches: b.names, current: b.current.filter(|_| !strict) }))
}

#[derive(Deserialize, ToSchema)]
pub struct GitBranchRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    #[schema(value_type = String)]
    name: Option<String>,
}

/// Creates a branch at HEAD and checks it out.
#[utoipa::path(post, path = "/git/branches", tag = "git", request_body = GitBranchRequest,
    responses((status = 201, description = "Created"),
        (status = 400, description = "Missing field, invalid path or branch name", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository, or HEAD is detached without commits", body = Envelope),
        (status = 409, description = "The branch exists (GIT_BRANCH_EXISTS)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn create_branch(
    State(state): State<AppState>,
    Json(req): Json<GitBranchRequest>,
) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    let name = required("name", &req.name)?.to_string();
    let key = path.clone();
    run(&key, move || repo::create_branch(&path, &name)).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize, ToSchema)]
pub struct GitDeleteBranchRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    #[schema(value_type = String)]
    name: Option<String>,
}

/// Deletes a local branch (not the checked-out one); a missing branch is success.
#[utoipa::path(delete, path = "/git/branches", tag = "git", request_body = GitDeleteBranchRequest,
    responses((status = 204, description = "Deleted (or never existed)"),
        (status = 400, description = "Missing field, invalid path or branch name", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository", body = Envelope),
        (status = 409, description = "The branch is checked out", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn delete_branch(
    State(state): State<AppState>,
    Json(req): Json<GitDeleteBranchRequest>,
) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    let name = required("name", &req.name)?.to_string();
    let key = path.clone();
    run(&key, move || repo::delete_branch(&path, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct GitCheckoutRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    /// A branch, or a commit as 4-64 hex characters.
    #[schema(value_type = String)]
    branch: Option<String>,
}

/// Checks out a branch (or a commit given as 4–64 hex characters).
#[utoipa::path(post, path = "/git/checkout", tag = "git", request_body = GitCheckoutRequest,
    responses((status = 200, description = "Checked out"),
        (status = 400, description = "Missing field or invalid path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository, or no such branch (GIT_BRANCH_NOT_FOUND)", body = Envelope),
        (status = 409, description = "Local changes would be overwritten (GIT_DIRTY_WORKTREE)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn checkout(
    State(state): State<AppState>,
    Json(req): Json<GitCheckoutRequest>,
) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    let branch = required("branch", &req.branch)?.to_string();
    no_nul(&[("branch", Some(&branch))])?;
    let key = path.clone();
    run(&key, move || repo::checkout(&path, &branch)).await?;
    Ok(StatusCode::OK)
}

#[derive(Serialize, ToSchema)]
pub struct GitCommitInfo {
    hash: String,
    author: String,
    email: String,
    message: String,
    timestamp: String,
}

/// Commits reachable from HEAD, newest first.
#[utoipa::path(get, path = "/git/history", tag = "git",
    params(("path" = String, Query, description = "Repository work tree; relative to the daemon's work dir")),
    responses((status = 200, body = [GitCommitInfo]),
        (status = 400, description = "Missing or invalid path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository (GIT_REPO_NOT_FOUND)", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 500, body = Envelope)))]
async fn history(path: FilePath) -> Result<Json<Vec<GitCommitInfo>>, ApiError> {
    let key = path.abs.clone();
    let commits = run(&key, move || repo::history(&path.abs)).await?;
    Ok(Json(
        commits
            .into_iter()
            .map(|c| GitCommitInfo {
                timestamp: repo::format_git_time(c.time, c.offset_minutes),
                hash: c.hash,
                author: c.author,
                email: c.email,
                message: c.message,
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// pull / push

#[derive(Deserialize, ToSchema)]
pub struct GitPullRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    username: Option<String>,
    password: Option<String>,
    remote: Option<String>,
    branch: Option<String>,
}

/// Fetches and fast-forwards the current branch.
#[utoipa::path(post, path = "/git/pull", tag = "git", request_body = GitPullRequest,
    responses((status = 200, description = "Up to date"),
        (status = 400, description = "Missing field, invalid path, remote or branch name", body = Envelope),
        (status = 401, description = "The remote refused the credentials (GIT_AUTH_FAILED)", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository; remote or branch not found", body = Envelope),
        (status = 409, description = "Diverged (GIT_MERGE_CONFLICT) or local changes in the way (GIT_DIRTY_WORKTREE)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope),
        (status = 502, description = "The remote could not be reached (GIT_TRANSPORT_FAILED)", body = Envelope)))]
async fn pull(
    State(state): State<AppState>,
    Json(req): Json<GitPullRequest>,
) -> Result<StatusCode, ApiError> {
    let GitPullRequest { path, username, password, remote: name, branch } = req;
    let who = Remote { path, username, password, remote: name, branch };
    with_remote(&state, who, |path, name, branch, auth| {
        remote::pull(path, &remote::PullSpec { remote: name, branch, auth })
    })
    .await?;
    Ok(StatusCode::OK)
}

/// What pull and push share: the repository, the credentials, the remote and the branch.
struct Remote {
    path: Option<String>,
    username: Option<String>,
    password: Option<String>,
    remote: Option<String>,
    branch: Option<String>,
}

/// Checks the shared fields (a path, no NUL byte in the others) and runs `op` under the
/// repository's lock with the request's credentials.
async fn with_remote<T: Send + 'static>(
    state: &AppState,
    r: Remote,
    op: impl FnOnce(&std::path::Path, Option<String>, Option<String>, Auth) -> Result<T, GitError>
    + Send
    + 'static,
) -> Result<T, ApiError> {
    let path = body_path(state, &r.path)?.abs;
    no_nul(&[
        ("username", r.username.as_deref()),
        ("password", r.password.as_deref()),
        ("remote", r.remote.as_deref()),
        ("branch", r.branch.as_deref()),
    ])?;
    let env = config_env(state);
    let key = path.clone();
    Ok(run(&key, move || op(&path, r.remote, r.branch, auth_for(&env, r.username, r.password, false)))
        .await?)
}

#[derive(Deserialize, ToSchema)]
pub struct GitPushRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    username: Option<String>,
    password: Option<String>,
    remote: Option<String>,
    branch: Option<String>,
    set_upstream: Option<bool>,
}

/// Pushes a branch to the same name on the remote (no force).
#[utoipa::path(post, path = "/git/push", tag = "git", request_body = GitPushRequest,
    responses((status = 200, description = "Pushed (or up to date)"),
        (status = 400, description = "Missing field, invalid path, remote or branch name", body = Envelope),
        (status = 401, description = "The remote refused the credentials (GIT_AUTH_FAILED)", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository; remote or branch not found; HEAD detached", body = Envelope),
        (status = 409, description = "Not a fast-forward (GIT_PUSH_REJECTED)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 422, description = "The remote refused the update (GIT_REMOTE_REJECTED)", body = Envelope),
        (status = 500, body = Envelope),
        (status = 502, description = "The remote could not be reached (GIT_TRANSPORT_FAILED)", body = Envelope)))]
async fn push(
    State(state): State<AppState>,
    Json(req): Json<GitPushRequest>,
) -> Result<StatusCode, ApiError> {
    let GitPushRequest { path, username, password, remote: name, branch, set_upstream } = req;
    let who = Remote { path, username, password, remote: name, branch };
    with_remote(&state, who, move |path, name, branch, auth| {
        let set_upstream = set_upstream.unwrap_or(false);
        remote::push(path, &remote::PushSpec { remote: name, branch, set_upstream, auth })
    })
    .await?;
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// init / remotes

#[derive(Deserialize, ToSchema)]
pub struct GitInitRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    bare: Option<bool>,
    initial_branch: Option<String>,
}

/// Creates a repository (bare on request).
#[utoipa::path(post, path = "/git/init", tag = "git", request_body = GitInitRequest,
    responses((status = 201, description = "Created"),
        (status = 400, description = "Missing field, invalid path or branch name", body = Envelope),
        (status = 403, body = Envelope),
        (status = 409, description = "A repository (or a file) is already there", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn init(
    State(state): State<AppState>,
    Json(req): Json<GitInitRequest>,
) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    no_nul(&[("initial_branch", req.initial_branch.as_deref())])?;
    let key = path.clone();
    run(&key, move || repo::init(&path, req.bare.unwrap_or(false), req.initial_branch.as_deref())).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Serialize, ToSchema)]
pub struct GitRemote {
    name: String,
    url: String,
}

#[derive(Serialize, ToSchema)]
pub struct ListRemotesResponse {
    remotes: Vec<GitRemote>,
}

/// Remotes by name with their URL (passwords in URLs removed).
#[utoipa::path(get, path = "/git/remotes", tag = "git",
    params(("path" = String, Query, description = "Repository work tree; relative to the daemon's work dir")),
    responses((status = 200, body = ListRemotesResponse),
        (status = 400, description = "Missing or invalid path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository (GIT_REPO_NOT_FOUND)", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 500, body = Envelope)))]
async fn list_remotes(path: FilePath) -> Result<Json<ListRemotesResponse>, ApiError> {
    let key = path.abs.clone();
    let list = run(&key, move || repo::remotes(&path.abs)).await?;
    Ok(Json(ListRemotesResponse {
        remotes: list.into_iter().map(|r| GitRemote { name: r.name, url: r.url }).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct GitAddRemoteRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    #[schema(value_type = String)]
    name: Option<String>,
    #[schema(value_type = String)]
    url: Option<String>,
    fetch: Option<bool>,
    overwrite: Option<bool>,
}

/// Adds a remote, optionally replacing a same-named one and fetching it.
#[utoipa::path(post, path = "/git/remotes", tag = "git", request_body = GitAddRemoteRequest,
    responses((status = 201, description = "Added"),
        (status = 400, description = "Missing field, invalid path, remote name or URL", body = Envelope),
        (status = 401, description = "The fetch was refused (GIT_AUTH_FAILED)", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository; the fetched remote was not found", body = Envelope),
        (status = 409, description = "A remote of that name exists", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope),
        (status = 502, description = "The fetch could not reach the remote (GIT_TRANSPORT_FAILED)", body = Envelope)))]
async fn add_remote(
    State(state): State<AppState>,
    Json(req): Json<GitAddRemoteRequest>,
) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    let name = required("name", &req.name)?.to_string();
    let url = required("url", &req.url)?.to_string();
    no_nul(&[("name", Some(&name))])?;
    // A remote URL is stored as given (a relative path is the repository's business), but it
    // must be one git could ever use.
    giturl::parse(&url)?;
    let env = config_env(&state);
    let key = path.clone();
    run(&key, move || {
        let r = repo::open(&path)?;
        repo::add_remote(&r, &name, &url, req.overwrite.unwrap_or(false))?;
        if req.fetch.unwrap_or(false) {
            remote::fetch_remote(&r, &name, &auth_for(&env, None, None, false))?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::CREATED)
}

// ---------------------------------------------------------------------------------------------
// config / credentials

#[derive(Serialize, ToSchema)]
pub struct GitConfigResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

/// The config file of a scope (and repository, for `local`); also the lock key.
fn config_file(state: &AppState, scope: Option<&str>, repo: Option<PathBuf>) -> Result<PathBuf, ApiError> {
    Ok(gitconfig::scope_file(&config_env(state), scope, repo.as_deref())?)
}

/// One config value at a scope; `{}` when unset.
#[utoipa::path(get, path = "/git/config", tag = "git",
    params(("key" = String, Query, description = "section.name or section.subsection.name"),
        ("scope" = Option<String>, Query, description = "global (default), local or system"),
        ("path" = Option<String>, Query, description = "Repository, required when scope is local")),
    responses((status = 200, body = GitConfigResponse),
        (status = 400, description = "Missing or invalid key, scope or path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "scope=local and path is not a repository", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 500, body = Envelope)))]
async fn get_config(
    State(state): State<AppState>,
    query: RawQuery,
) -> Result<Json<GitConfigResponse>, ApiError> {
    let key = query.text("key").ok_or_else(|| ApiError::bad_request("key is required"))?;
    let scope = query.text("scope");
    // The repository path keeps its bytes: it need not be UTF-8.
    let repo = match query.get("path").filter(|p| !p.is_empty()) {
        Some(raw) => Some(FilePath::parse(raw, &state.work_dir, "path is required")?.abs),
        None => None,
    };
    let file = config_file(&state, scope.as_deref(), repo)?;
    let lock = file.clone();
    let value = run(&lock, move || gitconfig::get(&file, &key)).await?;
    Ok(Json(GitConfigResponse { value }))
}

#[derive(Deserialize, ToSchema)]
pub struct GitSetConfigRequest {
    #[schema(value_type = String)]
    key: Option<String>,
    #[schema(value_type = String)]
    value: Option<String>,
    /// global (default), local or system.
    scope: Option<String>,
    /// Repository, required when scope is local.
    path: Option<String>,
}

/// Sets one config value at a scope.
#[utoipa::path(post, path = "/git/config", tag = "git", request_body = GitSetConfigRequest,
    responses((status = 200, description = "Set"),
        (status = 400, description = "Missing or invalid key, value, scope or path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "scope=local and path is not a repository", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn set_config(
    State(state): State<AppState>,
    Json(req): Json<GitSetConfigRequest>,
) -> Result<StatusCode, ApiError> {
    let key = required("key", &req.key)?.to_string();
    let value = required("value", &req.value)?.to_string();
    no_nul(&[("key", Some(&key)), ("value", Some(&value)), ("scope", req.scope.as_deref())])?;
    let repo = optional_path(&state, req.path.as_deref())?;
    let file = config_file(&state, req.scope.as_deref(), repo)?;
    let lock = file.clone();
    run(&lock, move || gitconfig::set(&file, &key, &value)).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitConfigureUserRequest {
    #[schema(value_type = String)]
    name: Option<String>,
    #[schema(value_type = String)]
    email: Option<String>,
    /// global (default), local or system.
    scope: Option<String>,
    /// Repository, required when scope is local.
    path: Option<String>,
}

/// Sets `user.name` and `user.email` at a scope.
#[utoipa::path(post, path = "/git/config/user", tag = "git", request_body = GitConfigureUserRequest,
    responses((status = 200, description = "Set"),
        (status = 400, description = "Missing field, invalid scope or path", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "scope=local and path is not a repository", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn configure_user(
    State(state): State<AppState>,
    Json(req): Json<GitConfigureUserRequest>,
) -> Result<StatusCode, ApiError> {
    let name = required("name", &req.name)?.to_string();
    let email = required("email", &req.email)?.to_string();
    no_nul(&[("name", Some(&name)), ("email", Some(&email)), ("scope", req.scope.as_deref())])?;
    let repo = optional_path(&state, req.path.as_deref())?;
    let file = config_file(&state, req.scope.as_deref(), repo)?;
    let lock = file.clone();
    run(&lock, move || {
        gitconfig::set(&file, "user.name", &name)?;
        gitconfig::set(&file, "user.email", &email)
    })
    .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitAuthenticateRequest {
    #[schema(value_type = String)]
    username: Option<String>,
    #[schema(value_type = String)]
    password: Option<String>,
    /// Defaults to github.com.
    host: Option<String>,
    /// Defaults to https.
    protocol: Option<String>,
}

/// Stores credentials for a host with git's `store` helper (plain text, `~/.git-credentials`,
/// mode 0600) and enables that helper globally.
#[utoipa::path(post, path = "/git/credentials", tag = "git", request_body = GitAuthenticateRequest,
    responses((status = 200, description = "Stored"),
        (status = 400, description = "Missing field, or a line break or NUL in one", body = Envelope),
        (status = 403, body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn credentials(
    State(state): State<AppState>,
    Json(req): Json<GitAuthenticateRequest>,
) -> Result<StatusCode, ApiError> {
    let username = required("username", &req.username)?.to_string();
    let password = required("password", &req.password)?.to_string();
    let host = req.host.filter(|h| !h.is_empty()).unwrap_or_else(|| "github.com".into());
    let protocol = req.protocol.filter(|p| !p.is_empty()).unwrap_or_else(|| "https".into());
    if [&username, &password, &host, &protocol].iter().any(|f| f.contains(['\n', '\r', '\0'])) {
        return Err(ApiError::bad_request("credential fields must not contain newline or NUL characters"));
    }
    let env = config_env(&state);
    let store = env.credential_store();
    // Keyed by the global config, which `/git/config` and `/git/config/user` write too; the
    // store is written only here, so the same lock covers it.
    let global = env.global_file();
    let lock = global.clone();
    run(&lock, move || {
        gitconfig::set(&global, "credential.helper", "store")?;
        let cred = StoredCred { protocol, host, username, password };
        super::creds::store_credential(&store, &cred).map_err(|e| GitError::io(&e, &store))
    })
    .await?;
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// reset / restore

#[derive(Deserialize, ToSchema)]
pub struct GitResetRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    /// soft, mixed (default), hard, merge or keep.
    mode: Option<String>,
    /// The revision to reset to (defaults to HEAD).
    target: Option<String>,
    /// Limits the reset to these paths (mixed only).
    files: Option<Vec<String>>,
}

/// `git reset [--soft|--mixed|--hard|--merge|--keep] [target] [-- files]`.
#[utoipa::path(post, path = "/git/reset", tag = "git", request_body = GitResetRequest,
    responses((status = 200, description = "Reset"),
        (status = 400, description = "Missing field, invalid path or mode", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository, or no such revision", body = Envelope),
        (status = 409, description = "keep/merge: local changes in the way (GIT_DIRTY_WORKTREE)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn reset(
    State(state): State<AppState>,
    Json(req): Json<GitResetRequest>,
) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    no_nul(&[("mode", req.mode.as_deref()), ("target", req.target.as_deref())])?;
    let files = req.files.unwrap_or_default();
    check_files(&files)?;
    let key = path.clone();
    run(&key, move || repo::reset(&path, req.mode.as_deref(), req.target.as_deref(), &files)).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitRestoreRequest {
    #[schema(value_type = String)]
    path: Option<String>,
    #[schema(value_type = Vec<String>)]
    files: Option<Vec<String>>,
    /// Restore the index (default false).
    staged: Option<bool>,
    /// Restore the work tree (default: true unless only staged is set).
    worktree: Option<bool>,
    /// Restore from this revision instead of the index.
    source: Option<String>,
}

/// `git restore [--staged] [--worktree] [--source=rev] -- files`.
#[utoipa::path(post, path = "/git/restore", tag = "git", request_body = GitRestoreRequest,
    responses((status = 200, description = "Restored"),
        (status = 400, description = "Missing field, invalid path, nothing to restore", body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, description = "Not a repository; revision or path not found", body = Envelope),
        (status = 409, description = "A git configuration file cannot be read, or another git process holds its lock (CONFLICT)", body = Envelope),
        (status = 413, description = "Body too large", body = Envelope),
        (status = 500, body = Envelope)))]
async fn restore(
    State(state): State<AppState>,
    Json(req): Json<GitRestoreRequest>,
) -> Result<StatusCode, ApiError> {
    let path = body_path(&state, &req.path)?.abs;
    let files = req.files.ok_or_else(|| ApiError::invalid_body("invalid request body: files is required"))?;
    check_files(&files)?;
    no_nul(&[("source", req.source.as_deref())])?;
    let key = path.clone();
    run(&key, move || repo::restore(&path, &files, req.staged, req.worktree, req.source.as_deref())).await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    /// The `/git` routes alone, over a throw-away work dir, behind the envelope layer as the
    /// server mounts them.
    struct Fixture {
        dir: tempfile::TempDir,
        app: Router,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("home");
            std::fs::create_dir(&home).unwrap();
            let vars = HashMap::from([("DAYTONA_SANDBOX_ID".to_string(), "t".to_string())]);
            let cfg = crate::config::from_env(&vars).unwrap();
            // No test may reach the machine's own config files.
            let env = crate::env::ChildEnv::new([
                ("HOME".into(), home.clone().into_os_string()),
                ("GIT_CONFIG_SYSTEM".into(), home.join("system-gitconfig").into_os_string()),
            ]);
            let state = AppState::new(cfg, env, dir.path().to_path_buf());
            let (router, _) = routes().split_for_parts();
            let app = router.with_state(state).layer(axum::middleware::from_fn(crate::error::envelope_layer));
            Fixture { dir, app }
        }

        fn path(&self, rel: &str) -> String {
            self.dir.path().join(rel).to_str().unwrap().to_string()
        }

        /// A repository with one commit on `main`.
        fn repo(&self, rel: &str) -> String {
            let path = self.dir.path().join(rel);
            let mut opts = git2::RepositoryInitOptions::new();
            opts.initial_head("main");
            let repo = git2::Repository::init_opts(&path, &opts).unwrap();
            std::fs::write(path.join("f.txt"), "x\n").unwrap();
            let mut index = repo.index().unwrap();
            index.add_path(Path::new("f.txt")).unwrap();
            let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
            let sig = git2::Signature::now("T", "t@x").unwrap();
            repo.commit(Some("HEAD"), &sig, &sig, "first", &tree, &[]).unwrap();
            path.to_str().unwrap().to_string()
        }

        async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
            let res = self.app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            let value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
            };
            (status, value)
        }

        async fn get(&self, uri: &str) -> (StatusCode, Value) {
            self.send(Request::get(uri).body(Body::empty()).unwrap()).await
        }

        async fn json(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            self.send(req).await
        }
    }

    /// Percent-encodes a path for a query string.
    fn q(path: &str) -> String {
        path.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// Asserts an error envelope with this status and code whose message mentions `needle`.
    #[track_caller]
    fn expect(got: &(StatusCode, Value), status: StatusCode, code: &str, needle: &str) {
        let (s, v) = got;
        assert_eq!(*s, status, "{v}");
        assert_eq!(v["code"], code, "{v}");
        assert_eq!(v["statusCode"], status.as_u16(), "{v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }

    const GETS: [&str; 4] = ["/git/status", "/git/branches", "/git/history", "/git/remotes"];

    /// Every route taking a repository in its body, with its other required fields filled.
    fn posts(path: &str) -> Vec<(Method, &'static str, Value)> {
        vec![
            (Method::POST, "/git/clone", json!({"url": "https://example.invalid/r.git", "path": path})),
            (Method::POST, "/git/add", json!({"path": path, "files": ["."]})),
            (
                Method::POST,
                "/git/commit",
                json!({"path": path, "message": "m", "author": "A", "email": "a@x"}),
            ),
            (Method::POST, "/git/branches", json!({"path": path, "name": "b"})),
            (Method::DELETE, "/git/branches", json!({"path": path, "name": "b"})),
            (Method::POST, "/git/checkout", json!({"path": path, "branch": "main"})),
            (Method::POST, "/git/pull", json!({"path": path})),
            (Method::POST, "/git/push", json!({"path": path})),
            (Method::POST, "/git/init", json!({"path": path})),
            (
                Method::POST,
                "/git/remotes",
                json!({"path": path, "name": "o", "url": "https://example.invalid/r"}),
            ),
            (Method::POST, "/git/reset", json!({"path": path})),
            (Method::POST, "/git/restore", json!({"path": path, "files": ["f.txt"]})),
            (
                Method::POST,
                "/git/config",
                json!({"key": "a.b", "value": "v", "scope": "local", "path": path}),
            ),
            (
                Method::POST,
                "/git/config/user",
                json!({"name": "n", "email": "e", "scope": "local", "path": path}),
            ),
        ]
    }

    #[tokio::test]
    async fn bad_query_paths_are_400_on_every_get() {
        let f = Fixture::new();
        let long = "a".repeat(300);
        for route in GETS {
            let got = f.get(&format!("{route}?path=/tmp%00x")).await;
            expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", "NUL byte");
            let got = f.get(&format!("{route}?path=/tmp/{long}")).await;
            expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", "longer than 255 bytes");
            expect(&f.get(route).await, StatusCode::BAD_REQUEST, "BAD_REQUEST", "path is required");
            let got = f.get(&format!("{route}?path=a&path=b")).await;
            expect(&got, StatusCode::BAD_REQUEST, "BAD_REQUEST", "duplicate parameter");
        }
        let got = f.get("/git/config?key=a.b&scope=local&path=/tmp%00x").await;
        expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", "NUL byte");
    }

    #[tokio::test]
    async fn bad_body_paths_are_400_on_every_post() {
        let f = Fixture::new();
        let long = format!("/tmp/{}", "a".repeat(300));
        for path in ["/tmp/x\u{0}y", long.as_str()] {
            for (method, route, body) in posts(path) {
                let got = f.json(method.clone(), route, body).await;
                expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", "invalid file path");
            }
        }
    }

    #[tokio::test]
    async fn a_symlink_loop_is_400_everywhere() {
        let f = Fixture::new();
        let looped = f.path("loop");
        std::os::unix::fs::symlink("loop", &looped).unwrap();
        for route in GETS {
            for path in [looped.as_str(), "loop"] {
                let got = f.get(&format!("{route}?path={}", q(path))).await;
                expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", &looped);
            }
        }
        for path in [looped.clone(), format!("{looped}/sub")] {
            for (method, route, body) in posts(&path) {
                let got = f.json(method.clone(), route, body).await;
                expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", &looped);
            }
        }
        let got = f.get(&format!("/git/config?key=a.b&scope=local&path={}", q(&looped))).await;
        expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", &looped);
        // A failed clone cleans up after itself, but never removes what was there before.
        assert!(std::fs::symlink_metadata(&looped).unwrap().file_type().is_symlink());
    }

    #[tokio::test]
    async fn a_name_too_long_for_the_file_system_is_400() {
        // Each name passes the request checks; the whole is longer than the kernel takes.
        let f = Fixture::new();
        let deep: String = (0..20).map(|_| format!("/{}", "d".repeat(250))).collect();
        let path = format!("{}{deep}", f.path("x"));
        let got = f.json(Method::POST, "/git/init", json!({"path": path})).await;
        expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", "invalid file path");
        let got =
            f.get(&format!("/git/status?path={}", q(&format!("{}{}", f.path(""), &deep[..3000])))).await;
        assert_eq!(got.0, StatusCode::NOT_FOUND, "short enough, and missing: {}", got.1);
    }

    #[tokio::test]
    async fn a_missing_repository_stays_404_git_repo_not_found() {
        let f = Fixture::new();
        std::fs::write(f.path("file"), "x").unwrap();
        std::fs::create_dir(f.path("plain")).unwrap();
        for path in [f.path("missing"), f.path("plain"), f.path("file"), f.path("file/x")] {
            for route in GETS {
                let got = f.get(&format!("{route}?path={}", q(&path))).await;
                expect(&got, StatusCode::NOT_FOUND, "GIT_REPO_NOT_FOUND", &path);
            }
            for (method, route, body) in posts(&path) {
                if matches!(route, "/git/clone" | "/git/init") {
                    continue;
                }
                let got = f.json(method.clone(), route, body).await;
                expect(&got, StatusCode::NOT_FOUND, "GIT_REPO_NOT_FOUND", "");
            }
        }
    }

    #[tokio::test]
    async fn init_on_a_file_or_through_one() {
        let f = Fixture::new();
        std::fs::write(f.path("file"), "x").unwrap();
        let got = f.json(Method::POST, "/git/init", json!({"path": f.path("file")})).await;
        expect(&got, StatusCode::CONFLICT, "CONFLICT", "a file exists there");
        let got = f.json(Method::POST, "/git/init", json!({"path": f.path("file/sub")})).await;
        expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", "not a directory");
        let got =
            f.json(Method::POST, "/git/init", json!({"path": "new/repo", "initial_branch": "trunk"})).await;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
        assert!(f.dir.path().join("new/repo/.git").is_dir(), "relative to the work dir");
    }

    #[tokio::test]
    async fn unparsable_clone_urls_are_400_before_any_attempt() {
        let f = Fixture::new();
        for (url, why) in [
            ("5·^\r?", "control character U+000D"),
            ("5·^?", "no directory exists there"),
            ("https://h/a b", "whitespace"),
            ("ftp://example.com/r.git", "unsupported scheme"),
            ("http://", "the host is missing"),
            ("http://[::1/r", "IPv6"),
            ("http://example.com:99999/r", "not a port number"),
            ("git@example.com:r.git", "SSH remotes are not supported"),
            ("ssh://example.com/r.git", "SSH remotes are not supported"),
        ] {
            let dest = f.path("dest");
            let got = f.json(Method::POST, "/git/clone", json!({"url": url, "path": dest})).await;
            expect(&got, StatusCode::BAD_REQUEST, "BAD_REQUEST", why);
            assert!(!Path::new(&dest).exists(), "{url:?}: nothing is created");
        }
        let got = f.json(Method::POST, "/git/clone", json!({"path": f.path("d")})).await;
        expect(&got, StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY", "url is required");
        for (depth, why) in [(-1i64, "non-negative"), (1 << 31, "too large"), (1 << 40, "too large")] {
            let body = json!({"url": "https://example.invalid/r", "path": "d", "depth": depth});
            let got = f.json(Method::POST, "/git/clone", body).await;
            expect(&got, StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY", why);
        }
        let got = f.json(Method::POST, "/git/clone", json!({"url": "https://h/r"})).await;
        expect(&got, StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY", "path is required");
    }

    #[tokio::test]
    async fn clone_from_local_paths_and_file_urls() {
        let f = Fixture::new();
        let src = f.repo("src");
        for (url, dest) in [("src", "a"), (src.as_str(), "b"), (&format!("file://{src}"), "c")] {
            let got = f.json(Method::POST, "/git/clone", json!({"url": url, "path": dest})).await;
            assert_eq!(got.0, StatusCode::OK, "{url}: {}", got.1);
            assert!(f.dir.path().join(dest).join("f.txt").exists(), "{url}");
        }
        // A missing file:// repository stays "not found", as the SDK tests expect.
        let got = f
            .json(
                Method::POST,
                "/git/clone",
                json!({"url": format!("file://{}", f.path("none")), "path": "d"}),
            )
            .await;
        expect(&got, StatusCode::NOT_FOUND, "GIT_REPO_NOT_FOUND", "");
        // A local source that is a file, not a directory.
        let got =
            f.json(Method::POST, "/git/clone", json!({"url": format!("{src}/f.txt"), "path": "e"})).await;
        expect(&got, StatusCode::BAD_REQUEST, "BAD_REQUEST", "names a file");
    }

    #[tokio::test]
    async fn nul_bytes_and_invalid_names_in_other_fields_are_400() {
        let f = Fixture::new();
        let repo = f.repo("r");
        let cases = [
            ("/git/branches", json!({"path": repo, "name": "a\u{0}b"}), "invalid branch name"),
            ("/git/checkout", json!({"path": repo, "branch": "a\u{0}b"}), "branch must not contain a NUL"),
            ("/git/remotes", json!({"path": repo, "name": "a\u{0}b", "url": "https://h/r"}), "name must not"),
            (
                "/git/remotes",
                json!({"path": repo, "name": "o", "url": "https://h/a\u{0}b"}),
                "control character",
            ),
            (
                "/git/remotes",
                json!({"path": repo, "name": "a..b", "url": "https://h/r"}),
                "invalid remote name",
            ),
            (
                "/git/commit",
                json!({"path": repo, "message": "a\u{0}b", "author": "A", "email": "e"}),
                "message",
            ),
            ("/git/config", json!({"key": "a.b", "value": "a\u{0}b"}), "value must not contain a NUL"),
            ("/git/config", json!({"key": "a.x\u{0}y.b", "value": "v"}), "key must not contain a NUL"),
            ("/git/config", json!({"key": "a.x\ny.b", "value": "v"}), "line break"),
            ("/git/reset", json!({"path": repo, "target": "a\u{0}b"}), "target must not"),
            (
                "/git/restore",
                json!({"path": repo, "files": ["f.txt"], "source": "a\u{0}"}),
                "source must not",
            ),
            ("/git/pull", json!({"path": repo, "remote": "a\u{0}b"}), "remote must not"),
            ("/git/pull", json!({"path": repo, "branch": "a..b"}), "invalid branch name"),
            ("/git/push", json!({"path": repo, "remote": "x y"}), "invalid remote name"),
            ("/git/push", json!({"path": repo, "branch": "a b"}), "invalid branch name"),
            ("/git/init", json!({"path": f.path("n"), "initial_branch": "a\u{0}b"}), "initial_branch must"),
            ("/git/clone", json!({"url": repo, "path": "c", "branch": "a\u{0}b"}), "branch must not"),
            ("/git/credentials", json!({"username": "u\u{0}", "password": "p"}), "newline or NUL"),
        ];
        for (route, body, needle) in cases {
            let got = f.json(Method::POST, route, body.clone()).await;
            expect(&got, StatusCode::BAD_REQUEST, "BAD_REQUEST", needle);
        }
        for files in [json!(["a\u{0}b"]), json!([format!("d/{}", "n".repeat(300))])] {
            for route in ["/git/add", "/git/restore", "/git/reset"] {
                let got = f.json(Method::POST, route, json!({"path": repo, "files": files})).await;
                expect(&got, StatusCode::BAD_REQUEST, "INVALID_FILE_PATH", "invalid file path");
            }
        }
        let got = f.get(&format!("/git/config?key=a.x%00y.b&path={}", q(&repo))).await;
        expect(&got, StatusCode::BAD_REQUEST, "BAD_REQUEST", "line break or NUL");
    }

    #[tokio::test]
    async fn libgit2_invalid_paths_are_400() {
        let f = Fixture::new();
        let repo = f.repo("r");
        // libgit2 refuses to stage inside .git ("invalid path"), a class it does not code.
        let got = f.json(Method::POST, "/git/add", json!({"path": repo, "files": [".git/config"]})).await;
        expect(&got, StatusCode::BAD_REQUEST, "BAD_REQUEST", "invalid path");
        let got = f.json(Method::POST, "/git/add", json!({"path": repo, "files": ["../outside"]})).await;
        expect(&got, StatusCode::BAD_REQUEST, "BAD_REQUEST", "outside the repository");
    }

    #[tokio::test]
    async fn bodies_are_objects_and_bounded() {
        let f = Fixture::new();
        let req = Request::post("/git/init")
            .header("content-length", (crate::extract::MAX_JSON_BODY + 1).to_string())
            .body(Body::empty())
            .unwrap();
        expect(&f.send(req).await, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "");
        let req = Request::post("/git/init").body(Body::from("[null]")).unwrap();
        expect(&f.send(req).await, StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY", "JSON object");
        let got = f.json(Method::POST, "/git/commit", json!({"path": "r"})).await;
        expect(&got, StatusCode::BAD_REQUEST, "INVALID_REQUEST_BODY", "message is required");
    }

    #[tokio::test]
    async fn a_working_round_trip() {
        // The checks above must not refuse what works.
        let f = Fixture::new();
        let repo = f.repo("r");
        let (s, v) = f.get(&format!("/git/status?path={}", q(&repo))).await;
        assert_eq!((s, v["currentBranch"].as_str()), (StatusCode::OK, Some("main")), "{v}");
        let (s, v) = f.get("/git/branches?path=r").await;
        assert_eq!((s, &v["branches"]), (StatusCode::OK, &json!(["main"])), "{v}");
        let (s, v) = f.get("/git/history?path=r").await;
        assert_eq!((s, v[0]["message"].as_str()), (StatusCode::OK, Some("first")), "{v}");
        let got = f
            .json(Method::POST, "/git/remotes", json!({"path": "r", "name": "up", "url": "git@h:x.git"}))
            .await;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
        let (s, v) = f.get("/git/remotes?path=r").await;
        assert_eq!((s, &v["remotes"][0]["url"]), (StatusCode::OK, &json!("git@h:x.git")), "{v}");
        let got = f
            .json(
                Method::POST,
                "/git/config",
                json!({"key": "a.b", "value": "v", "scope": "local", "path": "r"}),
            )
            .await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        let (s, v) = f.get("/git/config?key=a.b&scope=local&path=r").await;
        assert_eq!((s, v), (StatusCode::OK, json!({"value": "v"})));
    }

    /// The request schemas require exactly what the official client models require.
    #[test]
    fn openapi_required_fields_and_statuses() {
        let (_, doc) = routes().split_for_parts();
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        for (schema, want) in [
            ("GitCloneRequest", vec!["path", "url"]),
            ("GitAddRequest", vec!["files", "path"]),
            ("GitCommitRequest", vec!["author", "email", "message", "path"]),
            ("GitBranchRequest", vec!["name", "path"]),
            ("GitDeleteBranchRequest", vec!["name", "path"]),
            ("GitCheckoutRequest", vec!["branch", "path"]),
            ("GitPullRequest", vec!["path"]),
            ("GitPushRequest", vec!["path"]),
            ("GitInitRequest", vec!["path"]),
            ("GitAddRemoteRequest", vec!["name", "path", "url"]),
            ("GitSetConfigRequest", vec!["key", "value"]),
            ("GitConfigureUserRequest", vec!["email", "name"]),
            ("GitAuthenticateRequest", vec!["password", "username"]),
            ("GitResetRequest", vec!["path"]),
            ("GitRestoreRequest", vec!["files", "path"]),
        ] {
            let s = &schemas[schema];
            let mut got: Vec<&str> =
                s["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            got.sort();
            assert_eq!(got, want, "{schema}: {s}");
            for field in want {
                assert!(
                    s["properties"][field]["type"] != json!(["string", "null"]),
                    "{schema}.{field} nullable"
                );
            }
        }
        assert_eq!(schemas["GitCloneRequest"]["properties"]["depth"]["minimum"], 0);
        assert_eq!(schemas["GitCloneRequest"]["properties"]["depth"]["maximum"], i32::MAX);
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let has = |s: &str| responses.contains_key(s);
                assert!(has("400") && has("500"), "{method} {path}");
                if method == "get" {
                    assert!(path == "/git/config" || has("404"), "{method} {path}");
                }
                // Every operation reads some git configuration, which may be unreadable.
                assert!(has("409"), "{method} {path}");
                if op.get("requestBody").is_some() {
                    assert!(has("413"), "{method} {path}: 413 for a body over the limit");
                }
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &r["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/ErrorResponse", "{method} {path} {status}");
                    }
                }
            }
        }
    }

    /// Odd values in every text field of every body route, on a real repository: each answer
    /// is a success or a 4xx, never a 5xx.
    #[tokio::test]
    async fn odd_field_values_never_answer_5xx() {
        let f = Fixture::new();
        f.repo("r");
        std::os::unix::fs::symlink("loop", f.dir.path().join("loop")).unwrap();
        std::fs::write(f.path("file"), "x").unwrap();
        let mut odd: Vec<String> = [
            "",
            ".",
            "..",
            "\n",
            "-x",
            "a..b",
            "HEAD",
            "refs/heads/x",
            "~",
            "@{u}",
            "a b",
            "\u{fc}",
            "../..",
            ".git",
            ".git/config",
            "*",
            ":",
            "[",
            "\\",
            "%",
            "a/",
            "/dev/null",
            "loop",
            "file",
            "file/x",
            "r",
            "git@h:x",
            "file:///nonexistent",
            "HEAD~5",
            "main",
            "^",
            "a.b",
            "a.b.c",
            "a.\n.c",
            "local",
            "global",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        odd.extend(["x".repeat(300), "\u{0}".into(), "a\u{0}b".into()]);
        let routes: [(Method, &str, &[&str]); 14] = [
            (Method::POST, "/git/clone", &["url", "branch", "commit_id"]),
            (Method::POST, "/git/add", &["files"]),
            (Method::POST, "/git/commit", &["message", "author", "email"]),
            (Method::POST, "/git/branches", &["name"]),
            (Method::DELETE, "/git/branches", &["name"]),
            (Method::POST, "/git/checkout", &["branch"]),
            (Method::POST, "/git/pull", &["remote", "branch"]),
            (Method::POST, "/git/push", &["remote", "branch"]),
            (Method::POST, "/git/init", &["initial_branch"]),
            (Method::POST, "/git/remotes", &["name", "url"]),
            (Method::POST, "/git/reset", &["mode", "target", "files"]),
            (Method::POST, "/git/restore", &["files", "source"]),
            (Method::POST, "/git/config", &["key", "value", "scope"]),
            (Method::POST, "/git/config/user", &["name", "email", "scope"]),
        ];
        let mut server_errors = Vec::new();
        let mut n = 0;
        for (method, route, fields) in &routes {
            for field in *fields {
                for v in &odd {
                    n += 1;
                    let mut body = json!({"path": "r", "url": "r", "files": ["f.txt"], "message": "m", "author": "A",
                        "email": "e@x", "name": "n", "branch": "main", "key": "a.b", "value": "v", "scope": "local"});
                    if *route == "/git/clone" || *route == "/git/init" {
                        body["path"] = json!(format!("new-{n}"));
                    }
                    body[*field] = if *field == "files" { json!([v]) } else { json!(v) };
                    let got = f.json(method.clone(), route, body.clone()).await;
                    if got.0.is_server_error() {
                        server_errors.push(format!("{method} {route} {body} -> {}", got.1));
                    }
                }
            }
        }
        for v in &odd {
            for route in GETS {
                let got = f.get(&format!("{route}?path={}", q(v))).await;
                if got.0.is_server_error() {
                    server_errors.push(format!("GET {route} {v:?} -> {}", got.1));
                }
            }
            let got = f.get(&format!("/git/config?key={}&scope=local&path=r", q(v))).await;
            if got.0.is_server_error() {
                server_errors.push(format!("GET /git/config key={v:?} -> {}", got.1));
            }
        }
        assert!(server_errors.is_empty(), "{}", server_errors.join("\n"));
    }

    /// A config value git cannot read, set through the API as `git config` allows it, makes
    /// later operations 409 naming the configuration, not 500.
    #[tokio::test]
    async fn an_unreadable_repository_config_is_409() {
        let f = Fixture::new();
        f.repo("r");
        let body = json!({"key": "core.bare", "value": "maybe", "scope": "local", "path": "r"});
        assert_eq!(f.json(Method::POST, "/git/config", body).await.0, StatusCode::OK);
        let got = f.get("/git/status?path=r").await;
        expect(&got, StatusCode::CONFLICT, "CONFLICT", "the git configuration is invalid");
    }
}
