"""The code's structure, read from its source: no import cycle between modules, and no route
taking input around the typed request layer.

An edge A -> B exists when file A names an item of module B (a `use` of it, or a
`crate::…`/`super::…`/`self::…` path in code; declaring `mod b;` is not one). Every edge counts
except those of a crate's root (lib.rs declares and starts everything), so a child that takes
`super::X` from a `mod.rs` that refers back to the child is a cycle too: shared items belong in
a leaf module. A cycle fails the test, naming the files and the items that tie them.

Layers point down: only the HTTP side (`api.rs` files, `server.rs`, `state.rs`, the crate root,
test helpers) may name the application state, the server or another area's `api`; services
and helpers never do. Test modules (`#[cfg(test)]`) are left out: they import what they test.
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
                if target is None or target == module or module == ():
                    continue
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
    global CRATES
    saved, CRATES = CRATES, [tmp_path / "c"]
    try:
        assert cycles(graph()) == []  # state -> area, api -> state, api -> area: no cycle
        (src / "area" / "mod.rs").write_text("pub mod api;\npub struct Service;\nfn f(_: crate::state::X) {}\n")
        assert [sorted(p.name for p in c) for c in cycles(graph())] == [["mod.rs", "state.rs"]]
        assert [o.split(":")[0] for o in layering_offenders()] == [str(src / "area" / "mod.rs")]
        # A child taking an item from a mod.rs that uses the child back is a cycle as well.
        (src / "area" / "mod.rs").write_text("pub mod api;\npub struct Service;\npub use api::routes;\n")
        (src / "area" / "api.rs").write_text("use super::Service;\npub fn routes() {}\n")
        assert [sorted(p.name for p in c) for c in cycles(graph())] == [["api.rs", "mod.rs"]]
    finally:
        CRATES = saved


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


HTTP_SIDE = {"api.rs", "server.rs", "state.rs", "testing.rs", "lib.rs", "main.rs"}


def layering_offenders() -> list[str]:
    out = []
    for root in CRATES:
        crate = Crate(root)
        for module, f in crate.files.items():
            if f.name in HTTP_SIDE or "api" in module:
                continue
            for path, text in references(crate, module, strip(f.read_text())):
                target = crate.resolve(path)
                if target is None:
                    continue
                own = target[: len(module)] == module
                if target in (("state",), ("server",)) or (target and target[-1] == "api" and not own):
                    out.append(f"{f}: {text}")
    return out


def test_services_and_helpers_do_not_reach_up_to_http():
    offenders = layering_offenders()
    assert not offenders, "\n".join(offenders)


BARE = re.compile(
    r"axum::extract::(?:\{[^}]*\b(?:Path|Query|WebSocketUpgrade)\b[^}]*\}|(?:Path|Query|WebSocketUpgrade)\b)"
    r"|axum::extract::ws::(?:\{[^}]*\bWebSocketUpgrade\b[^}]*\}|WebSocketUpgrade\b)"
    r"|axum::(?:extract::)?(?:\{[^}]*\bJson\b[^}]*\}|Json\b)"
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
