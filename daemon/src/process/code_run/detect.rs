//! Whether Python code imports matplotlib, so that it runs under the chart wrapper.
//!
//! The same patterns as the reference, checked on each line before any `#`: `import` or `from`
//! followed by whitespace and `matplotlib`; `__import__(`, `importlib.import_module(` or
//! `loader.load_module(` followed by optional whitespace and a quoted `matplotlib`; and
//! `sys.modules['matplotlib']`. A false positive only costs the wrapper's small start-up.

pub fn uses_matplotlib(code: &str) -> bool {
    code.lines().any(|line| {
        let line = line.split('#').next().unwrap_or_default();
        line.contains("matplotlib") && line_imports_matplotlib(line)
    })
}

fn line_imports_matplotlib(line: &str) -> bool {
    let quoted = |call: &str| {
        followed_by(line, call, false, "'matplotlib") || followed_by(line, call, false, "\"matplotlib")
    };
    followed_by(line, "import", true, "matplotlib")
        || followed_by(line, "from", true, "matplotlib")
        || quoted("__import__(")
        || quoted("importlib.import_module(")
        || quoted("loader.load_module(")
        || line.contains("sys.modules['matplotlib']")
        || line.contains("sys.modules[\"matplotlib\"]")
}

/// Whether some occurrence of `keyword` is followed by whitespace (required or optional) and
/// then `rest`.
fn followed_by(line: &str, keyword: &str, space_required: bool, rest: &str) -> bool {
    line.match_indices(keyword).any(|(at, _)| {
        let after = &line[at + keyword.len()..];
        let trimmed = after.trim_start_matches(|c: char| c.is_ascii_whitespace());
        (!space_required || trimmed.len() < after.len()) && trimmed.starts_with(rest)
    })
}

#[cfg(test)]
mod tests {
    use super::uses_matplotlib;

    #[test]
    fn detects_imports() {
        for code in [
            "import matplotlib.pyplot as plt",
            "x = 1\nfrom matplotlib import pyplot",
            "import\tmatplotlib",
            "  import matplotlib  # indented",
            "plt = __import__( 'matplotlib.pyplot')",
            "m = importlib.import_module(\"matplotlib\")",
            "m = loader.load_module('matplotlib')",
            "m = sys.modules['matplotlib']",
            "m = sys.modules[\"matplotlib\"]",
            "if True: import matplotlib",
        ] {
            assert!(uses_matplotlib(code), "{code:?}");
        }
    }

    #[test]
    fn ignores_comments_and_look_alikes() {
        for code in [
            "print(1)",
            "# import matplotlib",
            "x = 1  # from matplotlib import pyplot",
            "importmatplotlib = 1",
            "s = 'matplotlib'",
            "__import__(matplotlib)",
            "sys.modules[matplotlib]",
            "",
        ] {
            assert!(!uses_matplotlib(code), "{code:?}");
        }
    }
}
