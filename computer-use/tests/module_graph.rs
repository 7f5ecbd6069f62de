//! Layers only point down: no file of the agent's library may reach itself again through the
//! modules it refers to (`use` trees, and `crate::`/`super::`/`self::`/child-module paths in
//! code). A child that takes `super::X` from a `mod.rs` that refers back to the child is such a
//! cycle; shared items belong in a leaf module.
//!
//! The check reads the sources: comments and literals are dropped, inline `mod name { … }`
//! blocks (tests) are tracked so `super` inside them resolves correctly, and a path resolves to
//! the deepest module of it that is a file of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module of the library: its path below `crate` (empty for lib.rs) and its file.
#[derive(Debug)]
struct ModFile {
    segments: Vec<String>,
    file: PathBuf,
}

fn collect(dir: &Path, root: &Path, out: &mut Vec<ModFile>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap();
        let mut segments: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        let last = segments.pop().unwrap();
        match last.as_str() {
            // The binary is a crate of its own; it only sees the library from outside.
            "main.rs" if segments.is_empty() => continue,
            "lib.rs" if segments.is_empty() => {}
            "mod.rs" => {}
            other => segments.push(other.trim_end_matches(".rs").to_owned()),
        }
        out.push(ModFile { segments, file: path });
    }
}

/// The source with comments, string and char literals blanked out (lengths kept, so nothing
/// inside a literal or comment looks like a path).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        // Raw strings: r"…", r#"…"#, br#"…"#.
        if (c == b'r' || (c == b'b' && b.get(i + 1) == Some(&b'r')))
            && !(i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let mut j = i + if c == b'b' { 2 } else { 1 };
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) == Some(&b'"') {
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1;
            continue;
        }
        if c == b'\'' {
            // A char literal ('x', '\n', '\u{…}'); otherwise a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
                continue;
            }
            let ch_len = src[i + 1..].chars().next().map(char::len_utf8).unwrap_or(1);
            if b.get(i + 1 + ch_len) == Some(&b'\'') {
                out.push_str("' '");
                i += 2 + ch_len;
                continue;
            }
        }
        let ch = src[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other(char),
}

fn tokenize(src: &str) -> Vec<Tok> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Tok::Sep);
            i += 2;
            continue;
        }
        if !c.is_whitespace() {
            out.push(match c {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                other => Tok::Other(other),
            });
        }
        i += 1;
    }
    out
}

/// Expands one use tree starting at `toks[*i]` into full paths.
fn use_tree(toks: &[Tok], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match toks.get(*i) {
            Some(Tok::Ident(name)) => {
                path.push(name.clone());
                *i += 1;
                // `as alias`
                if let Some(Tok::Ident(kw)) = toks.get(*i)
                    && kw == "as"
                {
                    *i += 2;
                }
            }
            Some(Tok::Star) => {
                *i += 1;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some(Tok::Close) => {
                            *i += 1;
                            break;
                        }
                        Some(Tok::Comma) => *i += 1,
                        None => return,
                        _ => use_tree(toks, i, path.clone(), out),
                    }
                }
                return;
            }
            _ => break,
        }
        match toks.get(*i) {
            Some(Tok::Sep) => *i += 1,
            _ => break,
        }
    }
    // `use a::b::{self}` pushes `self` last; it names `a::b`.
    if path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    out.push(path);
}

/// Every module path a file refers to, with the inline-module depth it was written at.
fn references(src: &str) -> Vec<(usize, Vec<String>)> {
    let toks = tokenize(&strip(src));
    let mut out = Vec::new();
    // Brace depths at which inline `mod name {` blocks opened.
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => {
                depth += 1;
                i += 1;
            }
            Tok::Close => {
                if inline_mods.last() == Some(&depth) {
                    inline_mods.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(Tok::Ident(_)), Some(Tok::Open)) = (toks.get(i + 1), toks.get(i + 2)) {
                    inline_mods.push(depth + 1);
                }
                i += 1;
            }
            Tok::Ident(kw) if kw == "use" && !matches!(toks.get(i.wrapping_sub(1)), Some(Tok::Sep)) => {
                i += 1;
                let mut paths = Vec::new();
                // A leading `::` means an external crate.
                if toks.get(i) != Some(&Tok::Sep) {
                    use_tree(&toks, &mut i, Vec::new(), &mut paths);
                }
                out.extend(paths.into_iter().map(|p| (inline_mods.len(), p)));
            }
            Tok::Ident(first) if !matches!(toks.get(i.wrapping_sub(1)), Some(Tok::Sep)) => {
                // A path in code: `first::a::b…`.
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Sep) {
                    match toks.get(j + 1) {
                        Some(Tok::Ident(seg)) => {
                            path.push(seg.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                if path.len() > 1 {
                    out.push((inline_mods.len(), path));
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
    out
}

/// The file a path written in module `here` (at `inline` levels of inline modules) refers to.
fn resolve(
    here: &[String],
    inline: usize,
    path: &[String],
    files: &BTreeMap<Vec<String>, usize>,
) -> Option<usize> {
    let (mut base, rest): (Vec<String>, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (here.to_vec(), &path[1..]),
        "super" => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            // `super` inside an inline module first climbs out of the inline modules.
            if supers <= inline {
                return None;
            }
            let up = supers - inline;
            if up > here.len() {
                return None;
            }
            (here[..here.len() - up].to_vec(), &path[supers..])
        }
        _ => {
            // A child module of this file (`use bus::Calls` in a mod.rs), else not ours.
            let mut child = here.to_vec();
            child.push(path[0].clone());
            if inline > 0 || !files.contains_key(&child) {
                return None;
            }
            (here.to_vec(), path)
        }
    };
    let mut found = files.get(&base).copied();
    for seg in rest {
        base.push(seg.clone());
        match files.get(&base) {
            Some(f) => found = Some(*f),
            None => break,
        }
    }
    found
}

fn graph() -> (Vec<ModFile>, Vec<BTreeSet<usize>>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut mods = Vec::new();
    collect(&root, &root, &mut mods);
    let index: BTreeMap<Vec<String>, usize> =
        mods.iter().enumerate().map(|(i, m)| (m.segments.clone(), i)).collect();
    let edges = mods
        .iter()
        .enumerate()
        .map(|(me, m)| {
            let src = std::fs::read_to_string(&m.file).unwrap();
            references(&src)
                .into_iter()
                .filter_map(|(inline, path)| resolve(&m.segments, inline, &path, &index))
                .filter(|target| *target != me)
                .collect()
        })
        .collect();
    (mods, edges)
}

fn name(m: &ModFile) -> String {
    if m.segments.is_empty() { "crate".into() } else { m.segments.join("::") }
}

#[test]
fn no_module_refers_back_to_itself() {
    let (mods, edges) = graph();
    // Depth-first search; a back edge closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: usize,
        edges: &[BTreeSet<usize>],
        mark: &mut [Mark],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        mark[n] = Mark::Open;
        stack.push(n);
        for &m in &edges[n] {
            match mark[m] {
                Mark::New => visit(m, edges, mark, stack, cycles),
                Mark::Open => {
                    let from = stack.iter().position(|x| *x == m).unwrap();
                    cycles.push(stack[from..].to_vec());
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark[n] = Mark::Done;
    }
    let mut mark = vec![Mark::New; mods.len()];
    let mut cycles = Vec::new();
    for n in 0..mods.len() {
        if mark[n] == Mark::New {
            visit(n, &edges, &mut mark, &mut Vec::new(), &mut cycles);
        }
    }
    let shown: Vec<String> = cycles
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|i| name(&mods[*i])).collect();
            names.push(names[0].clone());
            names.join(" -> ")
        })
        .collect();
    assert!(shown.is_empty(), "module import cycles:\n{}", shown.join("\n"));
}

#[test]
fn services_know_nothing_of_http_or_the_app_state() {
    let (mods, edges) = graph();
    let find = |segs: &[&str]| mods.iter().position(|m| m.segments == segs);
    // The agent's ApiError lives in `error`: only api.rs files turn domain errors into it.
    let forbidden: Vec<usize> =
        [find(&["state"]), find(&["server"]), find(&["error"])].into_iter().flatten().collect();
    for (i, m) in mods.iter().enumerate() {
        let file = m.segments.last().map(String::as_str).unwrap_or("");
        // api.rs files are the HTTP side; the state and the router assemble everything; the
        // error module is the HTTP error itself.
        if matches!(file, "api" | "state" | "server" | "") || m.segments == ["error"] {
            continue;
        }
        for &t in &edges[i] {
            let target = &mods[t];
            assert!(
                !forbidden.contains(&t) && target.segments.last().map(String::as_str) != Some("api"),
                "{} refers to {}: a service must not know the HTTP layer",
                name(m),
                name(target)
            );
        }
    }
}

#[test]
fn the_checker_sees_use_trees_code_paths_and_inline_modules() {
    let src = r#"
        use super::{bus::Calls, node::{self, NodeRef}};
        use crate::error::ApiError as E;
        // use crate::commented::Out;
        const S: &str = "crate::in_string::X";
        fn f() { crate::x11::conn::Conn::open(); walk::run(); }
        mod tests { use super::*; mod live { use super::super::*; use crate::a11y::fake::serve; } }
    "#;
    let refs: Vec<(usize, String)> = references(src).into_iter().map(|(d, p)| (d, p.join("::"))).collect();
    let want = [
        (0, "super::bus::Calls"),
        (0, "super::node"),
        (0, "super::node::NodeRef"),
        (0, "crate::error::ApiError"),
        (0, "crate::x11::conn::Conn::open"),
        (0, "walk::run"),
        (1, "super"),
        (2, "super::super"),
        (2, "crate::a11y::fake::serve"),
    ];
    let want: Vec<(usize, String)> = want.iter().map(|(d, p)| (*d, p.to_string())).collect();
    assert_eq!(refs, want);

    let files: BTreeMap<Vec<String>, usize> = [
        (vec![], 0),
        (vec!["a11y".to_string()], 1),
        (vec!["a11y".to_string(), "bus".to_string()], 2),
        (vec!["a11y".to_string(), "walk".to_string()], 3),
    ]
    .into_iter()
    .collect();
    let here = ["a11y".to_string(), "walk".to_string()];
    let path = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(resolve(&here, 0, &path("super::bus::Calls"), &files), Some(2));
    assert_eq!(resolve(&here, 0, &path("super::NODE_BUDGET"), &files), Some(1));
    assert_eq!(resolve(&here, 1, &path("super"), &files), None, "the test module's parent is the file");
    assert_eq!(resolve(&here, 1, &path("super::super::bus"), &files), Some(2));
    assert_eq!(resolve(&["a11y".to_string()], 0, &path("walk::Walk"), &files), Some(3));
    assert_eq!(resolve(&here, 0, &path("std::sync::Arc"), &files), None);
}
