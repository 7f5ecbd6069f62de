//! The shell scripts that run code: user code travels base64-encoded, so no quoting of it is
//! ever needed, and argv items are single-quoted so each stays one argument.

use std::path::Path;

fn args(argv: &[String]) -> String {
    argv.iter().map(|a| format!(" {}", crate::shell::quote(a))).collect()
}

/// Pipes `program` into `interpreter` (e.g. `python3 -u -`), followed by the arguments.
pub fn piped(program: &str, interpreter: &str, argv: &[String]) -> String {
    format!(
        "printf '%s' '{}' | base64 -d | {interpreter}{}\n",
        crate::text::base64_encode(program.as_bytes()),
        args(argv)
    )
}

/// JavaScript and TypeScript programs see `process.argv` as `[node, arg1, …]`: the script entry
/// (`-` or the file) is removed. The fix goes on the first line, so line numbers in errors stay
/// right; a `#!` line is replaced by it, which keeps numbering too.
pub fn with_argv_fix(code: &str) -> String {
    const FIX: &str = "process.argv.splice(1, 1);";
    match code.strip_prefix("#!") {
        Some(rest) => match rest.find('\n') {
            Some(nl) => format!("{FIX}{}", &rest[nl..]),
            None => FIX.to_string(),
        },
        None => format!("{FIX}{code}"),
    }
}

/// Runs a TypeScript file with `ts-node` when it is on PATH, else through `npx` (which finds a
/// project-local one or fetches it).
pub fn ts_node(file: &Path, argv: &[String]) -> String {
    let tail = format!(
        "ts-node -T --ignore-diagnostics 5107 -O '{{\"module\":\"CommonJS\"}}' {}{}",
        crate::shell::quote(&file.to_string_lossy()),
        args(argv)
    );
    format!("if command -v ts-node >/dev/null 2>&1; then {tail}; else npx {tail}; fi\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_script() {
        let s = piped("print(1)", "python3 -u -", &["a b".into(), "$X".into()]);
        assert_eq!(s, "printf '%s' 'cHJpbnQoMSk=' | base64 -d | python3 -u - 'a b' '$X'\n");
    }

    #[test]
    fn argv_fix_keeps_line_numbers() {
        assert_eq!(with_argv_fix("a\nb"), "process.argv.splice(1, 1);a\nb");
        assert_eq!(with_argv_fix("#!/usr/bin/env node\nb"), "process.argv.splice(1, 1);\nb");
        assert_eq!(with_argv_fix("#!node"), "process.argv.splice(1, 1);");
    }

    #[test]
    fn ts_node_script() {
        let s = ts_node(Path::new("/tmp/dtn_x.ts"), &["1".into()]);
        assert!(s.starts_with("if command -v ts-node >/dev/null 2>&1; then ts-node -T "), "{s}");
        assert!(s.contains(r#"-O '{"module":"CommonJS"}' '/tmp/dtn_x.ts' '1'; else npx ts-node"#), "{s}");
    }
}
