"""Interpreter contexts (process.md §6) through the official SDK's ``code_interpreter``, plus raw
websocket checks of the wire (close codes and reasons, frame shapes) and the generated client
for what the SDK does not expose (JavaScript contexts, exact error statuses)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from daytona import (
    DaytonaBadRequestError,
    DaytonaError,
    DaytonaFileNotFoundError,
    DaytonaNotFoundError,
    DaytonaRateLimitError,
    DaytonaTimeoutError,
)
from daytona_toolbox_api_client import CreateContextRequest, InterpreterApi
from daytona_toolbox_api_client.exceptions import ApiException

from harness import http as raw
from harness.daemon import wait_for

@pytest.fixture
def interp(sandbox):
    return sandbox.code_interpreter


@pytest.fixture
def ctx(interp):
    c = interp.create_context()
    yield c
    try:
        interp.delete_context(c)
    except DaytonaError:
        pass  # the test deleted it


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_pids(tag: str, parent: int | None = None) -> list[int]:
    """Pids of live interpreter workers whose command line contains ``tag`` (a context id),
    optionally only the children of ``parent``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" or (parent is not None and int(fields[1]) != parent):
            continue
        if any(b"daytona_repl_worker" in a for a in cmdline) and tag.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


# ------------------------------------------------------------------------------ basic runs


def test_state_and_imports_survive_across_calls(interp):
    r = interp.run_code("x = 41\nimport math\ndef twice(v):\n    return 2 * v\n")
    assert (r.stdout, r.stderr, r.error) == ("", "", None)
    r = interp.run_code("print(x + 1, math.floor(math.pi), twice(x))")
    assert r.stdout == "42 3 82\n"
    assert r.error is None
    # Expression values are not echoed (no REPL display hook).
    assert interp.run_code("x").stdout == ""


def test_contexts_are_isolated_and_listed(interp, tmp_path):
    a = interp.create_context(cwd=str(tmp_path))
    b = interp.create_context()
    try:
        assert a.language == "python" and a.active is True and a.cwd == str(tmp_path)
        assert a.id != b.id and len(a.id) == 36
        interp.run_code("secret = 'only in a'", context=a)
        r = interp.run_code("print(secret)", context=b)
        assert r.error is not None and r.error.name == "NameError"
        assert "secret" in r.error.value
        assert interp.run_code("print(secret)", context=a).stdout == "only in a\n"
        assert interp.run_code("import os; print(os.getcwd())", context=a).stdout == f"{tmp_path}\n"
        listed = {c.id: c for c in interp.list_contexts()}
        assert a.id in listed and b.id in listed and "default" not in listed
        assert listed[a.id].cwd == str(tmp_path) and listed[a.id].created_at == a.created_at
    finally:
        interp.delete_context(a)
        interp.delete_context(b)
    ids = {c.id for c in interp.list_contexts()}
    assert a.id not in ids and b.id not in ids


def test_callbacks_receive_output_and_errors(interp, ctx):
    out, err, errors = [], [], []
    r = interp.run_code(
        "import sys\nprint('one')\nsys.stderr.write('two\\n')\nprint('three')\nraise ValueError('bad')",
        context=ctx,
        on_stdout=lambda m: out.append(m.output),
        on_stderr=lambda m: err.append(m.output),
        on_error=lambda e: errors.append(e),
    )
    assert "".join(out) == "one\nthree\n" == r.stdout
    assert "".join(err) == "two\n" == r.stderr
    assert len(errors) == 1 and errors[0].name == "ValueError" and errors[0].value == "bad"
    assert r.error == errors[0]


def test_exception_traceback_names_user_lines(interp, ctx):
    r = interp.run_code("def f():\n    return 1/0\n\nf()\n", context=ctx)
    assert r.error.name == "ZeroDivisionError"
    assert r.error.value == "division by zero"
    assert r.error.traceback == (
        "Traceback (most recent call last):\n"
        '  File "<stdin>", line 4\n'
        "    f()\n"
        '  File "<stdin>", line 2\n'
        "    return 1/0\n"
        "ZeroDivisionError: division by zero\n"
    )
    r = interp.run_code("def broken(:\n  pass", context=ctx)
    assert r.error.name == "SyntaxError"
    assert r.error.traceback == f"SyntaxError: {r.error.value}\n"
    # SystemExit is swallowed: no error.
    r = interp.run_code("import sys\nprint('before')\nsys.exit(3)", context=ctx)
    assert (r.stdout, r.error) == ("before\n", None)
    assert interp.run_code("print('still alive')", context=ctx).stdout == "still alive\n"


def test_envs_apply_to_one_execution_only(interp, ctx):
    os_code = "import os\nprint(os.environ.get('INTERP_T', '<unset>'), os.environ.get('HOME') is not None)"
    r = interp.run_code(os_code, context=ctx, envs={"INTERP_T": "v 1"})
    assert r.stdout == "v 1 True\n"
    # Subprocesses started during the execution see it too.
    r = interp.run_code("import os\nos.system('echo sub=$INTERP_T')", context=ctx, envs={"INTERP_T": "x"})
    assert r.stdout == "sub=x\n"
    assert interp.run_code(os_code, context=ctx).stdout == "<unset> True\n"


def test_post_env_reaches_a_running_context(sandbox, interp):
    # The default context was started with the daemon; later /env changes must still reach it.
    interp.run_code("pass")
    sandbox.update_env({"INTERP_LATE": "late value"})
    try:
        code = "import os, subprocess\nprint(os.environ.get('INTERP_LATE'))\nsubprocess.run(['sh', '-c', 'echo $INTERP_LATE'])"
        assert interp.run_code(code).stdout == "late value\nlate value\n"
        # A per-execution override wins for that execution only.
        assert interp.run_code(code, envs={"INTERP_LATE": "o"}).stdout == "o\no\n"
        assert interp.run_code(code).stdout == "late value\nlate value\n"
    finally:
        sandbox.update_env({}, unset=["INTERP_LATE"])
    assert interp.run_code("import os; print(os.environ.get('INTERP_LATE'))").stdout == "None\n"


# ---------------------------------------------------------------------------------- output


def test_five_mib_print_arrives_whole(interp, ctx):
    chunks = []
    r = interp.run_code(
        "s = ''.join(chr(65 + i % 26) for i in range(5 * 1024 * 1024 + 7)) + 'é€😀'\nprint(s)",
        context=ctx,
        on_stdout=lambda m: chunks.append(m.output),
    )
    expected = "".join(chr(65 + i % 26) for i in range(5 * 1024 * 1024 + 7)) + "é€😀\n"
    assert r.error is None
    assert r.stdout == expected
    assert len(chunks) > 1 and max(len(c.encode()) for c in chunks) <= 64 * 1024
    # The context is still fine afterwards.
    assert interp.run_code("print(len(s))", context=ctx).stdout == f"{5 * 1024 * 1024 + 10}\n"


def test_flood_of_prints_is_complete_and_ordered(interp, ctx):
    r = interp.run_code("import sys\nfor i in range(100000):\n    print(i)\nsys.stderr.write('done\\n')", context=ctx)
    assert r.stdout == "".join(f"{i}\n" for i in range(100000))
    assert r.stderr == "done\n"


def test_subprocess_output_on_fds_1_and_2_in_order(interp, ctx):
    code = (
        "import os, subprocess, sys\n"
        "print('a')\n"
        "os.system('echo b')\n"
        "subprocess.run(['echo', 'c'])\n"
        "sys.stdout.buffer.write(b'd\\n')\n"
        "os.write(1, b'e\\n')\n"
        "print('f')\n"
        "sys.stderr.write('g\\n')\n"
        "os.system('echo h >&2')\n"
        "subprocess.run(['ls', '/'], stdout=subprocess.DEVNULL)\n"
        "os.system('cat')  # stdin is /dev/null: returns at once, eats nothing\n"
    )
    r = interp.run_code(code, context=ctx)
    assert (r.stdout, r.stderr, r.error) == ("a\nb\nc\nd\ne\nf\n", "g\nh\n", None)
    assert interp.run_code("print('next')", context=ctx).stdout == "next\n"


# -------------------------------------------------------------------------------- timeouts


@pytest.mark.deadline(60)
def test_timeout_interrupts_and_keeps_state(interp, ctx):
    interp.run_code("kept = 'yes'", context=ctx)
    started = time.monotonic()
    with pytest.raises(DaytonaTimeoutError):
        interp.run_code("import time\nprint('started')\ntime.sleep(30)", context=ctx, timeout=1)
    assert time.monotonic() - started < 4
    # SIGINT sufficed: same worker, same state.
    assert interp.run_code("print(kept)", context=ctx).stdout == "yes\n"


@pytest.mark.deadline(60)
def test_timeout_kills_code_that_ignores_sigint(interp, ctx):
    interp.run_code("lost = 1", context=ctx)
    pids = worker_pids(ctx.id)
    assert len(pids) == 1
    started = time.monotonic()
    with pytest.raises(DaytonaTimeoutError):
        interp.run_code(
            "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)",
            context=ctx,
            timeout=1,
        )
    elapsed = time.monotonic() - started
    assert 2.5 <= elapsed < 8, elapsed
    assert wait_for(lambda: pids[0] not in worker_pids(ctx.id), 5)
    # Restarted with fresh state on next use.
    r = interp.run_code("print('fresh')\nprint(lost)", context=ctx)
    assert r.stdout == "fresh\n" and r.error.name == "NameError"
    assert worker_pids(ctx.id) != pids


@pytest.mark.deadline(60)
def test_zero_timeout_means_unlimited(interp, ctx):
    r = interp.run_code("import time\ntime.sleep(1.5)\nprint('ok')", context=ctx, timeout=0)
    assert r.stdout == "ok\n"


# ------------------------------------------------------------------ lifecycle and queueing


def test_worker_killed_externally_is_restarted_on_next_use(interp, ctx):
    interp.run_code("v = 7", context=ctx)
    (pid,) = worker_pids(ctx.id)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not next(c for c in interp.list_contexts() if c.id == ctx.id).active, 5)
    r = interp.run_code("print('back')\nprint(v)", context=ctx)
    assert r.stdout == "back\n" and r.error.name == "NameError"
    assert next(c for c in interp.list_contexts() if c.id == ctx.id).active is True


def test_worker_dying_during_execution_is_1001(interp, ctx):
    with pytest.raises(DaytonaError) as e:
        interp.run_code("import os, signal\nprint('bye')\nos.kill(os.getpid(), signal.SIGKILL)", context=ctx)
    assert "worker process ended" in str(e.value) and "1001" in str(e.value)
    assert interp.run_code("print('again')", context=ctx).stdout == "again\n"


@pytest.mark.deadline(60)
def test_one_context_runs_jobs_in_order_and_contexts_in_parallel(interp, ctx):
    other = interp.create_context()
    try:
        interp.run_code("order = []", context=ctx)
        results = {}

        def run(name, code, context):
            t0 = time.monotonic()
            results[name] = (interp.run_code(code, context=context), time.monotonic() - t0)

        first = threading.Thread(target=run, args=("first", "import time\ntime.sleep(1.5)\norder.append('first')", ctx))
        first.start()
        time.sleep(0.3)
        second = threading.Thread(target=run, args=("second", "order.append('second')\nprint(order)", ctx))
        parallel = threading.Thread(target=run, args=("parallel", "print('p')", other))
        second.start()
        parallel.start()
        for t in (first, second, parallel):
            t.join(20)
        assert results["second"][0].stdout == "['first', 'second']\n"
        assert results["second"][1] > 0.8  # waited for the first job
        assert results["parallel"][0].stdout == "p\n" and results["parallel"][1] < 1.0
    finally:
        interp.delete_context(other)


def test_delete_errors(interp, toolbox):
    api = InterpreterApi(toolbox)
    c = interp.create_context()
    interp.delete_context(c)
    with pytest.raises(DaytonaNotFoundError):
        interp.delete_context(c)
    with pytest.raises(DaytonaError) as e:
        interp.run_code("print(1)", context=c)
    assert f"context not found: {c.id}" in str(e.value)
    with pytest.raises(ApiException) as e:
        api.delete_interpreter_context("default")
    assert e.value.status == 400
    body = json.loads(e.value.body)
    assert body["code"] == "BAD_REQUEST" and "cannot delete default context" in body["message"]
    with pytest.raises(ApiException) as e:
        api.delete_interpreter_context("no-such-context")
    assert e.value.status == 404 and json.loads(e.value.body)["code"] == "PROCESS_NOT_FOUND"


def test_create_errors(interp, toolbox, tmp_path):
    api = InterpreterApi(toolbox)
    with pytest.raises(ApiException) as e:
        api.create_interpreter_context(CreateContextRequest(language="ruby"))
    body = json.loads(e.value.body)
    assert e.value.status == 400 and body["code"] == "BAD_REQUEST"
    assert "unsupported language: ruby" in body["message"]
    r = raw.post_json(toolbox.configuration.host, "/process/interpreter/context", [1])
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY"
    # An explicit python language is fine, and so is an empty body object.
    r = raw.post_json(toolbox.configuration.host, "/process/interpreter/context", {"language": "python"})
    assert r.status == 200 and set(r.json()) == {"id", "cwd", "createdAt", "active", "language"}
    assert raw.request(toolbox.configuration.host, "DELETE", f"/process/interpreter/context/{r.json()['id']}").json() == {
        "message": "Context deleted successfully"
    }


def test_a_missing_cwd_is_404_naming_it(interp, tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(DaytonaFileNotFoundError) as e:
        interp.create_context(cwd=str(missing))
    assert e.value.status_code == 404 and e.value.code == "FILE_NOT_FOUND"
    assert f"cwd {missing}: no such file or directory" in str(e.value)
    with pytest.raises(DaytonaFileNotFoundError) as e:
        interp.create_context(cwd="/nonexistent")
    assert "cwd /nonexistent" in str(e.value)
    assert not missing.exists()


def test_a_file_as_cwd_is_400_naming_it(interp, tmp_path):
    f = tmp_path / "plain"
    f.write_text("")
    with pytest.raises(DaytonaBadRequestError) as e:
        interp.create_context(cwd=str(f))
    assert e.value.status_code == 400
    assert f"cwd {f}: not a directory" in str(e.value)


def test_bodies_that_are_not_objects_create_no_context(interp, toolbox):
    before = {c.id for c in interp.list_contexts()}
    for body in ([None, None], [], None, "cwd"):
        r = raw.post_json(toolbox.configuration.host, "/process/interpreter/context", body)
        assert r.status == 400, (body, r.describe())
        assert r.json()["code"] == "INVALID_REQUEST_BODY"
    assert {c.id for c in interp.list_contexts()} == before


@pytest.mark.deadline(120)
def test_contexts_are_capped_with_a_429(fresh_daemon, sdk_for):
    """The daemon's default limit (32 user contexts; the default context is not one of them)."""
    interp = sdk_for(fresh_daemon).sandbox.code_interpreter
    assert interp.run_code("print('default')").stdout == "default\n"
    made = []
    try:
        for _ in range(32):
            made.append(interp.create_context())
        with pytest.raises(DaytonaRateLimitError) as e:
            interp.create_context()
        assert e.value.status_code == 429 and e.value.code == "TOO_MANY_REQUESTS"
        assert "limit of 32 interpreter contexts" in str(e.value)
        assert "delete contexts you no longer need" in str(e.value)
        assert len(interp.list_contexts()) == 32
        # The refused request left no worker behind, and a delete frees a place.
        ids = [c.id for c in made] + ["default"]
        assert sum(len(worker_pids(i, parent=fresh_daemon.proc.pid)) for i in ids) == 33
        interp.delete_context(made.pop())
        made.append(interp.create_context())
        assert interp.run_code("print('still')", context=made[-1]).stdout == "still\n"
        with pytest.raises(DaytonaRateLimitError):
            interp.create_context()
    finally:
        for c in made:
            interp.delete_context(c)
    assert interp.list_contexts() == []
    interp.delete_context(interp.create_context())


# ------------------------------------------------------------------------ raw websocket


async def _exchange(url: str, first, timeout: float = 20.0, during=None):
    """Sends ``first`` (str/bytes, or None for nothing), collects every frame until the close."""
    import aiohttp

    frames = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, autoclose=False, autoping=True) as ws:
            if isinstance(first, bytes):
                await ws.send_bytes(first)
            elif first is not None:
                await ws.send_str(first)
            if during is not None:
                await during(ws)
            deadline = time.monotonic() + timeout
            while True:
                msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    code = msg.data if msg.type == aiohttp.WSMsgType.CLOSE else None
                    return frames, code, msg.extra
                frames.append((msg.type.name, msg.data))


def ws_url(daemon) -> str:
    return daemon.url.replace("http://", "ws://") + "/process/interpreter/execute"


def test_wire_frames_and_normal_close(daemon):
    msg = json.dumps({"code": "import sys\nprint('o')\nsys.stderr.write('e\\n')\nraise KeyError('k')"})
    frames, code, reason = asyncio.run(_exchange(ws_url(daemon), msg))
    assert code == 1000 and reason == ""
    assert all(t == "TEXT" for t, _ in frames)
    parsed = [json.loads(d) for _, d in frames]
    for f in parsed:
        assert list(f) == ["type", "text", "name", "value", "traceback"]
    assert parsed[-1] == {"type": "control", "text": "completed", "name": "", "value": "", "traceback": ""}
    assert {"type": "stdout", "text": "o\n", "name": "", "value": "", "traceback": ""} in parsed
    errors = [f for f in parsed if f["type"] == "error"]
    assert len(errors) == 1 and errors[0]["name"] == "KeyError" and errors[0]["value"] == "'k'"
    # A binary first message works too.
    frames, code, _ = asyncio.run(_exchange(ws_url(daemon), json.dumps({"code": "print(2)"}).encode()))
    assert code == 1000 and json.loads(frames[0][1])["text"] == "2\n"


def test_wire_huge_timeout_is_no_limit(daemon):
    msg = json.dumps({"code": "print('ok')", "timeout": 2**63 - 1})
    frames, code, _ = asyncio.run(_exchange(ws_url(daemon), msg))
    assert code == 1000 and json.loads(frames[0][1])["text"] == "ok\n"


def control_frames(frames) -> list[str]:
    return [f["text"] for f in (json.loads(d) for _, d in frames) if f["type"] == "control"]


@pytest.mark.deadline(60)
def test_wire_timeout_is_4008_without_a_control_frame(daemon, interp, ctx):
    # The daemon interrupted the code: a control frame would make the TypeScript SDK resolve
    # successfully instead of raising its timeout error, so only the close 4008 tells.
    msg = json.dumps({"code": "import time\nprint('started')\ntime.sleep(20)", "timeout": 1, "contextId": ctx.id})
    frames, code, reason = asyncio.run(_exchange(ws_url(daemon), msg))
    assert (code, reason) == (4008, "")
    assert control_frames(frames) == []
    assert [json.loads(d)["text"] for _, d in frames] == ["started\n"]
    # Code that catches the interrupt and ends normally still timed out.
    code_text = "import time\ntry:\n    time.sleep(20)\nexcept KeyboardInterrupt:\n    print('caught')"
    msg = json.dumps({"code": code_text, "timeout": 1, "contextId": ctx.id})
    frames, code, reason = asyncio.run(_exchange(ws_url(daemon), msg))
    assert (code, reason) == (4008, "")
    assert control_frames(frames) == []
    assert [json.loads(d)["text"] for _, d in frames] == ["caught\n"]
    # The context goes on; a normal run ends with its control frame and 1000.
    frames, code, _ = asyncio.run(_exchange(ws_url(daemon), json.dumps({"code": "print(1)", "contextId": ctx.id})))
    assert code == 1000 and control_frames(frames) == ["completed"]


@pytest.mark.deadline(60)
def test_wire_timeout_of_code_that_ignores_sigint_is_4008_only(daemon, interp, ctx):
    code_text = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(30)"
    msg = json.dumps({"code": code_text, "timeout": 1, "contextId": ctx.id})
    frames, code, reason = asyncio.run(_exchange(ws_url(daemon), msg))
    assert (frames, code, reason) == ([], 4008, "")


@pytest.mark.parametrize(
    "code_text",
    [
        "print('before')\nraise KeyboardInterrupt",
        "import os, signal, time\nprint('before')\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)",
    ],
)
def test_wire_an_interrupt_of_the_code_itself_is_a_normal_end(daemon, code_text):
    # Not the daemon's doing: the worker's `interrupted` frame is forwarded, last, then 1000.
    frames, code, reason = asyncio.run(_exchange(ws_url(daemon), json.dumps({"code": code_text, "timeout": 30})))
    assert (code, reason) == (1000, "")
    parsed = [json.loads(d) for _, d in frames]
    assert parsed[0]["text"] == "before\n"
    assert parsed[-1] == {"type": "control", "text": "interrupted", "name": "", "value": "", "traceback": ""}
    assert control_frames(frames) == ["interrupted"]


def test_wire_plain_http_is_a_400_envelope(daemon):
    r = raw.get(daemon.url, "/process/interpreter/execute")
    assert r.status == 400
    assert r.json()["code"] == "BAD_REQUEST" and "WebSocket upgrade" in r.json()["message"]


@pytest.mark.parametrize(
    "first, code, reason",
    [
        ("not json", 1002, "invalid JSON payload"),
        ('{"code": 5}', 1002, "invalid JSON payload"),
        ('["print(1)"]', 1002, "invalid JSON payload"),
        ("{}", 1008, "code is required"),
        ('{"code": ""}', 1008, "code is required"),
        ('{"code": "x", "timeout": -1}', 1008, "timeout must be greater than or equal to 0"),
        ('{"code": "x", "contextId": "nope"}', 1008, "context not found: nope"),
    ],
)
def test_wire_rejections(daemon, first, code, reason):
    frames, got_code, got_reason = asyncio.run(_exchange(ws_url(daemon), first))
    assert (frames, got_code, got_reason) == ([], code, reason)


def test_wire_client_pings_and_extra_frames_are_tolerated(daemon):
    async def chatter(ws):
        for _ in range(3):
            await ws.ping()
            await ws.send_str("ignored")
            await asyncio.sleep(0.1)

    msg = json.dumps({"code": "import time\ntime.sleep(0.6)\nprint('done')"})
    frames, code, _ = asyncio.run(_exchange(ws_url(daemon), msg, during=chatter))
    assert code == 1000 and json.loads(frames[0][1])["text"] == "done\n"


@pytest.mark.deadline(60)
def test_wire_a_paused_client_gets_everything_later(daemon, interp, ctx):
    # 16 MiB while the client reads nothing for 2 s: the worker is held back (bounded memory),
    # then everything arrives in order.
    async def pause(ws):
        await asyncio.sleep(2)

    code = "for i in range(256):\n    print(str(i).rjust(8, '.') * 8192, end='')\nprint()"
    msg = json.dumps({"code": code, "contextId": ctx.id})
    frames, code_, _ = asyncio.run(_exchange(ws_url(daemon), msg, during=pause, timeout=40))
    assert code_ == 1000
    text = "".join(json.loads(d)["text"] for _, d in frames if json.loads(d)["type"] == "stdout")
    assert text == "".join(str(i).rjust(8, ".") * 8192 for i in range(256)) + "\n"


@pytest.mark.deadline(60)
def test_wire_a_client_leaving_mid_flood_does_not_wedge_the_context(daemon, interp, ctx):
    async def leave_after_first_frame():
        import aiohttp

        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ws_url(daemon)) as ws:
                await ws.send_str(json.dumps({"code": "for i in range(400):\n    print('x' * 500000)", "contextId": ctx.id}))
                await ws.receive(timeout=10)

    asyncio.run(leave_after_first_frame())
    started = time.monotonic()
    # Queued behind the flood, which now runs with its output dropped.
    assert interp.run_code("print('after the flood')", context=ctx).stdout == "after the flood\n"
    assert time.monotonic() - started < 20


@pytest.mark.deadline(60)
def test_wire_delete_closes_the_attached_client_with_1001(daemon, interp):
    c = interp.create_context()

    async def delete_soon(ws):
        await asyncio.sleep(0.5)
        await asyncio.to_thread(interp.delete_context, c)

    msg = json.dumps({"code": "import time\ntime.sleep(30)", "contextId": c.id})
    started = time.monotonic()
    _, code, reason = asyncio.run(_exchange(ws_url(daemon), msg, during=delete_soon))
    assert (code, reason) == (1001, "context shutdown")
    assert time.monotonic() - started < 5
    assert worker_pids(c.id) == []


# -------------------------------------------------------------------------------- JavaScript


@pytest.fixture
def js_ctx(interp, toolbox):
    c = InterpreterApi(toolbox).create_interpreter_context(CreateContextRequest(language="javascript"))
    yield c
    try:
        interp.delete_context(c)
    except DaytonaError:
        pass


def test_js_state_console_and_errors(interp, js_ctx):
    assert js_ctx.language == "javascript"
    r = interp.run_code("let a = 40; var b = 2; function add(x, y) { return x + y; }", context=js_ctx)
    assert r.error is None
    r = interp.run_code("console.log(add(a, b)); console.error('warn', {k: 1})", context=js_ctx)
    assert (r.stdout, r.stderr) == ("42\n", "warn { k: 1 }\n")
    r = interp.run_code("const fs = require('fs');\nthrow new TypeError('nope')", context=js_ctx)
    assert r.error.name == "TypeError" and r.error.value == "nope"
    assert "TypeError: nope" in r.error.traceback and "<stdin>:2" in r.error.traceback
    r = interp.run_code(
        "console.log('a'); require('child_process').execSync('echo b', {stdio: 'inherit'}); console.log('c')",
        context=js_ctx,
    )
    assert r.stdout == "a\nb\nc\n"
    # A returned promise is awaited.
    r = interp.run_code("(async () => { await new Promise(r => setTimeout(r, 100)); console.log('later'); })()", context=js_ctx)
    assert r.stdout == "later\n"
    assert interp.run_code("console.log(process.env.JS_T)", context=js_ctx, envs={"JS_T": "t"}).stdout == "t\n"
    assert interp.run_code("console.log(process.env.JS_T)", context=js_ctx).stdout == "undefined\n"


@pytest.mark.deadline(60)
def test_js_timeout_interrupts_and_keeps_state(interp, js_ctx):
    interp.run_code("globalThis.kept = 'yes'", context=js_ctx)
    started = time.monotonic()
    with pytest.raises(DaytonaTimeoutError):
        interp.run_code("while (true) {}", context=js_ctx, timeout=1)
    assert time.monotonic() - started < 4
    assert interp.run_code("console.log(kept)", context=js_ctx).stdout == "yes\n"


def test_js_contexts_are_isolated_from_python(interp, js_ctx):
    interp.run_code("var onlyJs = 1", context=js_ctx)
    r = interp.run_code("print(onlyJs)")
    assert r.error.name == "NameError"


# -------------------------------------------------------------------------------- shutdown


@pytest.mark.deadline(60)
def test_daemon_shutdown_stops_every_worker(fresh_daemon, sdk_for):
    s = sdk_for(fresh_daemon)
    interp = s.sandbox.code_interpreter
    c = interp.create_context()
    assert interp.run_code("print(1)").stdout == "1\n"
    assert interp.run_code("print(2)", context=c).stdout == "2\n"
    pids = worker_pids("default", parent=fresh_daemon.proc.pid) + worker_pids(c.id)
    assert len(pids) == 2
    assert fresh_daemon.stop(signal.SIGTERM, 10) == 0
    assert wait_for(lambda: not any(alive(p) for p in pids), 5)


def test_no_python_on_path(daemon_factory, sdk_for):
    d = daemon_factory.start(extra_env={"PATH": "/nonexistent"})
    frames, code, reason = asyncio.run(_exchange(ws_url(d), json.dumps({"code": "print(1)"})))
    assert (frames, code) == ([], 1011)
    assert reason == "failed to get default context: no python interpreter found on PATH"
    with pytest.raises(DaytonaError) as e:
        sdk_for(d).sandbox.code_interpreter.create_context()
    assert getattr(e.value, "status_code", None) == 500
    assert "no python interpreter found on PATH" in str(e.value)
