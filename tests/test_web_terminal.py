"""The web terminal (misc.md §5) on its own port (DAYTONA_TERMINAL_PORT, 22222 by default): the
page with the embedded xterm.js, and the websocket that runs a fresh shell per connection, with
resize as a JSON text frame, input, UTF-8 text output, the connection dropped when the shell
exits, and the shell hung up when the page goes away."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

import aiohttp
import pytest

from harness.daemon import free_port, wait_listening




@pytest.fixture
def terminal(daemon_factory):
    port = free_port()
    daemon_factory.start(extra_env={"DAYTONA_TERMINAL_PORT": str(port)})
    wait_listening(port)
    return f"http://127.0.0.1:{port}"


async def read_until(ws, marker: str, timeout: float = 10.0) -> str:
    out = ""
    deadline = time.monotonic() + timeout
    while marker not in out:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{marker!r} not in output:\n{out!r}"
        msg = await ws.receive(timeout=remaining)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"unexpected frame {msg.type}: {out!r}"
        out += msg.data
    return out


def procs_with(tag: str) -> list[int]:
    """The processes with `tag` as one whole argument: a substring would also match unrelated
    processes of a busy machine (numbers in paths, ports and hashes)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if tag.encode() in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_page_and_assets(terminal):
    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.get(terminal + "/") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/html")
                page = await r.text()
            for ref in ("xterm.js", "xterm.css", "xterm-addon-fit.js"):
                assert ref in page
            async with s.get(terminal + "/xterm.js") as r:
                assert r.status == 200
                js = await r.text()
            # The real xterm.js is embedded (packaging/fetch-xterm.sh at build time), not the
            # placeholder a build without network access falls back to.
            assert "DAYTONA_XTERM_MISSING" not in js, "xterm.js was not bundled into this build"
            assert len(js) > 100_000 and "Terminal" in js
            async with s.get(terminal + "/xterm-addon-fit.js") as r:
                assert r.status == 200 and "FitAddon" in await r.text()
            async with s.get(terminal + "/xterm.css") as r:
                assert r.status == 200 and ".xterm" in await r.text()

    asyncio.run(main())


def test_resize_input_and_output(terminal):
    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(terminal.replace("http", "ws") + "/ws") as ws:
                await ws.send_str('{"rows": 33, "cols": 111}')
                await ws.send_str("stty size; echo hello; echo sum-$((40+2)) é\r")
                out = await read_until(ws, "sum-42 é")
                assert "33 111" in out
                assert "hello\r\n" in out
                # The shell runs in / (misc.md §5).
                await ws.send_str("pwd; echo done-$((1+1))\r")
                out = await read_until(ws, "done-2")
                assert "\r\n/\r\n" in out

    asyncio.run(main())


def test_shell_exit_drops_the_connection(terminal):
    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(terminal.replace("http", "ws") + "/ws") as ws:
                await ws.send_str("exit\r")
                deadline = time.monotonic() + 10
                while True:
                    msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
                    assert time.monotonic() < deadline, "connection still open after exit"

    asyncio.run(main())


def test_closing_the_page_hangs_up_the_shell(terminal):
    tag = str(uuid.uuid4().int % 10**6)

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(terminal.replace("http", "ws") + "/ws") as ws:
                await ws.send_str(f"sleep 9{tag} & echo started-$((2+2))\r")
                await read_until(ws, "started-4")

    asyncio.run(main())
    deadline = time.monotonic() + 8
    while procs_with(f"9{tag}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert procs_with(f"9{tag}") == [], "the shell's job survived the closed page"
