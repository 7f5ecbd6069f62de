"""The web terminal in a real browser: headless Chromium (Debian's `chromium`, installed by
tests/ensure-deps) driven over the DevTools protocol opens the page on DAYTONA_TERMINAL_PORT,
types `echo hello-from-browser` + Enter, and finds the command's output in the rendered
terminal. A screenshot is saved next to the test's temporary files (its path is printed)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import aiohttp

from harness.browser import SCREEN_TEXT, Cdp, open_page, start_chromium
from harness.daemon import free_port, wait_listening







def test_typing_in_the_browser(daemon_factory, tmp_path):
    port = free_port()
    daemon_factory.start(extra_env={"DAYTONA_TERMINAL_PORT": str(port)})
    wait_listening(port)
    devtools = free_port()
    proc = start_chromium(tmp_path / "chromium", devtools)
    shot = tmp_path / "web-terminal.png"

    async def main():
        async with aiohttp.ClientSession() as s:
            page = await open_page(s, devtools)
            async with s.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = Cdp(ws)
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
                deadline = time.monotonic() + 15
                while not await cdp.eval("!!(window.term && document.querySelector('.xterm-rows'))"):
                    assert time.monotonic() < deadline, "the page did not create the terminal"
                    await asyncio.sleep(0.1)
                # Wait for the shell's first output (the prompt) before typing.
                while not (await cdp.eval(SCREEN_TEXT) or "").strip():
                    assert time.monotonic() < deadline, "no prompt in the terminal"
                    await asyncio.sleep(0.1)
                await cdp.eval("window.term.focus()")
                await cdp.call("Input.insertText", text="echo hello-from-browser")
                for kind in ("keyDown", "keyUp"):
                    await cdp.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                                   windowsVirtualKeyCode=13, nativeVirtualKeyCode=13,
                                   **({"text": "\r"} if kind == "keyDown" else {}))
                deadline = time.monotonic() + 15
                screen = ""
                while True:
                    screen = await cdp.eval(SCREEN_TEXT) or ""
                    lines = [line.strip() for line in screen.splitlines()]
                    # The typed command line and, below it, the command's output.
                    if any("echo hello-from-browser" in line for line in lines) and "hello-from-browser" in lines:
                        break
                    assert time.monotonic() < deadline, f"output not rendered; screen:\n{screen}"
                    await asyncio.sleep(0.1)
                png = await cdp.call("Page.captureScreenshot", format="png")
                shot.write_bytes(base64.b64decode(png["data"]))

    try:
        asyncio.run(main())
    finally:
        proc.kill()
        proc.wait()
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 1000
