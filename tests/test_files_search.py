"""GET /files/find (files.md §8) and GET /files/search (§9) through ``sandbox.fs.find_files`` /
``sandbox.fs.search_files``, the generated client and raw HTTP.

One tree in the daemon's work dir serves every test (built once per module, read-only):

    tree/.git/                      (empty: a "repository", whose ignore files must not apply)
    tree/.gitignore                 ignores *.txt and *.log, which must have no effect
    tree/.hidden/h.txt              hidden entries are searched
    tree/a/b.txt, tree/a/c/d.txt    nested; d.txt has CRLF lines
    tree/a.txt                      sorts after the directory a/ (walk order, not string order)
    tree/bin.dat                    NUL in the first 512 bytes: skipped
    tree/lat1.txt                   invalid UTF-8 (one U+FFFD per byte)
    tree/late.log                   NUL after byte 512: still searched
    tree/link.txt -> a.txt, tree/linkdir -> a   symlinks: never followed
    tree/long.txt                   a 70 000-byte line ends the scan of that file
    tree/ünï/çødé.txt               unicode names and contents
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from daytona import DaytonaBadRequestError
from daytona_toolbox_api_client import FileSystemApi

from harness import http as raw

NEEDLE = "needle"
UNI_DIR = "\u00fcn\u00ef"
UNI_FILE = "\u00e7\u00f8d\u00e9.txt"


@pytest.fixture(scope="module")
def tree(daemon) -> Path:
    root = daemon.workdir / "tree"
    files: dict[str, bytes] = {
        ".gitignore": b"*.txt\n*.log\nbin.dat\n",
        ".hidden/h.txt": b"needle hidden\n",
        "a/b.txt": b"one needle\nno\n",
        "a/c/d.txt": b"needle\r\nneedle\r\n",
        "a.txt": b"x\nneedle here\n",
        "bin.dat": b"needle\x00needle\n",
        "lat1.txt": b"needle \xff\xfe end\n",
        "late.log": b"x" * 600 + b"\nneedle\x00z\n",
        "long.txt": b"needle first\n" + b"y" * 70_000 + b"\nneedle after\n",
        f"{UNI_DIR}/{UNI_FILE}": "日本 needle ✓\nNEEDLE\n".encode(),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / ".git").mkdir()
    os.symlink(root / "a.txt", root / "link.txt")
    os.symlink(root / "a", root / "linkdir")
    return root


# Expected find results below tree/, in walk order.
FIND_REL = [
    (".hidden/h.txt", 1, "needle hidden"),
    ("a/b.txt", 1, "one needle"),
    ("a/c/d.txt", 1, "needle"),
    ("a/c/d.txt", 2, "needle"),
    ("a.txt", 2, "needle here"),
    ("lat1.txt", 1, "needle \ufffd\ufffd end"),
    ("late.log", 2, "needle\x00z"),
    ("long.txt", 1, "needle first"),
    (f"{UNI_DIR}/{UNI_FILE}", 1, "日本 needle ✓"),
]


def triples(matches) -> list[tuple[str, int, str]]:
    return [(m.file, m.line, m.content) for m in matches]


# ----------------------------------------------------------------------------------- find


def test_find_nested_tree_in_walk_order(sandbox, tree):
    got = triples(sandbox.fs.find_files(str(tree), NEEDLE))
    assert got == [(f"{tree}/{rel}", n, c) for rel, n, c in FIND_REL]


def test_find_paths_follow_the_given_root(sandbox, tree):
    # Relative roots resolve against the work dir; children are cleaned joins of the root.
    for root, prefix in [("tree", "tree/"), ("./tree/", "tree/"), ("tree/a/..", "tree/"), (f"{tree}/", f"{tree}/")]:
        got = triples(sandbox.fs.find_files(root, NEEDLE))
        assert got == [(prefix + rel, n, c) for rel, n, c in FIND_REL], root
    got = triples(sandbox.fs.find_files(".", NEEDLE))
    assert got == [("tree/" + rel, n, c) for rel, n, c in FIND_REL]


def test_find_file_root_keeps_the_given_string(sandbox, tree):
    assert triples(sandbox.fs.find_files("tree//a.txt", NEEDLE)) == [("tree//a.txt", 2, "needle here")]
    assert triples(sandbox.fs.find_files("tree/bin.dat", NEEDLE)) == []


def test_find_literal_case_sensitive_unicode(sandbox, tree):
    uni = f"tree/{UNI_DIR}/{UNI_FILE}"
    assert triples(sandbox.fs.find_files("tree", "日本")) == [(uni, 1, "日本 needle ✓")]
    assert triples(sandbox.fs.find_files("tree", "NEEDLE")) == [(uni, 2, "NEEDLE")]
    assert triples(sandbox.fs.find_files("tree", "n.*e")) == []
    assert triples(sandbox.fs.find_files("tree", "\r")) == []


def test_find_does_not_follow_symlinks(sandbox, tree):
    files = {m.file for m in sandbox.fs.find_files("tree", NEEDLE)}
    assert not any("link" in f for f in files), files
    # A symlinked root is not entered either (Go's Lstat on the root) ...
    assert sandbox.fs.find_files("tree/linkdir", NEEDLE) == []
    assert sandbox.fs.find_files("tree/link.txt", NEEDLE) == []
    # ... unless a trailing slash makes the kernel resolve it.
    got = triples(sandbox.fs.find_files("tree/linkdir/", NEEDLE))
    assert got == [("tree/linkdir/b.txt", 1, "one needle"), ("tree/linkdir/c/d.txt", 1, "needle"),
                   ("tree/linkdir/c/d.txt", 2, "needle")]


def test_find_missing_root_is_empty_list(sandbox, daemon):
    assert sandbox.fs.find_files("no/such/dir", NEEDLE) == []
    r = raw.get(daemon.url, "/files/find?path=no%2Fsuch&pattern=x")
    assert r.status == 200, r.describe()
    assert r.body == b"[]", r.describe()
    assert r.header("Content-Type") == "application/json; charset=utf-8"


def test_find_raw_shape(daemon, tree):
    r = raw.get(daemon.url, f"/files/find?path=tree%2Fa&pattern={quote('one needle')}")
    assert r.status == 200, r.describe()
    assert r.json() == [{"file": "tree/a/b.txt", "line": 1, "content": "one needle"}]
    assert r.header("X-Daytona-Results-Truncated") is None


def test_find_via_generated_client(toolbox, tree):
    got = FileSystemApi(toolbox).find_in_files(path="tree/a/c", pattern=NEEDLE)
    assert triples(got) == [("tree/a/c/d.txt", 1, "needle"), ("tree/a/c/d.txt", 2, "needle")]


# --------------------------------------------------------------------------------- search


def test_search_glob_on_base_names(sandbox, tree):
    got = sandbox.fs.search_files("tree", "*.txt").files
    assert got == [
        "tree/.hidden/h.txt",
        "tree/a/b.txt",
        "tree/a/c/d.txt",
        "tree/a.txt",
        "tree/lat1.txt",
        "tree/link.txt",
        "tree/long.txt",
        f"tree/{UNI_DIR}/{UNI_FILE}",
    ]


def test_search_reports_dirs_links_and_root(sandbox, tree):
    assert sandbox.fs.search_files("tree", "[a-c]").files == ["tree/a", "tree/a/c"]
    assert sandbox.fs.search_files("tree", "link*").files == ["tree/link.txt", "tree/linkdir"]
    assert sandbox.fs.search_files("tree", "tree").files == ["tree"]
    assert sandbox.fs.search_files(f"{tree}/", "tree").files == [f"{tree}/"]
    assert sandbox.fs.search_files("tree/a.txt", "a.*").files == ["tree/a.txt"]
    assert sandbox.fs.search_files("./tree/a/", "?.txt").files == ["tree/a/b.txt", "tree/a/c/d.txt"]
    # Nothing below a symlinked directory.
    assert sandbox.fs.search_files("tree", "b.txt").files == ["tree/a/b.txt"]


def test_search_glob_syntax(sandbox, tree):
    assert sandbox.fs.search_files("tree", "[^a-z.]*").files == [f"tree/{UNI_DIR}", f"tree/{UNI_DIR}/{UNI_FILE}"]
    assert sandbox.fs.search_files("tree", "[^a-z]??").files == [f"tree/{UNI_DIR}"]
    assert sandbox.fs.search_files("tree", "çø*").files == [f"tree/{UNI_DIR}/{UNI_FILE}"]
    assert sandbox.fs.search_files("tree", "d.tx?").files == ["tree/a/c/d.txt"]
    assert sandbox.fs.search_files("tree", "\\.git").files == ["tree/.git"]
    # No braces or ** in Go's filepath.Match; malformed patterns match nothing.
    assert sandbox.fs.search_files("tree", "*.{txt,log}").files == []
    assert sandbox.fs.search_files("tree", "[").files == []
    assert sandbox.fs.search_files("tree", "a[").files == []
    assert sandbox.fs.search_files("tree", "*.TXT").files == []


def test_search_missing_root_and_shape(daemon, sandbox, tree):
    assert sandbox.fs.search_files("no/such", "*").files == []
    r = raw.get(daemon.url, "/files/search?path=no%2Fsuch&pattern=*")
    assert r.status == 200, r.describe()
    assert r.json() == {"files": []}
    r = raw.get(daemon.url, "/files/search?path=tree%2Fa&pattern=d.txt")
    assert r.json() == {"files": ["tree/a/c/d.txt"]}


def test_search_via_generated_client(toolbox, tree):
    got = FileSystemApi(toolbox).search_files(path="tree", pattern="*.log")
    assert got.files == ["tree/late.log"]


def test_wide_directory_in_walk_order(sandbox, daemon):
    # More files in one directory than one thread reads at a time, with subdirectories between
    # them in walk order: the answers are still complete and in lexical walk order.
    root = daemon.workdir / "wide"
    for i in range(300):
        (root / f"f{i:03}").parent.mkdir(parents=True, exist_ok=True)
        (root / f"f{i:03}").write_bytes(b"x\nwide hit\n" if i % 5 == 0 else b"x\n")
        if i % 100 == 50:
            (root / f"f{i:03}.d").mkdir()
            (root / f"f{i:03}.d" / "in").write_bytes(b"wide hit\n")
    want = []
    for i in range(300):
        if i % 5 == 0:
            want.append((f"wide/f{i:03}", 2, "wide hit"))
        if i % 100 == 50:
            want.append((f"wide/f{i:03}.d/in", 1, "wide hit"))
    assert triples(sandbox.fs.find_files("wide", "wide hit")) == want
    # Literal prefixes, suffixes and runs of a glob, escaped or not (the root counts too).
    assert sandbox.fs.search_files("wide", "f2?7").files == [f"wide/f2{d}7" for d in range(10)]
    assert sandbox.fs.search_files("wide", "*5?.d").files == ["wide/f050.d", "wide/f150.d", "wide/f250.d"]
    assert sandbox.fs.search_files("wide", "f\\1*0\\.?").files == ["wide/f150.d"]
    assert sandbox.fs.search_files("wide", "*i*").files == ["wide", "wide/f050.d/in", "wide/f150.d/in", "wide/f250.d/in"]


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("route", ["/files/find", "/files/search"])
@pytest.mark.parametrize("query", ["", "?path=tree", "?pattern=x", "?path=tree&pattern=", "?path=&pattern=x"])
def test_missing_params_are_bad_request(daemon, route, query):
    r = raw.get(daemon.url, route + query)
    assert r.status == 400, r.describe()
    body = r.json()
    assert body["code"] == "BAD_REQUEST", body
    assert "path and pattern are required" in body["message"], body
    assert body["path"] == route, body


def test_sdk_empty_pattern_raises(sandbox, tree):
    with pytest.raises(DaytonaBadRequestError, match="path and pattern are required"):
        sandbox.fs.find_files("tree", "")
    with pytest.raises(DaytonaBadRequestError, match="path and pattern are required"):
        sandbox.fs.search_files("", "*")
