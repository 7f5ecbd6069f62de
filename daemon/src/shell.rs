//! Which shell runs user commands (execute, code-run, sessions, PTYs, terminals), and how text
//! is quoted for it.
//!
//! The contract fixes the choice because it is visible to users (quoting, `read`, traps): the
//! first of zsh and bash found in `/etc/shells` (zsh preferred, by substring, without checking
//! that the file exists), else `$SHELL` when set, else `sh`; and plain `sh` when `/etc/shells` is
//! missing or has no entries.

use std::path::Path;

use crate::env::ChildEnv;

const PREFERRED: [&str; 4] = ["/usr/bin/zsh", "/bin/zsh", "/usr/bin/bash", "/bin/bash"];

/// The shell for a new process, looked up afresh so that installing zsh takes effect.
pub fn select(env: &ChildEnv) -> String {
    let listed = std::fs::read_to_string(Path::new("/etc/shells")).ok();
    let shell_var = env.get("SHELL").map(|s| s.to_string_lossy().into_owned());
    choose(listed.as_deref(), shell_var.as_deref())
}

/// The choice itself, given the contents of `/etc/shells` and `$SHELL`.
pub fn choose(etc_shells: Option<&str>, shell_var: Option<&str>) -> String {
    // The reference asks `grep '^[^#]' /etc/shells`: lines that are neither comments nor empty.
    // A missing file or no such line makes that command fail, and then it falls back to `sh`.
    let entries: Vec<&str> = etc_shells
        .map(|s| s.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect())
        .unwrap_or_default();
    if entries.is_empty() {
        return "sh".into();
    }
    let listing = entries.join("\n");
    if let Some(found) = PREFERRED.iter().find(|p| listing.contains(*p)) {
        return (*found).to_string();
    }
    shell_var.map_or_else(|| "sh".to_string(), str::to_string)
}

/// Quotes `s` as one shell word with exactly its text: single quotes, with `'` written as
/// `'\''`. Valid in every POSIX shell, zsh included.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::{choose, quote};

    #[test]
    fn quoting() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME `x` \\"), r"'$HOME `x` \'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn preference_order() {
        assert_eq!(choose(Some("/bin/sh\n/bin/bash\n/usr/bin/zsh\n"), None), "/usr/bin/zsh");
        assert_eq!(choose(Some("# c\n/bin/sh\n/usr/bin/bash\n"), Some("/bin/fish")), "/usr/bin/bash");
        // Substring match, as the reference does.
        assert_eq!(choose(Some("/opt/bin/zsh5\n/bin/zsh-static\n"), None), "/bin/zsh");
    }

    #[test]
    fn fallbacks() {
        assert_eq!(choose(Some("/bin/sh\n/bin/dash\n"), Some("/bin/fish")), "/bin/fish");
        assert_eq!(choose(Some("/bin/sh\n"), Some("")), "", "an empty $SHELL counts as set");
        assert_eq!(choose(Some("/bin/sh\n"), None), "sh");
        assert_eq!(choose(None, Some("/bin/fish")), "sh");
        assert_eq!(choose(Some("# only comments\n\n"), Some("/bin/fish")), "sh");
    }
}
