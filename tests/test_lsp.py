"""The /lsp API (lsp.md, sdk-0.226.md) through the official SDK
(`sandbox.create_lsp_server(language_id, path_to_project)`), against real language servers on
projects written here: pylsp and pyright for python, typescript-language-server for typescript
and javascript; plus a scriptable fake server (harness/fake_lsp.py) where the exact conversions,
the handshake and the document sync must be seen on the wire.

Needs the pinned language servers on PATH (`tests/ensure-deps` installs them): a missing one
fails the tests that need it, naming it.

Server processes are found through /proc: the descendants of the daemon whose command line names
the server (and whose cwd is the project), never by a name-wide search.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest
from daytona import (
    DaytonaBadGatewayError,
    DaytonaBadRequestError,
    DaytonaError,
    DaytonaFileNotFoundError,
    DaytonaLspServerNotInitializedError,
    DaytonaRateLimitError,
    DaytonaTimeoutError,
    LspCompletionPosition,
)

from conftest import DaemonFactory
from harness import http as raw
from harness.daemon import Daemon, wait_for

FAKE_LSP = str(Path(__file__).resolve().parent / "harness" / "fake_lsp.py")
TIMEOUT = 30.0  # client-side bound on every SDK call; a wedged route fails instead of hanging

# The shared daemon's own servers beyond the built-in ones: pyright under another name, the fake,
# and a "server" that dies during the handshake.
USER_SERVERS = {
    "py2": ["pyright-langserver", "--stdio"],
    "fake": [sys.executable, FAKE_LSP],
    "broken": ["sh", "-c", "echo boom-lsp-stderr >&2; exit 3"],
}

# LSP SymbolKind / CompletionItemKind numbers the assertions use.
CLASS, METHOD, FUNCTION = 5, 6, 12

# --------------------------------------------------------------------------------- projects

PY_SOURCE = '''"""A small module the language server reads."""


class Greeter:
    """Says hello."""

    def __init__(self, name: str) -> None:
        self.name = name

    def greet(self) -> str:
        return "hello " + self.name


def make_greeter(name: str) -> Greeter:
    return Greeter(name)


def add_numbers(a: int, b: int) -> int:
    return a + b


greeter = make_greeter("x")
greeter.'''

# The same module after an edit: `greet` became `wave`, and the completion point moved down.
PY_SOURCE_EDITED = '''"""A small module the language server reads, edited."""


class Greeter:
    """Waves."""

    def __init__(self, name: str) -> None:
        self.name = name

    def wave(self) -> str:
        return "bye " + self.name


def make_greeter(name: str) -> Greeter:
    return Greeter(name)


# more lines, so the completion point is not where it was


greeter = make_greeter("x")
greeter.'''

TS_SOURCE = """export class Greeter {
  constructor(private readonly name: string) {}

  greet(): string {
    return "hello " + this.name;
  }
}

export function makeGreeter(name: string): Greeter {
  return new Greeter(name);
}

export function addNumbers(a: number, b: number): number {
  return a + b;
}

const greeter = makeGreeter("x");
greeter."""

TS_SOURCE_EDITED = """export class Greeter {
  constructor(private readonly name: string) {}

  wave(): string {
    return "bye " + this.name;
  }
}

export function makeGreeter(name: string): Greeter {
  return new Greeter(name);
}

// more lines, so the completion point is not where it was

const greeter = makeGreeter("x");
greeter."""

JS_SOURCE = """class Greeter {
  greet() {
    return "hello";
  }
}

function makeGreeter() {
  return new Greeter();
}

const greeter = makeGreeter();
greeter."""

TSCONFIG = {"compilerOptions": {"strict": True, "target": "es2020", "module": "commonjs"}, "include": ["src"]}


@dataclass
class Project:
    root: Path
    source: Path  # the file the tests open

    @property
    def path(self) -> str:
        return str(self.root)

    @property
    def file(self) -> str:
        return str(self.source)

    @property
    def uri(self) -> str:
        return "file://" + str(self.source)


def make_project(base: Path, kind: str, name: str | None = None) -> Project:
    """A fresh project of `kind` ("python", "typescript", "javascript", "plain") below `base`."""
    root = base / (name or f"{kind}-project")
    root.mkdir(parents=True)
    root = Path(os.path.realpath(root))
    if kind == "python":
        (root / "greeter.py").write_text(PY_SOURCE)
        return Project(root, root / "greeter.py")
    if kind == "typescript":
        (root / "src").mkdir()
        (root / "tsconfig.json").write_text(json.dumps(TSCONFIG))
        (root / "src" / "greeter.ts").write_text(TS_SOURCE)
        return Project(root, root / "src" / "greeter.ts")
    if kind == "javascript":
        (root / "greeter.js").write_text(JS_SOURCE)
        return Project(root, root / "greeter.js")
    (root / "notes.txt").write_text("one\n")
    return Project(root, root / "notes.txt")


def end_of(text: str, marker: str = "greeter.") -> LspCompletionPosition:
    """The position just after the last `marker` in `text` (zero-based line and character)."""
    index = text.rindex(marker) + len(marker)
    before = text[:index]
    line = before.count("\n")
    return LspCompletionPosition(line=line, character=index - (before.rfind("\n") + 1))


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n")


def offers(completions, member: str) -> bool:
    """Whether `member` is among the completion items (servers decorate labels: `greet()`)."""
    for item in completions.items:
        for text in (item.label, item.insert_text, item.filter_text):
            if text and (text == member or text.startswith(member + "(")):
                return True
    return False


def labels(completions) -> list[str]:
    return [item.label for item in completions.items][:40]


# -------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str
    start: int  # start time in clock ticks since boot: tells a reused pid apart
    cmdline: tuple[str, ...]
    cwd: str | None


def read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = None
    return Proc(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        state=fields[0],
        start=int(fields[19]),
        cmdline=tuple(a.decode("utf-8", "replace") for a in cmdline if a),
        cwd=cwd,
    )


def all_procs() -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            p = read_proc(int(entry))
            if p is not None:
                procs[p.pid] = p
    return procs


def descendants(root: int) -> list[Proc]:
    procs = all_procs()
    children: dict[int, list[Proc]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def names(p: Proc, program: str) -> bool:
    return any(os.path.basename(arg) == program or arg.endswith("/" + program) for arg in p.cmdline[:3])


def server_procs(daemon: Daemon, program: str | None = None, project: Project | str | None = None) -> list[Proc]:
    """The daemon's running language-server processes (the topmost process of each server),
    optionally only those running `program` with cwd = `project`."""
    root = str(project.root if isinstance(project, Project) else project) if project else None
    own = {p.pid: p for p in descendants(daemon.proc.pid) if p.state != "Z"}
    found = []
    for p in own.values():
        if program is not None and not names(p, program):
            continue
        if root is not None and p.cwd != root:
            continue
        if program is None and p.ppid != daemon.proc.pid:
            continue
        parent = own.get(p.ppid)
        if parent is not None and program is not None and names(parent, program):
            continue  # a child of the server running the same program
        found.append(p)
    return found


def the_server(daemon: Daemon, program: str, project: Project | None) -> Proc:
    """The one process of the daemon running `program` in `project` (any directory when None:
    pyright changes its own working directory once started)."""
    found = server_procs(daemon, program, project)
    tree = "\n".join(f"  {p.pid} ppid={p.ppid} cwd={p.cwd} {' '.join(p.cmdline)}" for p in descendants(daemon.proc.pid))
    where = f" with cwd {project.root}" if project else ""
    assert len(found) == 1, f"expected one {program} process{where}, found {len(found)}:\n{tree}"
    return found[0]


# Every program the tests let a daemon run as a language server. The daemon has other children
# (the interpreter's worker, ...), which the "nothing was started" checks must not count.
SERVER_PROGRAMS = (
    "pylsp",
    "pyright-langserver",
    "basedpyright-langserver",
    "typescript-language-server",
    "no-such-server-xyz",
    "fake_lsp.py",
    "sh",
)


def server_pids(daemon: Daemon) -> set[int]:
    """The daemon's running descendants that run any language server the tests configure."""
    return {
        p.pid
        for p in descendants(daemon.proc.pid)
        if p.state != "Z" and any(names(p, program) for program in SERVER_PROGRAMS)
    }


def running(p: Proc) -> bool:
    """Whether the process `p` still runs (same pid and start time, not a zombie)."""
    now = read_proc(p.pid)
    return now is not None and now.start == p.start and now.state != "Z"


def reaped(p: Proc) -> bool:
    now = read_proc(p.pid)
    return now is None or now.start != p.start


# ------------------------------------------------------------------------------------ SDK


def sdk_error(call, *args, **kwargs) -> DaytonaError:
    with pytest.raises(DaytonaError) as info:
        call(*args, **kwargs)
    return info.value


@contextmanager
def lsp_running(sandbox, language: str, project: Project | str) -> Iterator:
    """An SDK LspServer that is started on entry and stopped on exit (whatever happened)."""
    path = project.path if isinstance(project, Project) else project
    server = sandbox.create_lsp_server(language, path)
    server.start(request_timeout=TIMEOUT)
    try:
        yield server
    finally:
        try:
            server.stop(request_timeout=TIMEOUT)
        except DaytonaError:
            pass


def completions(server, project: Project, text: str | None = None):
    text = PY_SOURCE if text is None else text
    return server.completions(project.file, end_of(text), request_timeout=TIMEOUT)


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """The language servers these tests need, on the PATH the daemons inherit."""
    wanted = ["pylsp", "pyright-langserver", "typescript-language-server", "sh"]
    found = {name: shutil.which(name) for name in wanted}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(
            f"language servers missing on PATH: {', '.join(missing)}; "
            f"install the pinned ones with tests/ensure-deps (as root)",
            pytrace=False,
        )
    return found  # type: ignore[return-value]


@pytest.fixture(scope="module")
def daemon(daemon_bin: Path, tmp_path_factory: pytest.TempPathFactory, tools) -> Iterator[Daemon]:
    """This module's shared daemon (overrides conftest's), with the user-configured servers."""
    factory = DaemonFactory(tmp_path_factory.mktemp("lsp-daemon"))
    d = factory.start(extra_env={"DAYTONA_LSP_SERVERS": json.dumps(USER_SERVERS)})
    yield d
    factory.finish()


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return Path(os.path.realpath(tmp_path))


def fake_log(project: Project) -> list[dict]:
    path = project.root / ".fake-lsp" / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fake_methods(project: Project) -> list[str]:
    return [m.get("method", "<reply>") for m in fake_log(project)]


def fake_script(project: Project, script: dict) -> None:
    (project.root / ".fake-lsp").mkdir(exist_ok=True)
    (project.root / ".fake-lsp" / "script.json").write_text(json.dumps(script))


# ============================================================================ main sessions


@pytest.mark.deadline(60)
def test_python_session_with_pylsp(daemon: Daemon, sandbox, base: Path):
    """start → did_open → completions → document symbols → workspace symbols → did_close →
    stop on a python project; python is served by pylsp, which is installed."""
    project = make_project(base, "python")
    with lsp_running(sandbox, "python", project) as lsp:
        proc = the_server(daemon, "pylsp", project)
        assert proc.ppid == daemon.proc.pid, "the server is the daemon's own child"
        assert proc.pgid == proc.pid, "the server leads its own process group"
        assert proc.cwd == project.path, "the server runs in the project"

        lsp.did_open(project.file, request_timeout=TIMEOUT)
        got = completions(lsp, project)
        assert offers(got, "greet"), f"`greet` missing after `greeter.`: {labels(got)}"
        assert isinstance(got.is_incomplete, bool)
        # Line 0, character 0 is a valid position (the reference rejected zeros).
        assert lsp.completions(project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT) is not None

        symbols = lsp.document_symbols(project.file, request_timeout=TIMEOUT)
        by_name = {s.name: s for s in symbols}
        for name, kind, needle in (
            ("Greeter", CLASS, "class Greeter"),
            ("make_greeter", FUNCTION, "def make_greeter"),
            ("add_numbers", FUNCTION, "def add_numbers"),
        ):
            assert name in by_name, f"{name} missing from document symbols: {sorted(by_name)}"
            assert by_name[name].kind == kind, f"{name}: kind {by_name[name].kind}, expected {kind}"
            assert by_name[name].location.uri == project.uri
            assert by_name[name].location.range.start.line == line_of(PY_SOURCE, needle), name
        assert "greet" in by_name, f"the method greet missing from document symbols: {sorted(by_name)}"

        # pylsp has no workspace/symbol: the server's refusal comes back naming the method.
        err = sdk_error(lsp.sandbox_symbols, "Greet", request_timeout=TIMEOUT)
        assert err.status_code == 400 and err.code == "LSP_REQUEST_FAILED", repr(err)
        assert "workspace/symbol" in err.message, err.message

        lsp.did_close(project.file, request_timeout=TIMEOUT)
        # A document that is not open is opened implicitly by completions.
        assert offers(completions(lsp, project), "greet")
        lsp.stop(request_timeout=TIMEOUT)
        assert wait_for(lambda: reaped(proc), 5), "pylsp still there (or unreaped) after stop"
        err = sdk_error(lsp.completions, project.file, end_of(PY_SOURCE), request_timeout=TIMEOUT)
        assert isinstance(err, DaytonaLspServerNotInitializedError), repr(err)


@pytest.mark.deadline(60)
def test_typescript_session(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "typescript")
    with lsp_running(sandbox, "typescript", project) as lsp:
        proc = the_server(daemon, "typescript-language-server", project)
        assert proc.pgid == proc.pid and proc.cwd == project.path
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        got = completions(lsp, project, TS_SOURCE)
        assert offers(got, "greet"), f"`greet` missing after `greeter.`: {labels(got)}"
        assert not offers(got, "makeGreeter"), "member completion offered a global"

        symbols = lsp.document_symbols(project.file, request_timeout=TIMEOUT)
        by_name = {s.name: s for s in symbols}
        for name, kind, needle in (
            ("Greeter", CLASS, "export class Greeter"),
            ("greet", METHOD, "greet(): string"),
            ("makeGreeter", FUNCTION, "export function makeGreeter"),
            ("addNumbers", FUNCTION, "export function addNumbers"),
        ):
            assert name in by_name, f"{name} missing from document symbols: {sorted(by_name)}"
            assert by_name[name].kind == kind, f"{name}: kind {by_name[name].kind}, expected {kind}"
            assert by_name[name].location.uri == project.uri
            assert by_name[name].location.range.start.line == line_of(TS_SOURCE, needle), name

        found = lsp.sandbox_symbols("Greet", request_timeout=TIMEOUT)
        by_name = {s.name: s for s in found}
        assert {"Greeter", "makeGreeter"} <= set(by_name), f"workspace symbols: {sorted(by_name)}"
        assert by_name["Greeter"].kind == CLASS
        assert by_name["Greeter"].location.uri == project.uri

        lsp.did_close(project.file, request_timeout=TIMEOUT)
        tree = [p for p in descendants(daemon.proc.pid) if p.pgid == proc.pgid]
        lsp.stop(request_timeout=TIMEOUT)
        # typescript-language-server runs tsserver below it: the whole group goes.
        assert wait_for(lambda: not any(running(p) for p in tree), 5), (
            f"left running after stop: {[(p.pid, p.cmdline) for p in tree if running(p)]}"
        )
        assert wait_for(lambda: reaped(proc), 5), "typescript-language-server not reaped after stop"


@pytest.mark.deadline(60)
def test_javascript_is_served_by_the_typescript_server(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "javascript")
    with lsp_running(sandbox, "javascript", project) as lsp:
        the_server(daemon, "typescript-language-server", project)
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        got = completions(lsp, project, JS_SOURCE)
        assert offers(got, "greet"), f"`greet` missing after `greeter.`: {labels(got)}"
        names_ = {s.name for s in lsp.document_symbols(project.file, request_timeout=TIMEOUT)}
        assert {"Greeter", "makeGreeter"} <= names_, sorted(names_)


@pytest.mark.deadline(60)
def test_user_configured_server(daemon: Daemon, sandbox, base: Path):
    """DAYTONA_LSP_SERVERS maps "py2" to pyright-langserver: a language of its own, with
    workspace symbols (which pylsp lacks)."""
    project = make_project(base, "python")
    with lsp_running(sandbox, "py2", project) as lsp:
        proc = the_server(daemon, "pyright-langserver", None)
        assert "--stdio" in proc.cmdline, proc.cmdline
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        got = completions(lsp, project)
        assert offers(got, "greet"), f"`greet` missing after `greeter.`: {labels(got)}"
        names_ = {s.name for s in lsp.document_symbols(project.file, request_timeout=TIMEOUT)}
        assert {"Greeter", "greet", "make_greeter", "add_numbers"} <= names_, sorted(names_)
        # pyright indexes the workspace in the background: allow it a few seconds.
        found: list = []

        def search() -> bool:
            found[:] = lsp.sandbox_symbols("Greet", request_timeout=TIMEOUT)
            return any(s.name == "Greeter" for s in found)

        assert wait_for(search, 10, interval=0.5), (
            f"pyright's workspace symbols for 'Greet' never named Greeter: {[s.name for s in found]} "
            f"(pyright answers workspace/symbol only for a workspace folder given in initialize)"
        )
        greeter = next(s for s in found if s.name == "Greeter")
        assert greeter.kind == CLASS and greeter.location.uri == project.uri


# ========================================================================== document sync


@pytest.mark.deadline(60)
@pytest.mark.parametrize("language", ["python", "typescript"])
def test_completions_follow_the_file_on_disk(daemon: Daemon, sandbox, base: Path, language: str):
    """A file edited on disk after did_open is answered for its new text, without re-opening."""
    project = make_project(base, language)
    before, after = (PY_SOURCE, PY_SOURCE_EDITED) if language == "python" else (TS_SOURCE, TS_SOURCE_EDITED)
    with lsp_running(sandbox, language, project) as lsp:
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        got = completions(lsp, project, before)
        assert offers(got, "greet") and not offers(got, "wave"), labels(got)

        project.source.write_text(after)
        got = completions(lsp, project, after)
        assert offers(got, "wave"), f"completions answered the old text: {labels(got)}"
        assert not offers(got, "greet"), f"completions still offer the removed method: {labels(got)}"
        names_ = {s.name for s in lsp.document_symbols(project.file, request_timeout=TIMEOUT)}
        assert "wave" in names_ and "greet" not in names_, f"document symbols of the old text: {sorted(names_)}"


@pytest.mark.deadline(30)
def test_fake_server_sees_the_handshake_and_the_document_sync(daemon: Daemon, sandbox, base: Path):
    """On the wire: initialize (daemon pid, rootUri), initialized; didOpen with the file's text;
    a didChange with the full new text before the first request after an edit, and only then;
    didClose; shutdown (a request) then exit on stop."""
    project = make_project(base, "plain")
    with lsp_running(sandbox, "fake", project) as lsp:
        proc = the_server(daemon, "fake_lsp.py", project)
        # initialized is a notification: start may answer before the server has read it.
        assert wait_for(lambda: fake_methods(project)[:2] == ["initialize", "initialized"], 5), fake_methods(project)
        log = fake_log(project)
        init = log[0]
        assert "id" in init, "initialize must be a request"
        assert init["params"]["processId"] == daemon.proc.pid
        assert init["params"]["rootUri"] == "file://" + project.path

        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert wait_for(lambda: "textDocument/didOpen" in fake_methods(project), 5), fake_methods(project)
        opened = next(m for m in fake_log(project) if m.get("method") == "textDocument/didOpen")
        doc = opened["params"]["textDocument"]
        assert doc["uri"] == project.uri and doc["text"] == "one\n" and doc["version"] == 1, doc
        assert doc["languageId"] == "fake"

        lsp.completions(project.file, LspCompletionPosition(line=0, character=1), request_timeout=TIMEOUT)
        assert "textDocument/didChange" not in fake_methods(project), "didChange without an edit"

        project.source.write_text("two two two\n")
        lsp.completions(project.file, LspCompletionPosition(line=0, character=2), request_timeout=TIMEOUT)
        methods = fake_methods(project)
        assert "textDocument/didChange" in methods, f"no didChange after an edit on disk: {methods}"
        change_at = methods.index("textDocument/didChange")
        assert methods[change_at + 1 :].count("textDocument/completion") == 1, (
            f"didChange must come before the completion request it serves: {methods}"
        )
        change = fake_log(project)[change_at]["params"]
        assert change["textDocument"]["uri"] == project.uri
        assert change["textDocument"]["version"] > 1
        assert [c.get("text") for c in change["contentChanges"]] == ["two two two\n"], change
        assert all("range" not in c for c in change["contentChanges"]), "full text, not a range edit"

        lsp.document_symbols(project.file, request_timeout=TIMEOUT)
        assert fake_methods(project).count("textDocument/didChange") == 1, "re-sent an unchanged file"

        # An edit that keeps the size and puts the old modification time back is still seen.
        st = project.source.stat()
        project.source.write_text("six six six\n")
        os.utime(project.source, ns=(st.st_atime_ns, st.st_mtime_ns))
        lsp.document_symbols(project.file, request_timeout=TIMEOUT)
        changes = [m for m in fake_log(project) if m.get("method") == "textDocument/didChange"]
        assert len(changes) == 2, f"a same-size edit with the old mtime was missed: {fake_methods(project)}"
        assert changes[1]["params"]["contentChanges"][0]["text"] == "six six six\n"
        assert changes[1]["params"]["textDocument"]["version"] > changes[0]["params"]["textDocument"]["version"]

        lsp.did_close(project.file, request_timeout=TIMEOUT)
        assert wait_for(lambda: "textDocument/didClose" in fake_methods(project), 5)
        closed = next(m for m in fake_log(project) if m.get("method") == "textDocument/didClose")
        assert closed["params"]["textDocument"]["uri"] == project.uri

        lsp.stop(request_timeout=TIMEOUT)
        assert wait_for(lambda: reaped(proc), 5), "fake server not gone after stop"
        tail = [m for m in fake_log(project) if m.get("method") in ("shutdown", "exit")]
        assert [m["method"] for m in tail] == ["shutdown", "exit"], fake_methods(project)
        assert "id" in tail[0], "shutdown must be a request"
        assert "id" not in tail[1], "exit must be a notification"


# ============================================================================== lifecycle


@pytest.mark.deadline(45)
def test_start_twice_is_a_no_op(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "python")
    with lsp_running(sandbox, "python", project) as lsp:
        first = the_server(daemon, "pylsp", project)
        lsp.start(request_timeout=TIMEOUT)
        again = the_server(daemon, "pylsp", project)
        assert (again.pid, again.start) == (first.pid, first.start), "a second start replaced the server"
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert offers(completions(lsp, project), "greet")


@pytest.mark.deadline(45)
def test_concurrent_starts_make_one_server_per_key(daemon: Daemon, sandbox, base: Path):
    """Four starts of one key at once leave one server; keys are verbatim, so the same project
    with a trailing slash is another server."""
    project = make_project(base, "python")
    lsp = sandbox.create_lsp_server("python", project.path)
    slash = sandbox.create_lsp_server("python", project.path + "/")
    try:
        with ThreadPoolExecutor(4) as pool:
            for job in [pool.submit(lsp.start, request_timeout=TIMEOUT) for _ in range(4)]:
                job.result(timeout=TIMEOUT)
        the_server(daemon, "pylsp", project)
        slash.start(request_timeout=TIMEOUT)
        assert len(server_procs(daemon, "pylsp", project)) == 2, "the key with a trailing slash shared a server"
        slash.stop(request_timeout=TIMEOUT)
        the_server(daemon, "pylsp", project)  # the other key's server is untouched
    finally:
        lsp.stop(request_timeout=TIMEOUT)
        slash.stop(request_timeout=TIMEOUT)


@pytest.mark.deadline(45)
def test_stop_twice_and_stop_of_an_unknown_server(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "python")
    lsp = sandbox.create_lsp_server("python", project.path)
    lsp.start(request_timeout=TIMEOUT)
    proc = the_server(daemon, "pylsp", project)
    lsp.stop(request_timeout=TIMEOUT)
    lsp.stop(request_timeout=TIMEOUT)  # idempotent
    assert wait_for(lambda: reaped(proc), 5)
    never = make_project(base, "python", "never-started")
    sandbox.create_lsp_server("python", never.path).stop(request_timeout=TIMEOUT)
    # Stopped means stopped: the next call says so, and start brings it back.
    err = sdk_error(lsp.did_open, project.file, request_timeout=TIMEOUT)
    assert isinstance(err, DaytonaLspServerNotInitializedError), repr(err)
    lsp.start(request_timeout=TIMEOUT)
    try:
        assert offers(completions(lsp, project), "greet")
    finally:
        lsp.stop(request_timeout=TIMEOUT)


@pytest.mark.deadline(60)
def test_killed_server_is_reported_and_restarted(daemon: Daemon, sandbox, base: Path):
    """kill -9 of the server: the next call says it exited and to call start; start works."""
    project = make_project(base, "python")
    with lsp_running(sandbox, "python", project) as lsp:
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert offers(completions(lsp, project), "greet")
        proc = the_server(daemon, "pylsp", project)
        os.kill(proc.pid, signal.SIGKILL)  # the daemon's child, found by parent pid and cwd
        assert wait_for(lambda: not running(proc), 5)

        for call, args in (
            (lsp.completions, (project.file, end_of(PY_SOURCE))),
            (lsp.document_symbols, (project.file,)),
            (lsp.did_open, (project.file,)),
        ):
            started = time.monotonic()
            err = sdk_error(call, *args, request_timeout=TIMEOUT)
            assert time.monotonic() - started < 10, f"{call.__name__} took long to notice the dead server"
            assert isinstance(err, DaytonaLspServerNotInitializedError), f"{call.__name__}: {err!r}"
            assert err.status_code == 400 and err.code == "LSP_SERVER_NOT_INITIALIZED"
            # It says how the server ended (here: killed by signal 9) and what to do.
            assert re.search(r"exit|signal 9", err.message) and "start" in err.message, err.message
        assert wait_for(lambda: reaped(proc), 5), "the killed server was never reaped"

        lsp.start(request_timeout=TIMEOUT)
        again = the_server(daemon, "pylsp", project)
        assert (again.pid, again.start) != (proc.pid, proc.start)
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert offers(completions(lsp, project), "greet")


@pytest.mark.deadline(45)
def test_killed_typescript_server_takes_its_children_along(daemon: Daemon, sandbox, base: Path):
    """typescript-language-server runs tsserver processes below it: when the server is killed,
    the daemon reports it and kills what is left of its process group."""
    project = make_project(base, "typescript")
    with lsp_running(sandbox, "typescript", project) as lsp:
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert offers(completions(lsp, project, TS_SOURCE), "greet")
        proc = the_server(daemon, "typescript-language-server", project)
        group = [p for p in descendants(daemon.proc.pid) if p.pgid == proc.pgid and p.pid != proc.pid]
        assert group, "typescript-language-server started no tsserver"
        os.kill(proc.pid, signal.SIGKILL)
        err = sdk_error(lsp.document_symbols, project.file, request_timeout=TIMEOUT)
        assert isinstance(err, DaytonaLspServerNotInitializedError), repr(err)
        assert wait_for(lambda: not any(running(p) for p in group), 5), (
            f"tsserver left running after its server was killed: {[(p.pid, p.cmdline) for p in group if running(p)]}"
        )
        lsp.start(request_timeout=TIMEOUT)
        assert offers(completions(lsp, project, TS_SOURCE), "greet")


@pytest.mark.deadline(30)
def test_stop_of_a_server_that_will_not_go(daemon: Daemon, sandbox, base: Path):
    """shutdown never answered, exit ignored: stop still ends within a few seconds, the server killed."""
    project = make_project(base, "plain")
    fake_script(project, {"shutdown": {"hang": True}, "exit": {"ignore": True}})
    lsp = sandbox.create_lsp_server("fake", project.path)
    lsp.start(request_timeout=TIMEOUT)
    proc = the_server(daemon, "fake_lsp.py", project)
    started = time.monotonic()
    lsp.stop(request_timeout=TIMEOUT)
    took = time.monotonic() - started
    assert took < 6, f"stop took {took:.1f} s (shutdown has 2 s)"
    assert wait_for(lambda: reaped(proc), 5), "the server that ignored shutdown and exit still runs"
    asked = [m for m in fake_log(project) if m.get("method") == "shutdown"]
    assert len(asked) == 1 and "id" in asked[0], f"shutdown was not asked for: {fake_methods(project)}"
    # exit follows an unanswered shutdown too, before the kill.
    assert "exit" in fake_methods(project), f"exit was not sent: {fake_methods(project)}"


@pytest.mark.deadline(30)
def test_chatty_server_stderr_is_drained(daemon: Daemon, sandbox, base: Path):
    """A server writing more to stderr than a pipe holds keeps working."""
    project = make_project(base, "plain")
    fake_script(project, {"stderrBytes": 1 << 20})
    with lsp_running(sandbox, "fake", project) as lsp:
        assert lsp.completions(project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT).items == []


@pytest.mark.deadline(30)
def test_calls_before_start_are_refused(sandbox, base: Path):
    project = make_project(base, "python")
    lsp = sandbox.create_lsp_server("python", project.path)
    for call, args in (
        (lsp.did_open, (project.file,)),
        (lsp.completions, (project.file, end_of(PY_SOURCE))),
        (lsp.document_symbols, (project.file,)),
        (lsp.sandbox_symbols, ("Greet",)),
        (lsp.did_close, (project.file,)),
    ):
        err = sdk_error(call, *args, request_timeout=TIMEOUT)
        assert isinstance(err, DaytonaLspServerNotInitializedError), f"{call.__name__}: {err!r}"
        assert err.status_code == 400 and err.code == "LSP_SERVER_NOT_INITIALIZED"


@pytest.mark.deadline(60)
def test_concurrent_completions_on_two_servers(daemon: Daemon, sandbox, base: Path):
    """python and typescript at once, two threads each: every answer is right."""
    py = make_project(base, "python")
    ts = make_project(base, "typescript")
    with lsp_running(sandbox, "python", py) as py_lsp, lsp_running(sandbox, "typescript", ts) as ts_lsp:
        py_lsp.did_open(py.file, request_timeout=TIMEOUT)
        ts_lsp.did_open(ts.file, request_timeout=TIMEOUT)
        barrier = threading.Barrier(4)

        def ask(lsp, project: Project, text: str) -> list[bool]:
            barrier.wait(10)
            return [offers(completions(lsp, project, text), "greet") for _ in range(3)]

        with ThreadPoolExecutor(4) as pool:
            jobs = [
                pool.submit(ask, py_lsp, py, PY_SOURCE),
                pool.submit(ask, ts_lsp, ts, TS_SOURCE),
                pool.submit(ask, py_lsp, py, PY_SOURCE),
                pool.submit(ask, ts_lsp, ts, TS_SOURCE),
            ]
            results = [job.result(timeout=45) for job in jobs]
        assert results == [[True] * 3] * 4, results


# ==================================================================================== errors


@pytest.mark.deadline(30)
def test_unsupported_language(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "python")
    before = server_pids(daemon)
    err = sdk_error(sandbox.create_lsp_server("cobol", project.path).start, request_timeout=TIMEOUT)
    assert isinstance(err, DaytonaBadRequestError) and err.status_code == 400, repr(err)
    assert err.code == "LSP_LANGUAGE_UNSUPPORTED", repr(err)
    for word in ("cobol", "python", "typescript", "javascript", "py2"):
        assert word in err.message, f"{word!r} not named in: {err.message}"
    assert server_pids(daemon) <= before, "a server was started for an unsupported language"


@pytest.mark.deadline(30)
def test_missing_server_binaries(daemon_factory, sdk_for, base: Path):
    """Nothing on PATH: each language names the commands it looked for."""
    empty = base / "empty-bin"
    empty.mkdir()
    d = daemon_factory.start(
        extra_env={"PATH": str(empty), "DAYTONA_LSP_SERVERS": json.dumps({"go": ["no-such-server-xyz", "serve"]})}
    )
    sandbox = sdk_for(d).sandbox
    project = make_project(base, "python")
    before = server_pids(d)
    for language, commands in (
        ("python", ["pylsp", "pyright-langserver", "basedpyright-langserver"]),
        ("typescript", ["typescript-language-server"]),
        ("go", ["no-such-server-xyz"]),
    ):
        err = sdk_error(sandbox.create_lsp_server(language, project.path).start, request_timeout=TIMEOUT)
        assert err.status_code == 400 and err.code == "LSP_SERVER_MISSING", f"{language}: {err!r}"
        for word in [language, *commands]:
            assert word in err.message, f"{word!r} not named in: {err.message}"
    assert server_pids(d) <= before, "a process was started for a missing server"


@pytest.mark.deadline(30)
def test_user_entry_replaces_the_built_in_server(daemon_factory, sdk_for, base: Path, tools):
    """A configured python server that is missing is an error naming it, not a silent fallback
    to pylsp (which is installed)."""
    d = daemon_factory.start(extra_env={"DAYTONA_LSP_SERVERS": json.dumps({"python": ["no-such-server-xyz", "--stdio"]})})
    project = make_project(base, "python")
    before = server_pids(d)
    err = sdk_error(sdk_for(d).sandbox.create_lsp_server("python", project.path).start, request_timeout=TIMEOUT)
    assert err.status_code == 400 and err.code == "LSP_SERVER_MISSING", repr(err)
    assert "python" in err.message and "no-such-server-xyz" in err.message, err.message
    assert server_pids(d) <= before and server_procs(d, "pylsp") == [], "fell back to another server"


@pytest.mark.deadline(45)
def test_python_falls_back_to_pyright(daemon_factory, sdk_for, base: Path, tools):
    """Without pylsp on PATH, python is served by pyright-langserver --stdio."""
    bin_dir = base / "bin"
    bin_dir.mkdir()
    node = shutil.which("node")
    assert node, "node is required by pyright-langserver (tests/ensure-deps installs it)"
    (bin_dir / "node").symlink_to(node)
    (bin_dir / "pyright-langserver").symlink_to(tools["pyright-langserver"])
    d = daemon_factory.start(extra_env={"PATH": str(bin_dir)})
    sandbox = sdk_for(d).sandbox
    project = make_project(base, "python")
    with lsp_running(sandbox, "python", project) as lsp:
        proc = the_server(d, "pyright-langserver", None)
        assert "--stdio" in proc.cmdline
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert offers(completions(lsp, project), "greet")


@pytest.mark.deadline(30)
def test_server_failing_during_initialize(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "plain")
    err = sdk_error(sandbox.create_lsp_server("broken", project.path).start, request_timeout=TIMEOUT)
    assert isinstance(err, DaytonaBadGatewayError) and err.status_code == 502, repr(err)
    assert err.code == "LSP_SERVER_FAILED", repr(err)
    assert "3" in err.message and "boom-lsp-stderr" in err.message, f"no exit status / stderr: {err.message}"
    err = sdk_error(sandbox.create_lsp_server("broken", project.path).did_open, project.file, request_timeout=TIMEOUT)
    assert isinstance(err, DaytonaLspServerNotInitializedError), repr(err)


@pytest.mark.deadline(45)
def test_server_limit(daemon_factory, sdk_for, base: Path, tools):
    d = daemon_factory.start(extra_env={"DAYTONA_LSP_MAX_SERVERS": "2"})
    sandbox = sdk_for(d).sandbox
    p1, p2, p3 = (make_project(base, "python", f"p{i}") for i in (1, 2, 3))
    s1, s2, s3 = (sandbox.create_lsp_server("python", p.path) for p in (p1, p2, p3))
    s1.start(request_timeout=TIMEOUT)
    s2.start(request_timeout=TIMEOUT)
    err = sdk_error(s3.start, request_timeout=TIMEOUT)
    assert isinstance(err, DaytonaRateLimitError) and err.status_code == 429, repr(err)
    assert err.code == "TOO_MANY_REQUESTS" and "2" in err.message, repr(err)
    assert len(server_procs(d, "pylsp")) == 2
    s2.start(request_timeout=TIMEOUT)  # already running: still a no-op at the limit
    s1.stop(request_timeout=TIMEOUT)
    s3.start(request_timeout=TIMEOUT)
    s3.did_open(p3.file, request_timeout=TIMEOUT)
    assert offers(completions(s3, p3), "greet")


@pytest.mark.deadline(30)
def test_project_and_file_paths(daemon: Daemon, sandbox, base: Path):
    missing = str(base / "no-such-project")
    err = sdk_error(sandbox.create_lsp_server("python", missing).start, request_timeout=TIMEOUT)
    assert isinstance(err, DaytonaFileNotFoundError) and err.code == "FILE_NOT_FOUND", repr(err)
    assert missing in err.message, err.message

    project = make_project(base, "python")
    err = sdk_error(sandbox.create_lsp_server("python", project.file).start, request_timeout=TIMEOUT)
    assert err.status_code == 400, f"a file as the project: {err!r}"

    # A relative project is found below the daemon's working directory.
    rel = make_project(daemon.workdir, "python", "relative-project")
    with lsp_running(sandbox, "python", "relative-project"):
        the_server(daemon, "pylsp", rel)

    with lsp_running(sandbox, "python", project) as lsp:
        gone = str(project.root / "gone.py")
        err = sdk_error(lsp.did_open, gone, request_timeout=TIMEOUT)
        assert isinstance(err, DaytonaFileNotFoundError) and err.status_code == 404, repr(err)
        err = sdk_error(lsp.did_open, project.path, request_timeout=TIMEOUT)
        assert err.status_code == 400, f"a directory opened as a document: {err!r}"
        # The server survived both refusals.
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert offers(completions(lsp, project), "greet")
        # A relative file is the project's, as the SDK documents, not the daemon's cwd's.
        relative = os.path.relpath(project.file, project.path)
        assert not (daemon.workdir / relative).exists()
        lsp.did_open(relative, request_timeout=TIMEOUT)
        names_ = {s.name for s in lsp.document_symbols(relative, request_timeout=TIMEOUT)}
        assert "Greeter" in names_, sorted(names_)


@pytest.mark.deadline(30)
def test_a_request_the_server_never_answers_times_out(daemon_factory, sdk_for, base: Path, tools):
    """DAYTONA_LSP_REQUEST_TIMEOUT bounds a request: 408 (DaytonaTimeoutError), and the server
    keeps serving what it does answer."""
    d = daemon_factory.start(
        extra_env={"DAYTONA_LSP_SERVERS": json.dumps(USER_SERVERS), "DAYTONA_LSP_REQUEST_TIMEOUT": "500ms"}
    )
    project = make_project(base, "plain")
    fake_script(project, {"textDocument/completion": {"hang": True}})
    lsp = sdk_for(d).sandbox.create_lsp_server("fake", project.path)
    lsp.start(request_timeout=TIMEOUT)
    started = time.monotonic()
    err = sdk_error(lsp.completions, project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT)
    took = time.monotonic() - started
    assert isinstance(err, DaytonaTimeoutError) and err.status_code == 408, repr(err)
    assert err.code == "REQUEST_TIMEOUT" and "textDocument/completion" in err.message, repr(err)
    assert 0.4 < took < 5, f"answered after {took:.2f} s"
    assert lsp.document_symbols(project.file, request_timeout=TIMEOUT) == []
    lsp.stop(request_timeout=TIMEOUT)


@pytest.mark.deadline(30)
def test_missing_fields_are_named(daemon: Daemon, base: Path):
    """Requests the SDK cannot get wrong, sent raw: each missing field is a 400 naming it."""
    key = {"languageId": "python", "pathToProject": str(base)}
    uri = "file://" + str(base / "x.py")
    for method, path, body, field in (
        ("POST", "/lsp/start", {"pathToProject": str(base)}, "languageId"),
        ("POST", "/lsp/start", {"languageId": "python"}, "pathToProject"),
        ("POST", "/lsp/stop", {"languageId": "python"}, "pathToProject"),
        ("POST", "/lsp/did-open", key, "uri"),
        ("POST", "/lsp/did-close", key, "uri"),
        ("POST", "/lsp/completions", {**key, "uri": uri}, "position"),
        ("GET", "/lsp/document-symbols?" + urlencode(key), None, "uri"),
        ("GET", "/lsp/document-symbols?" + urlencode({"pathToProject": str(base), "uri": uri}), None, "languageId"),
        ("GET", "/lsp/workspacesymbols?" + urlencode(key), None, "query"),
        ("GET", "/lsp/workspacesymbols?" + urlencode({"query": "x", "languageId": "python"}), None, "pathToProject"),
    ):
        if body is None:
            r = raw.get(daemon.url, path, timeout=TIMEOUT)
        else:
            r = raw.post_json(daemon.url, path, body, timeout=TIMEOUT)
        assert r.status == 400, f"{method} {path} without {field}: {r.describe()}"
        assert field in r.json()["message"], f"{method} {path}: {field} not named: {r.describe()}"
    r = raw.post_json(daemon.url, "/lsp/did-open", {**key, "uri": "http://example.com/x.py"}, timeout=TIMEOUT)
    assert r.status == 400 and "file://" in r.json()["message"], r.describe()


@pytest.mark.deadline(30)
def test_server_lookup_uses_the_child_environment(daemon_factory, sdk_for, base: Path, tools):
    """The PATH that POST /env gives the daemon's children is where servers are looked for."""
    empty = base / "empty-bin"
    empty.mkdir()
    d = daemon_factory.start(extra_env={"PATH": str(empty)})
    sandbox = sdk_for(d).sandbox
    project = make_project(base, "python")
    lsp = sandbox.create_lsp_server("python", project.path)
    assert sdk_error(lsp.start, request_timeout=TIMEOUT).code == "LSP_SERVER_MISSING"
    pylsp_dir = os.path.dirname(tools["pylsp"])
    r = raw.post_json(d.url, "/env", {"set": {"PATH": f"{pylsp_dir}:/usr/bin:/bin"}}, timeout=TIMEOUT)
    assert r.status == 200, r.describe()
    lsp.start(request_timeout=TIMEOUT)
    try:
        the_server(d, "pylsp", project)
        assert offers(completions(lsp, project), "greet")
    finally:
        lsp.stop(request_timeout=TIMEOUT)


@pytest.mark.deadline(30)
def test_file_name_with_a_space(daemon: Daemon, sandbox, base: Path):
    """The SDK sends `file://` + path unescaped; a space in the name still reaches the right file."""
    project = make_project(base, "python")
    spaced = project.root / "my greeter.py"
    project.source.rename(spaced)
    project = Project(project.root, spaced)
    with lsp_running(sandbox, "python", project) as lsp:
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        assert offers(completions(lsp, project), "greet")
        symbols = lsp.document_symbols(project.file, request_timeout=TIMEOUT)
        names_ = {s.name for s in symbols}
        assert {"Greeter", "make_greeter"} <= names_, sorted(names_)
        # Locations come back spelled as the SDK sent the uri, not percent-encoded.
        assert {s.location.uri for s in symbols} == {f"file://{project.file}"}, {s.location.uri for s in symbols}


@pytest.mark.deadline(30)
def test_completion_context_is_accepted(daemon: Daemon, sandbox, base: Path):
    """The SDK never sends `context`; the API takes it (raw HTTP)."""
    project = make_project(base, "python")
    with lsp_running(sandbox, "python", project) as lsp:
        lsp.did_open(project.file, request_timeout=TIMEOUT)
        pos = end_of(PY_SOURCE)
        body = {
            "languageId": "python",
            "pathToProject": project.path,
            "uri": project.uri,
            "position": {"line": pos.line, "character": pos.character},
            "context": {"triggerKind": 2, "triggerCharacter": "."},
        }
        r = raw.post_json(daemon.url, "/lsp/completions", body, timeout=TIMEOUT)
        assert r.status == 200, r.describe()
        got = r.json()
        assert isinstance(got["isIncomplete"], bool) and isinstance(got["items"], list), got
        assert any(i["label"].startswith("greet") for i in got["items"]), [i["label"] for i in got["items"]][:20]


# ============================================================ exact answers (fake server)


@pytest.mark.deadline(30)
def test_completion_items_are_normalised(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "plain")
    pos = LspCompletionPosition(line=0, character=1)
    fake_script(
        project,
        {
            "textDocument/completion": {
                "result": [
                    {
                        "label": "alpha",
                        "kind": 3,
                        "detail": "a detail",
                        "documentation": "plain doc",
                        "sortText": "1",
                        "filterText": "alp",
                        "insertText": "alpha()",
                        "textEdit": {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}, "newText": "alpha"},
                        "data": {"x": 1},
                    },
                    {"label": "beta", "documentation": {"kind": "markdown", "value": "**b**"}},
                ]
            }
        },
    )
    with lsp_running(sandbox, "fake", project) as lsp:
        got = lsp.completions(project.file, pos, request_timeout=TIMEOUT)
        assert got.is_incomplete is False
        alpha, beta = got.items
        assert (alpha.label, alpha.kind, alpha.detail) == ("alpha", 3, "a detail")
        assert alpha.documentation == {"kind": "plaintext", "value": "plain doc"}
        assert (alpha.sort_text, alpha.filter_text, alpha.insert_text) == ("1", "alp", "alpha()")
        assert alpha.additional_properties == {}, f"fields beyond the contract: {alpha.additional_properties}"
        assert beta.label == "beta" and beta.kind is None
        assert beta.documentation == {"kind": "markdown", "value": "**b**"}

        fake_script(project, {"textDocument/completion": {"result": {"isIncomplete": True, "items": [{"label": "gamma"}]}}})
        got = lsp.completions(project.file, pos, request_timeout=TIMEOUT)
        assert got.is_incomplete is True and [i.label for i in got.items] == ["gamma"]

        fake_script(project, {"textDocument/completion": {"result": None}})
        got = lsp.completions(project.file, pos, request_timeout=TIMEOUT)
        assert got.is_incomplete is False and got.items == []


@pytest.mark.deadline(30)
def test_symbols_are_normalised(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "plain")

    def rng(line: int, a: int, b: int) -> dict:
        return {"start": {"line": line, "character": a}, "end": {"line": line, "character": b}}

    hierarchical = [
        {
            "name": "Outer",
            "kind": CLASS,
            "range": rng(2, 0, 30),
            "selectionRange": rng(2, 6, 11),
            "children": [{"name": "inner", "kind": METHOD, "range": rng(3, 2, 20), "selectionRange": rng(3, 2, 7)}],
        }
    ]
    flat = [{"name": "Elsewhere", "kind": FUNCTION, "location": {"uri": "file:///x/y.py", "range": rng(7, 4, 13)}}]
    fake_script(project, {"textDocument/documentSymbol": {"result": hierarchical}, "workspace/symbol": {"result": flat}})
    with lsp_running(sandbox, "fake", project) as lsp:
        symbols = lsp.document_symbols(project.file, request_timeout=TIMEOUT)
        by_name = {s.name: s for s in symbols}
        assert set(by_name) == {"Outer", "inner"}, f"hierarchical symbols not flattened: {sorted(by_name)}"
        assert by_name["Outer"].kind == CLASS and by_name["inner"].kind == METHOD
        for name, line in (("Outer", 2), ("inner", 3)):
            assert by_name[name].location.uri == project.uri
            assert by_name[name].location.range.start.line == line

        found = lsp.sandbox_symbols("Else", request_timeout=TIMEOUT)
        assert [(s.name, s.kind, s.location.uri, s.location.range.start.line) for s in found] == [
            ("Elsewhere", FUNCTION, "file:///x/y.py", 7)
        ]

        fake_script(project, {"textDocument/documentSymbol": {"result": None}, "workspace/symbol": {"result": None}})
        assert lsp.document_symbols(project.file, request_timeout=TIMEOUT) == []
        assert lsp.sandbox_symbols("x", request_timeout=TIMEOUT) == []


@pytest.mark.deadline(30)
def test_server_errors_and_server_requests(daemon: Daemon, sandbox, base: Path):
    """The server's own requests are answered; its error answers come back naming the method."""
    project = make_project(base, "plain")
    asked = ["workspace/configuration", "client/registerCapability", "window/workDoneProgress/create", "x/unknown"]
    fake_script(
        project,
        {
            "serverRequests": asked,
            "textDocument/completion": {"error": {"code": -32603, "message": "kaboom"}},
        },
    )
    with lsp_running(sandbox, "fake", project) as lsp:

        def replies() -> dict:
            return {m["id"]: m for m in fake_log(project) if "method" not in m and "id" in m}

        assert wait_for(lambda: len(replies()) == len(asked), 5), f"server requests unanswered: {fake_methods(project)}"
        for n, method in enumerate(asked, 1):
            reply = replies()[f"srv-{n}"]
            ok = "result" in reply or reply.get("error", {}).get("code") == -32601
            assert ok, f"{method}: {reply}"

        err = sdk_error(lsp.completions, project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT)
        assert err.status_code == 400 and err.code == "LSP_REQUEST_FAILED", repr(err)
        assert "textDocument/completion" in err.message, err.message
        # One refused request leaves the server usable.
        assert lsp.document_symbols(project.file, request_timeout=TIMEOUT) == []


@pytest.mark.deadline(30)
def test_oversized_answer_is_refused(daemon: Daemon, sandbox, base: Path):
    """An answer over the size limit (16 MiB) is refused naming the method; the server stays usable."""
    project = make_project(base, "plain")
    fake_script(project, {"textDocument/completion": {"big": 24 << 20}})
    with lsp_running(sandbox, "fake", project) as lsp:
        err = sdk_error(lsp.completions, project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT)
        assert err.status_code == 400 and err.code == "LSP_RESPONSE_TOO_LARGE", repr(err)
        assert "textDocument/completion" in err.message, err.message
        fake_script(project, {})
        assert lsp.completions(project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT).items == []


@pytest.mark.deadline(30)
def test_server_dying_during_a_request(daemon: Daemon, sandbox, base: Path):
    project = make_project(base, "plain")
    fake_script(project, {"textDocument/completion": {"exit": 7}})
    with lsp_running(sandbox, "fake", project) as lsp:
        started = time.monotonic()
        err = sdk_error(lsp.completions, project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT)
        assert time.monotonic() - started < 10, "the daemon waited on a dead server"
        assert err.status_code is not None and 400 <= err.status_code < 600 and err.status_code != 500, repr(err)
        assert err.code in ("LSP_SERVER_NOT_INITIALIZED", "LSP_SERVER_FAILED", "LSP_REQUEST_FAILED"), repr(err)
        err = sdk_error(lsp.document_symbols, project.file, request_timeout=TIMEOUT)
        assert isinstance(err, DaytonaLspServerNotInitializedError), repr(err)
        assert "exit" in err.message.lower(), err.message
        fake_script(project, {})
        lsp.start(request_timeout=TIMEOUT)
        assert lsp.completions(project.file, LspCompletionPosition(line=0, character=0), request_timeout=TIMEOUT).items == []


# ============================================================================ daemon exit


@pytest.mark.deadline(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_servers_die_with_the_daemon(daemon_factory, sdk_for, base: Path, tools, sig: int):
    d = daemon_factory.start(extra_env={"DAYTONA_LSP_SERVERS": json.dumps(USER_SERVERS)})
    sandbox = sdk_for(d).sandbox
    for language, kind in (("python", "python"), ("typescript", "typescript"), ("py2", "python"), ("fake", "plain")):
        project = make_project(base, kind, f"{language}-project")
        lsp = sandbox.create_lsp_server(language, project.path)
        lsp.start(request_timeout=TIMEOUT)
        lsp.did_open(project.file, request_timeout=TIMEOUT)
    tree = descendants(d.proc.pid)
    for program in ("pylsp", "typescript-language-server", "pyright-langserver", "fake_lsp.py"):
        assert len(server_procs(d, program)) == 1, (program, [(p.pid, p.cmdline) for p in tree])
    if sig == signal.SIGTERM:
        assert d.stop(signal.SIGTERM) == 0, d.output_tail()
    else:
        d.kill()  # no chance to clean up: the servers must still not outlive it
    assert wait_for(lambda: not any(running(p) for p in tree), 5), (
        f"still running after the daemon stopped: {[(p.pid, p.cmdline) for p in tree if running(p)]}"
    )
