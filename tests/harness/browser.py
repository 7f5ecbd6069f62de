"""Headless Chromium driven over the DevTools protocol, for the browser tests."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp


class Cdp:
    """One Chromium tab over the DevTools protocol: calls, evaluation, waiting, clicks; page
    exceptions are collected in ``exceptions``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.n = 0
        self.exceptions: list[str] = []

    async def call(self, method: str, **params):
        self.n += 1
        my = self.n
        await self.ws.send_str(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = await self.ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
            if data.get("id") == my:
                assert "error" not in data, (method, data)
                return data["result"]

    async def eval(self, expr: str):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, (expr, r["exceptionDetails"])
        return r["result"].get("value")

    async def wait(self, expr: str, what: str, timeout: float = 15.0):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.eval(expr)
            if value:
                return value
            assert time.monotonic() < deadline, f"{what} (within {timeout:.0f}s; `{expr}` = {value!r})"
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (what a user does; no JS .click())."""
        rect = await self.eval(
            f"""(() => {{
              const e = document.querySelector({json.dumps(selector)});
              if (!e) return null;
              e.scrollIntoView({{block: 'center'}});
              const r = e.getBoundingClientRect();
              return {{x: r.x + r.width / 2, y: r.y + r.height / 2}};
            }})()"""
        )
        assert rect, f"nothing matches {selector}"
        await self.call("Input.dispatchMouseEvent", type="mouseMoved", x=rect["x"], y=rect["y"])
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=rect["x"], y=rect["y"], button="left", clickCount=1)


async def open_page(session: aiohttp.ClientSession, devtools: int, timeout: float = 30) -> dict:
    """The first page target of a Chromium started with ``--remote-debugging-port=devtools``,
    once its DevTools endpoint answers."""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, "chromium's DevTools endpoint did not come up"
        try:
            async with session.get(f"http://127.0.0.1:{devtools}/json/list") as r:
                page = next((t for t in await r.json() if t["type"] == "page"), None)
                if page is not None:
                    return page
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)


# The text the web terminal's xterm.js shows, read in the page.
SCREEN_TEXT = """(() => {
  const rows = document.querySelector('.xterm-rows');
  return rows ? rows.innerText : '';
})()"""


def start_chromium(profile: Path, devtools: int, *extra: str, window: str = "1000,700", **popen) -> subprocess.Popen:
    """Headless Chromium on a blank page, driven through DevTools on port ``devtools``; a
    missing browser fails the test, naming it."""
    browser = shutil.which("chromium")
    assert browser, "chromium is missing (apt-get install chromium; tests/ensure-deps installs it)"
    return subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", *extra,
         f"--remote-debugging-port={devtools}", f"--user-data-dir={profile}",
         f"--window-size={window}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen,
    )
