"""Sessions (process.md §3–4, sdk-0.226.md §2.6) through the official SDK: create, exec sync and
async, command get, logs (plain and the follow websocket), input, delete, and the failure cases
(exit in a session, unknown ids, duplicates, ids that would escape the sessions folder)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from daytona import (
    DaytonaBadRequestError,
    DaytonaCommandAlreadyCompletedError,
    DaytonaConflictError,
    DaytonaNotFoundError,
    DaytonaSessionEndedError,
    SessionExecuteRequest,
)

from harness.daemon import wait_for
from harness import http as raw


def sid(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def run(sandbox, session: str, command: str, **kw):
    return sandbox.process.execute_session_command(session, SessionExecuteRequest(command=command, **kw))


def follow(sandbox, session: str, cmd_id: str) -> tuple[str, str]:
    out: list[str] = []
    err: list[str] = []
    asyncio.run(sandbox.process.get_session_command_logs_async(session, cmd_id, out.append, err.append))
    return "".join(out), "".join(err)


@pytest.fixture
def session(sandbox):
    name = sid()
    sandbox.process.create_session(name)
    yield name
    try:
        sandbox.process.delete_session(name)
    except DaytonaNotFoundError:
        pass


# ---------------------------------------------------------------------------- basics


def test_state_persists_across_commands(sandbox, session):
    r = run(sandbox, session, "cd /tmp && MYVAR=persisted && greet() { echo \"hi $1\"; } && export EXP=x")
    assert r.exit_code == 0
    r = run(sandbox, session, 'pwd; echo "$MYVAR"; greet you; sh -c \'echo "$EXP"\'')
    assert r.exit_code == 0
    assert r.stdout == "/tmp\npersisted\nhi you\nx\n"
    assert r.stderr == ""


def test_stdout_stderr_and_exit_code(sandbox, session):
    r = run(sandbox, session, "echo out1; echo err1 >&2; echo out2; (exit 7)")
    assert r.exit_code == 7
    assert r.stdout == "out1\nout2\n"
    assert r.stderr == "err1\n"
    # Modern clients get the raw log, markers included, in `output`.
    assert "\x01\x01\x01out1\n" in r.output and "\x02\x02\x02err1\n" in r.output
    assert r.cmd_id


def test_sync_command_sees_eof_on_stdin(sandbox, session):
    start = time.monotonic()
    r = run(sandbox, session, 'read line; echo "rc=$? line=[$line]"; cat; echo after-cat')
    assert time.monotonic() - start < 5
    assert r.stdout == "rc=1 line=[]\nafter-cat\n"


def test_here_document_and_multiline_script(sandbox, session):
    script = "x=1\ncat <<'EOF'\nliteral $x `not run`\nEOF\nif [ \"$x\" = 1 ]; then\n  echo yes\nfi\n"
    r = run(sandbox, session, script)
    assert r.exit_code == 0
    assert r.stdout == "literal $x `not run`\nyes\n"


def test_final_line_without_newline_gets_one(sandbox, session):
    r = run(sandbox, session, "printf 'a\\nb'; printf 'c' >&2")
    assert (r.stdout, r.stderr) == ("a\nb\n", "c\n")


def test_commands_run_in_submission_order(sandbox, session):
    first = run(sandbox, session, "sleep 0.5; echo one > order.txt", run_async=True)
    second = run(sandbox, session, "echo two >> order.txt; cat order.txt")
    assert second.stdout == "one\ntwo\n"
    assert sandbox.process.get_session_command(session, first.cmd_id).exit_code == 0


def test_session_sees_env_overlay(sandbox):
    name = f"SESSENV_{uuid.uuid4().hex[:8].upper()}"
    sandbox.update_env({name: "overlay value"})
    s = sid()
    sandbox.process.create_session(s)
    try:
        assert run(sandbox, s, f'echo "${name}"').stdout == "overlay value\n"
    finally:
        sandbox.process.delete_session(s)


def test_session_starts_in_work_dir(sandbox, session, daemon):
    assert run(sandbox, session, "pwd").stdout == f"{daemon.workdir}\n"


# ------------------------------------------------------------------ async, get, logs


def test_async_command_get_and_logs(sandbox, session):
    r = run(sandbox, session, "echo started; sleep 1; echo done; echo warn >&2; (exit 3)", run_async=True)
    assert r.cmd_id and r.exit_code is None and r.output is None
    cmd = sandbox.process.get_session_command(session, r.cmd_id)
    assert cmd.exit_code is None
    assert cmd.command.startswith("echo started")
    out, err = follow(sandbox, session, r.cmd_id)
    assert (out, err) == ("started\ndone\n", "warn\n")
    assert sandbox.process.get_session_command(session, r.cmd_id).exit_code == 3
    logs = sandbox.process.get_session_command_logs(session, r.cmd_id)
    assert (logs.stdout, logs.stderr) == ("started\ndone\n", "warn\n")
    s = sandbox.process.get_session(session)
    assert s.session_id == session
    assert [(c.id, c.exit_code) for c in s.commands] == [(r.cmd_id, 3)]


def test_follow_streams_while_running(sandbox, session):
    r = run(sandbox, session, "for i in 1 2 3 4 5; do echo line$i; echo e$i >&2; sleep 0.2; done", run_async=True)
    chunks: list[tuple[float, str]] = []
    err: list[str] = []
    start = time.monotonic()

    def on_out(text: str) -> None:
        chunks.append((time.monotonic() - start, text))

    asyncio.run(sandbox.process.get_session_command_logs_async(session, r.cmd_id, on_out, err.append))
    assert "".join(t for _, t in chunks) == "".join(f"line{i}\n" for i in range(1, 6))
    assert "".join(err) == "".join(f"e{i}\n" for i in range(1, 6))
    # Output arrived while the command ran, not all at the end.
    assert chunks[0][0] < chunks[-1][0] - 0.4, chunks
    # The stream ends promptly once the command ended (no 1 s poll).
    assert time.monotonic() - start < 2.5


def test_follow_of_a_finished_command_returns_everything_once(sandbox, session):
    r = run(sandbox, session, "seq 1 2000; seq 1 10 >&2")
    for _ in range(3):
        out, err = follow(sandbox, session, r.cmd_id)
        assert out == r.stdout == "".join(f"{i}\n" for i in range(1, 2001))
        assert err == "".join(f"{i}\n" for i in range(1, 11))


@pytest.mark.deadline(180)
def test_50mb_output_streams_completely_and_in_order(sandbox, session):
    # 50 000 lines of 1 001 bytes: each line numbered, so loss, repetition and reordering show.
    script = (
        "awk 'BEGIN { p = \"\"; for (j = 0; j < 124; j++) p = p \"abcdefgh\"; "
        "for (i = 0; i < 50000; i++) printf \"%08d%s\\n\", i, p }'"
    )
    r = run(sandbox, session, script, run_async=True)
    out, err = follow(sandbox, session, r.cmd_id)
    pad = "abcdefgh" * 124
    expected = "".join(f"{i:08d}{pad}\n" for i in range(50000))
    assert len(out) == len(expected) == 50_050_000
    assert out == expected
    assert err == ""
    assert sandbox.process.get_session_command(session, r.cmd_id).exit_code == 0


def test_interactive_read_answered_through_input(sandbox, session):
    r = run(sandbox, session, 'printf "name? "; read name; echo "hello $name"; read n2; echo "bye $n2"', run_async=True)
    sandbox.process.send_session_command_input(session, r.cmd_id, "world")
    sandbox.process.send_session_command_input(session, r.cmd_id, "again\n")
    out, _ = follow(sandbox, session, r.cmd_id)
    # The input is echoed into the log as stdout (suppressInputEcho is false).
    assert "hello world\n" in out and "bye again\n" in out
    assert "world\n" in out.replace("hello world\n", "")
    assert sandbox.process.get_session_command(session, r.cmd_id).exit_code == 0
    with pytest.raises(DaytonaCommandAlreadyCompletedError) as e:
        sandbox.process.send_session_command_input(session, r.cmd_id, "late")
    assert e.value.status_code == 410


def test_input_echo_can_be_suppressed(sandbox, session):
    r = run(sandbox, session, 'read a; echo "got $a"', run_async=True, suppress_input_echo=True)
    sandbox.process.send_session_command_input(session, r.cmd_id, "secret")
    out, _ = follow(sandbox, session, r.cmd_id)
    assert out == "got secret\n"


# ------------------------------------------------------------------------ failures


def test_exit_ends_the_session_with_a_clear_error(sandbox):
    s = sid()
    sandbox.process.create_session(s)
    try:
        start = time.monotonic()
        with pytest.raises(DaytonaSessionEndedError) as e:
            run(sandbox, s, "echo bye; exit 4")
        assert time.monotonic() - start < 5
        assert e.value.status_code == 410
        with pytest.raises(DaytonaSessionEndedError):
            run(sandbox, s, "echo again")
        with pytest.raises(DaytonaSessionEndedError):
            run(sandbox, s, "echo again", run_async=True)
        cmds = sandbox.process.get_session(s).commands
        assert cmds[0].exit_code == 4
        logs = sandbox.process.get_session_command_logs(s, cmds[0].id)
        assert logs.stdout == "bye\n"
    finally:
        sandbox.process.delete_session(s)


def test_exit_fails_queued_commands_too(sandbox):
    s = sid()
    sandbox.process.create_session(s)
    try:
        first = run(sandbox, s, "sleep 0.5; exit 0", run_async=True)
        with pytest.raises(DaytonaSessionEndedError):
            run(sandbox, s, "echo never")
        out, _ = follow(sandbox, s, first.cmd_id)
        assert out == ""
    finally:
        sandbox.process.delete_session(s)


def test_unknown_ids_are_not_found(sandbox, session):
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_session(sid("missing"))
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_session_command(session, str(uuid.uuid4()))
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_session_command_logs(session, str(uuid.uuid4()))
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.delete_session(sid("missing"))
    with pytest.raises(DaytonaNotFoundError):
        run(sandbox, sid("missing"), "true")
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.send_session_command_input(session, str(uuid.uuid4()), "x")


def test_duplicate_session_is_a_conflict(sandbox, session):
    with pytest.raises(DaytonaConflictError):
        sandbox.process.create_session(session)


@pytest.mark.parametrize("bad", ["..", ".", "a/b", "../../x"])
def test_session_ids_that_escape_are_rejected(sandbox, daemon, bad):
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.create_session(bad)
    assert (daemon.home / ".daytona").is_dir()


def test_reserved_and_empty_commands(sandbox, session):
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.create_session("entrypoint")
    with pytest.raises(DaytonaBadRequestError):
        run(sandbox, session, "   ")


def test_list_and_get(sandbox):
    names = [sid("list"), sid("list")]
    for n in names:
        sandbox.process.create_session(n)
    try:
        listed = {s.session_id for s in sandbox.process.list_sessions()}
        assert set(names) <= listed
        assert "entrypoint" not in listed
        assert sandbox.process.get_session(names[0]).commands == []
    finally:
        for n in names:
            sandbox.process.delete_session(n)
    assert not set(names) & {s.session_id for s in sandbox.process.list_sessions()}


# ------------------------------------------------------------------------- deletion


def proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def zombies_of(ppid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == ppid:
            found.append(int(entry))
    return found


@pytest.mark.deadline(60)
def test_delete_kills_the_whole_tree_including_setsid_children(sandbox, daemon, tmp_path):
    s = sid()
    sandbox.process.create_session(s)
    pids = tmp_path / "pids"
    script = (
        f"setsid sh -c 'echo $$ >> {pids}; exec sleep 300' & "
        f"nohup sh -c 'echo $$ >> {pids}; exec sleep 300' >/dev/null 2>&1 & "
        f"( sh -c 'echo $$ >> {pids}; exec sleep 300' & ) ; "
        f"sh -c 'trap \"\" TERM; echo $$ >> {pids}; while :; do sleep 1; done' & "
        f"echo $$ >> {pids}; sleep 300"
    )
    r = run(sandbox, s, script, run_async=True)
    assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 5, 10), r
    found = [int(p) for p in pids.read_text().split()]
    assert all(proc_state(p) not in (None, "Z") for p in found)
    start = time.monotonic()
    sandbox.process.delete_session(s)
    assert time.monotonic() - start < 2, "DELETE waited for the processes"
    # Everything is gone within the grace period (5 s), including the one ignoring SIGTERM.
    assert wait_for(lambda: all(proc_state(p) is None for p in found), 8), [(p, proc_state(p)) for p in found]
    assert not zombies_of(daemon.proc.pid)
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_session(s)
    assert not (daemon.home / ".daytona" / "sessions" / s).exists()


def test_delete_while_sync_exec_waits_fails_it(sandbox):
    import threading

    s = sid()
    sandbox.process.create_session(s)
    result: dict = {}

    def waiter():
        try:
            result["r"] = run(sandbox, s, "sleep 60")
        except Exception as e:  # noqa: BLE001
            result["e"] = e

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    time.sleep(0.5)
    sandbox.process.delete_session(s)
    t.join(10)
    assert not t.is_alive()
    assert isinstance(result.get("e"), DaytonaSessionEndedError), result


# ---------------------------------------------------------------- wire details (raw)


def test_output_modes_by_client_version(sandbox, daemon, session):
    r = run(sandbox, session, "echo o; echo e >&2")
    path = f"/process/session/{session}/command/{r.cmd_id}/logs"
    combined = raw.get(daemon.url, path)
    assert combined.status == 200 and combined.header("Content-Type").startswith("text/plain")
    assert combined.body in (b"o\ne\n", b"e\no\n")
    old = raw.get(daemon.url, path, headers={"X-Daytona-SDK-Version": "0.150.0"})
    assert old.body.count(b"\x01\x01\x01") == 1 and old.body.count(b"\x02\x02\x02") == 1
    new = raw.get(daemon.url, path, headers={"X-Daytona-SDK-Version": "0.226.1"})
    assert new.json()["stdout"] == "o\n" and new.json()["stderr"] == "e\n"
    ex = raw.post_json(daemon.url, f"/process/session/{session}/exec", {"command": "echo plain"})
    assert ex.json() == {"cmdId": ex.json()["cmdId"], "output": "plain\n", "stdout": None, "stderr": None, "exitCode": 0}
    a = raw.post_json(daemon.url, f"/process/session/{session}/exec", {"command": "true", "async": True})
    assert a.status == 202
    assert a.json() == {"cmdId": a.json()["cmdId"], "output": None, "stdout": None, "stderr": None, "exitCode": None}


def test_unknown_session_exec_and_bad_bodies(daemon):
    r = raw.post_json(daemon.url, "/process/session/nope-x/exec", {"command": "true"})
    assert r.status == 404 and r.json()["code"] == "PROCESS_NOT_FOUND"
    r = raw.post_json(daemon.url, "/process/session", {})
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY"
    r = raw.get(daemon.url, "/process/session/..%2Fescape")
    assert r.status == 400


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/process/session/%FF%FE"),
        ("DELETE", "/process/session/%FF%FE"),
        ("POST", "/process/session/%FF%FE/exec"),
        ("GET", "/process/session/x/command/%FF%FE"),
        ("GET", "/process/session/x/command/%FF%FE/logs"),
        ("POST", "/process/session/x/command/%FF%FE/input"),
    ],
)
def test_undecodable_ids_are_400_envelopes(daemon, method, path):
    r = raw.request(daemon.url, method, path, body=b'{"command": "true", "data": "x"}')
    assert r.status == 400, r.describe()
    body = r.json()
    assert (body["code"], body["path"], body["method"]) == ("BAD_REQUEST", path, method), body


def test_repeated_query_keys_are_400_envelopes(sandbox, daemon, session):
    r = run(sandbox, session, "echo o")
    path = f"/process/session/{session}/command/{r.cmd_id}/logs?follow=1&follow=1"
    resp = raw.get(daemon.url, path)
    assert resp.status == 400, resp.describe()
    assert resp.json()["code"] == "BAD_REQUEST", resp.describe()
    assert "follow" in resp.json()["message"], resp.describe()


def test_no_zombies_after_many_commands(sandbox, daemon):
    s = sid()
    sandbox.process.create_session(s)
    for i in range(20):
        assert run(sandbox, s, f"echo {i} & wait").stdout == f"{i}\n"
    sandbox.process.delete_session(s)
    assert wait_for(lambda: not zombies_of(daemon.proc.pid), 5), zombies_of(daemon.proc.pid)
