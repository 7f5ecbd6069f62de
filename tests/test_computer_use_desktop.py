"""Desktop supervision through the daemon: ``sandbox.computer_use.start/stop/get_status/...``.

The daemon starts the computer-use agent (``$DAYTONA_COMPUTER_USE_BIN``) on the first
``/computeruse/*`` request and relays to it; the agent runs the session bus, Xvfb, xfce4, the
AT-SPI bus, x11vnc and noVNC on a free display and free ports. Every claim the API makes is
checked independently: ``xdpyinfo``, ``wmctrl -m``, the RFB greeting, noVNC's page, Debian's
``/usr/bin/python3`` with pyatspi as an accessibility observer, and the daemon's process tree.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from daytona import DaytonaBadRequestError, DaytonaError, DaytonaServiceUnavailableError, SessionExecuteRequest

from harness import http
from harness.daemon import wait_for
from harness.desktop import AGENT_ENV_VAR, Desktop, agent_binary, free_display
from harness.procs import descendants

DESKTOP_PROCESSES = ("xvfb", "xfce4", "atspi", "x11vnc", "novnc")
SYSTEM_PYTHON = "/usr/bin/python3"


# ------------------------------------------------------------------------------- helpers





def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def processes_with_env(name: str, value: str) -> list[int]:
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def rfb_greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(5)
        return s.recv(12)


def shell_env(sandbox) -> tuple[str, str]:
    out = sandbox.process.exec('echo "D=$DISPLAY" "B=$DBUS_SESSION_BUS_ADDRESS"').result.split()
    return out[0][2:], out[1][2:]


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory):
    d = Desktop(tmp_path_factory.mktemp("cu-desktop")).start()
    print(f"computer_use.start() took {d.start_seconds:.2f}s")
    yield d
    d.stop()


# --------------------------------------------------------------------- the running desktop


def test_start_brings_up_every_process(desk: Desktop):
    # Seen from outside: the display, the window manager, VNC and noVNC.
    info = desk.run(["xdpyinfo"])
    assert info.returncode == 0, info.stderr
    assert "1024x768" in info.stdout and "depth of root window:    24 planes" in info.stdout
    wm = desk.run(["wmctrl", "-m"])
    assert "Xfwm4" in wm.stdout, wm.stdout + wm.stderr
    assert rfb_greeting(desk.vnc_port).startswith(b"RFB ")
    with urllib.request.urlopen(f"http://127.0.0.1:{desk.novnc_port}/vnc.html", timeout=10) as r:
        assert r.status == 200 and b"noVNC" in r.read()
    assert desk.start_seconds < 20, f"start took {desk.start_seconds:.1f}s"

    # Starting again leaves the running processes alone and reports them as the SDK reads them.
    res = desk.sandbox.computer_use.start()
    assert res.message == "Computer use processes started successfully"
    assert set(res.status) == set(DESKTOP_PROCESSES)
    priorities = {name: st.priority for name, st in res.status.items()}
    assert priorities == {"xvfb": 100, "xfce4": 200, "atspi": 250, "x11vnc": 300, "novnc": 400}
    for name in ("xvfb", "xfce4", "x11vnc", "novnc"):
        st = res.status[name]
        assert st.running is True and st.auto_restart is True, (name, st)
        assert isinstance(st.pid, int) and st.pid > 0, (name, st)
        assert st.pid in descendants(desk.daemon.proc.pid), f"{name} pid {st.pid} is not under the daemon"
    assert res.status["atspi"].auto_restart is False and res.status["atspi"].pid is None
    assert "Xvfb" in cmdline(res.status["xvfb"].pid) and desk.display in cmdline(res.status["xvfb"].pid)

    assert desk.sandbox.computer_use.get_status().status == "active"
    for name in DESKTOP_PROCESSES:
        if name == "atspi":
            continue
        st = desk.sandbox.computer_use.get_process_status(name)
        assert (st.process_name, st.running) == (name, True)


def test_children_get_the_desktop_display_and_bus(desk: Desktop):
    display, bus = shell_env(desk.sandbox)
    assert display == desk.display
    assert bus.startswith("unix:") and bus == desk.env["DBUS_SESSION_BUS_ADDRESS"]
    # Sessions too (a different spawn path).
    sandbox = desk.sandbox
    sandbox.process.create_session("cu-env")
    try:
        r = sandbox.process.execute_session_command(
            "cu-env", SessionExecuteRequest(command='echo "$DISPLAY|$DBUS_SESSION_BUS_ADDRESS"')
        )
        assert (r.stdout or "").strip() == f"{display}|{bus}", (r.stdout, r.output)
    finally:
        sandbox.process.delete_session("cu-env")


def test_restart_gives_a_new_pid_and_the_service_comes_back(desk: Desktop):
    cu = desk.sandbox.computer_use
    before = cu.start().status["x11vnc"].pid
    res = cu.restart_process("x11vnc")
    assert (res.message, res.process_name) == ("Process x11vnc restarted successfully", "x11vnc")

    def new_pid():
        st = cu.start().status["x11vnc"]
        return st.running and st.pid not in (None, before)

    assert wait_for(new_pid, 15, 0.2), "x11vnc did not come back with a new pid"
    assert wait_for(lambda: _safe(lambda: rfb_greeting(desk.vnc_port).startswith(b"RFB ")), 10)
    assert cu.get_status().status == "active"


def _safe(f):
    try:
        return f()
    except OSError:
        return False


def test_logs_errors_and_unknown_processes(desk: Desktop):
    cu = desk.sandbox.computer_use
    logs = cu.get_process_logs("novnc")
    assert logs.process_name == "novnc" and isinstance(logs.logs, str)
    assert str(desk.novnc_port) in logs.logs, logs.logs[-2000:]
    errors = cu.get_process_errors("xvfb")
    assert errors.process_name == "xvfb" and isinstance(errors.errors, str)
    log_dir = Path(desk.env["HOME"]) / ".daytona" / "computeruse"
    assert (log_dir / "xvfb.err").read_text().startswith(errors.errors[:100])

    for call in (cu.get_process_logs, cu.get_process_errors, cu.restart_process):
        with pytest.raises(DaytonaBadRequestError, match="process nope not found"):
            call("nope")
    with pytest.raises(DaytonaServiceUnavailableError, match="process nope not found"):
        cu.get_process_status("nope")


ATSPI_FIND = r"""
import sys, time
import pyatspi
title, deadline = sys.argv[1], time.time() + float(sys.argv[2])
seen = []
while time.time() < deadline:
    desktop = pyatspi.Registry.getDesktop(0)
    seen = []
    for app in desktop:
        if app is None:
            continue
        try:
            seen.append(app.name)
            for win in app:
                if win is not None and win.name == title:
                    print("FOUND", app.name, win.getRoleName())
                    sys.exit(0)
        except Exception:
            pass
    time.sleep(0.3)
print("NOT FOUND; apps:", seen)
sys.exit(1)
"""


def test_an_app_started_through_the_daemon_is_in_the_accessibility_tree(desk: Desktop, tmp_path: Path):
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.fail("Debian's /usr/bin/python3 with python3-pyatspi is needed (tests/ensure-deps)")
    script = tmp_path / "find.py"
    script.write_text(ATSPI_FIND)
    sandbox = desk.sandbox
    title = f"cu-a11y-{os.getpid()}"
    sandbox.process.create_session("cu-app")
    try:
        sandbox.process.execute_session_command(
            "cu-app",
            SessionExecuteRequest(command=f"zenity --entry --title={title} --text=Type --entry-text=hello", run_async=True),
        )
        # The observer knows nothing but what the daemon's children see.
        r = desk.run([SYSTEM_PYTHON, str(script), title, "25"], timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "FOUND zenity" in r.stdout, r.stdout
        # And through our own accessibility API: the dialog's window and its OK button.
        a11y = sandbox.computer_use.accessibility
        windows = a11y.find_nodes(scope="all", name=title, name_match="exact").matches
        assert windows, f"no node named {title} in the tree"
        assert a11y.find_nodes(scope="all", role="push button", name="OK", name_match="exact").matches
    finally:
        sandbox.process.delete_session("cu-app")


def test_stop_leaves_no_desktop_process_and_takes_the_variables_back(desk: Desktop):
    cu = desk.sandbox.computer_use
    daemon_pid = desk.daemon.proc.pid
    started = cu.start()
    pids = [st.pid for st in started.status.values() if st.pid]
    bus = desk.env["DBUS_SESSION_BUS_ADDRESS"]

    res = cu.stop()
    assert res.message == "Computer use processes stopped successfully"
    assert all(st.running is False and st.pid is None for st in res.status.values()), res.status
    assert cu.get_status().status == "inactive"
    assert all(cu.get_process_status(n).running is False for n in ("xvfb", "xfce4", "x11vnc", "novnc"))

    # Nothing is left under the daemon but the agent itself (and the default interpreter context
    # it warms at start): not the supervised processes, not what they forked off (dbus-daemon,
    # xfconfd, at-spi registry, ...), which as orphans would have been re-parented to the daemon.
    def leftovers():
        ours = ("daytona-computer-use", "daytona_repl_worker")
        return [p for p in descendants(daemon_pid) if not any(o in cmdline(p) for o in ours)]

    assert wait_for(lambda: not leftovers(), 5), [(p, cmdline(p)) for p in leftovers()]
    assert not [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
    # Nothing anywhere on the machine still uses that bus or display.
    assert processes_with_env("DBUS_SESSION_BUS_ADDRESS", bus) == []
    assert desk.run(["xdpyinfo"]).returncode != 0
    display, bus_after = shell_env(desk.sandbox)
    assert bus_after == "" and display == desk.display  # DISPLAY was the daemon's own

    # And it comes back.
    again = cu.start()
    assert again.status["xvfb"].running and cu.get_status().status == "active"
    display, new_bus = shell_env(desk.sandbox)
    assert new_bus.startswith("unix:")
    desk.env["DBUS_SESSION_BUS_ADDRESS"] = new_bus


def _state(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2]
    except OSError:
        return "Z"


def test_daemon_shutdown_stops_the_desktop(daemon_factory, sdk_for, tmp_path: Path):
    n = free_display()
    d = daemon_factory.start(
        extra_env={AGENT_ENV_VAR: str(agent_binary()), "DISPLAY": f":{n}", "VNC_PORT": str(_port()), "NO_VNC_PORT": str(_port())}
    )
    sandbox = sdk_for(d).sandbox
    started = sandbox.computer_use.start()
    bus = shell_env(sandbox)[1]
    assert started.status["xvfb"].running
    assert d.stop() == 0, d.output_tail()
    assert wait_for(lambda: not processes_with_env("DBUS_SESSION_BUS_ADDRESS", bus), 5)
    for st in started.status.values():
        if st.pid:
            assert not Path(f"/proc/{st.pid}").exists() or _state(st.pid) == "Z", cmdline(st.pid)
    assert not Path(f"/tmp/.X11-unix/X{n}").exists()


def test_a_killed_daemon_takes_the_desktop_with_it(daemon_factory, sdk_for):
    # SIGKILL gives the daemon no chance to stop anything: the agent notices that its stdin
    # (a pipe from the daemon) closed and stops the desktop itself.
    n = free_display()
    d = daemon_factory.start(
        extra_env={AGENT_ENV_VAR: str(agent_binary()), "DISPLAY": f":{n}", "VNC_PORT": str(_port()), "NO_VNC_PORT": str(_port())}
    )
    sandbox = sdk_for(d).sandbox
    started = sandbox.computer_use.start()
    bus = shell_env(sandbox)[1]
    d.kill()
    assert wait_for(lambda: not processes_with_env("DBUS_SESSION_BUS_ADDRESS", bus), 10)
    assert wait_for(lambda: not Path(f"/tmp/.X11-unix/X{n}").exists(), 5)
    for st in started.status.values():
        if st.pid:
            assert not Path(f"/proc/{st.pid}").exists() or _state(st.pid) == "Z", cmdline(st.pid)


def _port() -> int:
    from harness.daemon import free_port

    return free_port()


# ------------------------------------------------------------------- when there is no desktop


def _fake_agent(tmp_path: Path, body: str) -> str:
    p = tmp_path / "fake-agent"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def _unavailable(daemon_factory, sdk_for, extra_env, remove_env=()) -> tuple[str, object]:
    d = daemon_factory.start(extra_env=extra_env, remove_env=remove_env)
    sandbox = sdk_for(d).sandbox
    t0 = time.monotonic()
    with pytest.raises(DaytonaServiceUnavailableError) as e:
        sandbox.computer_use.start()
    assert time.monotonic() - t0 < 15
    assert e.value.status_code == 503
    # The daemon itself is fine.
    assert sandbox.process.exec("echo alive").result.strip() == "alive"
    return str(e.value), sandbox


def test_no_agent_binary_is_a_503_naming_it(daemon_factory, sdk_for, tmp_path: Path):
    msg, sandbox = _unavailable(daemon_factory, sdk_for, {AGENT_ENV_VAR: str(tmp_path / "missing-agent")})
    assert "computer-use plugin is still loading or failed to initialize" in msg, msg
    assert "missing-agent does not exist" in msg, msg
    with pytest.raises(DaytonaServiceUnavailableError):
        sandbox.computer_use.get_status()


def test_an_agent_that_exits_at_once_is_a_503_with_what_it_said(daemon_factory, sdk_for, tmp_path: Path):
    agent = _fake_agent(tmp_path, 'echo "boom: cannot initialise" >&2; exit 3')
    msg, sandbox = _unavailable(daemon_factory, sdk_for, {AGENT_ENV_VAR: agent})
    assert "exited with status 3" in msg and "boom: cannot initialise" in msg, msg
    # Tried again on the next request, with the same answer (no hang, no crash).
    with pytest.raises(DaytonaServiceUnavailableError, match="boom"):
        sandbox.computer_use.get_status()


def test_missing_x_libraries_give_the_dependency_message(daemon_factory, sdk_for, tmp_path: Path):
    agent = _fake_agent(
        tmp_path,
        'echo "$0: error while loading shared libraries: libXtst.so.6: cannot open shared object file: '
        'No such file or directory" >&2; exit 127',
    )
    msg, _ = _unavailable(daemon_factory, sdk_for, {AGENT_ENV_VAR: agent})
    assert "required X11 runtime libraries are missing on this sandbox" in msg and "libXtst.so.6" in msg, msg


def test_no_x_server_is_a_503_naming_xvfb(daemon_factory, sdk_for, tmp_path: Path):
    # A PATH with everything but Xvfb, and a DISPLAY nobody serves.
    farm = tmp_path / "bin"
    farm.mkdir()
    for d in ("/usr/local/bin", "/usr/bin"):
        for name in os.listdir(d):
            if name != "Xvfb" and not (farm / name).exists():
                (farm / name).symlink_to(Path(d) / name)
    n = free_display()
    env = {
        AGENT_ENV_VAR: str(agent_binary()),
        "DISPLAY": f":{n}",
        "PATH": f"{farm}:/usr/sbin:/sbin",
        "VNC_PORT": str(_port()),
        "NO_VNC_PORT": str(_port()),
    }
    msg, sandbox = _unavailable(daemon_factory, sdk_for, env)
    assert msg.startswith("Failed to start computer use: failed to start computer use: xvfb:"), msg
    assert "Xvfb not found" in msg, msg
    assert sandbox.computer_use.get_status().status != "active"
    sandbox.computer_use.stop()


def test_a_crashed_agent_is_started_again(daemon_factory, sdk_for):
    d = daemon_factory.start(extra_env={AGENT_ENV_VAR: str(agent_binary()), "DISPLAY": f":{free_display()}"})
    sandbox = sdk_for(d).sandbox
    assert sandbox.computer_use.get_status().status == "inactive"
    agents = [p for p in descendants(d.proc.pid) if "daytona-computer-use" in cmdline(p)]
    assert len(agents) == 1, [cmdline(p) for p in descendants(d.proc.pid)]
    os.kill(agents[0], 9)
    assert wait_for(lambda: not Path(f"/proc/{agents[0]}").exists() or _state(agents[0]) == "Z", 5)
    time.sleep(0.2)
    assert sandbox.computer_use.get_status().status == "inactive"
    new = [p for p in descendants(d.proc.pid) if "daytona-computer-use" in cmdline(p)]
    assert len(new) == 1 and new != agents


def test_input_and_capture_without_a_display_are_a_503_saying_so(daemon_factory, sdk_for):
    # The agent runs, but nothing serves its DISPLAY (the desktop was never started).
    n = free_display()
    d = daemon_factory.start(extra_env={AGENT_ENV_VAR: str(agent_binary()), "DISPLAY": f":{n}"})
    cu = sdk_for(d).sandbox.computer_use
    calls = [
        cu.mouse.get_position,
        lambda: cu.mouse.move(10, 10),
        lambda: cu.keyboard.type("x"),
        cu.screenshot.take_full_screen,
        cu.display.get_info,
        cu.display.get_windows,
    ]
    for call in calls:
        t0 = time.monotonic()
        with pytest.raises(DaytonaServiceUnavailableError) as e:
            call()
        assert time.monotonic() - t0 < 10
        assert e.value.status_code == 503
        assert f"X display not available: cannot open display :{n}" in str(e.value), str(e.value)
        assert "POST /computeruse/start" in str(e.value)


def test_a_wrong_method_is_a_404_envelope_and_every_route_is_documented(daemon_factory):
    """The agent goes through the same request layer as the daemon: a wrong method is 404
    NOT_FOUND (not a bare 405), and its routes are in the served OpenAPI document."""
    d = daemon_factory.start(extra_env={AGENT_ENV_VAR: str(agent_binary()), "DISPLAY": f":{free_display()}"})
    for method, path in [("DELETE", "/computeruse/status"), ("GET", "/computeruse/mouse/click"), ("PUT", "/computeruse/start")]:
        r = http.request(d.url, method, path)
        assert r.status == 404, r.describe()
        v = r.json()
        assert (v["code"], v["path"], v["method"]) == ("NOT_FOUND", path, method), v
        assert v["source"] == "DAYTONA_DAEMON"
    r = http.request(d.url, "GET", "/computeruse/no/such/route")
    assert r.status == 404 and r.json()["code"] == "NOT_FOUND", r.describe()
    # Refusals of the agent's request layer are envelopes too.
    r = http.request(d.url, "GET", "/computeruse/process/%FF/status")
    assert r.status == 400 and r.json()["code"] == "BAD_REQUEST", r.describe()
    r = http.post_json(d.url, "/computeruse/a11y/node/focus", [])
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()

    doc = http.get(d.url, "/swagger/doc.json").json()
    ops = {(m.upper(), p) for p, item in doc["paths"].items() if p.startswith("/computeruse") for m in item}
    # The agent's 34 relayed routes (31 of the reference's, our a11y wait and clipboard get and
    # set), and the daemon's own six recording routes beside them.
    recordings = {op for op in ops if op[1].startswith("/computeruse/recordings")}
    assert len(ops - recordings) == 34, sorted(ops)
    assert {("POST", "/computeruse/a11y/wait"), ("GET", "/computeruse/clipboard"), ("POST", "/computeruse/clipboard")} <= ops
    assert recordings == {
        ("GET", "/computeruse/recordings"),
        ("POST", "/computeruse/recordings/start"),
        ("POST", "/computeruse/recordings/stop"),
        ("GET", "/computeruse/recordings/{id}"),
        ("DELETE", "/computeruse/recordings/{id}"),
        ("GET", "/computeruse/recordings/{id}/download"),
    }, sorted(recordings)
    for op in [("GET", "/computeruse/status"), ("POST", "/computeruse/mouse/click"), ("GET", "/computeruse/a11y/tree")]:
        assert op in ops, op
    click = doc["paths"]["/computeruse/mouse/click"]["post"]
    assert click["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/MouseClickRequest")
    assert {"200", "400", "413", "503"} <= set(click["responses"]), click["responses"]
