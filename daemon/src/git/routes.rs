//! HTTP handlers of `/git`: decode and check the request, resolve paths against the daemon's
//! work dir, and hand the operation to [`super::run`]. Wire names follow the python client
//! (`commit_id`, `insecure_skip_tls`, `set_upstream` in bodies; camelCase in status answers).

use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::config::{self as gitconfig, ConfigEnv};
use super::creds::{Auth, Creds, StoredCred};
use super::error::{GitError, Kind};
use super::{remote, repo, run};
use crate::error::ApiError;
use crate::extract::Json as JsonBody;
use crate::client::is_strict_go_client as strict_go_client;
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

/// A required body field: absent or empty is 400 `INVALID_REQUEST_BODY`, as the reference's
/// validator answers.
fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_body(format!("invalid request body: {field} is required")))
}

fn resolve(state: &AppState, path: &str) -> PathBuf {
    state.work_dir.join(path)
}

/// The lock key of a path: absolute and lexically clean, so `a/../r` and `r` share one lock.
fn lock_key(state: &AppState, path: &Path) -> PathBuf {
    repo::absolute(&state.work_dir, &path.to_string_lossy())
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// Repository work tree; relative to the daemon's work dir.
    path: Option<String>,
}

fn query_path(state: &AppState, q: &PathQuery) -> Result<PathBuf, ApiError> {
    let p = crate::files::required(&q.path, "path is required")?;
    Ok(resolve(state, p))
}

// ---------------------------------------------------------------------------------------------
// clone

#[derive(Deserialize, ToSchema)]
pub struct GitCloneRequest {
    url: Option<String>,
    path: Option<String>,
    branch: Option<String>,
    commit_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    insecure_skip_tls: Option<bool>,
    depth: Option<i64>,
}

/// Clones a repository (optionally one branch, one commit, shallow, with basic credentials).
#[utoipa::path(post, path = "/git/clone", tag = "git", request_body = GitCloneRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse),
        (status = 401, body = crate::openapi::ErrorResponse), (status = 403, body = crate::openapi::ErrorResponse),
        (status = 404, body = crate::openapi::ErrorResponse), (status = 409, body = crate::openapi::ErrorResponse),
        (status = 502, body = crate::openapi::ErrorResponse)))]
async fn clone(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitCloneRequest>,
) -> Result<StatusCode, ApiError> {
    let url = required("url", &req.url)?.to_string();
    let path = resolve(&state, required("path", &req.path)?);
    let depth = req.depth.unwrap_or(0);
    if depth < 0 {
        return Err(ApiError::invalid_body(format!("depth must be non-negative, got {depth}")));
    }
    let depth =
        u32::try_from(depth).map_err(|_| ApiError::invalid_body(format!("depth is too large: {depth}")))?;
    let env = config_env(&state);
    let key = lock_key(&state, &path);
    run(&key, move || {
        let auth = auth_for(&env, req.username, req.password, req.insecure_skip_tls.unwrap_or(false));
        let spec = remote::CloneSpec {
            url,
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
#[utoipa::path(get, path = "/git/status", tag = "git", params(PathQuery),
    responses((status = 200, body = GitStatus), (status = 400, body = crate::openapi::ErrorResponse),
        (status = 404, body = crate::openapi::ErrorResponse)))]
async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PathQuery>,
) -> Result<Json<GitStatus>, ApiError> {
    let path = query_path(&state, &q)?;
    let strict = strict_go_client(&headers);
    let key = lock_key(&state, &path);
    let s = run(&key, move || repo::status(&path)).await?;
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
    path: Option<String>,
    files: Option<Vec<String>>,
}

/// Stages files or directories (relative to the repository root).
#[utoipa::path(post, path = "/git/add", tag = "git", request_body = GitAddRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse), (status = 404, body = crate::openapi::ErrorResponse)))]
async fn add(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitAddRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let files = req.files.ok_or_else(|| ApiError::invalid_body("invalid request body: files is required"))?;
    let key = lock_key(&state, &path);
    run(&key, move || repo::add(&path, &files)).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitCommitRequest {
    path: Option<String>,
    message: Option<String>,
    author: Option<String>,
    email: Option<String>,
    allow_empty: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct GitCommitResponse {
    hash: String,
}

/// Commits the index; author and committer are the given person, now.
#[utoipa::path(post, path = "/git/commit", tag = "git", request_body = GitCommitRequest,
    responses((status = 200, body = GitCommitResponse), (status = 400, body = crate::openapi::ErrorResponse),
        (status = 409, body = crate::openapi::ErrorResponse)))]
async fn commit(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitCommitRequest>,
) -> Result<Json<GitCommitResponse>, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let message = required("message", &req.message)?.to_string();
    let author = required("author", &req.author)?.to_string();
    let email = required("email", &req.email)?.to_string();
    let allow_empty = req.allow_empty.unwrap_or(false);
    let key = lock_key(&state, &path);
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
#[utoipa::path(get, path = "/git/branches", tag = "git", params(PathQuery),
    responses((status = 200, body = ListBranchResponse), (status = 404, body = crate::openapi::ErrorResponse)))]
async fn list_branches(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PathQuery>,
) -> Result<Json<ListBranchResponse>, ApiError> {
    let path = query_path(&state, &q)?;
    let strict = strict_go_client(&headers);
    let key = lock_key(&state, &path);
    let b = run(&key, move || repo::branches(&path)).await?;
    Ok(Json(ListBranchResponse { branches: b.names, current: b.current.filter(|_| !strict) }))
}

#[derive(Deserialize, ToSchema)]
pub struct GitBranchRequest {
    path: Option<String>,
    name: Option<String>,
}

/// Creates a branch at HEAD and checks it out.
#[utoipa::path(post, path = "/git/branches", tag = "git", request_body = GitBranchRequest,
    responses((status = 201), (status = 400, body = crate::openapi::ErrorResponse), (status = 409, body = crate::openapi::ErrorResponse)))]
async fn create_branch(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitBranchRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let name = required("name", &req.name)?.to_string();
    let key = lock_key(&state, &path);
    run(&key, move || repo::create_branch(&path, &name)).await?;
    Ok(StatusCode::CREATED)
}

/// Deletes a local branch (not the checked-out one); a missing branch is success.
#[utoipa::path(delete, path = "/git/branches", tag = "git", request_body = GitBranchRequest,
    responses((status = 204), (status = 400, body = crate::openapi::ErrorResponse), (status = 404, body = crate::openapi::ErrorResponse)))]
async fn delete_branch(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitBranchRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let name = required("name", &req.name)?.to_string();
    let key = lock_key(&state, &path);
    run(&key, move || repo::delete_branch(&path, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct GitCheckoutRequest {
    path: Option<String>,
    branch: Option<String>,
}

/// Checks out a branch (or a commit given as 4–64 hex characters).
#[utoipa::path(post, path = "/git/checkout", tag = "git", request_body = GitCheckoutRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse),
        (status = 404, body = crate::openapi::ErrorResponse), (status = 409, body = crate::openapi::ErrorResponse)))]
async fn checkout(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitCheckoutRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let branch = required("branch", &req.branch)?.to_string();
    let key = lock_key(&state, &path);
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
#[utoipa::path(get, path = "/git/history", tag = "git", params(PathQuery),
    responses((status = 200, body = [GitCommitInfo]), (status = 404, body = crate::openapi::ErrorResponse)))]
async fn history(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Json<Vec<GitCommitInfo>>, ApiError> {
    let path = query_path(&state, &q)?;
    let key = lock_key(&state, &path);
    let commits = run(&key, move || repo::history(&path)).await?;
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
    path: Option<String>,
    username: Option<String>,
    password: Option<String>,
    remote: Option<String>,
    branch: Option<String>,
}

/// Fetches and fast-forwards the current branch.
#[utoipa::path(post, path = "/git/pull", tag = "git", request_body = GitPullRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse), (status = 401, body = crate::openapi::ErrorResponse),
        (status = 404, body = crate::openapi::ErrorResponse), (status = 409, body = crate::openapi::ErrorResponse)))]
async fn pull(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitPullRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let env = config_env(&state);
    let key = lock_key(&state, &path);
    run(&key, move || {
        let auth = auth_for(&env, req.username, req.password, false);
        remote::pull(&path, &remote::PullSpec { remote: req.remote, branch: req.branch, auth })
    })
    .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitPushRequest {
    path: Option<String>,
    username: Option<String>,
    password: Option<String>,
    remote: Option<String>,
    branch: Option<String>,
    set_upstream: Option<bool>,
}

/// Pushes a branch to the same name on the remote (no force).
#[utoipa::path(post, path = "/git/push", tag = "git", request_body = GitPushRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse), (status = 401, body = crate::openapi::ErrorResponse),
        (status = 409, body = crate::openapi::ErrorResponse)))]
async fn push(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitPushRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let env = config_env(&state);
    let key = lock_key(&state, &path);
    run(&key, move || {
        let auth = auth_for(&env, req.username, req.password, false);
        let spec = remote::PushSpec {
            remote: req.remote,
            branch: req.branch,
            set_upstream: req.set_upstream.unwrap_or(false),
            auth,
        };
        remote::push(&path, &spec)
    })
    .await?;
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// init / remotes

#[derive(Deserialize, ToSchema)]
pub struct GitInitRequest {
    path: Option<String>,
    bare: Option<bool>,
    initial_branch: Option<String>,
}

/// Creates a repository (bare on request).
#[utoipa::path(post, path = "/git/init", tag = "git", request_body = GitInitRequest,
    responses((status = 201), (status = 409, body = crate::openapi::ErrorResponse)))]
async fn init(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitInitRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let key = lock_key(&state, &path);
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
#[utoipa::path(get, path = "/git/remotes", tag = "git", params(PathQuery),
    responses((status = 200, body = ListRemotesResponse), (status = 404, body = crate::openapi::ErrorResponse)))]
async fn list_remotes(
    State(state): State<AppState>,
    Query(q): Query<PathQuery>,
) -> Result<Json<ListRemotesResponse>, ApiError> {
    let path = query_path(&state, &q)?;
    let key = lock_key(&state, &path);
    let list = run(&key, move || repo::remotes(&path)).await?;
    Ok(Json(ListRemotesResponse {
        remotes: list.into_iter().map(|r| GitRemote { name: r.name, url: r.url }).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct GitAddRemoteRequest {
    path: Option<String>,
    name: Option<String>,
    url: Option<String>,
    fetch: Option<bool>,
    overwrite: Option<bool>,
}

/// Adds a remote, optionally replacing a same-named one and fetching it.
#[utoipa::path(post, path = "/git/remotes", tag = "git", request_body = GitAddRemoteRequest,
    responses((status = 201), (status = 409, body = crate::openapi::ErrorResponse)))]
async fn add_remote(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitAddRemoteRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let name = required("name", &req.name)?.to_string();
    let url = required("url", &req.url)?.to_string();
    let env = config_env(&state);
    let key = lock_key(&state, &path);
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    key: Option<String>,
    scope: Option<String>,
    path: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GitConfigResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

/// Resolves scope + path to the config file, as a lock key too.
fn config_file(state: &AppState, scope: Option<&str>, path: Option<&str>) -> Result<PathBuf, ApiError> {
    let repo_path = path.filter(|p| !p.is_empty()).map(|p| resolve(state, p));
    Ok(gitconfig::scope_file(&config_env(state), scope, repo_path.as_deref())?)
}

/// One config value at a scope; `{}` when unset.
#[utoipa::path(get, path = "/git/config", tag = "git", params(ConfigQuery),
    responses((status = 200, body = GitConfigResponse), (status = 400, body = crate::openapi::ErrorResponse)))]
async fn get_config(
    State(state): State<AppState>,
    Query(q): Query<ConfigQuery>,
) -> Result<Json<GitConfigResponse>, ApiError> {
    let key = crate::files::required(&q.key, "key is required")?.to_string();
    let file = config_file(&state, q.scope.as_deref(), q.path.as_deref())?;
    let lock = file.clone();
    let value = run(&lock, move || gitconfig::get(&file, &key)).await?;
    Ok(Json(GitConfigResponse { value }))
}

#[derive(Deserialize, ToSchema)]
pub struct GitSetConfigRequest {
    key: Option<String>,
    value: Option<String>,
    scope: Option<String>,
    path: Option<String>,
}

/// Sets one config value at a scope.
#[utoipa::path(post, path = "/git/config", tag = "git", request_body = GitSetConfigRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse)))]
async fn set_config(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitSetConfigRequest>,
) -> Result<StatusCode, ApiError> {
    let key = required("key", &req.key)?.to_string();
    let value = required("value", &req.value)?.to_string();
    let file = config_file(&state, req.scope.as_deref(), req.path.as_deref())?;
    let lock = file.clone();
    run(&lock, move || gitconfig::set(&file, &key, &value)).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitConfigureUserRequest {
    name: Option<String>,
    email: Option<String>,
    scope: Option<String>,
    path: Option<String>,
}

/// Sets `user.name` and `user.email` at a scope.
#[utoipa::path(post, path = "/git/config/user", tag = "git", request_body = GitConfigureUserRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse)))]
async fn configure_user(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitConfigureUserRequest>,
) -> Result<StatusCode, ApiError> {
    let name = required("name", &req.name)?.to_string();
    let email = required("email", &req.email)?.to_string();
    let file = config_file(&state, req.scope.as_deref(), req.path.as_deref())?;
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
    username: Option<String>,
    password: Option<String>,
    host: Option<String>,
    protocol: Option<String>,
}

/// Stores credentials for a host with git's `store` helper (plain text, `~/.git-credentials`,
/// mode 0600) and enables that helper globally.
#[utoipa::path(post, path = "/git/credentials", tag = "git", request_body = GitAuthenticateRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse)))]
async fn credentials(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitAuthenticateRequest>,
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
    let lock = store.clone();
    run(&lock, move || {
        gitconfig::set(&env.global_file(), "credential.helper", "store")?;
        let cred = StoredCred { protocol, host, username, password };
        super::creds::store_credential(&store, &cred)
            .map_err(|e| GitError::new(Kind::Internal, format!("cannot write {}: {e}", store.display())))
    })
    .await?;
    Ok(StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------
// reset / restore

#[derive(Deserialize, ToSchema)]
pub struct GitResetRequest {
    path: Option<String>,
    mode: Option<String>,
    target: Option<String>,
    files: Option<Vec<String>>,
}

/// `git reset [--soft|--mixed|--hard|--merge|--keep] [target] [-- files]`.
#[utoipa::path(post, path = "/git/reset", tag = "git", request_body = GitResetRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse), (status = 404, body = crate::openapi::ErrorResponse)))]
async fn reset(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitResetRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let key = lock_key(&state, &path);
    run(&key, move || {
        repo::reset(&path, req.mode.as_deref(), req.target.as_deref(), &req.files.unwrap_or_default())
    })
    .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, ToSchema)]
pub struct GitRestoreRequest {
    path: Option<String>,
    files: Option<Vec<String>>,
    staged: Option<bool>,
    worktree: Option<bool>,
    source: Option<String>,
}

/// `git restore [--staged] [--worktree] [--source=rev] -- files`.
#[utoipa::path(post, path = "/git/restore", tag = "git", request_body = GitRestoreRequest,
    responses((status = 200), (status = 400, body = crate::openapi::ErrorResponse), (status = 404, body = crate::openapi::ErrorResponse)))]
async fn restore(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<GitRestoreRequest>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&state, required("path", &req.path)?);
    let files = req.files.ok_or_else(|| ApiError::invalid_body("invalid request body: files is required"))?;
    let key = lock_key(&state, &path);
    run(&key, move || repo::restore(&path, &files, req.staged, req.worktree, req.source.as_deref())).await?;
    Ok(StatusCode::OK)
}
