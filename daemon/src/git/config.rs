//! `git config` at a scope: which file a scope means, and reading and writing one key there.
//!
//! The file is chosen the way git chooses it, from the environment the daemon gives its child
//! processes (so `POST /env` moving `HOME` moves the global config too), and edited in place by
//! libgit2, which keeps comments and formatting of the rest of the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{GitError, GitResult, Kind};

/// The variables that decide where the global and system files are.
#[derive(Debug, Clone, Default)]
pub struct ConfigEnv {
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub git_config_global: Option<PathBuf>,
    pub git_config_system: Option<PathBuf>,
}

impl ConfigEnv {
    pub fn from_child_env(env: &crate::env::ChildEnv) -> Self {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        ConfigEnv {
            home: get("HOME"),
            xdg_config_home: get("XDG_CONFIG_HOME"),
            git_config_global: get("GIT_CONFIG_GLOBAL"),
            git_config_system: get("GIT_CONFIG_SYSTEM"),
        }
    }

    fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| PathBuf::from("/root"))
    }

    /// `~/.git-credentials`, where git's store helper keeps credentials.
    pub fn credential_store(&self) -> PathBuf {
        self.home().join(".git-credentials")
    }

    /// The global config file: `$GIT_CONFIG_GLOBAL`, else `~/.gitconfig` when it exists, else the
    /// XDG file when that exists, else `~/.gitconfig`.
    pub fn global_file(&self) -> PathBuf {
        if let Some(p) = &self.git_config_global {
            return p.clone();
        }
        let dot = self.home().join(".gitconfig");
        if dot.exists() {
            return dot;
        }
        let xdg =
            self.xdg_config_home.clone().unwrap_or_else(|| self.home().join(".config")).join("git/config");
        if xdg.exists() { xdg } else { dot }
    }

    pub fn system_file(&self) -> PathBuf {
        self.git_config_system.clone().unwrap_or_else(|| PathBuf::from("/etc/gitconfig"))
    }
}

/// Which file a request's `scope` (and `path`, for `local`) names.
pub fn scope_file(env: &ConfigEnv, scope: Option<&str>, repo: Option<&Path>) -> GitResult<PathBuf> {
    match scope.unwrap_or("") {
        "" | "global" => Ok(env.global_file()),
        "system" => Ok(env.system_file()),
        "local" => {
            let repo =
                repo.ok_or_else(|| GitError::new(Kind::BadRequest, "path is required when scope is local"))?;
            // A path the file system refuses (a loop, a name too long) is not a missing repository.
            if let Err(e) = std::fs::metadata(repo)
                && !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
            {
                return Err(GitError::io(&e, repo));
            }
            let dotgit = repo.join(".git");
            if dotgit.is_dir() {
                Ok(dotgit.join("config"))
            } else if repo.join("config").is_file() && repo.join("HEAD").is_file() {
                Ok(repo.join("config"))
            } else {
                Err(GitError::new(Kind::RepoNotFound, format!("{}: not a git repository", repo.display())))
            }
        }
        other => Err(GitError::new(
            Kind::BadRequest,
            format!("unsupported config scope {other:?} (supported: global, local, system)"),
        )),
    }
}

/// Checks `section.name` / `section.sub.section.name` (split at the first and last dot).
pub fn validate_key(key: &str) -> GitResult<()> {
    let bad = || {
        GitError::new(
            Kind::BadRequest,
            format!("invalid config key {key:?}: expected section.name or section.subsection.name"),
        )
    };
    let (section, rest) = key.split_once('.').ok_or_else(bad)?;
    let (subsection, name) = rest.rsplit_once('.').unwrap_or(("", rest));
    let ok_word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok_word(section) || !ok_word(name) || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(bad());
    }
    // A subsection may hold anything but a line break or NUL (git cannot write those).
    if subsection.contains(['\n', '\0']) {
        return Err(GitError::new(
            Kind::BadRequest,
            format!("invalid config key {key:?}: a subsection cannot contain a line break or NUL"),
        ));
    }
    Ok(())
}

/// Whether a config file exists. The file's place comes from the environment (`HOME`,
/// `GIT_CONFIG_GLOBAL`) or the request; a loop or a file in the middle of that path is named
/// as such, where libgit2 would only say "failed to stat".
fn present(file: &Path) -> GitResult<bool> {
    match std::fs::metadata(file) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(GitError::io(&e, file)),
    }
}

/// The value of `key` in `file`; the last one for a multi-valued key; None when unset or when
/// the file does not exist.
pub fn get(file: &Path, key: &str) -> GitResult<Option<String>> {
    validate_key(key)?;
    if !present(file)? {
        return Ok(None);
    }
    let cfg = git2::Config::open(file)?;
    let mut last = None;
    // Config files are small; a scan with git's own name comparison beats escaping a regex.
    let mut entries = cfg.entries(None)?;
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if entry.name().is_ok_and(|n| key_eq(n, key)) {
            last = Some(String::from_utf8_lossy(entry.value_bytes()).into_owned());
        }
    }
    Ok(last)
}

/// Section and variable names are case-insensitive, subsections are not.
fn key_eq(a: &str, b: &str) -> bool {
    let split = |k: &str| -> (String, String, String) {
        let (s, rest) = k.split_once('.').unwrap_or((k, ""));
        let (sub, name) = rest.rsplit_once('.').unwrap_or(("", rest));
        (s.to_ascii_lowercase(), sub.to_string(), name.to_ascii_lowercase())
    };
    split(a) == split(b)
}

/// Sets `key` to `value` in `file`, creating the file and its directories.
pub fn set(file: &Path, key: &str, value: &str) -> GitResult<()> {
    validate_key(key)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            // mkdir answers EEXIST for a loop or a file in the way; stat tells them apart.
            match std::fs::metadata(dir) {
                Err(stat) => GitError::io(&stat, dir),
                Ok(m) if !m.is_dir() => {
                    GitError::new(Kind::InvalidPath, format!("{}: not a directory", dir.display()))
                }
                Ok(_) => GitError::io(&e, dir),
            }
        })?;
    }
    present(file)?;
    with_lock_retry(|| {
        let mut cfg = git2::Config::open(file)?;
        // A multi-valued key would make set_str fail; replace all its values like `git config --replace-all`.
        match cfg.set_str(key, value) {
            Err(e) if e.code() == git2::ErrorCode::Exists || e.message().contains("multivar") => {
                cfg.set_multivar(key, ".*", value)
            }
            other => other,
        }
    })
    .map_err(GitError::from)
}

/// How long a config write waits for a `.lock` file another writer holds (a `git config` in a
/// session, a clone writing the repository's config) before answering 409.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Runs `op` again while libgit2 reports the file's lock as taken, backing off from 5 ms to
/// 100 ms; git itself gives up at once, which turns two concurrent writers into a failure.
fn with_lock_retry<T>(mut op: impl FnMut() -> Result<T, git2::Error>) -> Result<T, git2::Error> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        match op() {
            Err(e) if e.code() == git2::ErrorCode::Locked && Instant::now() + pause < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["user.name", "url.https://x.y/.insteadOf", "branch.feat/a.b.remote", "core.hooks-path"] {
            validate_key(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["user", ".name", "user.", "us er.name", "user.1name", "a.x\ny.b", "a.x\0y.b"] {
            assert_eq!(validate_key(bad).unwrap_err().kind, Kind::BadRequest, "{bad}");
        }
    }

    #[test]
    fn scopes() {
        let home = tempfile::tempdir().unwrap();
        let env = ConfigEnv { home: Some(home.path().into()), ..Default::default() };
        assert_eq!(scope_file(&env, None, None).unwrap(), home.path().join(".gitconfig"));
        let xdg = home.path().join(".config/git/config");
        std::fs::create_dir_all(xdg.parent().unwrap()).unwrap();
        std::fs::write(&xdg, "").unwrap();
        assert_eq!(scope_file(&env, Some("global"), None).unwrap(), xdg);
        std::fs::write(home.path().join(".gitconfig"), "").unwrap();
        assert_eq!(scope_file(&env, Some(""), None).unwrap(), home.path().join(".gitconfig"));
        let env2 = ConfigEnv {
            git_config_global: Some("/g".into()),
            git_config_system: Some("/s".into()),
            ..env.clone()
        };
        assert_eq!(scope_file(&env2, None, None).unwrap(), PathBuf::from("/g"));
        assert_eq!(scope_file(&env2, Some("system"), None).unwrap(), PathBuf::from("/s"));
        assert_eq!(scope_file(&env, Some("local"), None).unwrap_err().kind, Kind::BadRequest);
        assert_eq!(scope_file(&env, Some("worktree"), None).unwrap_err().kind, Kind::BadRequest);
        assert_eq!(scope_file(&env, Some("local"), Some(home.path())).unwrap_err().kind, Kind::RepoNotFound);
        std::fs::create_dir(home.path().join(".git")).unwrap();
        assert_eq!(
            scope_file(&env, Some("local"), Some(home.path())).unwrap(),
            home.path().join(".git/config")
        );
    }

    #[test]
    fn get_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a/b/config");
        assert_eq!(get(&f, "user.name").unwrap(), None);
        set(&f, "user.name", "Ann").unwrap();
        set(&f, "url.https://x/.insteadOf", "gh:").unwrap();
        assert_eq!(get(&f, "user.name").unwrap().as_deref(), Some("Ann"));
        assert_eq!(get(&f, "USER.NAME").unwrap().as_deref(), Some("Ann"));
        assert_eq!(get(&f, "url.https://x/.insteadof").unwrap().as_deref(), Some("gh:"));
        std::fs::write(&f, "[a]\n\tv = 1\n\tv = 2\n").unwrap();
        assert_eq!(get(&f, "a.v").unwrap().as_deref(), Some("2"));
        set(&f, "a.v", "3").unwrap();
        assert_eq!(get(&f, "a.v").unwrap().as_deref(), Some("3"));
        // A config path that loops is the path's fault, not an internal error.
        let looped = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &looped).unwrap();
        assert_eq!(get(&looped, "a.v").unwrap_err().kind, Kind::InvalidPath);
        assert_eq!(set(&looped, "a.v", "1").unwrap_err().kind, Kind::InvalidPath);
        assert_eq!(set(&looped.join("config"), "a.v", "1").unwrap_err().kind, Kind::InvalidPath);
    }

    #[test]
    fn writers_wait_for_a_held_lock_and_name_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config");
        // Concurrent writers with no lock of ours around them: git alone would fail all but one.
        std::thread::scope(|s| {
            for i in 0..8 {
                let f = &f;
                s.spawn(move || set(f, &format!("s.k{i}"), "v").unwrap());
            }
        });
        for i in 0..8 {
            assert_eq!(get(&f, &format!("s.k{i}")).unwrap().as_deref(), Some("v"), "k{i}");
        }
        // A lock another process releases soon is waited for.
        let lock = dir.path().join("config.lock");
        std::fs::write(&lock, "").unwrap();
        let release = std::thread::spawn({
            let lock = lock.clone();
            move || {
                std::thread::sleep(Duration::from_millis(150));
                std::fs::remove_file(lock).unwrap();
            }
        });
        set(&f, "user.name", "Ann").unwrap();
        release.join().unwrap();
        assert_eq!(get(&f, "user.name").unwrap().as_deref(), Some("Ann"));
        // One that stays is a conflict that says what to do, and the file keeps its content.
        std::fs::write(&lock, "").unwrap();
        let started = Instant::now();
        let err = set(&f, "user.name", "Bob").unwrap_err();
        assert!(started.elapsed() >= LOCK_WAIT - Duration::from_millis(200), "{:?}", started.elapsed());
        assert_eq!(err.kind, Kind::Conflict, "{err:?}");
        assert!(err.message.contains("lock"), "{}", err.message);
        assert_eq!(get(&f, "user.name").unwrap().as_deref(), Some("Ann"));
    }
}
