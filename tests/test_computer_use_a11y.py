"""Accessibility through ``sandbox.computer_use.accessibility`` on a private desktop.

The target is a zenity entry dialog: a label, a text field holding ``hello`` and Cancel/OK push
buttons. What the agent reports is compared with an independent observer, Debian's
``/usr/bin/python3`` with pyatspi (package python3-pyatspi), on the same accessibility bus.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from daytona import DaytonaA11yUnavailableError, DaytonaBadRequestError, DaytonaNotFoundError

from harness import http
from harness.daemon import free_port, wait_for_tcp
from harness.desktop import agent_binary
from harness.proxy import ToolboxProxy
from harness.sdk import make_daytona, make_sandbox

SYSTEM_PYTHON = "/usr/bin/python3"

# Pre-order dump of one application's nodes, found by pid: id (bus name:object path), role,
# name and, for text nodes, the text.
OBSERVER = r"""
import json, sys
import pyatspi
pid = int(sys.argv[1])
desktop = pyatspi.Registry.getDesktop(0)
app = next((a for a in desktop if a is not None and a.get_process_id() == pid), None)
if app is None:
    sys.exit(f"no application with pid {pid}")
out = []
def walk(a):
    try:
        text = a.queryText().getText(0, -1)
    except NotImplementedError:
        text = None
    out.append({"id": f"{a.app.bus_name}:{a.path}", "role": a.getRoleName(), "name": a.name, "text": text})
    for c in a:
        if c is not None:
            walk(c)
walk(app)
print(json.dumps(out))
"""


def observe(desktop, pid: int) -> list[dict]:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.fail(f"{SYSTEM_PYTHON} with pyatspi is needed (package python3-pyatspi)")
    r = desktop.run([SYSTEM_PYTHON, "-c", OBSERVER, str(pid)])
    assert r.returncode == 0, f"pyatspi observer failed: {r.stderr}"
    return json.loads(r.stdout)


def preorder(node) -> list:
    out = [node]
    for c in node.children or []:
        out.extend(preorder(c))
    return out


class Zenity:
    """A zenity entry dialog and its nodes as the agent reports them."""

    def __init__(self, desktop, text: str = "hello"):
        self.a11y = desktop.sandbox.computer_use.accessibility
        self.proc = desktop.popen(
            ["zenity", "--entry", "--title=T", "--text=Type", f"--entry-text={text}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while True:
            try:
                found = self.a11y.find_nodes(scope="pid", pid=self.pid, role="push button", name="OK", name_match="exact")
                if found.matches:
                    self.ok = found.matches[0]
                    break
            except DaytonaNotFoundError:
                pass  # not registered on the bus yet
            assert self.proc.poll() is None, f"zenity exited early: {self.proc.communicate()}"
            assert time.monotonic() < deadline, "the zenity dialog never appeared in the accessibility tree"
            time.sleep(0.2)
        self.text = self.a11y.find_nodes(scope="pid", pid=self.pid, role="text").matches[0]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def zenity(desktop):
    z = Zenity(desktop)
    yield z
    z.close()


def test_tree_of_the_dialog_matches_the_pyatspi_observer(desktop, zenity):
    tree = zenity.a11y.get_tree(scope="pid", pid=zenity.pid)
    assert tree.truncated is False
    root = tree.root
    assert (root.role, root.name) == ("application", "zenity")
    nodes = preorder(root)
    by_role = {}
    for n in nodes:
        by_role.setdefault(n.role, []).append(n)
    assert [n.name for n in by_role["dialog"]] == ["T"]
    assert "Type" in [n.name for n in by_role["label"]]
    assert sorted(n.name for n in by_role["push button"]) == ["Cancel", "OK"]
    text = by_role["text"][0]
    assert "editable" in text.states and text.bounds.width > 0 and text.bounds.height > 0
    ok = next(n for n in by_role["push button"] if n.name == "OK")
    # AT-SPI's machine name (Action.GetName), not GTK's localized label "Click".
    assert ok.actions == ["click"]
    assert ok.bounds.x > 0 and ok.bounds.width > 0, ok.bounds

    # The observer sees the same nodes, in the same order, under the same ids.
    seen = observe(desktop, zenity.pid)
    assert [(n.id, n.role, n.name) for n in nodes] == [(o["id"], o["role"], o["name"]) for o in seen]
    # The node JSON carries no text; the observer confirms the field the tree names holds it.
    assert next(o for o in seen if o["id"] == text.id)["text"] == "hello"


def test_tree_depth_and_scopes(desktop, zenity):
    a11y = zenity.a11y
    shallow = a11y.get_tree(scope="pid", pid=zenity.pid, max_depth=0)
    assert shallow.root.name == "zenity" and not shallow.root.children
    one = a11y.get_tree(scope="pid", pid=zenity.pid, max_depth=1)
    assert [c.role for c in one.root.children] == ["dialog"]
    assert not one.root.children[0].children
    everything = a11y.get_tree(scope="all", max_depth=-1)
    assert everything.root.role == "desktop frame"
    assert "zenity" in [c.name for c in everything.root.children]
    assert zenity.ok.id in [n.id for n in preorder(everything.root)]
    # The default scope is an application (the one owning the active window).
    assert a11y.get_tree().root.role == "application"


def test_find_by_role_name_modes_and_state(desktop, zenity):
    a11y, pid = zenity.a11y, zenity.pid

    def ids(**kw):
        return [m.id for m in a11y.find_nodes(scope="pid", pid=pid, **kw).matches]

    ok = zenity.ok.id
    assert ids(role="push button", name="OK", name_match="exact") == [ok]
    assert ids(role="Push Button", name="OK") == [ok]  # substring is the default mode
    assert ids(role="push button", name="O", name_match="substring") == [ok]
    assert ids(role="push button", name="^O.$", name_match="regex") == [ok]
    assert ids(role="push button", name="ok", name_match="exact") == []
    assert ids(role="push button", states=["is_default"]) == [ok]
    assert len(ids(role="push button", states=["enabled", "showing"])) == 2
    match = a11y.find_nodes(scope="pid", pid=pid, name="OK", name_match="exact").matches[0]
    assert match.children is None and match.role == "push button" and "is_default" in match.states

    limited = a11y.find_nodes(scope="pid", pid=pid, role="push button", limit=1)
    assert len(limited.matches) == 1 and limited.truncated is True
    assert a11y.find_nodes(scope="all", role="push button", name="Cancel", name_match="exact").matches


def test_focus_then_set_value_and_invoke_ok(desktop):
    z = Zenity(desktop, text="hello")
    try:
        a11y = z.a11y
        a11y.focus_node(z.text.id)
        focused = a11y.find_nodes(scope="pid", pid=z.pid, states=["focused"]).matches
        assert [m.id for m in focused] == [z.text.id]

        a11y.set_node_value(z.text.id, "typed through AT-SPI")
        seen = observe(desktop, z.pid)
        assert next(o for o in seen if o["id"] == z.text.id)["text"] == "typed through AT-SPI"

        a11y.invoke_node(z.ok.id, action="click")
        out, err = z.proc.communicate(timeout=20)
        assert z.proc.returncode == 0, err
        assert out == "typed through AT-SPI\n"
    finally:
        z.close()


def test_errors(desktop, zenity):
    a11y = zenity.a11y
    gone = ":1.9999:/org/a11y/atspi/accessible/1"
    with pytest.raises(DaytonaNotFoundError) as e:
        a11y.invoke_node(gone)
    assert e.value.status_code == 404 and e.value.code == "NOT_FOUND"
    with pytest.raises(DaytonaNotFoundError):
        a11y.focus_node(f"{zenity.ok.id.split(':/')[0]}:/org/a11y/atspi/accessible/987654")
    with pytest.raises(DaytonaNotFoundError):
        a11y.get_tree(scope="pid", pid=2**31 - 2)

    with pytest.raises(DaytonaBadRequestError) as e:
        a11y.invoke_node(zenity.ok.id, action="explode")
    assert e.value.status_code == 400 and e.value.code == "BAD_REQUEST"
    assert "action not supported by node" in str(e.value)
    label = a11y.find_nodes(scope="pid", pid=zenity.pid, role="label", name="Type").matches[0]
    with pytest.raises(DaytonaBadRequestError):
        a11y.invoke_node(label.id)  # labels have no actions
    with pytest.raises(DaytonaBadRequestError):
        a11y.set_node_value(zenity.ok.id, "not a number")

    with pytest.raises(DaytonaBadRequestError) as e:
        a11y.get_tree(scope="window")
    assert "invalid accessibility scope" in str(e.value)
    with pytest.raises(DaytonaBadRequestError):
        a11y.find_nodes(scope="pid", pid=0)
    with pytest.raises(DaytonaBadRequestError):
        a11y.find_nodes(scope="all", name="x", name_match="fuzzy")
    with pytest.raises(DaytonaBadRequestError):
        a11y.find_nodes(scope="all", name="(", name_match="regex")
    with pytest.raises(DaytonaBadRequestError) as e:
        a11y.focus_node("no-object-path")
    assert "invalid node id" in str(e.value)

    # Bodies the SDK would never send, straight to the sandbox's toolbox URL.
    base, prefix = desktop.sandbox.toolbox_proxy_url, f"/{desktop.sandbox.id}"
    for path, body in [
        ("/computeruse/a11y/find", "{not json"),
        ("/computeruse/a11y/find", '{"limit": "many"}'),
        ("/computeruse/a11y/node/invoke", '{"id": 5}'),
        ("/computeruse/a11y/node/value", "[]"),
    ]:
        r = http.request(base, "POST", prefix + path, body=body, headers={"Content-Type": "application/json"})
        assert r.status == 400, r.describe()
        assert r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()


def test_a_hung_application_costs_one_timeout_not_a_hang(desktop, zenity):
    """Every D-Bus call has a deadline: a stopped app is reported (as a bare node) and the rest
    of the tree still comes back."""
    app_id = zenity.ok.id.split(":/")[0] + ":/org/a11y/atspi/accessible/root"
    os.kill(zenity.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        tree = zenity.a11y.get_tree(scope="all")
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"tree took {elapsed:.1f}s with a hung app"
        apps = {c.id: c for c in tree.root.children}
        assert app_id in apps and not apps[app_id].children
        assert any(c.name == "xfwm4" and c.children for c in tree.root.children)
    finally:
        os.kill(zenity.pid, signal.SIGCONT)
    # Once it answers again, so does its subtree.
    assert zenity.a11y.find_nodes(scope="pid", pid=zenity.pid, name="OK", name_match="exact").matches


def test_unreachable_accessibility_bus_is_503(desktop, tmp_path):
    """An agent whose session bus address leads nowhere answers 503 A11Y_UNAVAILABLE."""
    port = free_port()
    env = dict(desktop.env, DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus", HOME=str(tmp_path))
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen(
        [str(agent_binary()), "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    proxy = None
    try:
        assert wait_for_tcp("127.0.0.1", port, time.monotonic() + 15), "second agent did not listen"
        proxy = ToolboxProxy(f"http://127.0.0.1:{port}").start()
        a11y = make_sandbox(make_daytona(), proxy.url).computer_use.accessibility
        with pytest.raises(DaytonaA11yUnavailableError) as e:
            a11y.get_tree(scope="all")
        assert e.value.status_code == 503 and e.value.code == "A11Y_UNAVAILABLE"
        assert "accessibility bus not reachable" in str(e.value)
        with pytest.raises(DaytonaA11yUnavailableError):
            a11y.find_nodes(role="push button")
        with pytest.raises(DaytonaA11yUnavailableError):
            a11y.invoke_node(":1.2:/org/a11y/atspi/accessible/1")
    finally:
        if proxy is not None:
            proxy.stop()
        agent.terminate()
        agent.wait(10)
