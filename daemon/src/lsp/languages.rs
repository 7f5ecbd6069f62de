//! Which command serves which language: the built-in table, overridden and extended by
//! `DAYTONA_LSP_SERVERS`. The reference starts a TypeScript server whatever the language; here a
//! language either maps to a server that is found, or the caller is told exactly why not.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;

use crate::which::find_program;

/// Built-in servers, in order of preference: the first one installed is used.
const BUILT_IN: &[(&str, &[&[&str]])] = &[
    ("python", &[&["pylsp"], &["pyright-langserver", "--stdio"], &["basedpyright-langserver", "--stdio"]]),
    ("typescript", &[&["typescript-language-server", "--stdio"]]),
    ("javascript", &[&["typescript-language-server", "--stdio"]]),
];

/// A command that was found: the program's path and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Why a language has no command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No entry for the language; the supported ones, sorted.
    Unsupported { supported: Vec<String> },
    /// Entries exist but none of their programs is installed; what was looked for.
    NotInstalled { looked_for: Vec<String> },
}

/// The language table.
#[derive(Debug, Clone, Default)]
pub struct Languages {
    configured: BTreeMap<String, Vec<String>>,
}

impl Languages {
    pub fn new(configured: BTreeMap<String, Vec<String>>) -> Self {
        Languages { configured }
    }

    /// The command lines that may serve `language`, best first. A configured entry replaces the
    /// built-in ones: whoever configures `python` means that server, not a fallback.
    fn candidates(&self, language: &str) -> Option<Vec<Vec<String>>> {
        if let Some(argv) = self.configured.get(language) {
            return Some(vec![argv.clone()]);
        }
        BUILT_IN
            .iter()
            .find(|(l, _)| *l == language)
            .map(|(_, cmds)| cmds.iter().map(|argv| argv.iter().map(|s| s.to_string()).collect()).collect())
    }

    pub fn supported(&self) -> Vec<String> {
        let mut all: Vec<String> = BUILT_IN.iter().map(|(l, _)| l.to_string()).collect();
        all.extend(self.configured.keys().cloned());
        all.sort();
        all.dedup();
        all
    }

    /// The command for `language`, looked up on `path` (the child environment's `PATH`).
    pub fn resolve(&self, language: &str, path: Option<&OsStr>) -> Result<Command, Missing> {
        let candidates =
            self.candidates(language).ok_or_else(|| Missing::Unsupported { supported: self.supported() })?;
        for argv in &candidates {
            if let Some(program) = find_program(&[argv[0].as_str()], path) {
                return Ok(Command { program, args: argv[1..].to_vec() });
            }
        }
        Err(Missing::NotInstalled { looked_for: candidates.iter().map(|argv| argv.join(" ")).collect() })
    }
}

/// The `languageId` a document is opened with: what its extension says when the server's
/// language has variants (`.tsx` is `typescriptreact` to a TypeScript server), else the server's.
pub fn document_language<'a>(server_language: &'a str, file: &std::path::Path) -> &'a str {
    let ext = file.extension().and_then(OsStr::to_str).unwrap_or("");
    match (server_language, ext) {
        ("typescript" | "javascript", "ts" | "mts" | "cts") => "typescript",
        ("typescript" | "javascript", "tsx") => "typescriptreact",
        ("typescript" | "javascript", "js" | "mjs" | "cjs") => "javascript",
        ("typescript" | "javascript", "jsx") => "javascriptreact",
        _ => server_language,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tool(dir: &std::path::Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn python_prefers_pylsp_then_pyright() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(dir.path().as_os_str());
        let langs = Languages::default();
        match langs.resolve("python", path).unwrap_err() {
            Missing::NotInstalled { looked_for } => assert_eq!(
                looked_for,
                ["pylsp", "pyright-langserver --stdio", "basedpyright-langserver --stdio"]
            ),
            other => panic!("{other:?}"),
        }
        let pyright = tool(dir.path(), "pyright-langserver");
        assert_eq!(
            langs.resolve("python", path).unwrap(),
            Command { program: pyright, args: vec!["--stdio".into()] }
        );
        let pylsp = tool(dir.path(), "pylsp");
        assert_eq!(langs.resolve("python", path).unwrap().program, pylsp);
    }

    #[test]
    fn configured_entries_replace_and_extend() {
        let dir = tempfile::tempdir().unwrap();
        let path = Some(dir.path().as_os_str());
        tool(dir.path(), "pylsp");
        let gopls = tool(dir.path(), "gopls");
        let langs = Languages::new(BTreeMap::from([
            ("go".to_string(), vec!["gopls".to_string(), "serve".to_string()]),
            ("python".to_string(), vec!["my-server".to_string()]),
        ]));
        assert_eq!(
            langs.resolve("go", path).unwrap(),
            Command { program: gopls, args: vec!["serve".into()] }
        );
        // pylsp is installed, but the configured python server is what was asked for.
        assert_eq!(
            langs.resolve("python", path).unwrap_err(),
            Missing::NotInstalled { looked_for: vec!["my-server".into()] }
        );
        assert_eq!(
            langs.resolve("cobol", path).unwrap_err(),
            Missing::Unsupported {
                supported: vec!["go".into(), "javascript".into(), "python".into(), "typescript".into()]
            }
        );
    }

    #[test]
    fn documents_take_the_variant_of_their_extension() {
        use std::path::Path;
        assert_eq!(document_language("typescript", Path::new("/a/b.tsx")), "typescriptreact");
        assert_eq!(document_language("typescript", Path::new("/a/b.js")), "javascript");
        assert_eq!(document_language("javascript", Path::new("/a/b.ts")), "typescript");
        assert_eq!(document_language("python", Path::new("/a/b.pyi")), "python");
        assert_eq!(document_language("go", Path::new("/a/b")), "go");
    }
}
