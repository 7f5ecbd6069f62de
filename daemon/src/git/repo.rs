//! Local repository operations: open, init, status, add, commit, branches, checkout, history,
//! reset, restore and remotes. Plain functions over a path; they block, so callers run them on
//! a blocking thread under the repository's lock (see `super::locks::run`).

use std::collections::HashSet;
use std::path::{Component, Path};

use git2::build::CheckoutBuilder;
use git2::{
    BranchType, Oid, Repository, RepositoryInitOptions, ResetType, Signature, Status, StatusOptions,
    StatusShow,
};

use super::error::{GitError, GitResult, Kind};
use super::prescan::{Prescan, prescan};

/// Opens the repository whose work tree (or bare directory) is `path`.
pub fn open(path: &Path) -> GitResult<Repository> {
    // Ask the file system first: libgit2 reports a symbolic-link loop or an over-long name as
    // an unclassified error, and a missing directory in several ways.
    if let Err(e) = std::fs::metadata(path) {
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => GitError::repo_missing(path),
            _ => GitError::io(&e, path),
        });
    }
    Repository::open(path).map_err(|e| match e.code() {
        git2::ErrorCode::NotFound => GitError::repo_missing(path),
        _ => e.into(),
    })
}

fn workdir(repo: &Repository) -> GitResult<&Path> {
    repo.workdir()
        .ok_or_else(|| GitError::new(Kind::BadRequest, "the repository is bare (it has no work tree)"))
}

/// `refs/heads/main` → `main`.
pub fn short_branch(full: &str) -> &str {
    full.strip_prefix("refs/heads/").unwrap_or(full)
}

/// The branch HEAD names symbolically, even when it has no commit yet; None when detached.
pub fn head_branch(repo: &Repository) -> GitResult<Option<String>> {
    let head = repo.find_reference("HEAD")?;
    Ok(head.symbolic_target()?.map(|t| short_branch(t).to_string()))
}

/// The commit HEAD points to; None for a repository without commits.
fn head_commit(repo: &Repository) -> GitResult<Option<git2::Commit<'_>>> {
    match repo.head() {
        Ok(r) => Ok(Some(r.peel_to_commit()?)),
        Err(e) if matches!(e.code(), git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// init

pub fn init(path: &Path, bare: bool, initial_branch: Option<&str>) -> GitResult<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => {
            return Err(GitError::new(
                Kind::Conflict,
                format!("{}: a file exists there, not a directory", path.display()),
            ));
        }
        Ok(_) => {}
        // Missing directories are created; a loop, an over-long name or a file in the middle
        // of the path is the path's fault.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(GitError::io(&e, path)),
    }
    if Repository::open(path).is_ok() {
        return Err(GitError::new(Kind::Conflict, format!("repository already exists: {}", path.display())));
    }
    let mut opts = RepositoryInitOptions::new();
    opts.bare(bare).mkdir(true).mkpath(true).no_reinit(true);
    if let Some(b) = initial_branch.filter(|b| !b.is_empty()) {
        if !git2::Branch::name_is_valid(b)? {
            return Err(GitError::new(Kind::BadRequest, format!("invalid branch name {b:?}")));
        }
        opts.initial_head(b);
    }
    Repository::init_opts(path, &opts)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// status

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub name: String,
    pub staging: &'static str,
    pub worktree: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoStatus {
    /// Short branch name, or `HEAD` when detached.
    pub current_branch: String,
    pub detached: bool,
    pub files: Vec<FileStatus>,
    /// Short upstream name such as `origin/main`.
    pub upstream: Option<String>,
    pub ahead: usize,
    pub behind: usize,
}

pub const UNMODIFIED: &str = "Unmodified";
pub const UNTRACKED: &str = "Untracked";
pub const MODIFIED: &str = "Modified";
pub const ADDED: &str = "Added";
pub const DELETED: &str = "Deleted";
pub const RENAMED: &str = "Renamed";
pub const UNMERGED: &str = "Updated but unmerged";

/// The (staging, worktree) pair the clients expect for libgit2 status flags.
pub fn status_pair(s: Status) -> (&'static str, &'static str) {
    if s.is_conflicted() {
        return (UNMERGED, UNMERGED);
    }
    if s.is_wt_new() && !s.intersects(Status::INDEX_NEW | Status::INDEX_MODIFIED | Status::INDEX_DELETED) {
        return (UNTRACKED, UNTRACKED);
    }
    let staging = if s.is_index_new() {
        ADDED
    } else if s.is_index_deleted() {
        DELETED
    } else if s.is_index_renamed() {
        RENAMED
    } else if s.is_index_modified() || s.is_index_typechange() {
        MODIFIED
    } else {
        UNMODIFIED
    };
    let worktree = if s.is_wt_deleted() {
        DELETED
    } else if s.is_wt_renamed() {
        RENAMED
    } else if s.is_wt_modified() || s.is_wt_typechange() {
        MODIFIED
    } else if s.is_wt_new() {
        UNTRACKED
    } else {
        UNMODIFIED
    };
    (staging, worktree)
}

pub fn status(path: &Path) -> GitResult<RepoStatus> {
    let repo = open(path)?;
    let root = workdir(&repo)?;
    let branch = head_branch(&repo)?;
    let detached = branch.is_none();
    let files = file_statuses(&repo, root)?;
    let (upstream, ahead, behind) = match &branch {
        Some(b) => tracking(&repo, b).unwrap_or((None, 0, 0)),
        None => (None, 0, 0),
    };
    Ok(RepoStatus {
        current_branch: branch.unwrap_or_else(|| "HEAD".into()),
        detached,
        files,
        upstream,
        ahead,
        behind,
    })
}

/// The changed files of the work tree, in path order.
///
/// A quick pass ([`prescan`]) proves most files unchanged from the index's stat cache and
/// cache-tree, as `git status` does; libgit2 then computes the status of the remaining
/// candidates only. When the pass cannot vouch for the index side (the cache-tree is missing or
/// differs from HEAD), libgit2 also compares HEAD with the whole index.
fn file_statuses(repo: &Repository, root: &Path) -> GitResult<Vec<FileStatus>> {
    let head_tree = match repo.head().and_then(|h| h.peel_to_tree()) {
        Ok(t) => t.id().as_bytes().try_into().ok(),
        Err(_) => None,
    };
    let ignore_case = repo.config()?.get_bool("core.ignorecase").unwrap_or(false);
    let (paths, staged_unknown) = match prescan(root, repo.path(), head_tree, ignore_case) {
        Prescan::Unsure => return scan(repo, None, StatusShow::IndexAndWorkdir),
        Prescan::Candidates { paths, staged_unknown } => (paths, staged_unknown),
    };
    // An empty path list would mean "everything" to libgit2.
    let mut files =
        if paths.is_empty() { Vec::new() } else { scan(repo, Some(&paths), StatusShow::IndexAndWorkdir)? };
    if staged_unknown {
        // Outside the candidates the work tree matches the index: the index side is all.
        let seen: HashSet<String> = files.iter().map(|f| f.name.clone()).collect();
        let staged = scan(repo, None, StatusShow::Index)?;
        files.extend(staged.into_iter().filter(|f| !seen.contains(&f.name)));
        files.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    }
    Ok(files)
}

/// One libgit2 status scan: of everything, or of the literal path list `only` (an entry
/// matches itself and, written with a trailing `/`, everything below it).
fn scan(repo: &Repository, only: Option<&[Vec<u8>]>, show: StatusShow) -> GitResult<Vec<FileStatus>> {
    let mut opts = StatusOptions::new();
    opts.show(show)
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(false);
    if let Some(paths) = only {
        opts.disable_pathspec_match(true);
        for p in paths {
            opts.pathspec(p.as_slice());
        }
    }
    let statuses = repo.statuses(Some(&mut opts))?;
    let mut files = Vec::with_capacity(statuses.len());
    for entry in statuses.iter() {
        let s = entry.status();
        if s == Status::CURRENT || s.is_ignored() {
            continue;
        }
        let (staging, worktree) = status_pair(s);
        files.push(FileStatus {
            name: String::from_utf8_lossy(entry.path_bytes()).into_owned(),
            staging,
            worktree,
        });
    }
    Ok(files)
}

/// The upstream of a local branch and how far ahead/behind it the branch is.
fn tracking(repo: &Repository, branch: &str) -> GitResult<(Option<String>, usize, usize)> {
    let full = format!("refs/heads/{branch}");
    let up = repo.branch_upstream_name(&full)?;
    let up = up.as_str().unwrap_or_default().to_string();
    let short = up
        .strip_prefix("refs/remotes/")
        .or_else(|| up.strip_prefix("refs/heads/"))
        .unwrap_or(&up)
        .to_string();
    let local = repo.refname_to_id(&full).ok();
    let remote = repo.refname_to_id(&up).ok();
    let (ahead, behind) = match (local, remote) {
        (Some(l), Some(r)) => repo.graph_ahead_behind(l, r)?,
        _ => (0, 0),
    };
    Ok((Some(short), ahead, behind))
}

// ---------------------------------------------------------------------------------------------
// add / commit

/// A request path made relative to the work tree; absolute paths inside it are accepted.
fn repo_relative(root: &Path, p: &str) -> GitResult<String> {
    let path = Path::new(p);
    let rel = if path.is_absolute() {
        let root_canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        path.strip_prefix(root)
            .or_else(|_| path.strip_prefix(&root_canon))
            .map(Path::to_path_buf)
            .map_err(|_| GitError::new(Kind::BadRequest, format!("{p}: outside the repository")))?
    } else {
        path.to_path_buf()
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(GitError::new(Kind::BadRequest, format!("{p}: outside the repository")));
                }
            }
            _ => return Err(GitError::new(Kind::BadRequest, format!("{p}: outside the repository"))),
        }
    }
    Ok(parts.join("/"))
}

fn index_has_prefix(index: &git2::Index, rel: &str) -> bool {
    if rel.is_empty() {
        return !index.is_empty();
    }
    let dir = format!("{rel}/");
    index.iter().any(|e| e.path == rel.as_bytes() || e.path.starts_with(dir.as_bytes()))
}

/// Stages each entry in order, like `git add <entry>`: directories with everything under them
/// (new, modified, deleted; ignored files skipped), a named file even when ignored, a deleted
/// file as a deletion.
pub fn add(path: &Path, files: &[String]) -> GitResult<()> {
    let repo = open(path)?;
    let root = workdir(&repo)?.to_path_buf();
    let mut index = repo.index()?;
    for f in files {
        let rel = repo_relative(&root, f)?;
        let full = root.join(&rel);
        let meta = std::fs::symlink_metadata(&full).ok();
        match meta {
            Some(m) if !m.is_dir() => index.add_path(Path::new(&rel))?,
            Some(_) => {
                let spec = if rel.is_empty() { "*".to_string() } else { rel.clone() };
                index.add_all([spec.as_str()], git2::IndexAddOption::DEFAULT, None)?;
                index.update_all([spec.as_str()], None)?;
            }
            None if index_has_prefix(&index, &rel) => index.update_all([rel.as_str()], None)?,
            None => {
                return Err(GitError::new(Kind::NotFound, format!("pathspec {f:?} did not match any files")));
            }
        }
    }
    index.write()?;
    Ok(())
}

pub fn commit(path: &Path, message: &str, author: &str, email: &str, allow_empty: bool) -> GitResult<Oid> {
    let repo = open(path)?;
    let mut index = repo.index()?;
    if index.has_conflicts() {
        return Err(GitError::new(Kind::Conflict, "cannot commit: the index has unresolved conflicts"));
    }
    let tree_id = index.write_tree()?;
    // As `git commit` does: the index on disk then carries the cache-tree write_tree just
    // computed, which lets the next status tell at once that nothing is staged.
    index.write()?;
    let tree = repo.find_tree(tree_id)?;
    let parent = head_commit(&repo)?;
    let unchanged = match &parent {
        Some(p) => p.tree_id() == tree_id,
        None => tree.is_empty(),
    };
    if unchanged && !allow_empty {
        return Err(GitError::new(Kind::Conflict, "cannot create empty commit: clean working tree"));
    }
    let sig = Signature::now(author, email)
        .map_err(|e| GitError::new(Kind::BadRequest, format!("invalid author: {}", e.message())))?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    Ok(repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?)
}

// ---------------------------------------------------------------------------------------------
// branches

pub struct Branches {
    pub names: Vec<String>,
    pub current: Option<String>,
}

pub fn branches(path: &Path) -> GitResult<Branches> {
    let repo = open(path)?;
    let mut names = Vec::new();
    for b in repo.branches(Some(BranchType::Local))? {
        let (b, _) = b?;
        if let Some(n) = b.name()? {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(Branches { names, current: head_branch(&repo)? })
}

pub fn check_branch_name(name: &str) -> GitResult<()> {
    // git2 refuses a NUL byte with an error of its own; the name is still simply invalid.
    if name.is_empty() || name.contains('\0') || !git2::Branch::name_is_valid(name)? {
        return Err(GitError::new(Kind::BadRequest, format!("invalid branch name {name:?}")));
    }
    Ok(())
}

/// Creates a branch at HEAD and checks it out, like `git checkout -b`. In a repository without
/// commits, HEAD is pointed at the new (unborn) name instead, as git does.
pub fn create_branch(path: &Path, name: &str) -> GitResult<()> {
    let repo = open(path)?;
    check_branch_name(name)?;
    let full = format!("refs/heads/{name}");
    if repo.find_reference(&full).is_ok() {
        return Err(GitError::new(Kind::BranchExists, format!("branch {name:?} already exists")));
    }
    match head_commit(&repo)? {
        Some(c) => {
            repo.branch(name, &c, false)?;
        }
        None if head_branch(&repo)?.is_none() => {
            return Err(GitError::new(Kind::NotFound, "reference not found: HEAD"));
        }
        None => {}
    }
    repo.set_head(&full)?;
    Ok(())
}

/// Deletes a local branch. A missing branch is success (idempotent, as the reference answers);
/// the checked-out branch cannot be deleted (git refuses too; HEAD would dangle).
pub fn delete_branch(path: &Path, name: &str) -> GitResult<()> {
    let repo = open(path)?;
    check_branch_name(name)?;
    if head_branch(&repo)?.as_deref() == Some(name) {
        return Err(GitError::new(
            Kind::Conflict,
            format!("cannot delete branch {name:?}: it is checked out"),
        ));
    }
    match repo.find_reference(&format!("refs/heads/{name}")) {
        Ok(mut r) => Ok(r.delete()?),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// checkout

/// Whether a name may be taken as an (abbreviated) commit id.
pub fn looks_like_hash(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks out the commit's tree keeping local changes that do not conflict; a conflict is
/// `GIT_DIRTY_WORKTREE` and leaves everything untouched.
pub fn checkout_commit(repo: &Repository, commit: &git2::Commit) -> GitResult<()> {
    let mut co = CheckoutBuilder::new();
    co.safe();
    repo.checkout_tree(commit.as_object(), Some(&mut co)).map_err(|e| match e.code() {
        git2::ErrorCode::Conflict | git2::ErrorCode::Uncommitted => GitError::new(
            Kind::DirtyWorktree,
            format!(
                "your local changes would be overwritten by checkout ({}); commit or stash them first",
                e.message()
            ),
        ),
        _ => e.into(),
    })
}

/// Checks out a local branch; else (like git) a same-named branch of exactly one remote, as a
/// new tracking branch; else, for 4–64 hex characters, a commit (detached). Never anything else:
/// a missing branch is `GIT_BRANCH_NOT_FOUND`.
pub fn checkout(path: &Path, name: &str) -> GitResult<()> {
    let repo = open(path)?;
    if name.is_empty() {
        return Err(GitError::new(Kind::InvalidBody, "branch is required"));
    }
    let full = format!("refs/heads/{name}");
    if git2::Reference::is_valid_name(&full)
        && let Ok(r) = repo.find_reference(&full)
    {
        let commit = r.peel_to_commit()?;
        checkout_commit(&repo, &commit)?;
        repo.set_head(&full)?;
        return Ok(());
    }
    if git2::Reference::is_valid_name(&full) {
        let mut candidates = Vec::new();
        for remote in repo.remotes()?.iter().flatten().flatten() {
            if let Ok(r) = repo.find_reference(&format!("refs/remotes/{remote}/{name}")) {
                candidates.push((remote.to_string(), r.peel_to_commit()?.id()));
            }
        }
        if let [(remote, oid)] = candidates.as_slice() {
            let commit = repo.find_commit(*oid)?;
            checkout_commit(&repo, &commit)?;
            let mut b = repo.branch(name, &commit, false)?;
            b.set_upstream(Some(&format!("{remote}/{name}")))?;
            repo.set_head(&full)?;
            return Ok(());
        }
    }
    if looks_like_hash(name)
        && let Ok(obj) = repo.revparse_single(name)
        && let Ok(commit) = obj.peel_to_commit()
    {
        checkout_commit(&repo, &commit)?;
        repo.set_head_detached(commit.id())?;
        return Ok(());
    }
    Err(GitError::new(Kind::BranchNotFound, format!("branch {name:?} not found")))
}

// ---------------------------------------------------------------------------------------------
// history

pub struct CommitInfo {
    pub hash: String,
    pub author: String,
    pub email: String,
    pub message: String,
    /// Author time in seconds and the author's UTC offset in minutes.
    pub time: i64,
    pub offset_minutes: i32,
}

pub fn history(path: &Path) -> GitResult<Vec<CommitInfo>> {
    let repo = open(path)?;
    let Some(head) = head_commit(&repo)? else { return Ok(Vec::new()) };
    let mut walk = repo.revwalk()?;
    // Topological first: commit times tie within a second, parents must still follow children.
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    walk.push(head.id())?;
    let mut out = Vec::new();
    for oid in walk {
        let c = repo.find_commit(oid?)?;
        let a = c.author();
        out.push(CommitInfo {
            hash: c.id().to_string(),
            author: String::from_utf8_lossy(a.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(a.email_bytes()).into_owned(),
            message: String::from_utf8_lossy(c.message_raw_bytes()).into_owned(),
            time: a.when().seconds(),
            offset_minutes: a.when().offset_minutes(),
        });
    }
    Ok(out)
}

/// RFC 3339 in the author's own offset, as `git log --date=iso-strict` prints it.
pub fn format_git_time(seconds: i64, offset_minutes: i32) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(seconds) else { return String::new() };
    let Ok(off) = jiff::tz::Offset::from_seconds(offset_minutes * 60) else { return String::new() };
    let dt = off.to_datetime(ts);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    if offset_minutes == 0 {
        format!("{}Z", dt.strftime("%Y-%m-%dT%H:%M:%S"))
    } else {
        format!("{}{sign}{:02}:{:02}", dt.strftime("%Y-%m-%dT%H:%M:%S"), abs / 60, abs % 60)
    }
}

// ---------------------------------------------------------------------------------------------
// reset / restore

fn resolve_commit<'r>(repo: &'r Repository, rev: &str) -> GitResult<git2::Commit<'r>> {
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| GitError::new(Kind::NotFound, format!("revision {rev:?} not found")))
}

pub fn reset(path: &Path, mode: Option<&str>, target: Option<&str>, files: &[String]) -> GitResult<()> {
    let repo = open(path)?;
    let mode = mode.filter(|m| !m.is_empty()).unwrap_or("mixed");
    if !["soft", "mixed", "hard", "merge", "keep"].contains(&mode) {
        return Err(GitError::new(
            Kind::BadRequest,
            format!("unsupported reset mode {mode:?} (supported: soft, mixed, hard, merge, keep)"),
        ));
    }
    let target = target.filter(|t| !t.is_empty()).unwrap_or("HEAD");
    let commit = resolve_commit(&repo, target)?;
    if !files.is_empty() {
        if mode != "mixed" {
            return Err(GitError::new(Kind::BadRequest, format!("cannot do a {mode} reset with paths")));
        }
        let root = workdir(&repo)?.to_path_buf();
        let rel: Vec<String> = files.iter().map(|f| repo_relative(&root, f)).collect::<GitResult<_>>()?;
        repo.reset_default(Some(commit.as_object()), rel.iter())?;
        return Ok(());
    }
    match mode {
        "soft" => repo.reset(commit.as_object(), ResetType::Soft, None)?,
        "mixed" => repo.reset(commit.as_object(), ResetType::Mixed, None)?,
        "hard" => repo.reset(commit.as_object(), ResetType::Hard, None)?,
        // keep (and merge, which libgit2 lacks and which differs only with unmerged entries):
        // update the files that differ between HEAD and the target, refuse when one of them has
        // local changes, keep every other local change, then reset the index.
        _ => {
            checkout_commit(&repo, &commit)?;
            repo.reset(commit.as_object(), ResetType::Mixed, None)?;
        }
    }
    Ok(())
}

/// `git restore`: see spec §3.5 for the table of targets and sources.
pub fn restore(
    path: &Path,
    files: &[String],
    staged: Option<bool>,
    worktree: Option<bool>,
    source: Option<&str>,
) -> GitResult<()> {
    let (staged, worktree) = match (staged, worktree) {
        (None, None) => (false, true),
        (Some(s), None) => (s, !s),
        (None, Some(w)) => (false, w),
        (Some(s), Some(w)) => (s, w),
    };
    if !staged && !worktree {
        return Err(GitError::new(Kind::BadRequest, "at least one of staged or worktree must be true"));
    }
    if files.is_empty() {
        return Err(GitError::new(Kind::BadRequest, "files must not be empty"));
    }
    let repo = open(path)?;
    let root = workdir(&repo)?.to_path_buf();
    let rel: Vec<String> = files.iter().map(|f| repo_relative(&root, f)).collect::<GitResult<_>>()?;
    let source = source.filter(|s| !s.is_empty());
    let src_commit = match source {
        Some(s) => Some(resolve_commit(&repo, s)?),
        None if staged => head_commit(&repo)?,
        None => None,
    };
    // Every path must name something in what is restored from.
    let index = repo.index()?;
    for (p, orig) in rel.iter().zip(files) {
        let known = match &src_commit {
            Some(c) => p.is_empty() || c.tree()?.get_path(Path::new(p)).is_ok(),
            None => index_has_prefix(&index, p),
        } || (staged && index_has_prefix(&index, p));
        if !known {
            let suffix = if source.is_some() { " in source" } else { "" };
            return Err(GitError::new(
                Kind::NotFound,
                format!("pathspec {orig:?} did not match any file(s) known to git{suffix}"),
            ));
        }
    }
    drop(index);
    let specs: Vec<String> = rel.iter().map(|p| if p.is_empty() { "*".into() } else { p.clone() }).collect();
    if staged {
        match &src_commit {
            Some(c) => repo.reset_default(Some(c.as_object()), specs.iter())?,
            // No commit yet: unstaging means removing the entries.
            None => {
                let mut index = repo.index()?;
                index.remove_all(specs.iter(), None)?;
                index.write()?;
            }
        }
    }
    if worktree {
        let mut co = CheckoutBuilder::new();
        co.force().update_index(false);
        for s in &specs {
            co.path(s);
        }
        match (source, &src_commit) {
            (Some(_), Some(c)) => repo.checkout_tree(c.as_object(), Some(&mut co))?,
            _ => {
                let mut index = repo.index()?;
                repo.checkout_index(Some(&mut index), Some(&mut co))?
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// remotes

pub struct RemoteInfo {
    pub name: String,
    pub url: String,
}

pub fn remotes(path: &Path) -> GitResult<Vec<RemoteInfo>> {
    let repo = open(path)?;
    let mut out = Vec::new();
    for name in repo.remotes()?.iter().flatten().flatten() {
        let r = repo.find_remote(name)?;
        let url = String::from_utf8_lossy(r.url_bytes()).into_owned();
        out.push(RemoteInfo { name: name.to_string(), url: super::error::redact_url_passwords(&url) });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A remote name git accepts (`origin`, `up-stream`; not `a..b`, not `-x`).
pub fn check_remote_name(name: &str) -> GitResult<()> {
    // git2's check panics on a NUL byte instead of answering.
    if name.is_empty() || name.contains('\0') || !git2::Remote::is_valid_name(name) {
        return Err(GitError::new(Kind::BadRequest, format!("invalid remote name {name:?}")));
    }
    Ok(())
}

/// Adds a remote with the default fetch refspec; replaces a same-named one only with `overwrite`.
pub fn add_remote(repo: &Repository, name: &str, url: &str, overwrite: bool) -> GitResult<()> {
    check_remote_name(name)?;
    if repo.find_remote(name).is_ok() {
        if !overwrite {
            return Err(GitError::new(Kind::Conflict, format!("remote {name:?} already exists")));
        }
        repo.remote_delete(name)?;
    }
    repo.remote(name, url)?;
    Ok(())
}
