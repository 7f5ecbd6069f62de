"""A scriptable language server for the /lsp tests (standard library only).

Run as ``python fake_lsp.py``; it speaks LSP over stdio (``Content-Length`` framing). Real
servers answer what they like, so the exact conversions the daemon makes (string documentation,
``null`` results, hierarchical symbols, server errors, the handshake, the document sync, the
shutdown sequence) are checked against this one instead.

Everything is per project, found through ``rootUri`` of ``initialize``:

* ``<project>/.fake-lsp/log.jsonl`` — every message received from the client, one JSON object
  a line, appended and flushed as it arrives (the test reads it while the server runs). Replies
  the client sends to the server's own requests are logged too.
* ``<project>/.fake-lsp/script.json`` (optional, re-read on every request) — per LSP method:
  ``{"result": <any>}`` answers with that result, ``{"error": {"code": n, "message": s}}`` with
  that error, ``{"hang": true}`` never answers, ``{"exit": n}`` exits with status ``n`` at once,
  ``{"big": n}`` answers a completion list whose one item has an ``n``-byte label. The key
  ``"serverRequests"`` lists methods the server sends to the client as requests right after the
  ``initialized`` notification (each preceded by a ``window/logMessage`` notification);
  ``"exit": {"ignore": true}`` makes the server ignore the ``exit`` notification;
  ``"stderrBytes": n`` writes ``n`` bytes to stderr before answering ``initialize``.

Methods without a script entry get sensible defaults: ``initialize`` announces completion,
document-symbol and workspace-symbol support; ``shutdown`` answers ``null``; ``exit`` exits 0;
other requests answer ``null``.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import unquote, urlsplit

_state: dict = {"dir": None, "pending": []}


def _read_message(stream) -> dict | None:
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        return None
    body = stream.read(length)
    if len(body) < length:
        return None
    return json.loads(body)


def _send(message: dict) -> None:
    body = json.dumps(message).encode()
    out = sys.stdout.buffer
    out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out.flush()


def _log(message: dict) -> None:
    directory = _state["dir"]
    if directory is None:
        _state["pending"].append(message)
        return
    with open(os.path.join(directory, "log.jsonl"), "a", encoding="utf-8") as f:
        for m in [*_state["pending"], message]:
            f.write(json.dumps(m) + "\n")
    _state["pending"] = []


def _script() -> dict:
    directory = _state["dir"]
    if directory is None:
        return {}
    try:
        with open(os.path.join(directory, "script.json"), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _default(method: str):
    if method == "initialize":
        return {
            "capabilities": {
                "textDocumentSync": 1,
                "completionProvider": {"triggerCharacters": ["."]},
                "documentSymbolProvider": True,
                "workspaceSymbolProvider": True,
            },
            "serverInfo": {"name": "fake-lsp", "version": "1"},
        }
    return None


def main() -> int:
    stdin = sys.stdin.buffer
    next_id = 0
    while True:
        msg = _read_message(stdin)
        if msg is None:
            return 0
        method = msg.get("method")
        if method == "initialize":
            root = urlsplit((msg.get("params") or {}).get("rootUri") or "").path
            directory = os.path.join(unquote(root) or os.getcwd(), ".fake-lsp")
            os.makedirs(directory, exist_ok=True)
            _state["dir"] = directory
        _log(msg)
        if method is None:
            continue  # a reply to one of our own requests: logged, nothing else to do
        if method == "exit":
            if (_script().get("exit") or {}).get("ignore"):
                continue  # a server that will not go: the client has to kill it
            return 0
        step = _script().get(method)
        if isinstance(step, dict) and "exit" in step:
            sys.stderr.write(f"fake-lsp: exiting with {step['exit']} on {method}\n")
            sys.stderr.flush()
            return int(step["exit"])
        if method == "initialize" and _script().get("stderrBytes"):
            # A chatty server: more than a pipe holds, which blocks it unless the client drains it.
            sys.stderr.write("e" * int(_script()["stderrBytes"]) + "\n")
            sys.stderr.flush()
        if method == "initialized":
            for request in _script().get("serverRequests", []):
                _send({"jsonrpc": "2.0", "method": "window/logMessage", "params": {"type": 3, "message": "hello"}})
                next_id += 1
                params = {"items": [{"section": "fake"}]} if request == "workspace/configuration" else {}
                _send({"jsonrpc": "2.0", "id": f"srv-{next_id}", "method": request, "params": params})
            continue
        if "id" not in msg:
            continue  # other notifications need no answer
        reply: dict = {"jsonrpc": "2.0", "id": msg["id"]}
        if isinstance(step, dict) and step.get("hang"):
            continue
        if isinstance(step, dict) and "error" in step:
            reply["error"] = step["error"]
        elif isinstance(step, dict) and "big" in step:
            reply["result"] = {"isIncomplete": False, "items": [{"label": "x" * int(step["big"])}]}
        elif isinstance(step, dict) and "result" in step:
            reply["result"] = step["result"]
        else:
            reply["result"] = _default(method)
        _send(reply)


if __name__ == "__main__":
    sys.exit(main())
