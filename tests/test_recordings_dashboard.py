"""The recording dashboard (DAYTONA_RECORDING_DASHBOARD_PORT): its page in a real browser and its
routes over raw HTTP.

The browser test records the screen of a private Xvfb through the SDK
(``sandbox.computer_use.recording.start()/stop()``), opens the dashboard in headless Chromium
(Debian's ``chromium``, installed by tests/ensure-deps) driven over the DevTools protocol, and
checks what a user sees and does: the live recording is listed with its play/delete controls
disabled, the list refreshes by itself when the recording ends, a selection and a playing video
survive the refreshes, the recording plays in the page's ``<video>``, a bulk deletion shows the
ids it could not delete, and the row's delete button removes the file. A screenshot is saved
next to the test's temporary files (its path is printed).

The route test needs no display: plain ``*.mp4`` files written into the recordings directory
are listed and served as well, which makes byte-exact Range checks possible.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from harness import http
from harness.browser import Cdp, open_page, start_chromium
from harness.daemon import REPO_ROOT, free_port, wait_listening

PAGE_FILE = REPO_ROOT / "recorder" / "assets" / "dashboard.html"
ORPHAN = "<img src=x onerror=window.__pwned=1> orphan.mp4"  # markup in a file name stays text


# ------------------------------------------------------------------------------------ helpers


class Page(Cdp):
    """The dashboard tab."""

    async def refreshed(self, times: int = 1) -> None:
        """Waits until the page's own periodic refresh ran `times` more times."""
        start = await self.eval("window.dashboard.state.refreshes")
        await self.wait(f"window.dashboard.state.refreshes >= {start + times}", f"{times} periodic refresh(es)", 5 + 4 * times)


def kill_group(proc: subprocess.Popen) -> None:
    """Ends a process started in its own session, with everything it spawned."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def assert_envelope(resp: http.RawResponse, statuses: tuple[int, ...], what: str) -> dict:
    assert resp.status in statuses, f"{what}: expected {statuses}\n{resp.describe()}"
    assert (resp.header("Content-Type") or "").startswith("application/json"), f"{what}\n{resp.describe()}"
    body = resp.json()
    assert body.get("statusCode") == resp.status, f"{what}: not the error envelope\n{resp.describe()}"
    assert isinstance(body.get("message"), str) and body["message"], f"{what}\n{resp.describe()}"
    return body


def list_recordings(base: str) -> list[dict]:
    resp = http.get(base, "/api/recordings")
    assert resp.status == 200, resp.describe()
    return resp.json()["recordings"]


def delete_body(base: str, body: bytes) -> http.RawResponse:
    return http.request(base, "DELETE", "/api/recordings", body=body, headers={"Content-Type": "application/json"})


@pytest.fixture
def xvfb(tmp_path: Path):
    """A bare X server on a display it picks itself (-displayfd: no race for a number)."""
    binary = shutil.which("Xvfb")
    assert binary, "Xvfb is missing (apt-get install xvfb; tests/ensure-deps installs it)"
    read_end, write_end = os.pipe()
    log = open(tmp_path / "xvfb.log", "wb")
    proc = subprocess.Popen(
        [binary, "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    os.close(write_end)
    try:
        got = b""
        deadline = time.monotonic() + 15
        while not got.endswith(b"\n"):
            left = deadline - time.monotonic()
            assert left > 0 and proc.poll() is None, (tmp_path / "xvfb.log").read_text(errors="replace")
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                chunk = os.read(read_end, 64)
                assert chunk, (tmp_path / "xvfb.log").read_text(errors="replace")
                got += chunk
        yield f":{int(got)}"
    finally:
        os.close(read_end)
        kill_group(proc)


def row(rec_id: str) -> str:
    return f'tr[data-id="{rec_id}"]'


def js_row(rec_id: str) -> str:
    return f"document.querySelector({json.dumps(row(rec_id))})"


# -------------------------------------------------------------------------------- the browser


@pytest.mark.deadline(240)
def test_dashboard_in_the_browser(daemon_factory, sdk_for, xvfb, tmp_path):
    browser = shutil.which("chromium")
    assert browser, "chromium is missing (apt-get install chromium; tests/ensure-deps installs it)"
    assert shutil.which("ffmpeg"), "ffmpeg is missing (apt-get install ffmpeg; tests/ensure-deps installs it)"
    rec_dir = tmp_path / "recordings"
    port = free_port()
    d = daemon_factory.start(extra_env={
        "DISPLAY": xvfb,
        "DAYTONA_RECORDINGS_DIR": str(rec_dir),
        "DAYTONA_RECORDING_DASHBOARD_PORT": str(port),
    })
    wait_listening(port)
    base = f"http://127.0.0.1:{port}"
    recording = sdk_for(d).sandbox.computer_use.recording

    devtools = free_port()
    proc = start_chromium(
        tmp_path / "chromium", devtools, "--mute-audio", "--autoplay-policy=no-user-gesture-required",
        window="1200,900", start_new_session=True,
    )
    shot = tmp_path / "recordings-dashboard.png"

    async def main():
        async with aiohttp.ClientSession() as s:
            target = await open_page(s, devtools)
            async with s.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await page.call("Runtime.enable")

                # A live recording: listed, but it cannot be played, downloaded, selected or deleted.
                a = recording.start(label="dashboard test")
                assert a.status == "recording", a
                await page.call("Page.navigate", url=base + "/")
                await page.wait(f"{js_row(a.id)}?.dataset.status === 'recording'", "the live recording is not listed")
                controls = await page.eval(f"""(() => {{
                  const r = {js_row(a.id)};
                  const f = (a) => r.querySelector(`[data-action="${{a}}"]`);
                  return {{play: f('play').disabled, del: f('delete').disabled, select: f('select').disabled,
                           playTitle: f('play').title, delTitle: f('delete').title,
                           href: f('download').getAttribute('href'), name: r.querySelector('.file').textContent}};
                }})()""")
                assert controls["play"] and controls["del"] and controls["select"], controls
                assert "recording" in controls["playTitle"].lower() and "recording" in controls["delTitle"].lower(), controls
                assert controls["href"] is None, controls
                assert controls["name"] == a.file_name, controls
                # The API refuses too: a live recording is reported as not deleted, and stays.
                resp = delete_body(base, json.dumps({"ids": [a.id]}).encode())
                assert resp.status == 200 and resp.json() == {"deleted": [], "failed": [a.id]}, resp.describe()
                assert (rec_dir / a.file_name).exists()

                await asyncio.sleep(2)
                a = recording.stop(a.id)
                assert a.status == "completed" and a.duration_seconds and a.duration_seconds > 1, a

                # The page notices on its own (no reload) that the recording ended.
                await page.wait(f"{js_row(a.id)}?.dataset.status === 'completed'", "the row did not turn completed by itself")
                cells = await page.eval(f"""(() => {{
                  const r = {js_row(a.id)};
                  const f = (a) => r.querySelector(`[data-action="${{a}}"]`);
                  return {{play: f('play').disabled, del: f('delete').disabled, size: r.querySelector('.size').textContent,
                           duration: r.querySelector('.duration').textContent,
                           href: f('download').getAttribute('href'), download: f('download').getAttribute('download')}};
                }})()""")
                assert not cells["play"] and not cells["del"], cells
                assert re.fullmatch(r"\d+(\.\d+)? (B|KiB|MiB)", cells["size"]), cells
                assert re.fullmatch(r"\d+\.\d s", cells["duration"]), cells  # 2.x s
                assert cells["href"] == "/videos/" + quote(a.file_name, safe="!'()*-._~"), cells
                assert cells["download"] == a.file_name, cells

                # A second recording and a plain file (no metadata) whose name is markup.
                b = recording.start(label="second")
                await asyncio.sleep(1)
                b = recording.stop(b.id)
                shutil.copyfile(a.file_path, rec_dir / ORPHAN)
                orphan = next(r for r in list_recordings(base) if r["fileName"] == ORPHAN)
                await page.wait(f"{js_row(b.id)}?.dataset.status === 'completed' && !!{js_row(orphan['id'])}",
                                "the second recording and the plain file are not listed")
                shown = await page.eval(f"""({{
                  text: {js_row(orphan['id'])}.querySelector('.file').textContent,
                  imgs: document.querySelectorAll('#recordings img').length,
                  pwned: !!window.__pwned,
                }})""")
                assert shown == {"text": ORPHAN, "imgs": 0, "pwned": False}, shown

                # A selection survives the periodic refresh.
                await page.click(f'{row(b.id)} [data-action="select"]')
                await page.click(f'{row(orphan["id"])} [data-action="select"]')
                await page.refreshed(2)
                still = await page.eval(f"""({{
                  b: {js_row(b.id)}.querySelector('[data-action="select"]').checked,
                  o: {js_row(orphan['id'])}.querySelector('[data-action="select"]').checked,
                  bulk: document.querySelector('[data-action="delete-selected"]').disabled,
                }})""")
                assert still == {"b": True, "o": True, "bulk": False}, still

                # Play: the <video> loads the file (duration known) and plays it.
                await page.click(f'{row(a.id)} [data-action="play"]')
                src = await page.wait("document.querySelector('video').getAttribute('src')", "play set no video source")
                assert src == "/videos/" + quote(a.file_name, safe="!'()*-._~"), src
                duration = await page.wait(
                    "(() => { const v = document.querySelector('video'); return v.readyState >= 1 && isFinite(v.duration) && v.duration; })()",
                    "the video's metadata did not load",
                )
                assert 1 < duration < 10, duration
                await page.wait(
                    "(() => { const v = document.querySelector('video'); return v.played.length > 0 && v.played.end(0) > 0.3 && !v.error; })()",
                    "the video did not play",
                )
                before = await page.eval("document.querySelector('video').currentTime")
                png = await page.call("Page.captureScreenshot", format="png")
                shot.write_bytes(base64.b64decode(png["data"]))
                # ... and keeps playing (or has ended) across a refresh, its source untouched.
                await page.refreshed()
                after = await page.eval("""(() => { const v = document.querySelector('video');
                  return {src: v.getAttribute('src'), t: v.currentTime, error: !!v.error, ended: v.ended, paused: v.paused}; })()""")
                assert after["src"] == src and not after["error"] and after["t"] >= before, (before, after)
                assert after["ended"] or not after["paused"], after
                # Seeking needs ranges: what the browser gets for the video's URL.
                status = await page.eval(f"fetch({json.dumps(src)}, {{headers: {{Range: 'bytes=0-99'}}}}).then(r => r.status)")
                assert status == 206, status

                # Bulk delete: the plain file vanishes behind the page's back right after a refresh
                # (the next one is 3 s away), so the server reports it as failed.
                await page.eval("window.__asked = []; window.confirm = (m) => { window.__asked.push(m); return true; }")
                await page.refreshed()
                os.remove(rec_dir / ORPHAN)
                await page.click('[data-action="delete-selected"]')
                await page.wait(f"!{js_row(b.id)}", "the bulk-deleted row is still there")
                message = await page.wait(
                    "Array.from(document.querySelectorAll('#messages .error')).map(e => e.textContent).join('\\n')",
                    "no failure shown for the id the server could not delete",
                )
                assert ORPHAN in message, message
                assert await page.eval("window.__asked") == ["Delete 2 recordings? This cannot be undone."]
                assert not (rec_dir / b.file_name).exists()
                await page.wait(f"!{js_row(orphan['id'])}", "the vanished file is still listed")

                # The row's delete button, on the recording that is playing.
                await page.click(f'{row(a.id)} [data-action="delete"]')
                await page.wait(f"!{js_row(a.id)}", "the deleted row is still there")
                assert await page.eval("document.getElementById('player-panel').hidden"), "the player still shows a deleted video"
                assert not (rec_dir / a.file_name).exists()
                assert [r["id"] for r in list_recordings(base)] == []
                await page.wait("!!document.querySelector('#recordings td.empty')", "no empty-list note")
                assert page.exceptions == [], page.exceptions

    try:
        asyncio.run(main())
    finally:
        kill_group(proc)
    print(f"screenshot: {shot}")


# ------------------------------------------------------------------------------------- routes


def test_dashboard_routes(daemon_factory, tmp_path):
    rec_dir = tmp_path / "recordings"
    (rec_dir / "sub").mkdir(parents=True)
    clip = bytes(range(256)) * 20  # 5120 bytes, every offset recognisable
    (rec_dir / "clip.mp4").write_bytes(clip)
    (rec_dir / "with space.mp4").write_bytes(b"spaced")
    (rec_dir / "notes.txt").write_bytes(b"not a video")
    (rec_dir / "sub" / "inner.mp4").write_bytes(b"nested")
    (rec_dir / "folder.mp4").mkdir()
    (tmp_path / "secret.mp4").write_bytes(b"outside the recordings directory")
    port = free_port()
    daemon_factory.start(extra_env={
        "DAYTONA_RECORDINGS_DIR": str(rec_dir),
        "DAYTONA_RECORDING_DASHBOARD_PORT": str(port),
    })
    wait_listening(port)
    base = f"http://127.0.0.1:{port}"

    # The page is the file of this repository, served as HTML.
    resp = http.get(base, "/")
    assert resp.status == 200, resp.describe()
    assert (resp.header("Content-Type") or "").startswith("text/html"), resp.describe()
    assert resp.body == PAGE_FILE.read_bytes(), "GET / is not recorder/assets/dashboard.html"

    # Plain files directly in the directory are listed, nothing else.
    listed = {r["fileName"]: r for r in list_recordings(base)}
    assert sorted(listed) == ["clip.mp4", "with space.mp4"], listed
    assert listed["clip.mp4"]["status"] == "completed" and listed["clip.mp4"]["sizeBytes"] == len(clip), listed

    # The whole file, then ranges.
    resp = http.get(base, "/videos/clip.mp4")
    assert resp.status == 200 and resp.body == clip, resp.describe()
    assert resp.header("Content-Type") == "video/mp4", resp.describe()
    assert resp.header("Content-Length") == str(len(clip)), resp.describe()
    assert resp.header("Accept-Ranges") == "bytes", resp.describe()
    resp = http.get(base, "/videos/clip.mp4", headers={"Range": "bytes=1000-1099"})
    assert resp.status == 206 and resp.body == clip[1000:1100], resp.describe()
    assert resp.header("Content-Range") == f"bytes 1000-1099/{len(clip)}", resp.describe()
    resp = http.get(base, "/videos/clip.mp4", headers={"Range": "bytes=-10"})
    assert resp.status == 206 and resp.body == clip[-10:], resp.describe()
    resp = http.get(base, "/videos/with%20space.mp4")
    assert resp.status == 200 and resp.body == b"spaced", resp.describe()

    # Nothing outside the directory, nothing but its own .mp4 files.
    for path in (
        "/videos/..%2Fsecret.mp4",
        "/videos/%2e%2e%2fsecret.mp4",
        "/videos/..%5Csecret.mp4",
        "/videos/../secret.mp4",
        "/videos/..",
        "/videos/sub%2Finner.mp4",
        "/videos/sub",
        "/videos/folder.mp4",
        "/videos/notes.txt",
        "/videos/.meta",
        "/videos/%2Fetc%2Fpasswd",
    ):
        resp = http.get(base, path)
        assert_envelope(resp, (403, 404), path)
        assert b"outside the recordings" not in resp.body and b"nested" not in resp.body
    body = assert_envelope(http.get(base, "/videos/missing.mp4"), (404,), "missing file")
    assert body["statusCode"] == 404

    # Bulk deletion: a body that is not {"ids": [strings]} is a 400 envelope.
    for bad in (b"", b"not json", b'{"ids": "clip"}', b'{"ids": [1, 2]}', b"[]"):
        assert_envelope(delete_body(base, bad), (400,), f"DELETE /api/recordings {bad!r}")
    resp = delete_body(base, json.dumps({"ids": ["no-such-recording"]}).encode())
    assert resp.status == 200, resp.describe()
    assert resp.json() == {"deleted": [], "failed": ["no-such-recording"]}, resp.describe()

    clip_id = listed["clip.mp4"]["id"]
    resp = delete_body(base, json.dumps({"ids": [clip_id, "no-such-recording"]}).encode())
    assert resp.status == 200, resp.describe()
    assert resp.json() == {"deleted": [clip_id], "failed": ["no-such-recording"]}, resp.describe()
    assert not (rec_dir / "clip.mp4").exists()
    assert [r["fileName"] for r in list_recordings(base)] == ["with space.mp4"]
    assert_envelope(http.get(base, "/videos/clip.mp4"), (404,), "a deleted file")
    # Untouched: what lies outside the directory or is not a recording.
    assert (tmp_path / "secret.mp4").exists() and (rec_dir / "notes.txt").exists()
