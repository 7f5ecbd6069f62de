"""Unchanged-screen screenshots (ours: not in Daytona's daemon), raw HTTP through the daemon.

Every screenshot route sends an ``ETag`` for its frame; with ``If-None-Match`` (or the
``ifNoneMatch`` query parameter) naming the current frame the answer is 304 without a body.
A change on screen (a window moved, a dialog appearing), a pointer move when the pointer is
drawn, or another region/format/parameter set gives a new frame with a new tag.

The desktop repaints on its own now and then (the panel clock, a blinking caret), so "unchanged"
is asserted by retrying a bounded number of times until a 304 comes, while every "changed" case
is one the screen cannot fake (only a change can produce it).
"""

from __future__ import annotations

import subprocess
import time
from urllib.parse import quote

import pytest

from harness import http
from harness.daemon import wait_for

FULL = "/computeruse/screenshot"
REGION = "/computeruse/screenshot/region?x=100&y=100&width=200&height=150"
COMPRESSED = "/computeruse/screenshot/compressed?format=jpeg&quality=80"
REGION_COMPRESSED = "/computeruse/screenshot/region/compressed?x=100&y=100&width=200&height=150&format=png"
ROUTES = (FULL, REGION, COMPRESSED, REGION_COMPRESSED)


def shot(desktop, path: str, tag: str | None = None, header: bool = True) -> http.RawResponse:
    if tag is not None and not header:
        sep = "&" if "?" in path else "?"
        return http.get(desktop.agent_url, f"{path}{sep}ifNoneMatch={quote(tag)}")
    headers = {"If-None-Match": tag} if tag is not None else {}
    return http.get(desktop.agent_url, path, headers=headers)


def frame(desktop, path: str) -> tuple[str, dict]:
    r = shot(desktop, path)
    assert r.status == 200, r.describe()
    tag = r.header("ETag")
    assert tag and tag.startswith('"') and tag.endswith('"'), r.describe()
    return tag, r.json()


def settled_tag(desktop, path: str, tries: int = 20) -> str:
    """A tag that a second request confirms with 304 (the desktop may repaint in between)."""
    tag, _ = frame(desktop, path)
    for _ in range(tries):
        r = shot(desktop, path, tag)
        if r.status == 304:
            assert r.body == b"", r.describe()
            assert r.header("ETag") == tag
            assert r.header("Content-Type") is None
            return tag
        assert r.status == 200, r.describe()
        tag = r.header("ETag")
        time.sleep(0.3)
    pytest.fail(f"{path}: the screen never stayed unchanged between two requests")


@pytest.fixture(scope="module")
def dialog(desktop):
    title = "etag-test-window"
    p = desktop.popen(["zenity", "--info", "--title", title, "--text", "ETag test"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    r = desktop.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", f"^{title}$"], timeout=20)
    assert r.returncode == 0 and r.stdout.strip(), "zenity window did not appear"
    wid = r.stdout.split()[0]
    desktop.run(["xdotool", "windowmove", "--sync", wid, "80", "80"])
    desktop.run(["xdotool", "mousemove", "1000", "700"])
    yield wid
    p.kill()
    p.wait(5)


def test_an_unchanged_screen_is_304_without_a_body_on_every_route(desktop, dialog):
    # The header, the query parameter (quoted or not), and a header list with a weak tag.
    variants = (
        lambda path, tag: shot(desktop, path, tag),
        lambda path, tag: shot(desktop, path, tag, header=False),
        lambda path, tag: shot(desktop, path, tag.strip('"'), header=False),
        lambda path, tag: shot(desktop, path, f'"other", W/{tag}'),
    )
    for path in ROUTES:
        for ask in variants:
            for _ in range(10):
                tag = settled_tag(desktop, path)
                r = ask(path, tag)
                if r.status == 304:
                    break
                # The desktop repainted in between: a new frame, then try again.
                assert r.status == 200 and r.header("ETag") != tag, r.describe()
            assert r.status == 304, f"{path}: never 304: {r.describe()}"
            assert r.body == b"" and r.header("ETag") == tag, r.describe()
            # Xvfb has XDamage: the tag names a damage generation, nothing was captured.
            assert tag.split("-")[1].startswith("g"), tag


def test_a_moved_window_is_a_new_frame_with_a_new_tag(desktop, dialog):
    tag = settled_tag(desktop, FULL)
    _, before = frame(desktop, FULL)
    desktop.run(["xdotool", "windowmove", "--sync", dialog, "300", "260"])
    # `--sync` returns once the window is moved; a compositing window manager paints the screen
    # at its next frame, so until then the screen (and its tag) may rightly be unchanged. What
    # must hold: the change comes as a 200 with a new tag within a few frames, never a 304.
    deadline = time.monotonic() + 5
    while (r := shot(desktop, FULL, tag)).status == 304 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.status == 200, r.describe()
    assert r.header("ETag") != tag
    assert r.json()["screenshot"] != before["screenshot"]
    desktop.run(["xdotool", "windowmove", "--sync", dialog, "80", "80"])


def test_a_dialog_appearing_is_a_change(desktop, dialog):
    tag = settled_tag(desktop, COMPRESSED)
    title = "etag-second-window"
    p = desktop.popen(["zenity", "--info", "--title", title, "--text", "appears"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        r = desktop.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", f"^{title}$"], timeout=20)
        assert r.returncode == 0 and r.stdout.strip(), "zenity window did not appear"
        assert wait_for(lambda: shot(desktop, COMPRESSED, tag).status == 200, 5)
        r = shot(desktop, COMPRESSED, tag)
        assert r.status == 200 and r.header("ETag") != tag and r.json()["screenshot"], r.describe()
    finally:
        p.kill()
        p.wait(5)


# Per route: the same route with one parameter changed (region, cursor, quality, format).
NEIGHBOURS = {
    FULL: [FULL + "?showCursor=false&show_cursor=1"],
    REGION: [REGION.replace("x=100", "x=101"), REGION.replace("height=150", "height=151")],
    COMPRESSED: [COMPRESSED.replace("quality=80", "quality=81"), COMPRESSED.replace("jpeg", "png"),
                 COMPRESSED + "&scale=0.5"],
    REGION_COMPRESSED: [REGION_COMPRESSED.replace("format=png", "format=jpeg"),
                        REGION_COMPRESSED.replace("y=100", "y=99")],
}


def test_a_tag_of_another_route_region_or_format_never_matches(desktop, dialog):
    for path in ROUTES:
        tag = settled_tag(desktop, path)
        for other in [p for p in ROUTES if p != path] + NEIGHBOURS[path]:
            r = shot(desktop, other, tag)
            assert r.status == 200, f"{path} tag sent to {other}: {r.describe()}"
            assert r.header("ETag") != tag


def test_a_pointer_move_is_a_change_when_the_pointer_is_drawn(desktop, dialog):
    path = "/computeruse/screenshot/compressed?showCursor=true&format=png"
    desktop.run(["xdotool", "mousemove", "900", "650"])
    tag = settled_tag(desktop, path)
    desktop.run(["xdotool", "mousemove", "901", "650"])
    r = shot(desktop, path, tag)
    assert r.status == 200, r.describe()
    assert r.header("ETag") != tag
    assert r.json()["cursorPosition"] == {"x": 901, "y": 650}
    desktop.run(["xdotool", "mousemove", "1000", "700"])


def test_without_a_known_tag_every_request_is_a_frame(desktop, dialog):
    for value in ('"not-ours"', "garbage", ""):
        r = http.get(desktop.agent_url, FULL, headers={"If-None-Match": value})
        assert r.status == 200 and r.header("ETag"), r.describe()
        assert r.json()["screenshot"]
    # Bad parameters are still refused first, whatever the tag.
    tag = settled_tag(desktop, REGION)
    r = shot(desktop, "/computeruse/screenshot/region?x=1&y=1&width=0&height=1", tag)
    assert r.status == 400, r.describe()


# ------------------------------------------------------------------ an X server without XDamage


@pytest.fixture
def bare_agent(tmp_path):
    """The agent alone (``--listen``) on a private Xvfb started without the DAMAGE extension."""
    import shutil

    from harness.daemon import free_port
    from harness.desktop import agent_binary, free_display

    for tool in ("Xvfb", "xsetroot"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (tests/ensure-deps installs it)")
    display = f":{free_display()}"
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": display, "HOME": str(tmp_path)}
    procs = [subprocess.Popen(["Xvfb", display, "-screen", "0", "640x480x24", "-nolisten", "tcp",
                               "-extension", "DAMAGE"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        sock = f"/tmp/.X11-unix/X{display[1:]}"
        assert wait_for(lambda: subprocess.run(["xsetroot", "-solid", "#204080"], env=env,
                                               capture_output=True).returncode == 0, 15, 0.1), f"no Xvfb at {sock}"
        port = free_port()
        procs.append(subprocess.Popen([str(agent_binary()), "--listen", f"127.0.0.1:{port}"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{port}"

        def up():
            try:
                return http.get(url, "/computeruse/display/info", timeout=2).status == 200
            except OSError:
                return False

        assert wait_for(up, 15, 0.1), "the agent did not answer"
        yield url, env
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def test_without_xdamage_frames_are_compared_by_their_pixels(bare_agent):
    url, env = bare_agent
    for path in ("/computeruse/screenshot", "/computeruse/screenshot/compressed?format=jpeg"):
        r = http.get(url, path)
        assert r.status == 200, r.describe()
        tag = r.header("ETag")
        # The tag names a frame hash (`-f…-`), not a damage generation (`-g…-`).
        assert "-f" in tag and "-g" not in tag, tag
        r = http.get(url, path, headers={"If-None-Match": tag})
        assert r.status == 304 and r.body == b"", r.describe()
    tag = http.get(url, "/computeruse/screenshot").header("ETag")
    subprocess.run(["xsetroot", "-solid", "#a04020"], env=env, check=True)
    r = http.get(url, "/computeruse/screenshot", headers={"If-None-Match": tag})
    assert r.status == 200 and r.header("ETag") != tag, r.describe()
    r2 = http.get(url, "/computeruse/screenshot", headers={"If-None-Match": r.header("ETag")})
    assert r2.status == 304, r2.describe()
