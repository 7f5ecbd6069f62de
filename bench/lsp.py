#!/usr/bin/env python3
"""Language-server latency through the daemon beside the same server driven directly, and the
daemon's memory with servers running, measured in one run.

    cargo build --release -p daytona-daemon
    python3 bench/lsp.py [--bin PATH] [--iterations 200] [--warmup 20]

For pylsp (python) and typescript-language-server (typescript), on a small project written here:

* the daemon: POST /lsp/start and /lsp/did-open, then N × POST /lsp/completions (the JSON body
  the SDK sends) and N × GET /lsp/document-symbols, each on one kept-alive connection;
* directly: the same server binary spawned here over stdio (a minimal Content-Length JSON-RPC
  client below), the same initialize / initialized / didOpen, then the same N requests.
The two are interleaved request by request after a warm-up (alternating which goes first), so
machine noise hits both alike; p50/p99 of each and the p50 the daemon adds are printed (target:
at most 1 ms added at p50). A third row uses tests/harness/fake_lsp.py, which answers at once,
so what it shows is the transport alone. pylsp's completions take ~100+ ms of CPU and two pylsp
processes of the same project differ by tens of ms between themselves, so its "added" figure is
mostly that spread; the typescript and fake rows show the daemon's own cost.

Then the daemon's VmRSS idle and with --servers servers running (default 5, pylsp and typescript
in turn; each opened a file and answered a completion), with the servers' own RSS (each
server's whole process tree) reported separately.
Only the standard library is used. With BENCH_QUICK=1 the defaults are 20 iterations after 3
warm-up requests and 2 servers for the memory figure (starting a server is most of the time).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from common import HEADERS, QUICK, REPO, figure, pcts, rss_kib

sys.path.insert(0, str(REPO / "tests"))

from harness.daemon import start_daemon  # noqa: E402

# A server that answers at once (null results): what is left of its row is the transport.
FAKE_LSP = str(REPO / "tests" / "harness" / "fake_lsp.py")

PY_SOURCE = '''class Greeter:
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

# language id, the command the daemon picks for it, file name, source
SERVERS = [
    ("python", ["pylsp"], "greeter.py", PY_SOURCE),
    ("typescript", ["typescript-language-server", "--stdio"], "src/greeter.ts", TS_SOURCE),
]
ECHO = ("echo", [sys.executable, FAKE_LSP], "notes.txt", "one\n")


def make_project(root: Path, file: str, source: str) -> Path:
    path = root / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    if file.endswith(".ts"):
        (root / "tsconfig.json").write_text(json.dumps({"compilerOptions": {"strict": True}, "include": ["src"]}))
    return path


def end_position(source: str) -> dict:
    lines = source.split("\n")
    return {"line": len(lines) - 1, "character": len(lines[-1])}


class StdioLsp:
    """The smallest useful LSP client: one request at a time, answering the server's own requests
    with a null result and skipping its notifications (as the daemon does)."""

    def __init__(self, argv: list[str], cwd: Path):
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.next_id = 0

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> dict:
        out = self.proc.stdout
        length = None
        while True:
            line = out.readline()
            if not line:
                raise SystemExit(f"{self.proc.args[0]} closed its output (exit code {self.proc.poll()})")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return json.loads(out.read(length))

    def notify(self, method: str, params) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params):
        self.next_id += 1
        my_id = self.next_id
        self._send({"jsonrpc": "2.0", "id": my_id, "method": method, "params": params})
        while True:
            msg = self._read()
            if "method" in msg:
                if "id" in msg:
                    self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
                continue
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise SystemExit(f"{method} failed: {msg['error']}")
                return msg.get("result")

    def initialize(self, root: Path) -> None:
        # The handshake the daemon makes, capabilities and workspace folder included, so that both
        # servers do the same work per request.
        kinds = list(range(1, 27))
        self.request("initialize", {
            "processId": os.getpid(),
            "clientInfo": {"name": "bench", "version": "0.0.1"},
            "rootUri": f"file://{root}",
            "workspaceFolders": [{"uri": f"file://{root}", "name": root.name}],
            "capabilities": {
                "textDocument": {
                    "synchronization": {"dynamicRegistration": True},
                    "completion": {
                        "dynamicRegistration": True, "contextSupport": True,
                        "completionItem": {"snippetSupport": True, "commitCharactersSupport": True,
                                           "deprecatedSupport": True, "preselectSupport": True,
                                           "documentationFormat": ["markdown", "plaintext"]},
                        "completionItemKind": {"valueSet": kinds},
                    },
                    "documentSymbol": {"dynamicRegistration": True, "symbolKind": {"valueSet": kinds}},
                },
                "workspace": {"symbol": {"dynamicRegistration": True}, "configuration": True,
                              "workspaceFolders": True},
            },
        })
        self.notify("initialized", {})

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(5)
        except (SystemExit, OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Daemon:
    """Raw HTTP to the daemon on one kept-alive connection."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: dict | None = None):
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=HEADERS)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise SystemExit(f"{method} {path} answered {resp.status}: {data[:500]!r}")
        return json.loads(data) if data else None


def tree_rss_kib(pid: int) -> int:
    """VmRSS of `pid` and all its descendants (a server and, e.g., its tsserver children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += rss_kib(p)
        except (OSError, RuntimeError):
            pass  # gone, or a kernel thread without VmRSS
        todo.extend(children.get(p, []))
    return total


def server_of(daemon_pid: int, root: Path) -> int | None:
    """The daemon's child running in `root` (the daemon starts each server in its project)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == daemon_pid and cwd == str(root):
            return int(entry)
    return None


def version_of(argv0: str) -> str:
    try:
        out = subprocess.run([argv0, "--version"], capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def bench_server(port: int, base: Path, language: str, argv: list[str], file: str, source: str,
                 iterations: int, warmup: int) -> list[tuple]:
    root = base / f"{language}-latency"
    path = make_project(root, file, source)
    uri = f"file://{path}"
    pos = end_position(source)
    key = {"languageId": language, "pathToProject": str(root)}

    daemon = Daemon(port)
    daemon.call("POST", "/lsp/start", key)
    daemon.call("POST", "/lsp/did-open", {**key, "uri": uri})
    completion_body = {**key, "uri": uri, "position": pos}
    symbols_path = "/lsp/document-symbols?" + urlencode({**key, "uri": uri})

    direct = StdioLsp(argv, root)
    direct.initialize(root)
    direct.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": language, "version": 1, "text": source}})

    rows = []
    try:
        for label, via_daemon, via_stdio in (
            ("completion",
             lambda: daemon.call("POST", "/lsp/completions", completion_body),
             lambda: direct.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": pos})),
            ("document symbols",
             lambda: daemon.call("GET", symbols_path),
             lambda: direct.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})),
        ):
            for _ in range(warmup):
                via_daemon()
                via_stdio()
            t_daemon, t_direct = [], []
            for i in range(iterations):
                # Alternate which goes first, so neither always runs on the caches the other warmed.
                pair = ((via_stdio, t_direct), (via_daemon, t_daemon))
                for fn, times in pair if i % 2 == 0 else pair[::-1]:
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
            rows.append((label, pcts(t_direct), pcts(t_daemon)))
    finally:
        direct.close()
        daemon.call("POST", "/lsp/stop", key)
        daemon.conn.close()
    return rows


def bench_memory(port: int, daemon_pid: int, base: Path, count: int = 5) -> tuple[int, int, list[tuple[str, int | None]]]:
    daemon = Daemon(port)
    time.sleep(0.5)
    idle = rss_kib(daemon_pid)
    started = []
    for i, (language, argv, file, source) in enumerate([SERVERS[i % len(SERVERS)] for i in range(count)]):
        root = base / f"memory-{i}"
        path = make_project(root, file, source)
        key = {"languageId": language, "pathToProject": str(root)}
        daemon.call("POST", "/lsp/start", key)
        daemon.call("POST", "/lsp/did-open", {**key, "uri": f"file://{path}"})
        daemon.call("POST", "/lsp/completions", {**key, "uri": f"file://{path}", "position": end_position(source)})
        started.append((f"{language} ({argv[0]})", root, key))
    time.sleep(0.5)
    busy = rss_kib(daemon_pid)
    servers = []
    for name, root, _ in started:
        pid = server_of(daemon_pid, root)
        servers.append((name, None if pid is None else tree_rss_kib(pid)))
    for _, _, key in started:
        daemon.call("POST", "/lsp/stop", key)
    daemon.conn.close()
    return idle, busy, servers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("DAYTONA_DAEMON_BIN", str(REPO / "target" / "release" / "daytona-daemon")))
    ap.add_argument("--iterations", type=int, default=20 if QUICK else 200)
    ap.add_argument("--warmup", type=int, default=3 if QUICK else 20)
    ap.add_argument("--servers", type=int, default=2 if QUICK else 5, help="servers running for the memory figure")
    args = ap.parse_args()

    missing = [argv[0] for _, argv, _, _ in SERVERS if shutil.which(argv[0]) is None]
    if missing:
        raise SystemExit(f"language servers missing on PATH: {', '.join(missing)} (tests/ensure-deps installs them)")

    base = Path(os.path.realpath(tempfile.mkdtemp(prefix="lspbench-")))
    os.environ["DAYTONA_DAEMON_BIN"] = os.path.abspath(args.bin)
    daemon = start_daemon(base / "daemon", extra_env={"DAYTONA_LSP_SERVERS": json.dumps({ECHO[0]: ECHO[1]})})
    proc, port = daemon.proc, daemon.port
    try:
        print(f"{args.iterations} requests each after {args.warmup} warm-up, interleaved; times in ms")
        print(f"{'server':<34}{'request':<18}{'direct p50':>11}{'p99':>8}{'daemon p50':>12}{'p99':>8}{'added p50':>11}")
        figures = []
        for language, argv, file, source in [*SERVERS, ECHO]:
            name = "fake_lsp.py (answers at once)" if language == ECHO[0] else f"{argv[0]} {version_of(argv[0]).split()[-1]}"
            short = "fake_lsp.py" if language == ECHO[0] else argv[0]
            for label, (d50, d99), (m50, m99) in bench_server(port, base, language, argv, file, source,
                                                               args.iterations, args.warmup):
                print(f"{name:<34}{label:<18}{d50:>11.2f}{d99:>8.2f}{m50:>12.2f}{m99:>8.2f}{m50 - d50:>11.2f}")
                figures.append((f"LSP {label} p50 ({short})", m50, d50))
        print("target: at most 1 ms added at p50")
        print()
        idle, busy, servers = bench_memory(port, proc.pid, base, args.servers)
        print(f"daemon VmRSS idle: {idle / 1024:.1f} MiB; with {len(servers)} servers running: {busy / 1024:.1f} MiB "
              f"(+{(busy - idle) / 1024:.1f} MiB)")
        for name, kib in servers:
            shown = "not found among the daemon's children" if kib is None else f"{kib / 1024:.1f} MiB"
            print(f"  server {name}: {shown} (its process tree)")
        print(f"  servers in all: {sum(k or 0 for _, k in servers) / 1024:.1f} MiB")
        for name, ours, direct in figures:
            figure(name, ours, direct, "ms", "+1 ms", ours - direct <= 1.0, "the same server on stdio")
        figure(f"daemon RSS with {len(servers)} language servers", busy / 1024, idle / 1024, "MiB", "", None,
               "the daemon idle")
    finally:
        daemon.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
