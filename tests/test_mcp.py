"""The toolbox as an MCP server on ``/mcp`` (Streamable HTTP), through the official Python MCP
client (``mcp``: ``mcp.Client`` over ``mcp.client.streamable_http``).

``Client(url)`` negotiates the current protocol revision (``server/discover``);
``mode="legacy"`` takes the ``initialize`` handshake of the older revisions. Tool results are
checked against what the sandbox really holds: files on disk, ``git log``, the desktop's size.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import BlobResourceContents, EmbeddedResource, ImageContent, TextContent

MAX_OUTPUT = 100_000

EXPECTED_TOOLS = {
    "execute_command", "code_run",
    "file_list", "file_read", "file_write", "file_find", "file_search", "file_replace", "file_move",
    "file_delete", "file_info", "file_mkdir",
    "session_create", "session_execute", "session_command_logs", "session_list", "session_delete",
    "git_clone", "git_status", "git_add", "git_commit", "git_branches", "git_checkout", "git_pull", "git_push",
    "lsp_start", "lsp_completions", "lsp_document_symbols", "lsp_workspace_symbols",
    "desktop_start", "desktop_status", "screenshot", "mouse_move", "mouse_click", "mouse_drag", "mouse_scroll",
    "keyboard_type", "keyboard_press", "keyboard_hotkey", "windows_list", "a11y_find", "a11y_invoke", "a11y_wait", "clipboard_get", "clipboard_set",
    "a11y_set_value",
}


def mcp_url(d) -> str:
    return f"{d.url}/mcp"


def run(d, fn, **client_args):
    """Runs ``fn(client)`` with a client connected to daemon ``d``; returns its result."""

    async def main():
        async with Client(mcp_url(d), **client_args) as client:
            return await fn(client)

    return asyncio.run(main())


def call(d, name: str, arguments: dict):
    async def fn(c):
        return await c.call_tool(name, arguments)

    return run(d, fn)


def text(result) -> str:
    assert result.content and isinstance(result.content[0], TextContent), result
    return result.content[0].text


def ok_json(result) -> dict:
    assert not result.is_error, text(result)
    return json.loads(text(result))


# ------------------------------------------------------------------------------------ tools


def test_tools_are_listed_with_object_schemas(daemon):
    async def fn(c):
        return c.protocol_version, c.server_info, c.instructions, (await c.list_tools()).tools

    version, info, instructions, tools = run(daemon, fn)
    assert version == "2026-07-28"
    assert info.name == "daytona-toolbox"
    assert "sandbox" in instructions
    names = {t.name for t in tools}
    assert EXPECTED_TOOLS <= names, EXPECTED_TOOLS - names
    for t in tools:
        s = t.input_schema
        assert s["type"] == "object" and isinstance(s["properties"], dict), t.name
        assert set(s.get("required", [])) <= set(s["properties"]), t.name
        assert "$ref" not in json.dumps(s), t.name
        assert t.description, t.name
    by_name = {t.name: t for t in tools}
    assert by_name["execute_command"].input_schema["required"] == ["command"]
    assert set(by_name["git_commit"].input_schema["required"]) == {"path", "message", "author", "email"}
    assert set(by_name["session_execute"].input_schema["required"]) == {"sessionId", "command"}
    assert "follow" not in by_name["session_command_logs"].input_schema["properties"]
    assert {"content", "encoding", "path"} <= set(by_name["file_write"].input_schema["properties"])


def test_the_initialize_handshake_of_older_clients(daemon):
    async def fn(c):
        return c.protocol_version, await c.call_tool("execute_command", {"command": "echo legacy"})

    version, r = run(daemon, fn, mode="legacy")
    assert version == "2025-11-25"
    assert ok_json(r) == {"exitCode": 0, "result": "legacy\n"}


# --------------------------------------------------------------------------------- commands


def test_a_command_answers_output_and_exit_code(daemon):
    assert ok_json(call(daemon, "execute_command", {"command": "echo hi"})) == {"exitCode": 0, "result": "hi\n"}
    # A non-zero exit is a result, not an error.
    r = call(daemon, "execute_command", {"command": "echo out; echo err >&2; exit 7"})
    assert not r.is_error
    answer = ok_json(r)
    assert answer["exitCode"] == 7 and "out" in answer["result"] and "err" in answer["result"]


def test_code_run(daemon):
    if shutil.which("python3") is None:
        pytest.skip("no python3")
    answer = ok_json(call(daemon, "code_run", {"language": "python", "code": "print(6 * 7)"}))
    assert answer["exitCode"] == 0 and "42" in answer["result"]


def test_bad_input_is_a_tool_error_with_the_envelope_code(daemon):
    r = call(daemon, "file_read", {"path": str(daemon.home / "no-such-file.txt")})
    assert r.is_error
    assert text(r).startswith("FILE_NOT_FOUND: "), text(r)
    r = call(daemon, "file_list", {"path": str(daemon.home / "no-such-dir")})
    assert r.is_error and text(r).split(":")[0].isupper(), text(r)
    r = call(daemon, "execute_command", {"command": "   "})
    assert r.is_error and text(r).startswith("BAD_REQUEST: "), text(r)
    r = call(daemon, "execute_command", {"commnd": "ls"})
    assert r.is_error and "missing required argument" in text(r), text(r)


def test_a_long_output_is_cut_with_a_note(daemon):
    r = call(daemon, "execute_command", {"command": "head -c 600000 /dev/zero | tr '\\0' x; echo; echo LAST-LINE"})
    t = text(r)
    assert len(t) <= MAX_OUTPUT + 1000, len(t)
    body, note = t.split("\n[output truncated", 1)
    answer = json.loads(body)
    assert answer["exitCode"] == 0
    # Head and tail of the output stay; the middle is replaced by a marker.
    assert answer["result"].startswith("xxx") and answer["result"].endswith("LAST-LINE\n")
    assert "characters left out" in answer["result"]
    assert "characters left out" in note and "file_read" in note, note


# ------------------------------------------------------------------------------------ files


def test_files_are_written_and_read_as_text_and_binary(daemon):
    path = daemon.home / "mcp" / "sub" / "notes.txt"
    r = call(daemon, "file_write", {"path": str(path), "content": "line one\nünïcode\n"})
    assert not r.is_error, text(r)
    assert path.read_text() == "line one\nünïcode\n"
    r = call(daemon, "file_read", {"path": str(path)})
    assert not r.is_error and len(r.content) == 1 and text(r) == "line one\nünïcode\n"
    assert text(call(daemon, "file_read", {"path": str(path), "offset": 5, "length": 3})) == "one"

    data = bytes(range(256)) * 4
    blob = daemon.home / "mcp" / "data.bin"
    r = call(daemon, "file_write", {"path": str(blob), "content": base64.b64encode(data).decode(), "encoding": "base64"})
    assert not r.is_error, text(r)
    assert blob.read_bytes() == data
    r = call(daemon, "file_read", {"path": str(blob)})
    assert not r.is_error
    (content,) = r.content
    assert isinstance(content, EmbeddedResource) and isinstance(content.resource, BlobResourceContents)
    assert base64.b64decode(content.resource.blob) == data
    assert str(content.resource.uri).startswith("file:///")


def test_a_large_file_is_read_in_parts(daemon):
    path = daemon.home / "big.txt"
    path.write_text("".join(f"{i:07d}\n" for i in range(20_000)))  # 160 000 bytes
    r = call(daemon, "file_read", {"path": str(path)})
    first, note = text(r), r.content[1].text
    assert first == path.read_text()[:MAX_OUTPUT]
    assert f"showed bytes 0-{MAX_OUTPUT} of 160000" in note and f"offset={MAX_OUTPUT}" in note, note
    rest = text(call(daemon, "file_read", {"path": str(path), "offset": MAX_OUTPUT}))
    assert first + rest == path.read_text()


def test_find_search_info_move_mkdir_delete(daemon):
    root = daemon.home / "ops"
    call(daemon, "file_mkdir", {"path": str(root / "a")})
    (root / "a" / "x.py").write_text("needle = 1\n")
    found = ok_json(call(daemon, "file_find", {"path": str(root), "pattern": "needle"}))
    assert any(m["file"].endswith("x.py") for m in found), found
    names = ok_json(call(daemon, "file_search", {"path": str(root), "pattern": "*.py"}))
    assert any(f.endswith("x.py") for f in names["files"]), names
    info = ok_json(call(daemon, "file_info", {"path": str(root / "a" / "x.py")}))
    assert info["size"] == 11
    ok = call(daemon, "file_move", {"source": str(root / "a" / "x.py"), "destination": str(root / "y.py")})
    assert not ok.is_error, text(ok)
    assert (root / "y.py").exists()
    r = call(daemon, "file_replace", {"files": [str(root / "y.py")], "pattern": "needle", "newValue": "pin"})
    assert not r.is_error and (root / "y.py").read_text() == "pin = 1\n"
    r = call(daemon, "file_delete", {"path": str(root), "recursive": True})
    assert not r.is_error, text(r)
    assert not root.exists()


# ---------------------------------------------------------------------------------- sessions


def test_a_session_runs_commands_and_keeps_their_logs(daemon):
    async def fn(c):
        out = {}
        out["create"] = await c.call_tool("session_create", {"sessionId": "mcp-s"})
        out["sync"] = await c.call_tool("session_execute", {"sessionId": "mcp-s", "command": "X=41; echo $((X+1))"})
        out["async"] = await c.call_tool(
            "session_execute", {"sessionId": "mcp-s", "command": "echo start; sleep 0.3; echo done", "runAsync": True}
        )
        cmd = json.loads(out["async"].content[0].text)["cmdId"]
        for _ in range(50):
            logs = await c.call_tool("session_command_logs", {"sessionId": "mcp-s", "commandId": cmd})
            if "done" in logs.content[0].text:
                break
            await asyncio.sleep(0.1)
        out["logs"] = logs
        out["list"] = await c.call_tool("session_list", {})
        out["delete"] = await c.call_tool("session_delete", {"sessionId": "mcp-s"})
        out["gone"] = await c.call_tool("session_get", {"sessionId": "mcp-s"})
        return out

    out = run(daemon, fn)
    assert not out["create"].is_error, text(out["create"])
    sync = ok_json(out["sync"])
    assert sync["exitCode"] == 0 and sync["output"] == "42\n", sync
    logs = text(out["logs"])
    assert "start" in logs and "done" in logs, logs
    assert any(s["sessionId"] == "mcp-s" for s in ok_json(out["list"]))
    assert not out["delete"].is_error
    assert out["gone"].is_error and text(out["gone"]).startswith("PROCESS_NOT_FOUND: "), text(out["gone"])


# --------------------------------------------------------------------------------------- git


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_commit_in_a_repository_made_here(daemon):
    repo = daemon.home / "repo"

    async def fn(c):
        out = {}
        out["init"] = await c.call_tool("execute_command", {"command": f"git init -q -b main {repo}"})
        out["write"] = await c.call_tool("file_write", {"path": str(repo / "hello.txt"), "content": "hello\n"})
        out["status"] = await c.call_tool("git_status", {"path": str(repo)})
        out["add"] = await c.call_tool("git_add", {"path": str(repo), "files": ["hello.txt"]})
        out["commit"] = await c.call_tool(
            "git_commit",
            {"path": str(repo), "message": "first via MCP", "author": "Mcp Tester", "email": "mcp@example.com"},
        )
        out["log"] = await c.call_tool("execute_command", {"command": "git log --format='%s|%an|%ae'", "cwd": str(repo)})
        out["branches"] = await c.call_tool("git_branches", {"path": str(repo)})
        return out

    out = run(daemon, fn)
    for k in ("init", "write", "status", "add", "commit"):
        assert not out[k].is_error, (k, text(out[k]))
    assert "hello.txt" in text(out["status"])
    sha = ok_json(out["commit"])["hash"]
    assert len(sha) == 40
    assert ok_json(out["log"])["result"] == "first via MCP|Mcp Tester|mcp@example.com\n"
    assert "main" in ok_json(out["branches"])["branches"]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert head.stdout.strip() == sha


# ------------------------------------------------------------------------------ concurrency


@pytest.mark.deadline(60)
def test_concurrent_clients(daemon):
    n = 6

    async def one(i):
        async with Client(mcp_url(daemon)) as c:
            r = await c.call_tool("execute_command", {"command": f"sleep 1; echo client-{i}"})
            return json.loads(r.content[0].text)["result"]

    async def main():
        t0 = time.monotonic()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        return results, time.monotonic() - t0

    results, took = asyncio.run(main())
    assert results == [f"client-{i}\n" for i in range(n)]
    # Side by side, not one after the other.
    assert took < n - 1, took


# ---------------------------------------------------------------------------------- shutdown


@pytest.mark.deadline(60)
def test_a_call_in_flight_does_not_hold_the_shutdown(daemon_factory):
    d = daemon_factory.start()
    outcome = {}

    def client():
        try:
            outcome["result"] = call(d, "execute_command", {"command": "sleep 60"})
        except BaseException as e:  # noqa: BLE001 - the connection is cut by the shutdown
            outcome["error"] = e

    t = threading.Thread(target=client, daemon=True)
    t.start()
    time.sleep(1.5)
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, 15)
    assert rc == 0 and time.monotonic() - t0 < 10, (rc, d.output_tail())
    t.join(10)


# ---------------------------------------------------------------------------------- desktop

DECODE = r"""
import json, sys
from PIL import Image
im = Image.open(sys.argv[1])
print(json.dumps({"format": im.format, "size": list(im.size)}))
"""


def decoded(data: bytes) -> dict:
    """Format and size of an image, by PIL in Debian's python3 (the test venv has no image library)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "img"
        p.write_bytes(data)
        r = subprocess.run(["/usr/bin/python3", "-c", DECODE, str(p)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


@pytest.mark.deadline(180)
def test_a_screenshot_is_image_content(desktop):
    d = desktop.daemon

    async def fn(c):
        return (
            await c.call_tool("screenshot", {}),
            await c.call_tool("screenshot", {"format": "png", "scale": 0.5}),
            await c.call_tool("desktop_status", {}),
            await c.call_tool("windows_list", {}),
            await c.call_tool("mouse_move", {"x": 123, "y": 234}),
        )

    jpeg, png, status, windows, moved = run(d, fn)
    assert not moved.is_error, text(moved)
    assert desktop.run(["xdotool", "getmouselocation"]).stdout.startswith("x:123 y:234 "), "the pointer did not move"
    for r in (jpeg, png):
        assert not r.is_error, r
        assert isinstance(r.content[0], ImageContent), r.content
    assert jpeg.content[0].mime_type == "image/jpeg" and png.content[0].mime_type == "image/png"
    assert decoded(base64.b64decode(jpeg.content[0].data)) == {"format": "JPEG", "size": [1024, 768]}
    assert decoded(base64.b64decode(png.content[0].data)) == {"format": "PNG", "size": [512, 384]}
    assert ok_json(status)["status"] == "active"
    assert "windows" in ok_json(windows)


def test_desktop_tools_without_a_desktop_are_tool_errors(daemon):
    r = call(daemon, "screenshot", {})
    assert r.is_error
    assert text(r).startswith("HTTP 503: "), text(r)


# ------------------------------------------------------------------------------------ auth


def test_with_a_token_the_client_needs_it(daemon_factory):
    """`/mcp` sits behind the port's token like every route: with the header the tools work
    (their in-process calls pass); without it, or with another token, the endpoint is a 401."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    token = "mcp-token-0123456789abcdef"
    d = daemon_factory.start(extra_env={"DAYTONA_AUTH_TOKEN": token})

    async def with_header(value: str | None):
        headers = {} if value is None else {"Authorization": f"Bearer {value}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(mcp_url(d), http_client=http)) as c:
                return await c.call_tool("execute_command", {"command": "echo through; echo $DAYTONA_AUTH_TOKEN"})

    result = asyncio.run(with_header(token))
    body = ok_json(result)
    # The command ran, and the token did not reach its environment.
    assert body["exitCode"] == 0 and body["result"] == "through\n\n", body
    # The client reports a refused call only as "Server returned an error response"; the status
    # is read below with plain HTTP.
    for bad in (None, "another-token-0123456789"):
        with pytest.raises(BaseException):
            asyncio.run(with_header(bad))
    import urllib.error
    import urllib.request

    for headers in ({}, {"Authorization": "Bearer another-token-0123456789"}):
        req = urllib.request.Request(
            mcp_url(d), data=b"{}", method="POST", headers={"Content-Type": "application/json", **headers}
        )
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401 and json.loads(e.value.read())["code"] == "UNAUTHORIZED"
