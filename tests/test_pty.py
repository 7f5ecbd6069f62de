"""PTY sessions (process.md §5, sdk-0.226.md §3.1) through the official SDK: create-connect,
connect, input, output, resize, kill and natural exit with the codes the SDK reports, several
clients on one terminal, the replay of output printed while nobody was attached, and the whole
process tree gone after a delete. List, get, lazy create and the error statuses go through the
generated client."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from daytona import DaytonaBadRequestError, DaytonaConflictError, DaytonaError, DaytonaNotFoundError, PtySize
from daytona_toolbox_api_client import ProcessApi, PtyCreateRequest, PtyResizeRequest
from daytona_toolbox_api_client.exceptions import ApiException

from harness import http as raw


def pid_name(prefix: str = "pty") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module", autouse=True)
def quiet_shell_rc(sandbox):
    """A real image has shell start-up files; without any, zsh (the preferred shell) would run
    its new-user wizard instead of showing a prompt."""
    home = sandbox.get_user_home_dir()
    for rc in (".zshrc", ".bashrc"):
        sandbox.fs.upload_file(b"", f"{home}/{rc}")


def read_until(handle, marker: str, timeout: float = 10.0) -> str:
    """Output of `handle` until `marker` shows up (or the PTY ends, or the time is up)."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while marker.encode() not in buf and time.monotonic() < deadline:
        handle.wait(on_data=buf.extend, timeout=0.2)
        if handle.exit_code is not None:
            break
    return buf.decode(errors="replace")


def expect(handle, marker: str, timeout: float = 10.0) -> str:
    out = read_until(handle, marker, timeout)
    assert marker in out, f"{marker!r} not in output:\n{out!r}"
    return out


@pytest.fixture
def pty(sandbox):
    handles = []

    def create(**kw):
        name = kw.pop("id", None) or pid_name()
        h = sandbox.process.create_pty_session(id=name, **kw)
        handles.append(h)
        return h

    yield create
    for h in handles:
        try:
            h.disconnect()
        except Exception:  # noqa: BLE001 - teardown best effort
            pass
        try:
            sandbox.process.kill_pty_session(h.session_id)
        except DaytonaError:
            pass


def test_first_prompt_arrives_after_connected(pty):
    h = pty()
    assert h.is_connected()
    buf = bytearray()
    deadline = time.monotonic() + 10
    while not buf and time.monotonic() < deadline:
        h.wait(on_data=buf.extend, timeout=0.2)
    assert buf, "the shell's first prompt was lost"


def test_input_output_envs_and_cwd(pty, tmp_path):
    h = pty(cwd=str(tmp_path), envs={"PTY_VAR": "v-é"})
    h.send_input("echo var=$PTY_VAR sum=$((40+2)) pwd=$PWD term=$TERM\n")
    out = expect(h, "sum=42")
    assert f"pwd={tmp_path}" in out
    assert "var=v-é" in out
    assert "term=xterm-256color" in out
    # Input as bytes works too.
    h.send_input(b"echo bytes-$((3*3))\r")
    expect(h, "bytes-9")


def test_natural_exit_with_code(pty):
    h = pty()
    h.send_input("exit 7\n")
    result = h.wait(timeout=10)
    assert result.exit_code == 7, result
    assert result.error == "non-zero exit"


def test_natural_exit_zero(pty):
    h = pty()
    h.send_input("exit\n")
    result = h.wait(timeout=10)
    assert result.exit_code == 0
    assert result.error is None


def test_kill_reports_sigkill(pty, sandbox):
    h = pty()
    h.send_input("echo ready-$((1+1))\n")
    expect(h, "ready-2")
    h.kill()
    result = h.wait(timeout=10)
    assert result.exit_code == 137
    assert result.error == "SIGKILL"
    with pytest.raises(DaytonaError):
        sandbox.process.get_pty_session_info(h.session_id)


def test_resize_is_seen_by_stty(pty, sandbox):
    h = pty(pty_size=PtySize(cols=100, rows=30))
    h.send_input("stty size\n")
    expect(h, "30 100")
    info = h.resize(PtySize(cols=123, rows=45))
    assert (info.cols, info.rows) == (123, 45)
    h.send_input("stty size\n")
    expect(h, "45 123")
    info = sandbox.process.get_pty_session_info(h.session_id)
    assert (info.cols, info.rows, info.active) == (123, 45, True)


def test_two_clients_see_the_same_output(pty, sandbox):
    h1 = pty()
    h2 = sandbox.process.connect_pty_session(h1.session_id)
    try:
        h1.send_input("echo both-$((20+22))\n")
        expect(h1, "both-42")
        expect(h2, "both-42")
        # Input from the second client reaches the same shell.
        h2.send_input("echo second-$((5+5))\n")
        expect(h1, "second-10")
    finally:
        h2.disconnect()


def test_reconnect_replays_what_was_printed_while_away(pty, sandbox):
    h1 = pty()
    h1.send_input("sleep 1; echo while-away-$((6*7))\n")
    time.sleep(0.2)
    h1.disconnect()
    time.sleep(2)  # the line is printed while no client is attached
    h2 = sandbox.process.connect_pty_session(h1.session_id)
    try:
        out = expect(h2, "while-away-42", timeout=5)
        assert "sleep 1" in out, "the replay should also show the command line typed before"
        # Live output follows the replay.
        h2.send_input("echo live-$((2+3))\n")
        expect(h2, "live-5")
    finally:
        h2.disconnect()


def procs_with(tag: str) -> list[tuple[int, str]]:
    """Processes whose command line contains `tag`, with their state (zombies included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if tag in cmd:
            found.append((int(entry), state))
    return found


def test_delete_takes_down_the_whole_tree(pty, sandbox):
    h = pty()
    tag = f"{uuid.uuid4().int % 10**6}"
    # A plain job, a setsid'd one, a disowned one and a double-forked one.
    h.send_input(
        f"sleep 1{tag} & setsid sleep 2{tag} & sleep 3{tag} & disown; (sleep 4{tag} &); "
        f"echo spawned-$((1+1))\n"
    )
    expect(h, "spawned-2")
    deadline = time.monotonic() + 5
    while len(procs_with(tag)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(procs_with(tag)) == 4, procs_with(tag)
    sandbox.process.kill_pty_session(h.session_id)
    deadline = time.monotonic() + 5
    while procs_with(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Gone from /proc entirely: killed and reaped (no zombie).
    assert procs_with(tag) == []
    assert h.wait(timeout=5).exit_code == 137


def test_create_connect_rejects_a_duplicate_id(pty, sandbox):
    h = pty()
    with pytest.raises(DaytonaConflictError):
        sandbox.process.create_pty_session(id=h.session_id)


def test_generated_client_lazy_create_list_get_resize_delete(toolbox, sandbox):
    api = ProcessApi(toolbox)
    name = pid_name("lazy")
    created = api.create_pty_session(PtyCreateRequest(id=name, cols=90, rows=20, lazy_start=True))
    assert created.session_id == name
    listed = {s.id: s for s in api.list_pty_sessions().sessions}
    assert name in listed
    info = listed[name]
    assert (info.cols, info.rows, info.active, info.lazy_start) == (90, 20, False, True)
    assert info.envs["TERM"] == "xterm-256color"
    assert info.cwd

    # A lazy session that has not started cannot be resized.
    with pytest.raises(ApiException) as e:
        api.resize_pty_session(name, PtyResizeRequest(cols=100, rows=30))
    assert e.value.status == 500

    # Connecting starts it, and the first prompt is not lost.
    h = sandbox.process.connect_pty_session(name)
    try:
        buf = bytearray()
        deadline = time.monotonic() + 10
        while not buf and time.monotonic() < deadline:
            h.wait(on_data=buf.extend, timeout=0.2)
        assert buf
        assert api.get_pty_session(name).active is True
        info = api.resize_pty_session(name, PtyResizeRequest(cols=101, rows=31))
        assert (info.cols, info.rows) == (101, 31)
        h.send_input("stty size\n")
        expect(h, "31 101")
    finally:
        h.disconnect()

    assert api.delete_pty_session(name)["message"] == "PTY session deleted"
    with pytest.raises(ApiException) as e:
        api.get_pty_session(name)
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        api.resize_pty_session(name, PtyResizeRequest(cols=100, rows=30))
    assert e.value.status == 410
    with pytest.raises(ApiException) as e:
        api.delete_pty_session(name)
    assert e.value.status == 404


def test_generated_client_validation(toolbox):
    api = ProcessApi(toolbox)
    with pytest.raises(ApiException) as e:
        api.create_pty_session(PtyCreateRequest(id="", lazy_start=True))
    assert e.value.status == 400
    with pytest.raises(ApiException) as e:
        api.create_pty_session(PtyCreateRequest(id=pid_name(), cols=1001, lazy_start=True))
    assert e.value.status == 400
    name = pid_name()
    api.create_pty_session(PtyCreateRequest(id=name, lazy_start=True))
    try:
        with pytest.raises(ApiException) as e:
            api.create_pty_session(PtyCreateRequest(id=name, lazy_start=True))
        assert e.value.status == 409
    finally:
        api.delete_pty_session(name)


BAD_IDS = ["a/b", "..", "a\x00b", "x" * 300, "y" * (1 << 20)]


@pytest.mark.parametrize("bad", BAD_IDS, ids=["slash", "dotdot", "nul", "300-chars", "1MiB"])
def test_invalid_ids_are_refused_and_create_nothing(toolbox, bad):
    # Session ids follow the same rules; a 1 MiB id used to give 201, and no URL could ever
    # reach that terminal again to delete it.
    api = ProcessApi(toolbox)
    before = {s.id for s in api.list_pty_sessions().sessions}
    for lazy in (True, False):
        with pytest.raises(ApiException) as e:
            api.create_pty_session(PtyCreateRequest(id=bad, lazy_start=lazy))
        assert e.value.status == 400
        assert json.loads(e.value.body)["code"] == "INVALID_REQUEST_BODY"
    assert {s.id for s in api.list_pty_sessions().sessions} == before


def test_invalid_id_via_sdk_is_a_bad_request(sandbox):
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.create_pty_session(id="a/b")


def test_a_cwd_no_shell_can_start_in_is_refused_and_creates_nothing(sandbox, toolbox, tmp_path):
    # It used to be a 500 ("failed to start PTY session"), or for a lazy PTY a failure only at
    # the first connect.
    api = ProcessApi(toolbox)
    before = {s.id for s in api.list_pty_sessions().sessions}
    afile = tmp_path / "plain-file"
    afile.write_text("")
    for cwd, status, code in [("/nonexistent", 404, "FILE_NOT_FOUND"), (str(afile), 400, "BAD_REQUEST")]:
        for lazy in (True, False):
            with pytest.raises(ApiException) as e:
                api.create_pty_session(PtyCreateRequest(id=pid_name(), cwd=cwd, lazy_start=lazy))
            assert e.value.status == status, e.value.body
            body = json.loads(e.value.body)
            assert body["code"] == code and cwd in body["message"], body
    with pytest.raises(DaytonaError):
        sandbox.process.create_pty_session(id=pid_name(), cwd="/nonexistent")
    assert {s.id for s in api.list_pty_sessions().sessions} == before


def test_invalid_create_connect_ids_are_refused_before_the_upgrade(daemon, toolbox):
    before = {s.id for s in ProcessApi(toolbox).list_pty_sessions().sessions}
    for q in ["a%2Fb", "..", "a%00b", "x" * 300]:
        r = raw.get(daemon.url, f"/process/pty/create-connect?id={q}")
        assert r.status == 400, r.describe()
        assert r.json()["message"].startswith("invalid PTY ID"), r.describe()
    assert {s.id for s in ProcessApi(toolbox).list_pty_sessions().sessions} == before


def test_resize_of_a_session_that_never_existed_is_404(toolbox, sandbox):
    api = ProcessApi(toolbox)
    with pytest.raises(ApiException) as e:
        api.resize_pty_session(pid_name("never"), PtyResizeRequest(cols=100, rows=30))
    assert e.value.status == 404
    assert json.loads(e.value.body)["code"] == "PROCESS_NOT_FOUND"
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.resize_pty_session(pid_name("never"), PtySize(cols=100, rows=30))


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/process/pty/%FF%FE"),
        ("DELETE", "/process/pty/%FF%FE"),
        ("POST", "/process/pty/%FF%FE/resize"),
        ("GET", "/process/pty/%FF%FE/connect"),
    ],
)
def test_undecodable_ids_are_400_envelopes(daemon, method, path):
    r = raw.request(daemon.url, method, path, body=b'{"cols": 10, "rows": 10}')
    assert r.status == 400, r.describe()
    body = r.json()
    assert (body["code"], body["path"], body["method"]) == ("BAD_REQUEST", path, method), body


def test_connect_without_an_upgrade_is_a_400_envelope(daemon):
    r = raw.get(daemon.url, "/process/pty/anything/connect")
    assert r.status == 400, r.describe()
    assert "WebSocket upgrade" in r.json()["message"], r.describe()


def test_connect_to_unknown_session_fails(sandbox):
    with pytest.raises(DaytonaError) as e:
        sandbox.process.connect_pty_session(pid_name("missing"))
    assert "not found" in str(e.value)


# ------------------------------------------------------------------ wire details (raw websocket)


async def _ws_frames(url: str, protocols=(), send: bytes | None = None, timeout: float = 10.0):
    """Every frame of one websocket session until it closes: [(type, data)], close code, reason."""
    import aiohttp

    frames = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, protocols=protocols, autoclose=False) as ws:
            selected = ws.protocol
            deadline = time.monotonic() + timeout
            sent = False
            while True:
                msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return frames, msg.data if msg.type == aiohttp.WSMsgType.CLOSE else None, msg.extra, selected
                frames.append((msg.type.name, msg.data))
                if send is not None and not sent and msg.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_bytes(send)
                    sent = True


def _ws_url(daemon, path: str) -> str:
    return daemon.url.replace("http://", "ws://") + path


def test_wire_exit_control_frame_and_close_reason(daemon):
    import asyncio
    import base64
    import json

    envs = base64.urlsafe_b64encode(json.dumps({"WIRE": "x y"}).encode()).decode()  # with padding
    url = _ws_url(daemon, f"/process/pty/create-connect?id={pid_name('wire')}&cols=90&rows=20")
    frames, code, reason, selected = asyncio.run(
        _ws_frames(url, ["X-Daytona-Pty-Exit-Control", f"X-Daytona-Pty-Envs~{envs}"], send=b'echo "[$WIRE]"; exit 3\n')
    )
    assert frames[0] == ("TEXT", '{"type":"control","status":"connected"}')
    assert selected == "X-Daytona-Pty-Exit-Control"  # never the envs token
    output = b"".join(d for t, d in frames if t == "BINARY").decode(errors="replace")
    assert "[x y]" in output
    exited = [json.loads(d) for t, d in frames[1:] if t == "TEXT"]
    assert exited == [{"type": "control", "status": "exited", "exitCode": 3, "exitReason": "non-zero exit"}]
    assert code == 1011
    assert json.loads(reason) == {"exitCode": 3, "exitReason": "non-zero exit"}


def test_wire_no_exited_frame_without_the_token(daemon):
    import asyncio
    import json

    url = _ws_url(daemon, f"/process/pty/create-connect?id={pid_name('wire')}")
    frames, code, reason, _ = asyncio.run(_ws_frames(url, [], send=b"exit\n"))
    assert [d for t, d in frames if t == "TEXT"] == ['{"type":"control","status":"connected"}']
    assert code == 1000 and json.loads(reason) == {"exitCode": 0}


def test_wire_errors(daemon, toolbox):
    import asyncio

    # Checked before the upgrade: plain HTTP errors.
    assert raw.get(daemon.url, "/process/pty/create-connect").status == 400
    assert raw.get(daemon.url, f"/process/pty/create-connect?id=x&cols=1001").status == 400
    name = pid_name()
    ProcessApi(toolbox).create_pty_session(PtyCreateRequest(id=name, lazy_start=True))
    try:
        assert raw.get(daemon.url, f"/process/pty/create-connect?id={name}").status == 409
    finally:
        ProcessApi(toolbox).delete_pty_session(name)
    # After the upgrade: an error control frame and no close frame.
    frames, code, _, _ = asyncio.run(_ws_frames(_ws_url(daemon, "/process/pty/nope/connect")))
    assert frames == [
        ("TEXT", '{"type":"control","status":"error","error":"Failed to connect to PTY session: PTY session nope not found"}')
    ]
    assert code is None or code == 1006
