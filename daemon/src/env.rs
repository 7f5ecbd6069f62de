//! The environment of the processes the daemon starts.
//!
//! `POST /env` changes what later children see. Calling `setenv` in a multi-threaded process is
//! unsound, so the daemon never changes its own environment: it keeps the child environment here,
//! seeded from its own at start, and builds every child's environment from it plus the request's
//! variables.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::RwLock;

/// A change requested through `POST /env`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvUpdate {
    pub set: BTreeMap<String, String>,
    pub unset: Vec<String>,
    pub unset_value_prefix: Option<String>,
}

/// Why an update was refused. Nothing is applied when any part is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("environment variable name must not be empty")]
    EmptyName,
    #[error("invalid environment variable name {0:?}: it must not contain '=' or NUL")]
    BadName(String),
    #[error("value of environment variable {0:?} must not contain NUL")]
    BadValue(String),
}

/// The environment handed to every child process.
#[derive(Debug, Default)]
pub struct ChildEnv {
    vars: RwLock<BTreeMap<OsString, OsString>>,
}

/// Configuration the daemon reads and its children must not see: the SSH gateway password, the
/// API token and the signing key of file URLs (and where their files are: nothing a user's
/// program needs).
pub const SECRET_VARS: &[&str] = &[
    "DAYTONA_SSH_PASSWORD",
    "DAYTONA_AUTH_TOKEN",
    "DAYTONA_AUTH_TOKEN_FILE",
    "DAYTONA_SIGNING_KEY",
    "DAYTONA_SIGNING_KEY_FILE",
];

impl ChildEnv {
    pub fn new(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        ChildEnv { vars: RwLock::new(vars.into_iter().collect()) }
    }

    /// Seeded from the daemon's own environment, less the variables that hold the daemon's own
    /// secrets ([`SECRET_VARS`]): every process a user starts would otherwise read them.
    pub fn from_process() -> Self {
        Self::without_secrets(std::env::vars_os())
    }

    /// `vars` less [`SECRET_VARS`].
    pub fn without_secrets(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        Self::new(vars.into_iter().filter(|(k, _)| !SECRET_VARS.iter().any(|s| k == *s)))
    }

    /// One variable, as a child would see it.
    pub fn get(&self, name: &str) -> Option<OsString> {
        self.read().get(OsStr::new(name)).cloned()
    }

    /// The whole environment, with `extra` applied on top.
    pub fn snapshot_with<'a>(
        &self,
        extra: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(OsString, OsString)> {
        let mut vars = self.read().clone();
        for (k, v) in extra {
            vars.insert(k.into(), v.into());
        }
        vars.into_iter().collect()
    }

    /// The environment for a child started in `cwd`: [`ChildEnv::snapshot_with`], with `PWD`
    /// naming `cwd`.
    ///
    /// Shells trust an inherited `PWD` only when it names their working directory; otherwise
    /// they work the path out themselves, and zsh does that by reading every directory from the
    /// working directory up to the root — the largest part of its start-up in a busy `/tmp`.
    /// The value given is the one the shell would have arrived at: an inherited `PWD` that
    /// already names `cwd` (perhaps through a symlink) is kept, as the shell would keep it, and
    /// otherwise it is the physical path, which the shell would have computed. A `PWD` in
    /// `extra` is the caller's choice and is left alone.
    pub fn snapshot_in<'a>(
        &self,
        cwd: &std::path::Path,
        extra: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(OsString, OsString)> {
        let mut vars = self.read().clone();
        let mut pwd_given = false;
        for (k, v) in extra {
            pwd_given |= k == "PWD";
            vars.insert(k.into(), v.into());
        }
        if !pwd_given && let Some(pwd) = pwd_for(cwd, vars.get(OsStr::new("PWD"))) {
            vars.insert("PWD".into(), pwd);
        }
        vars.into_iter().collect()
    }

    /// Applies `unset`, then `unsetValuePrefix` (sparing names that `set` assigns), then `set`.
    pub fn apply(&self, update: &EnvUpdate) -> Result<(), EnvError> {
        for name in update.set.keys().chain(update.unset.iter()) {
            validate_name(name)?;
        }
        if let Some((name, _)) = update.set.iter().find(|(_, v)| v.contains('\0')) {
            return Err(EnvError::BadValue(name.clone()));
        }
        let mut vars = self.vars.write().unwrap_or_else(|e| e.into_inner());
        for name in &update.unset {
            vars.remove(OsStr::new(name));
        }
        if let Some(prefix) = update.unset_value_prefix.as_deref().filter(|p| !p.is_empty()) {
            vars.retain(|name, value| {
                let spared = name.to_str().is_some_and(|n| update.set.contains_key(n));
                spared || !value.as_bytes().starts_with(prefix.as_bytes())
            });
        }
        for (name, value) in &update.set {
            vars.insert(name.into(), value.into());
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<OsString, OsString>> {
        self.vars.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `PWD` a shell started in `cwd` settles on, given the inherited one; `None` when `cwd`
/// cannot be resolved (the start fails on it anyway).
fn pwd_for(cwd: &std::path::Path, inherited: Option<&OsString>) -> Option<OsString> {
    let physical = std::fs::canonicalize(cwd).ok()?;
    if let Some(old) = inherited
        && (old.as_os_str() == physical.as_os_str()
            || std::fs::canonicalize(old).is_ok_and(|p| p == physical))
    {
        return Some(old.clone());
    }
    Some(physical.into_os_string())
}

fn validate_name(name: &str) -> Result<(), EnvError> {
    if name.is_empty() {
        Err(EnvError::EmptyName)
    } else if name.contains(['=', '\0']) {
        Err(EnvError::BadName(name.to_string()))
    } else {
        Ok(())
    }
}

/// Whether `name` may be passed as a per-request variable to execute and code-run:
/// `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn is_portable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ChildEnv {
        ChildEnv::new(pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))))
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn unset_then_prefix_then_set() {
        let e = env(&[("A", "1"), ("SECRET1", "ph:x"), ("SECRET2", "ph:y"), ("KEEP", "v")]);
        e.apply(&EnvUpdate {
            set: set(&[("SECRET2", "ph:real"), ("A", "2"), ("NEW", "n")]),
            unset: vec!["A".into(), "KEEP".into()],
            unset_value_prefix: Some("ph:".into()),
        })
        .unwrap();
        assert_eq!(e.get("A"), Some("2".into()), "a name in unset and set ends up set");
        assert_eq!(e.get("SECRET1"), None);
        assert_eq!(e.get("SECRET2"), Some("ph:real".into()), "names in set are spared by the prefix");
        assert_eq!(e.get("KEEP"), None);
        assert_eq!(e.get("NEW"), Some("n".into()));
    }

    #[test]
    fn invalid_updates_change_nothing() {
        let e = env(&[("A", "1")]);
        assert_eq!(
            e.apply(&EnvUpdate { set: set(&[("", "x")]), ..Default::default() }),
            Err(EnvError::EmptyName)
        );
        assert_eq!(
            e.apply(&EnvUpdate {
                set: set(&[("B", "1"), ("X=Y", "x")]),
                unset: vec!["A".into()],
                ..Default::default()
            }),
            Err(EnvError::BadName("X=Y".into()))
        );
        assert_eq!(
            e.apply(&EnvUpdate { set: set(&[("B", "a\0b")]), ..Default::default() }),
            Err(EnvError::BadValue("B".into()))
        );
        assert_eq!(e.get("A"), Some("1".into()));
        assert_eq!(e.get("B"), None);
    }

    #[test]
    fn request_variables_win() {
        let e = env(&[("A", "1"), ("B", "2")]);
        let snap = e.snapshot_with([("A", "x")]);
        assert!(snap.contains(&("A".into(), "x".into())));
        assert!(snap.contains(&("B".into(), "2".into())));
    }

    #[test]
    fn pwd_names_the_working_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("d")).unwrap();
        std::os::unix::fs::symlink(real.join("d"), real.join("link")).unwrap();
        let pwd = |e: &ChildEnv, cwd: &std::path::Path, extra: &[(&str, &str)]| {
            e.snapshot_in(cwd, extra.iter().copied())
                .into_iter()
                .find(|(k, _)| k == "PWD")
                .map(|(_, v)| v.into_string().unwrap())
        };
        let d = real.join("d").to_str().unwrap().to_string();
        let link = real.join("link").to_str().unwrap().to_string();
        // No PWD, or a stale one: the physical path, as the shell would compute it.
        assert_eq!(pwd(&env(&[]), &real.join("link"), &[]), Some(d.clone()));
        assert_eq!(pwd(&env(&[("PWD", "/")]), &real.join("d"), &[]), Some(d.clone()));
        // One that names the directory through a symlink is kept, as the shell keeps it.
        assert_eq!(pwd(&env(&[("PWD", &link)]), &real.join("d"), &[]), Some(link.clone()));
        // The request's own PWD wins; a missing directory gets no guess.
        assert_eq!(pwd(&env(&[]), &real.join("d"), &[("PWD", "/x")]), Some("/x".into()));
        assert_eq!(pwd(&env(&[("PWD", "/")]), &real.join("gone"), &[]), Some("/".into()));
    }

    #[test]
    fn the_daemons_secrets_are_not_handed_down() {
        let e = ChildEnv::without_secrets(
            [
                ("PATH", "/bin"),
                ("DAYTONA_AUTH_TOKEN", "t"),
                ("DAYTONA_AUTH_TOKEN_FILE", "/run/t"),
                ("DAYTONA_SIGNING_KEY", "k"),
                ("DAYTONA_SIGNING_KEY_FILE", "/run/k"),
                ("DAYTONA_SSH_PASSWORD", "p"),
            ]
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        let names: Vec<_> = e.snapshot_with([]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, [OsString::from("PATH")]);
    }

    #[test]
    fn portable_names() {
        for ok in ["A", "_x", "PATH_2"] {
            assert!(is_portable_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "É"] {
            assert!(!is_portable_name(bad), "{bad}");
        }
    }
}
