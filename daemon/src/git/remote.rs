//! Operations that talk to a remote: clone, pull, push, and the fetch of `remote add --fetch`.
//!
//! Every error leaving here went through [`Auth::error`], which classifies it and removes the
//! operation's credentials from its text.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use git2::build::RepoBuilder;
use git2::{FetchOptions, ProxyOptions, PushOptions, Repository};

use super::creds::Auth;
use super::error::{GitError, GitResult, Kind};
use super::repo::{self, checkout_commit, head_branch, looks_like_hash};
use super::url::Location;

fn fetch_options(auth: &Auth, depth: u32) -> FetchOptions<'static> {
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(auth.callbacks());
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    fo.proxy_options(proxy);
    if depth > 0 {
        // The API caps the depth at i32::MAX; saturate rather than wrap if a caller did not.
        fo.depth(i32::try_from(depth).unwrap_or(i32::MAX));
    }
    fo
}

pub struct CloneSpec {
    /// The remote, checked by [`super::url::parse`]; a plain path already made absolute.
    pub url: String,
    pub location: Location,
    pub path: std::path::PathBuf,
    pub branch: Option<String>,
    pub commit_id: Option<String>,
    pub depth: u32,
    pub auth: Auth,
}

/// Clones into `path` (created if needed, must be empty). With `branch`, only that branch is
/// fetched and checked out; with `commit_id`, that commit is then checked out detached. On
/// failure nothing the clone created is left behind.
pub fn clone(spec: &CloneSpec) -> GitResult<()> {
    check_source(spec)?;
    let path = &spec.path;
    // Anything at the destination counts, a dangling symbolic link too: cleaning up after a
    // failure must never remove what was there before.
    let existed = match std::fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) => return Err(GitError::io(&e, path)),
    };
    if existed {
        let meta = std::fs::metadata(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => GitError::new(
                Kind::Conflict,
                format!("destination path {} already exists (a symbolic link to nothing)", path.display()),
            ),
            _ => GitError::io(&e, path),
        })?;
        if Repository::open(path).is_ok() {
            return Err(GitError::new(
                Kind::Conflict,
                format!("repository already exists: {}", path.display()),
            ));
        }
        let empty = meta.is_dir() && std::fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty {
            return Err(GitError::new(
                Kind::Conflict,
                format!("destination path {} already exists and is not an empty directory", path.display()),
            ));
        }
    }
    let result = clone_into(spec);
    if result.is_err() {
        if existed {
            if let Ok(entries) = std::fs::read_dir(path) {
                for e in entries.flatten() {
                    let p = e.path();
                    let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    result
}

/// Refuses a source libgit2 cannot clone from, with a reason, before anything is created.
fn check_source(spec: &CloneSpec) -> GitResult<()> {
    match spec.location {
        // The vendored libgit2 has no SSH transport, and credentials are HTTP basic only.
        Location::Ssh => Err(GitError::new(
            Kind::BadRequest,
            format!(
                "cannot clone {:?}: SSH remotes are not supported; use an https:// URL (with username and password for a private repository)",
                spec.url
            ),
        )),
        Location::Path => match std::fs::metadata(&spec.url) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(GitError::new(
                Kind::BadRequest,
                format!("invalid repository URL {:?}: it names a file, not a repository directory", spec.url),
            )),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Err(GitError::new(
                Kind::BadRequest,
                format!(
                    "invalid repository URL {:?}: not a URL (scheme://host/path or user@host:path) and no directory exists there",
                    spec.url
                ),
            )),
            Err(e) => Err(GitError::io(&e, Path::new(&spec.url))),
        },
        Location::Network | Location::FileUrl => Ok(()),
    }
}

fn clone_into(spec: &CloneSpec) -> GitResult<()> {
    let auth = &spec.auth;
    let mut builder = RepoBuilder::new();
    // libgit2's local transport cannot fetch shallow; a local remote is cloned in full (git
    // itself ignores --depth for local paths too).
    let local = matches!(spec.location, Location::FileUrl | Location::Path);
    let depth = if local { 0 } else { spec.depth };
    if local && spec.depth > 0 {
        tracing::info!(depth = spec.depth, "shallow clone of a local remote: cloning the full history");
    }
    builder.fetch_options(fetch_options(auth, depth));
    // For a local remote, copy (hard-link when possible) its object files instead of having
    // libgit2 build a fresh pack through its local transport: the pack builder recomputes
    // every delta, which on a large history is ~10x slower than `git clone` and costs memory.
    if local {
        builder.clone_local(git2::build::CloneLocal::Local);
    }
    if let Some(branch) = &spec.branch {
        if !git2::Branch::name_is_valid(branch).unwrap_or(false) {
            return Err(GitError::new(Kind::BadRequest, format!("invalid branch name {branch:?}")));
        }
        builder.branch(branch);
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        builder.remote_create(move |repo, name, url| repo.remote_with_fetch(name, url, &refspec));
    }
    let repo = builder.clone(&spec.url, &spec.path).map_err(|e| {
        if let Some(b) = &spec.branch
            && e.code() == git2::ErrorCode::NotFound
            && e.class() == git2::ErrorClass::Reference
        {
            return GitError::new(
                Kind::BranchNotFound,
                format!("branch {b:?} not found in the remote repository"),
            );
        }
        auth.error(e)
    })?;
    if let Some(id) = spec.commit_id.as_deref().filter(|c| !c.is_empty()) {
        let commit = looks_like_hash(id)
            .then(|| repo.revparse_single(id).and_then(|o| o.peel_to_commit()).ok())
            .flatten()
            .ok_or_else(|| {
                GitError::new(
                    Kind::NotFound,
                    format!("object not found: commit {id:?} is not in the cloned history"),
                )
            })?;
        checkout_commit(&repo, &commit)?;
        repo.set_head_detached(commit.id())?;
    }
    // `git clone` leaves a cache-tree in the index; libgit2 does not, and without one a status
    // must compare HEAD with the whole index. Best effort: the trees exist already, and a
    // failure leaves the clone as libgit2 made it.
    if let Ok(mut index) = repo.index()
        && index.write_tree().is_ok()
    {
        let _ = index.write();
    }
    Ok(())
}

/// Requested remote and branch names must be ones git accepts: they become refspecs, where an
/// invalid name is an error libgit2 does not classify.
fn check_names(remote: Option<&str>, branch: Option<&str>) -> GitResult<()> {
    if let Some(r) = remote.filter(|r| !r.is_empty()) {
        repo::check_remote_name(r)?;
    }
    if let Some(b) = branch.filter(|b| !b.is_empty()) {
        repo::check_branch_name(b)?;
    }
    Ok(())
}

pub struct PullSpec {
    pub remote: Option<String>,
    pub branch: Option<String>,
    pub auth: Auth,
}

/// Fetches the branch to pull and fast-forwards the current branch to it. The branch is the one
/// named, else the current branch's upstream, else the same-named branch of the remote.
/// Diverged histories are `GIT_MERGE_CONFLICT` (pull is fast-forward only); local changes that
/// the update would overwrite are `GIT_DIRTY_WORKTREE`.
pub fn pull(path: &Path, spec: &PullSpec) -> GitResult<()> {
    check_names(spec.remote.as_deref(), spec.branch.as_deref())?;
    let repo = repo::open(path)?;
    let auth = &spec.auth;
    let current = head_branch(&repo)?.ok_or_else(|| {
        GitError::new(Kind::NotFound, "reference not found: HEAD is detached, not on a branch")
    })?;
    let cfg = repo.config()?;
    let up_remote = cfg.get_string(&format!("branch.{current}.remote")).ok();
    let up_merge = cfg.get_string(&format!("branch.{current}.merge")).ok();
    let remote_name = spec
        .remote
        .clone()
        .filter(|r| !r.is_empty())
        .or(up_remote.clone())
        .unwrap_or_else(|| "origin".into());
    let src = match spec.branch.clone().filter(|b| !b.is_empty()) {
        Some(b) => b,
        None => match (&up_remote, &up_merge) {
            (Some(r), Some(m)) if *r == remote_name => repo::short_branch(m).to_string(),
            _ => current.clone(),
        },
    };
    let mut remote = repo
        .find_remote(&remote_name)
        .map_err(|_| GitError::new(Kind::NotFound, format!("remote {remote_name:?} not found")))?;
    let tracking = format!("refs/remotes/{remote_name}/{src}");
    let refspec = format!("+refs/heads/{src}:{tracking}");
    remote.fetch(&[refspec.as_str()], Some(&mut fetch_options(auth, 0)), None).map_err(|e| auth.error(e))?;
    let fetched = repo.refname_to_id(&tracking).map_err(|_| {
        GitError::new(Kind::BranchNotFound, format!("branch {src:?} not found on remote {remote_name:?}"))
    })?;
    let annotated = repo.find_annotated_commit(fetched)?;
    let (analysis, _) = repo.merge_analysis(&[&annotated])?;
    if analysis.is_up_to_date() {
        return Ok(());
    }
    if !(analysis.is_fast_forward() || analysis.is_unborn()) {
        return Err(GitError::new(
            Kind::MergeConflict,
            format!(
                "not possible to fast-forward: {current:?} and {remote_name}/{src} have diverged (pull is fast-forward only)"
            ),
        ));
    }
    let commit = repo.find_commit(fetched)?;
    checkout_commit(&repo, &commit)?;
    let full = format!("refs/heads/{current}");
    repo.reference(&full, fetched, true, &format!("pull: fast-forward to {remote_name}/{src}"))?;
    repo.set_head(&full)?;
    Ok(())
}

pub struct PushSpec {
    pub remote: Option<String>,
    pub branch: Option<String>,
    pub set_upstream: bool,
    pub auth: Auth,
}

/// Pushes `refs/heads/<b>` to the same name on the remote, without force. A non-fast-forward is
/// `GIT_PUSH_REJECTED`; another refusal by the remote (hook, protected branch) is
/// `GIT_REMOTE_REJECTED`.
pub fn push(path: &Path, spec: &PushSpec) -> GitResult<()> {
    check_names(spec.remote.as_deref(), spec.branch.as_deref())?;
    let repo = repo::open(path)?;
    let auth = &spec.auth;
    let branch = match spec.branch.clone().filter(|b| !b.is_empty()) {
        Some(b) => b,
        None => head_branch(&repo)?.ok_or_else(|| {
            GitError::new(Kind::NotFound, "reference not found: HEAD is detached, not on a branch")
        })?,
    };
    let full = format!("refs/heads/{branch}");
    if repo.refname_to_id(&full).is_err() {
        return Err(GitError::new(
            Kind::BranchNotFound,
            format!("branch {branch:?} not found (or has no commits)"),
        ));
    }
    let remote_name = spec.remote.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| "origin".into());
    let mut remote = repo
        .find_remote(&remote_name)
        .map_err(|_| GitError::new(Kind::NotFound, format!("remote {remote_name:?} not found")))?;
    let rejected: Rc<RefCell<Option<String>>> = Rc::default();
    let mut cb = auth.callbacks();
    let seen = rejected.clone();
    cb.push_update_reference(move |refname, status| {
        if let Some(s) = status {
            *seen.borrow_mut() = Some(format!("{refname}: {s}"));
        }
        Ok(())
    });
    let mut po = PushOptions::new();
    po.remote_callbacks(cb);
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    po.proxy_options(proxy);
    remote.push(&[format!("{full}:{full}")], Some(&mut po)).map_err(|e| auth.error(e))?;
    if let Some(why) = rejected.borrow_mut().take() {
        let why = auth.redact(&why);
        let lower = why.to_ascii_lowercase();
        let kind = if ["non-fast-forward", "fetch first", "stale info", "non-fastforward"]
            .iter()
            .any(|m| lower.contains(m))
        {
            Kind::PushRejected
        } else {
            Kind::RemoteRejected
        };
        return Err(GitError::new(kind, format!("the remote rejected the update of {why}")));
    }
    if spec.set_upstream {
        let mut cfg = repo.config()?;
        cfg.set_str(&format!("branch.{branch}.remote"), &remote_name)?;
        cfg.set_str(&format!("branch.{branch}.merge"), &full)?;
    }
    Ok(())
}

/// Fetches a remote with its configured refspecs (no request credentials).
pub fn fetch_remote(repo: &Repository, name: &str, auth: &Auth) -> GitResult<()> {
    let mut remote = repo.find_remote(name)?;
    remote.fetch::<&str>(&[], Some(&mut fetch_options(auth, 0)), None).map_err(|e| auth.error(e))
}
