"""Mouse and keyboard of the computer-use agent, driven through ``sandbox.computer_use``.

Independent observers check that the input really reached the desktop:
* ``xdotool getmouselocation`` for the pointer;
* ``xev`` (x11-utils) printing the button, wheel, motion and key events its window receives;
* a ``zenity`` entry / text view whose content is read over AT-SPI with Debian's
  ``/usr/bin/python3`` and ``pyatspi`` (python3-pyatspi), and whatever zenity prints when it
  closes.
Needs: Xvfb, xfwm4, the AT-SPI bus, xdotool, xev, zenity, /usr/bin/python3 with pyatspi.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from daytona.common.errors import DaytonaError

from harness import http
from harness.daemon import wait_for

SYSTEM_PYTHON = "/usr/bin/python3"

# Prints, as JSON, the text of every text field of the applications with the given pid.
ATSPI_TEXTS = r"""
import json, sys, pyatspi
pid = int(sys.argv[1])
out = []
def walk(node, depth=0):
    if node is None or depth > 40:
        return
    try:
        role = node.getRoleName()
    except Exception:
        return
    if role in ("text", "entry", "password text"):
        try:
            t = node.queryText()
            out.append(t.getText(0, t.characterCount))
        except NotImplementedError:
            pass
    for i in range(node.childCount):
        walk(node.getChildAtIndex(i), depth + 1)
desktop = pyatspi.Registry.getDesktop(0)
for i in range(desktop.childCount):
    app = desktop.getChildAtIndex(i)
    try:
        if app is not None and app.get_process_id() == pid:
            walk(app)
    except Exception:
        pass
print(json.dumps(out))
"""


# Prints the screen extents of the push button with the given name in the app with that pid.
ATSPI_BUTTON = r"""
import json, sys, pyatspi
pid, name = int(sys.argv[1]), sys.argv[2]
def walk(node, depth=0):
    if node is None or depth > 40:
        return None
    if node.getRoleName() == "push button" and node.name.replace("_", "") == name:
        e = node.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        return [e.x, e.y, e.width, e.height]
    for i in range(node.childCount):
        found = walk(node.getChildAtIndex(i), depth + 1)
        if found:
            return found
    return None
desktop = pyatspi.Registry.getDesktop(0)
for i in range(desktop.childCount):
    app = desktop.getChildAtIndex(i)
    if app is not None and app.get_process_id() == pid:
        print(json.dumps(walk(app)))
        break
else:
    print("null")
"""


def button_extents(desktop, pid: int, name: str) -> tuple[int, int, int, int]:
    r = desktop.run([SYSTEM_PYTHON, "-c", ATSPI_BUTTON, str(pid), name], timeout=30)
    assert r.returncode == 0, f"pyatspi observer failed: {r.stderr}"
    found = json.loads(r.stdout)
    assert found, f"no button {name!r}"
    return tuple(found)


def atspi_texts(desktop, pid: int) -> list[str]:
    r = desktop.run([SYSTEM_PYTHON, "-c", ATSPI_TEXTS, str(pid)], timeout=30)
    assert r.returncode == 0, f"pyatspi observer failed: {r.stderr}"
    return json.loads(r.stdout)


def wait_window(desktop, name: str, timeout: float = 20) -> int:
    # Polled rather than `--sync`: while xfce4 settles, windows come and go, and a search that
    # meets one being destroyed fails with BadWindow instead of waiting on.
    found: list[str] = []

    def search() -> bool:
        r = desktop.run(["xdotool", "search", "--onlyvisible", "--name", f"^{re.escape(name)}$"], timeout=10)
        found[:] = r.stdout.split() if r.returncode == 0 else []
        return bool(found)

    assert wait_for(search, timeout, 0.1), f"window {name!r} did not appear"
    return int(found[0])


def activate(desktop, wid: int) -> None:
    desktop.run(["xdotool", "windowactivate", "--sync", str(wid)], timeout=10)
    assert wait_for(lambda: desktop.run(["xdotool", "getactivewindow"]).stdout.strip() == str(wid), 10), "window not active"


def geometry(desktop, wid: int) -> tuple[int, int, int, int]:
    r = desktop.run(["xdotool", "getwindowgeometry", "--shell", str(wid)])
    g = dict(line.split("=", 1) for line in r.stdout.split())
    return int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"])


class Xev:
    """An ``xev`` window whose event log is the observer."""

    _n = 0

    def __init__(self, desktop):
        Xev._n += 1
        self.desktop = desktop
        self.name = f"xev-observer-{Xev._n}"
        self.log = Path(desktop.tmp) / f"{self.name}.log"
        self.out = open(self.log, "wb")
        self.proc = desktop.popen(
            ["xev", "-name", self.name, "-geometry", "400x300+200+150", "-event", "mouse", "-event", "keyboard", "-event", "button"],
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.wid = wait_window(desktop, self.name)
        activate(desktop, self.wid)
        x, y, w, h = geometry(desktop, self.wid)
        self.center = (x + w // 2, y + h // 2)
        self.rect = (x, y, w, h)

    def events(self) -> list[dict]:
        text = self.log.read_text(errors="replace")
        out = []
        for block in re.split(r"\n\s*\n", text):
            m = re.match(r"\s*(\w+) event, serial", block)
            if not m:
                continue
            ev = {"type": m.group(1)}
            if r := re.search(r"root:\((-?\d+),(-?\d+)\)", block):
                ev["root"] = (int(r.group(1)), int(r.group(2)))
            if s := re.search(r"state (0x[0-9a-f]+)", block):
                ev["state"] = int(s.group(1), 16)
            if b := re.search(r"button (\d+)", block):
                ev["button"] = int(b.group(1))
            if k := re.search(r"keysym 0x[0-9a-f]+, (\w+)\)", block):
                ev["keysym"] = k.group(1)
            out.append(ev)
        return out

    def wait(self, pred, timeout: float = 5) -> list[dict]:
        wait_for(lambda: pred(self.events()), timeout)
        return self.events()

    def buttons(self, kind: str = "ButtonPress") -> list[int]:
        return [e["button"] for e in self.events() if e["type"] == kind]

    def clear(self) -> None:
        time.sleep(0.2)
        self.out.flush()
        self.log.write_bytes(b"")
        self.out.seek(0)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        self.out.close()


@pytest.fixture
def xev(desktop):
    x = Xev(desktop)
    yield x
    x.close()


class Zenity:
    """A zenity dialog, its window focused."""

    _n = 0

    def __init__(self, desktop, kind: list[str]):
        Zenity._n += 1
        self.desktop = desktop
        self.title = f"zenity-input-{Zenity._n}"
        self.proc = desktop.popen(
            ["zenity", *kind, "--title", self.title], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, text=True,
        )
        self.wid = wait_window(desktop, self.title)
        activate(desktop, self.wid)
        assert wait_for(lambda: atspi_texts(desktop, self.proc.pid) != [], 20), "zenity never showed up on the AT-SPI bus"

    def texts(self) -> list[str]:
        return atspi_texts(self.desktop, self.proc.pid)

    def wait_text(self, want: str, timeout: float = 10) -> list[str]:
        wait_for(lambda: want in self.texts(), timeout)
        return self.texts()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def entry(desktop):
    z = Zenity(desktop, ["--entry", "--text", "type here"])
    yield z
    z.close()


def cu(desktop):
    return desktop.sandbox.computer_use


def assert_bad_request(exc: pytest.ExceptionInfo, text: str) -> None:
    e = exc.value
    assert e.status_code == 400, e
    assert e.code == "BAD_REQUEST", e
    assert str(e.message).endswith("bad request: " + text), e.message


# ------------------------------------------------------------------------------------- mouse


def test_move_is_where_xdotool_sees_the_pointer(desktop):
    r = cu(desktop).mouse.move(123, 456)
    assert (r.x, r.y) == (123, 456)
    assert desktop.run(["xdotool", "getmouselocation"]).stdout.startswith("x:123 y:456 ")
    p = cu(desktop).mouse.get_position()
    assert (p.x, p.y) == (123, 456)
    desktop.run(["xdotool", "mousemove", "10", "20"])
    p = cu(desktop).mouse.get_position()
    assert (p.x, p.y) == (10, 20)


def test_clicks_of_every_button_reach_an_app(desktop, xev):
    m = cu(desktop).mouse
    cx, cy = xev.center
    r = m.click(cx, cy)
    assert (r.x, r.y) == (cx, cy)
    xev.wait(lambda ev: any(e["type"] == "ButtonRelease" for e in ev))
    presses = [e for e in xev.events() if e["type"] == "ButtonPress"]
    assert [e["button"] for e in presses] == [1]
    assert presses[0]["root"] == (cx, cy)
    for button, code in (("right", 3), ("middle", 2)):
        xev.clear()
        m.click(cx + 5, cy + 5, button=button)
        xev.wait(lambda ev: any(e["type"] == "ButtonRelease" for e in ev))
        assert xev.buttons() == [code]
        assert xev.buttons("ButtonRelease") == [code]
    xev.clear()
    m.click(cx, cy, double=True)
    xev.wait(lambda ev: len([e for e in ev if e["type"] == "ButtonRelease"]) >= 2)
    assert xev.buttons() == [1, 1]
    xev.clear()
    m.click(cx, cy, button="right", clicks=3, double=True)
    xev.wait(lambda ev: len([e for e in ev if e["type"] == "ButtonRelease"]) >= 3)
    assert xev.buttons() == [3, 3, 3]


def test_click_with_modifiers_holds_them_and_releases_in_reverse(desktop, xev):
    cx, cy = xev.center
    cu(desktop).mouse.click(cx, cy, modifiers=["control", "shift"])
    ev = xev.wait(lambda ev: sum(e["type"] == "KeyRelease" for e in ev) >= 2)
    keys = [(e["type"], e["keysym"]) for e in ev if e["type"] in ("KeyPress", "KeyRelease")]
    assert keys == [("KeyPress", "Control_L"), ("KeyPress", "Shift_L"), ("KeyRelease", "Shift_L"), ("KeyRelease", "Control_L")]
    press = next(e for e in ev if e["type"] == "ButtonPress")
    assert press["state"] & 0x5 == 0x5, press  # ShiftMask | ControlMask


def test_drag_presses_moves_and_releases(desktop, xev):
    cx, cy = xev.center
    start, end = (cx - 80, cy - 40), (cx + 60, cy + 50)
    # Not alt: xfwm4 grabs Alt+drag to move windows.
    r = cu(desktop).mouse.drag(*start, *end, modifiers=["shift"])
    assert (r.x, r.y) == end
    ev = xev.wait(lambda ev: sum(e["type"] == "ButtonRelease" for e in ev) >= 2)
    buttons = [e for e in ev if e["type"] in ("ButtonPress", "ButtonRelease")]
    assert buttons[0]["root"] == start
    assert buttons[-1]["type"] == "ButtonRelease" and buttons[-1]["root"] == end
    dragging = [e for e in ev if e["type"] == "MotionNotify" and e.get("state", 0) & 0x100]
    assert len(dragging) >= 5, "no motion with button 1 held"
    assert all(e["state"] & 0x1 for e in dragging), "shift was not held during the drag"


def test_scroll_in_all_four_directions(desktop, xev):
    cx, cy = xev.center
    m = cu(desktop).mouse
    for direction, amount, code in (("up", 2, 4), ("down", 1, 5), ("left", 3, 6), ("Right", 0, 7)):
        xev.clear()
        assert m.scroll(cx, cy, direction, amount) is True
        n = max(amount, 1)
        xev.wait(lambda ev: sum(e["type"] == "ButtonRelease" for e in ev) >= n)
        assert xev.buttons() == [code] * n, direction


def test_mouse_and_key_down_up_hold_until_released(desktop, xev):
    cx, cy = xev.center
    m, k = cu(desktop).mouse, cu(desktop).keyboard
    r = m.down(cx, cy, button="left")
    assert (r.x, r.y) == (cx, cy)
    k.down("shift")
    xev.wait(lambda ev: any(e["type"] == "KeyPress" for e in ev))
    time.sleep(0.3)
    assert xev.buttons() == [1] and xev.buttons("ButtonRelease") == []
    m.move(cx + 30, cy + 10)
    r = m.up(button="left")
    assert (r.x, r.y) == (cx + 30, cy + 10)
    k.up("lshift")
    ev = xev.wait(lambda ev: any(e["type"] == "KeyRelease" for e in ev))
    release = next(e for e in ev if e["type"] == "ButtonRelease")
    assert release["root"] == (cx + 30, cy + 10) and release["state"] & 0x1, release
    keys = [(e["type"], e["keysym"]) for e in ev if "keysym" in e]
    assert keys == [("KeyPress", "Shift_L"), ("KeyRelease", "Shift_L")]
    # Releasing what is not held is a no-op.
    m.up(button="right")


# ----------------------------------------------------------------------------------- keyboard


def test_typed_text_appears_in_a_zenity_entry(desktop, entry):
    text = "Hello, wörld € ж ñ!"
    cu(desktop).keyboard.type(text, delay=15)
    assert entry.wait_text(text) == [text]


def test_hotkey_and_key_with_modifiers_reach_the_focused_app(desktop, entry):
    k = cu(desktop).keyboard
    k.type("first text")
    entry.wait_text("first text")
    k.hotkey("ctrl+a")
    k.type("abc")
    assert entry.wait_text("abc") == ["abc"]
    # Shift+Left selects the last character, typing replaces it.
    k.press("left", ["shift"])
    k.type("Z")
    assert entry.wait_text("abZ") == ["abZ"]
    k.press("Home")
    k.press("x")
    assert entry.wait_text("xabZ") == ["xabZ"]
    k.press("enter")
    out, _ = entry.proc.communicate(timeout=10)
    assert entry.proc.returncode == 0 and out == "xabZ\n"


def test_type_turns_line_breaks_into_enter(desktop):
    z = Zenity(desktop, ["--text-info", "--editable"])
    try:
        cu(desktop).keyboard.type("one\r\ntwo\nthree")
        assert z.wait_text("one\ntwo\nthree") == ["one\ntwo\nthree"]
    finally:
        z.close()


def test_left_click_presses_zenity_ok_button(desktop, entry):
    cu(desktop).keyboard.type("clicked")
    entry.wait_text("clicked")
    x, y, w, h = button_extents(desktop, entry.proc.pid, "OK")
    cu(desktop).mouse.click(x + w // 2, y + h // 2)
    out, _ = entry.proc.communicate(timeout=10)
    assert entry.proc.returncode == 0 and out == "clicked\n"


# -------------------------------------------------------------------------------- validation

CASES = [
    (lambda c: c.mouse.click(1, 1, button="center"), 'unsupported mouse button "center": expected one of left, right, middle'),
    (lambda c: c.mouse.click(1, 1, clicks=0), "clicks must be between 1 and 10"),
    (lambda c: c.mouse.click(1, 1, clicks=11), "clicks must be between 1 and 10"),
    (lambda c: c.mouse.click(1, 1, modifiers=["ctrl", "lshift"]),
     'unsupported modifier "lshift"; supported modifiers: ctrl, alt, shift, cmd; left/right-specific modifier keys are only supported as the main key'),
    (lambda c: c.mouse.scroll(1, 1, "sideways"), 'unsupported scroll direction "sideways": expected up, down, left, or right'),
    (lambda c: c.mouse.drag(1, 1, 2, 2, button="x"), 'unsupported mouse button "x": expected one of left, right, middle'),
    (lambda c: c.mouse.down(x=5, button="left"), "x and y must be given together"),
    (lambda c: c.keyboard.type("a\tb"), "keyboard.type does not translate '\\t' to Tab; use keyboard.press(\"tab\") for Tab key events"),
    (lambda c: c.keyboard.type("a\u2029"), "unsupported separator character in keyboard.type: U+2029"),
    (lambda c: c.keyboard.type("\x0b"), "unsupported control character in keyboard.type: U+000B"),
    (lambda c: c.keyboard.press("!"), 'unsupported key "!"; use press("1", ["shift"]) for a shifted key or type("!") for text'),
    (lambda c: c.keyboard.press("é"), 'unsupported key "é"; use type("é") for text input'),
    (lambda c: c.keyboard.press("FooBar"), 'unsupported key "FooBar"; see supported keyboard key names in the computer-use docs'),
    (lambda c: c.keyboard.press("num*"), 'unsupported key "num*"; use "num_asterisk"'),
    (lambda c: c.keyboard.press("c", ["cmd", "meta"]), 'duplicate modifier usage after normalization in press("c", ["cmd", "meta"])'),
    (lambda c: c.keyboard.press("c", ["ctrl", "ctrl"]), 'duplicate modifier "ctrl" in press("c", ["ctrl", "ctrl"])'),
    (lambda c: c.keyboard.hotkey("ctrl+c+d"), 'invalid hotkey "ctrl+c+d": chords may contain at most one non-modifier key'),
    (lambda c: c.keyboard.hotkey("ctrl+ "), 'invalid hotkey "ctrl+ ": empty key token after trimming'),
    (lambda c: c.keyboard.hotkey("shift+shift"), 'invalid hotkey "shift+shift": duplicate modifier usage after normalization in hotkey("shift+shift")'),
    (lambda c: c.keyboard.down(""), 'unsupported key "": empty key token'),
    (lambda c: c.keyboard.up(" "), 'unsupported key " "; use press("space") or type(" ")'),
]


@pytest.mark.parametrize("call,text", CASES, ids=range(len(CASES)))
def test_validation_errors_have_the_reference_messages(desktop, call, text):
    with pytest.raises(DaytonaError) as exc:
        call(cu(desktop))
    assert_bad_request(exc, text)


def test_raw_validation_and_bad_bodies(desktop):
    url = desktop.agent_url
    r = http.request(url, "POST", "/computeruse/mouse/scroll", body='{"x":1,"y":1,"direction":"up","amount":-1}')
    assert r.status == 400 and r.json()["message"] == "bad request: scroll amount must be greater than or equal to 0", r.describe()
    for path in ("/computeruse/mouse/move", "/computeruse/mouse/click", "/computeruse/keyboard/type", "/computeruse/keyboard/key"):
        r = http.request(url, "POST", path, body='{"x": "nope", "text": 5, "key": []}')
        assert r.status == 400, r.describe()
        assert r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()
    r = http.request(url, "POST", "/computeruse/keyboard/down", body="{}")
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()
    # An empty type is a no-op answering {}.
    r = http.request(url, "POST", "/computeruse/keyboard/type", body='{"text": ""}')
    assert r.status == 200 and r.json() == {}, r.describe()
