"""The code's structure, read from its source: no import cycle between modules, and no route
taking input around the typed request layer.

An edge A -> B exists when file A names an item of module B (a `use` of it, or a
`crate::…`/`super::…`/`self::…` path in code). A module using its own submodules is how Rust
code is built (a `mod.rs` declares and assembles its children), so an edge from a module to
one of its descendants does not count; every other edge does. A cycle among the counted edges
fails the test, naming the files and the items that tie them. Test modules (`#[cfg(test)]`)
are left out: they import what they test.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CRATES = [p.parent for p in sorted(REPO.glob("*/Cargo.toml")) if (p.parent / "src").is_dir()]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(source: str) -> str:
    """Source without comments, string literals and the test module."""
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    source = re.sub(r"//[^\n]*", " ", source)
    source = re.sub(r'r(#*)".*?"\1', '""', source, flags=re.S)
    source = re.sub(r'"(?:\\.|[^"\\])*"', '""', source, flags=re.S)
    source = re.sub(r"'(?:\\.|[^'\\])'", "' '", source)
    cut = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+" + IDENT, source)
    return source[: cut.start()] if cut else source


def expand_use(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`] (aliases and globs dropped)."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as" + IDENT + "$", "", tree.split(" as ")[0]).rstrip(":")]
    prefix, body = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for part in filter(None, parts):
        out += [prefix + p if p != "self" else prefix.rstrip(":") for p in expand_use(part)]
    return out


class Crate:
    def __init__(self, root: Path):
        self.root = root
        self.src = root / "src"
        self.files: dict[tuple[str, ...], Path] = {}
        for f in self.src.rglob("*.rs"):
            rel = f.relative_to(self.src).with_suffix("")
            parts = rel.parts
            if parts in (("lib",), ("main",)):
                if parts == ("lib",) or not (self.src / "lib.rs").exists():
                    self.files[()] = f
                continue
            if parts[-1] == "mod":
                parts = parts[:-1]
            self.files[tuple(parts)] = f

    def module_of(self, f: Path) -> tuple[str, ...]:
        return next(m for m, p in self.files.items() if p == f)

    def resolve(self, path: tuple[str, ...]) -> tuple[str, ...] | None:
        """The longest prefix of `path` that is a module of this crate."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.files:
                return path[:n]
        return None


def references(crate: Crate, module: tuple[str, ...], code: str):
    """(absolute path, text) of every item of this crate that `code` names."""
    children = set(re.findall(r"\bmod\s+(" + IDENT + r")\s*;", code))
    found = []
    for tree in re.findall(r"\buse\s+([^;]+);", code):
        found += expand_use(tree)
    found += [m.group(0) for m in re.finditer(r"\b(?:crate|super|self)(?:::" + IDENT + ")+", code)]
    for text in found:
        segs = [s for s in text.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            base, rest = (), segs[1:]
        elif segs[0] in ("super", "self"):
            base = module
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
            rest = segs
        elif segs[0] in children:
            base, rest = module, segs
        else:
            continue  # another crate
        yield base + tuple(rest), text


def graph():
    edges: dict[Path, dict[Path, set[str]]] = {}
    for root in CRATES:
        crate = Crate(root)
        for module, f in crate.files.items():
            code = strip(f.read_text())
            for path, text in references(crate, module, code):
                target = crate.resolve(path)
                if target is None or target == module:
                    continue
                if target[: len(module)] == module:
                    continue  # a module using its own submodule
                edges.setdefault(f, {}).setdefault(crate.files[target], set()).add(text)
    return edges


def cycles(edges):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle(tmp_path):
    src = tmp_path / "c" / "src"
    (src / "area").mkdir(parents=True)
    (tmp_path / "c" / "Cargo.toml").write_text("")
    (src / "lib.rs").write_text("pub mod state;\npub mod area;\n")
    (src / "state.rs").write_text("use crate::area::Service;\n")
    (src / "area" / "mod.rs").write_text("pub mod api;\npub struct Service;\n")
    (src / "area" / "api.rs").write_text("use crate::{state::AppState, area::Service};\n")
    crate = Crate(tmp_path / "c")
    edges = {}
    for module, f in crate.files.items():
        for path, text in references(crate, module, strip(f.read_text())):
            target = crate.resolve(path)
            if target is not None and target != module and target[: len(module)] != module:
                edges.setdefault(f, {}).setdefault(crate.files[target], set()).add(text)
    assert cycles(edges) == []  # state -> area, api -> state, api -> area: no cycle
    (src / "area" / "mod.rs").write_text("pub mod api;\npub struct Service;\nfn f(_: crate::state::X) {}\n")
    edges = {}
    for module, f in crate.files.items():
        for path, text in references(crate, module, strip(f.read_text())):
            target = crate.resolve(path)
            if target is not None and target != module and target[: len(module)] != module:
                edges.setdefault(f, {}).setdefault(crate.files[target], set()).add(text)
    assert [sorted(p.name for p in c) for c in cycles(edges)] == [["mod.rs", "state.rs"]]


def test_no_import_cycles():
    edges = graph()
    found = cycles(edges)
    report = []
    for comp in found:
        report.append("cycle: " + ", ".join(str(p.relative_to(REPO)) for p in comp))
        for a in comp:
            for b, names in sorted(edges.get(a, {}).items()):
                if b in comp:
                    report.append(f"  {a.relative_to(REPO)} -> {b.relative_to(REPO)}: {', '.join(sorted(names))}")
    assert not found, "\n".join(report)


BARE = re.compile(
    r"axum::extract::(?:\{[^}]*\b(?:Path|Query|WebSocketUpgrade)\b[^}]*\}|(?:Path|Query|WebSocketUpgrade)\b)"
    r"|axum::extract::ws::(?:\{[^}]*\bWebSocketUpgrade\b[^}]*\}|WebSocketUpgrade\b)"
    r"|\bQueryRejection\b|\bJsonRejection\b|\bPathRejection\b|\bWebSocketUpgradeRejection\b"
)


def test_routes_take_input_through_the_request_layer():
    """No bare axum extractors (plain-text rejections) outside the shared request layer."""
    offenders = []
    for root in CRATES:
        for f in sorted((root / "src").rglob("*.rs")):
            if root.name == "envelope":
                continue  # the request layer itself wraps them
            for m in BARE.finditer(strip(f.read_text())):
                offenders.append(f"{f.relative_to(REPO)}: {m.group(0)}")
    assert not offenders, "bare extractors:\n" + "\n".join(offenders)
