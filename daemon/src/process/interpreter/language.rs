//! The languages a context can speak, and the worker program of each.

const PYTHON_WORKER: &str = include_str!("worker.py");
const JS_WORKER: &str = include_str!("worker.js");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Javascript,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Python, Language::Javascript];

    /// `None`, empty and `python` are Python; `javascript` is JavaScript.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("") {
            "" | "python" => Ok(Language::Python),
            "javascript" => Ok(Language::Javascript),
            other => Err(format!(
                "unsupported language: {other} (only 'python' and 'javascript' are supported currently)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Javascript => "javascript",
        }
    }

    /// Interpreters to look for on the child `PATH`, in order (process.md §6.1).
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Language::Python => &["python3", "python"],
            Language::Javascript => &["node", "nodejs"],
        }
    }

    pub fn script_name(self) -> &'static str {
        match self {
            Language::Python => "daytona_repl_worker.py",
            Language::Javascript => "daytona_repl_worker.js",
        }
    }

    pub fn script(self) -> &'static str {
        match self {
            Language::Python => PYTHON_WORKER,
            Language::Javascript => JS_WORKER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        assert_eq!(Language::parse(None), Ok(Language::Python));
        assert_eq!(Language::parse(Some("")), Ok(Language::Python));
        assert_eq!(Language::parse(Some("python")), Ok(Language::Python));
        assert_eq!(Language::parse(Some("javascript")), Ok(Language::Javascript));
        assert_eq!(
            Language::parse(Some("ruby")).unwrap_err(),
            "unsupported language: ruby (only 'python' and 'javascript' are supported currently)"
        );
    }
}
