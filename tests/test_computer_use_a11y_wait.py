"""``POST /computeruse/a11y/wait`` and element-targeted input, on a private desktop.

Both are extensions (not in Daytona's daemon) and the SDK has no methods for them, so the
requests are raw HTTP through the daemon, which relays them to the agent. The targets are zenity
dialogs started while a wait is already running.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid

from harness import http

WAIT = "/computeruse/a11y/wait"


def post(desktop, path: str, body: dict, timeout: float = 60) -> http.RawResponse:
    return http.request(
        desktop.agent_url, "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"},
        timeout=timeout,
    )


class Background:
    """A request running on a thread, timed from just before it is sent."""

    def __init__(self, desktop, path: str, body: dict):
        self.response: http.RawResponse | None = None
        self.error: BaseException | None = None
        self.sent = self.answered = 0.0

        def run() -> None:
            self.sent = time.monotonic()
            try:
                self.response = post(desktop, path, body)
            except BaseException as e:  # reported by result()
                self.error = e
            self.answered = time.monotonic()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 60) -> http.RawResponse:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request did not come back"
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def find(desktop, **query) -> list[dict]:
    r = post(desktop, "/computeruse/a11y/find", query)
    assert r.status == 200, r.describe()
    return r.json()["matches"]


def zenity_entry(desktop, title: str) -> subprocess.Popen:
    return desktop.popen(
        ["zenity", "--entry", f"--title={title}", "--text=Type"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def nodes_of(desktop, proc: subprocess.Popen) -> tuple[dict, dict]:
    """The OK button and the text field of a zenity entry dialog, once it is in the tree."""
    r = post(desktop, WAIT, {"scope": "pid", "pid": proc.pid, "role": "push button", "name": "OK",
                             "nameMatch": "exact", "timeout": 30000})
    assert r.status == 200, r.describe()
    ok = r.json()["node"]
    text = find(desktop, scope="pid", pid=proc.pid, role="text")[0]
    return ok, text


def close(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def test_a_wait_answers_when_a_dialog_launched_after_the_call_maps(desktop):
    title = f"wait-{uuid.uuid4().hex[:8]}"
    # Re-checks without events only every 10 s: an answer sooner comes from the events.
    waiter = Background(desktop, WAIT, {"condition": "exists", "scope": "all", "role": "dialog", "name": title,
                                        "nameMatch": "exact", "timeout": 30000, "pollIntervalMs": 10000})
    time.sleep(1.0)
    assert waiter.thread.is_alive(), "the wait answered before the dialog existed"
    proc = zenity_entry(desktop, title)
    try:
        launched = time.monotonic()
        r = waiter.result()
        assert r.status == 200, r.describe()
        body = r.json()
        assert body["matched"] is True and body["timedOut"] is False
        assert (body["node"]["role"], body["node"]["name"]) == ("dialog", title)
        assert [m["id"] for m in body["matches"]] == [body["node"]["id"]]
        assert body["elapsedMs"] >= 900, body  # it waited for the launch
        after_launch = waiter.answered - launched
        assert after_launch < 5, f"answered {after_launch:.2f}s after the launch, not on the events"
        # The dialog is on screen by then: X knows the window.
        assert desktop.run(["xdotool", "search", "--onlyvisible", "--name", title]).stdout.strip()

        # Already true: at once.
        started = time.monotonic()
        r = post(desktop, WAIT, {"query": {"scope": "all", "role": "dialog", "name": title}, "timeoutMs": 5000})
        assert r.status == 200, r.describe()
        assert time.monotonic() - started < 3

        # Gone once the application ends.
        gone = Background(desktop, WAIT, {"condition": "gone", "scope": "all", "role": "dialog", "name": title,
                                          "timeout": 30000, "pollIntervalMs": 10000})
        time.sleep(0.5)
        assert gone.thread.is_alive(), "gone answered while the dialog was still there"
        closed = time.monotonic()
        proc.terminate()
        r = gone.result()
        assert r.status == 200, r.describe()
        assert r.json()["matches"] == [] and "node" not in r.json()
        assert gone.answered - closed < 5, f"gone answered {gone.answered - closed:.2f}s after the close"
    finally:
        close(proc)


def test_state_focused_after_a_focus(desktop):
    proc = zenity_entry(desktop, f"focus-{uuid.uuid4().hex[:8]}")
    try:
        ok, text = nodes_of(desktop, proc)
        r = post(desktop, "/computeruse/a11y/node/focus", {"id": ok["id"]})
        assert r.status == 200, r.describe()
        r = post(desktop, WAIT, {"condition": "not_state", "id": text["id"], "states": ["focused"], "timeout": 10000})
        assert r.status == 200, r.describe()

        waiter = Background(desktop, WAIT, {"condition": "state", "id": text["id"], "state": "focused",
                                            "timeout": 20000, "pollIntervalMs": 10000})
        time.sleep(0.5)
        assert waiter.thread.is_alive(), "the text field was focused already"
        focused = time.monotonic()
        r = post(desktop, "/computeruse/a11y/node/focus", {"id": text["id"]})
        assert r.status == 200, r.describe()
        r = waiter.result()
        assert r.status == 200, r.describe()
        assert r.json()["node"]["id"] == text["id"] and "focused" in r.json()["node"]["states"]
        assert waiter.answered - focused < 5

        # The proposal's shape for the same thing: a query and a list of states.
        r = post(desktop, WAIT, {"condition": "state", "query": {"scope": "pid", "pid": proc.pid, "role": "text"},
                                 "states": ["focused", "editable"], "timeoutMs": 5000})
        assert r.status == 200, r.describe()
    finally:
        close(proc)


def test_a_timeout_is_408_at_the_deadline(desktop):
    for timeout_ms in (1500, 3000):
        started = time.monotonic()
        r = post(desktop, WAIT, {"scope": "all", "role": "dialog", "name": "no such dialog", "timeout": timeout_ms})
        took = time.monotonic() - started
        assert r.status == 408, r.describe()
        body = r.json()
        assert body["code"] == "A11Y_WAIT_TIMEOUT" and body["statusCode"] == 408
        assert body["path"] == WAIT
        assert body["message"].startswith(f"timed out after {timeout_ms} ms waiting for exists ("), body
        assert '"no such dialog"' in body["message"]
        assert timeout_ms / 1000 <= took < timeout_ms / 1000 + 0.5, f"{took:.2f}s for a {timeout_ms} ms timeout"


def test_bad_wait_bodies_are_400(desktop):
    for body, words in [
        ({}, "a node id or a node query is required"),
        ({"condition": "soon", "role": "x"}, "unknown wait condition"),
        ({"condition": "state", "role": "x", "state": "shiny"}, 'unknown state "shiny"'),
        ({"condition": "state", "role": "x"}, "needs the states"),
        ({"role": "x", "timeout": 10**9}, "timeout must be between"),
        ({"id": ":1.2:/org/a11y/atspi/accessible/1", "role": "x"}, "not both"),
    ]:
        r = post(desktop, WAIT, body)
        assert r.status == 400, r.describe()
        assert r.json()["code"] == "BAD_REQUEST" and words in r.json()["message"], r.describe()


def test_element_targeted_typing_and_click_end_zenity_with_the_text(desktop):
    proc = zenity_entry(desktop, f"input-{uuid.uuid4().hex[:8]}")
    try:
        ok, text = nodes_of(desktop, proc)
        # Focus elsewhere first: typing by element must focus the field itself.
        assert post(desktop, "/computeruse/a11y/node/focus", {"id": ok["id"]}).status == 200
        r = post(desktop, "/computeruse/keyboard/type", {"text": "typed by element", "elementId": text["id"]})
        assert r.status == 200, r.describe()

        # Moving by element lands on the centre of the button's current bounds.
        b = find(desktop, scope="pid", pid=proc.pid, role="push button", name="OK", nameMatch="exact")[0]["bounds"]
        r = post(desktop, "/computeruse/mouse/move", {"element_id": ok["id"]})
        assert r.status == 200, r.describe()
        assert r.json() == {"x": b["x"] + b["width"] // 2, "y": b["y"] + b["height"] // 2}

        # A drag by element: both ends on the text field's centre (selects nothing).
        t = text["bounds"]
        r = post(desktop, "/computeruse/mouse/drag", {"startElementId": text["id"], "endElementId": text["id"]})
        assert r.status == 200, r.describe()
        assert r.json() == {"x": t["x"] + t["width"] // 2, "y": t["y"] + t["height"] // 2}

        r = post(desktop, "/computeruse/mouse/click", {"elementId": ok["id"]})
        assert r.status == 200, r.describe()
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out == "typed by element\n"

        # The dialog's application is gone: its ids are stale.
        for path, body in [
            ("/computeruse/mouse/click", {"elementId": ok["id"]}),
            ("/computeruse/mouse/move", {"elementId": ok["id"]}),
            ("/computeruse/keyboard/type", {"text": "x", "elementId": text["id"]}),
            ("/computeruse/mouse/drag", {"startElementId": ok["id"], "endX": 5, "endY": 5}),
        ]:
            r = post(desktop, path, body)
            assert r.status == 404, f"{path}: {r.describe()}"
            assert r.json()["code"] == "A11Y_NODE_GONE", r.describe()
    finally:
        close(proc)


def test_an_element_and_coordinates_together_are_400_and_coordinates_still_work(desktop):
    node = ":1.2:/org/a11y/atspi/accessible/1"
    for path, body in [
        ("/computeruse/mouse/click", {"x": 10, "y": 10, "elementId": node}),
        ("/computeruse/mouse/move", {"x": 10, "element_id": node}),
        ("/computeruse/mouse/drag", {"startX": 1, "startY": 1, "startElementId": node, "endX": 2, "endY": 2}),
    ]:
        r = post(desktop, path, body)
        assert r.status == 400, r.describe()
        assert r.json()["code"] == "BAD_REQUEST" and "not both" in r.json()["message"], r.describe()
    r = post(desktop, "/computeruse/mouse/move", {"x": 40, "y": 50})
    assert r.status == 200 and r.json() == {"x": 40, "y": 50}, r.describe()
    # A blank id is no id (clients that always send the field).
    r = post(desktop, "/computeruse/mouse/move", {"x": 41, "y": 51, "elementId": ""})
    assert r.status == 200 and r.json() == {"x": 41, "y": 51}, r.describe()
