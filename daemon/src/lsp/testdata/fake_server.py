#!/usr/bin/env python3
"""A scripted language server for the daemon's /lsp router tests (standard library only).

Usage: fake_server.py MODE LOG
  MODE   normal | crash-on-initialize | silent-completion | huge-completion
  LOG    a file that receives one line per message received
Completion answers one item whose label is the last non-empty line of the document's current
text, so a test can tell which text the server has. Document symbols answer a nested outline;
workspace/symbol is not implemented (MethodNotFound), like pylsp.
"""
import json
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "normal"
LOG = sys.argv[2] if len(sys.argv) > 2 else None
docs = {}


def log(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


def read():
    length = None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return json.loads(sys.stdin.buffer.read(length))


def send(msg):
    body = json.dumps(msg).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    sys.stdout.buffer.flush()


def answer(msg, result=None, error=None):
    out = {"jsonrpc": "2.0", "id": msg["id"]}
    if error:
        out["error"] = error
    else:
        out["result"] = result
    send(out)


while True:
    msg = read()
    if msg is None:
        break
    method = msg.get("method")
    params = msg.get("params") or {}
    if method == "initialize":
        if MODE == "crash-on-initialize":
            sys.stderr.write("fake: cannot find my runtime\n")
            sys.stderr.flush()
            sys.exit(3)
        log("initialize " + str(params.get("rootUri")))
        # A server-to-client request in the middle of the handshake, as real servers send.
        send({"jsonrpc": "2.0", "id": "cfg-1", "method": "workspace/configuration",
              "params": {"items": [{"section": "fake"}]}})
        answer(msg, {"capabilities": {"completionProvider": {}, "documentSymbolProvider": True}})
    elif method == "textDocument/didOpen":
        doc = params["textDocument"]
        docs[doc["uri"]] = doc["text"]
        log(f"didOpen {doc['version']} {doc['languageId']} {doc['uri']}")
    elif method == "textDocument/didChange":
        doc = params["textDocument"]
        docs[doc["uri"]] = params["contentChanges"][-1]["text"]
        log(f"didChange {doc['version']} {doc['uri']}")
    elif method == "textDocument/didClose":
        docs.pop(params["textDocument"]["uri"], None)
        log("didClose " + params["textDocument"]["uri"])
    elif method == "textDocument/completion":
        uri = params["textDocument"]["uri"]
        if MODE == "silent-completion":
            continue
        if MODE == "huge-completion":
            answer(msg, [{"label": "x" * 4096}] * 64)
            continue
        lines = [l for l in docs.get(uri, "").splitlines() if l.strip()]
        answer(msg, {"isIncomplete": True, "items": [
            {"label": lines[-1] if lines else "<empty>", "kind": 6, "documentation": "plain words",
             "textEdit": {"newText": "dropped", "range": {"start": {"line": 0, "character": 0},
                                                         "end": {"line": 0, "character": 0}}}}]})
    elif method == "textDocument/documentSymbol":
        r = lambda a, b: {"start": {"line": a, "character": 0}, "end": {"line": b, "character": 1}}
        answer(msg, [{"name": "Outer", "kind": 5, "range": r(0, 9), "selectionRange": r(0, 0),
                      "children": [{"name": "inner", "kind": 6, "range": r(1, 2), "selectionRange": r(1, 1)}]}])
    elif method == "shutdown":
        log("shutdown")
        answer(msg, None)
    elif method == "exit":
        log("exit")
        sys.exit(0)
    elif "id" in msg and method:
        answer(msg, error={"code": -32601, "message": "Method Not Found: " + method})
