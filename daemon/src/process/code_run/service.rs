//! Running a program for `POST /process/code-run`: in a fresh shell, exactly like
//! `/process/execute` runs a command, then the chart artifact lines taken out of its output.
//!
//! Python code that imports matplotlib runs under our chart wrapper (`chart_wrapper.py`), which
//! prints one artifact line per figure on `plt.show()`; [`chart`](super::chart) turns those
//! lines into typed charts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tempfile::TempPath;

use super::chart::{self, Chart};
use super::detect::uses_matplotlib;
use super::script;
use crate::env::ChildEnv;
use crate::process::execute::{self, ExecError, ExecSpec};
use crate::reaper::Reaper;

/// The chart wrapper program; the user code is prepended to it as `_DTN_CODE = "<base64>"`.
const CHART_WRAPPER: &str = include_str!("chart_wrapper.py");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
}

impl Language {
    /// `python`, `javascript` or `typescript`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "python" => Some(Language::Python),
            "javascript" => Some(Language::JavaScript),
            "typescript" => Some(Language::TypeScript),
            _ => None,
        }
    }
}

/// A program to run, already validated.
#[derive(Debug)]
pub struct CodeRun {
    pub language: Language,
    pub code: String,
    pub argv: Vec<String>,
    pub envs: BTreeMap<String, String>,
    /// `None`: no limit.
    pub timeout: Option<Duration>,
}

/// How the program ended and what it showed.
#[derive(Debug)]
pub struct Output {
    pub exit_code: i32,
    /// Combined stdout and stderr, without the chart artifact lines.
    pub result: String,
    pub charts: Vec<Chart>,
}

/// Why there is no [`Output`].
#[derive(Debug, thiserror::Error)]
pub enum CodeRunError {
    /// The command runner's failure: the time-out, or pipes it could not set up.
    #[error(transparent)]
    Exec(ExecError),
    /// A background task of ours failed.
    #[error("{0}")]
    Internal(String),
}

/// The Python program to run: the user code itself, or the chart wrapper around it.
pub fn python_program(code: &str) -> String {
    if uses_matplotlib(code) {
        format!("_DTN_CODE = \"{}\"\n{CHART_WRAPPER}", crate::text::base64_encode(code.as_bytes()))
    } else {
        code.to_string()
    }
}

/// Runs the program in a fresh shell in `work_dir` (see `execute::run_script`) and extracts its charts.
pub async fn run(
    reaper: &Reaper,
    env: &ChildEnv,
    work_dir: &Path,
    run: CodeRun,
) -> Result<Output, CodeRunError> {
    let (exit_code, output) = run_program(reaper, env, work_dir, run).await?;
    // Chart lines carry PNGs and can be large: decode them off the async workers.
    let (result, charts) = tokio::task::spawn_blocking(move || chart::extract(output))
        .await
        .map_err(|e| CodeRunError::Internal(e.to_string()))?;
    Ok(Output { exit_code, result, charts })
}

async fn run_program(
    reaper: &Reaper,
    env: &ChildEnv,
    work_dir: &Path,
    run: CodeRun,
) -> Result<(i32, String), CodeRunError> {
    let mut envs = run.envs;
    // Kept until the program is done (or killed), then removed.
    let mut ts_file: Option<TempPath> = None;
    let command = match run.language {
        Language::Python => script::piped(&python_program(&run.code), "python3 -u -", &run.argv),
        Language::JavaScript => script::piped(&script::with_argv_fix(&run.code), "node -", &run.argv),
        Language::TypeScript => {
            let program = script::with_argv_fix(&run.code);
            let dir = std::env::temp_dir();
            let written = {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || write_ts_file(&dir, &program))
                    .await
                    .map_err(|e| CodeRunError::Internal(e.to_string()))?
            };
            // Like any other failure to start the program: a result, not an error.
            let path = match written {
                Ok(path) => path,
                Err(e) => {
                    let detail = crate::text::os_error_text(&e);
                    return Ok((-1, format!("cannot write the program to {}: {detail}", dir.display())));
                }
            };
            envs.entry("npm_config_loglevel".into()).or_insert_with(|| "error".into());
            let command = script::ts_node(&path, &run.argv);
            ts_file = Some(path);
            command
        }
    };
    let spec = ExecSpec { command, cwd: work_dir.to_path_buf(), timeout: run.timeout, envs };
    let outcome = execute::run_script(reaper, env, spec).await;
    if let Some(path) = ts_file {
        // Unlinking is a filesystem call: off the async workers. Awaited, so the file is gone
        // when the caller gets the answer (a timeout's 408 included).
        let _ = tokio::task::spawn_blocking(move || drop(path)).await;
    }
    outcome.map_err(CodeRunError::Exec)
}

/// Writes the program to a new file `dtn_<random>.ts` in `dir`, created exclusively with mode
/// 0600, which is removed when the returned path is dropped.
fn write_ts_file(dir: &Path, program: &str) -> std::io::Result<TempPath> {
    use std::io::Write;
    let mut file = tempfile::Builder::new().prefix("dtn_").suffix(".ts").rand_bytes(12).tempfile_in(dir)?;
    file.write_all(program.as_bytes())?;
    file.flush()?;
    Ok(file.into_temp_path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn languages() {
        assert_eq!(Language::parse("python"), Some(Language::Python));
        assert_eq!(Language::parse("javascript"), Some(Language::JavaScript));
        assert_eq!(Language::parse("typescript"), Some(Language::TypeScript));
        assert_eq!(Language::parse("Python"), None);
        assert_eq!(Language::parse(""), None);
    }

    #[test]
    fn wrapper_only_for_matplotlib() {
        assert_eq!(python_program("print(1)"), "print(1)");
        let wrapped = python_program("import matplotlib.pyplot as plt\n");
        assert!(
            wrapped.starts_with("_DTN_CODE = \"aW1wb3J0IG1hdHBsb3RsaWIucHlwbG90IGFzIHBsdAo=\"\n"),
            "{wrapped}"
        );
        assert!(wrapped.contains(chart::MARKER));
    }

    #[test]
    fn ts_file_is_private_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_ts_file(dir.path(), "let x = 1;").unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("dtn_") && name.ends_with(".ts"), "{name}");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "let x = 1;");
        let kept = path.to_path_buf();
        drop(path);
        assert!(!kept.exists());
    }
}
