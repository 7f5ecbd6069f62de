"""The entrypoint session (process.md §4.10, README §3 step 10, §4, §6): the daemon's arguments
run as command ``entrypoint_command`` of the reserved ``entrypoint`` session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest
from daytona import DaytonaBadRequestError, DaytonaNotFoundError, SessionExecuteRequest

from harness import http as raw
from harness.daemon import build_env, daemon_binary, wait_for


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_entrypoint_session_logs_and_follow(daemon_factory, sdk_for):
    d = daemon_factory.start(args=["sh", "-c", "echo 'it''s out'; echo err >&2; sleep 1; echo late"])
    sandbox = sdk_for(d).sandbox
    s = sandbox.process.get_entrypoint_session()
    assert s.session_id == "entrypoint"
    assert [c.id for c in s.commands] == ["entrypoint_command"]
    assert s.commands[0].command == "'sh' '-c' 'echo '\\''it'\\'''\\''s out'\\''; echo err >&2; sleep 1; echo late'"
    out: list[str] = []
    err: list[str] = []
    asyncio.run(sandbox.process.get_entrypoint_logs_async(out.append, err.append))
    assert ("".join(out), "".join(err)) == ("its out\nlate\n", "err\n")
    logs = sandbox.process.get_entrypoint_logs()
    assert (logs.stdout, logs.stderr) == ("its out\nlate\n", "err\n")
    assert sandbox.process.get_entrypoint_session().commands[0].exit_code == 0
    assert sandbox.process.get_session_command("entrypoint", "entrypoint_command").exit_code == 0
    logs = sandbox.process.get_session_command_logs("entrypoint", "entrypoint_command")
    assert logs.stdout == "its out\nlate\n"


def test_entrypoint_logs_are_never_combined(daemon_factory):
    d = daemon_factory.start(args=["sh", "-c", "echo hi"])
    assert wait_for(lambda: raw.get(d.url, "/process/session/entrypoint").json()["commands"][0].get("exitCode") == 0, 10)
    r = raw.get(d.url, "/process/session/entrypoint/logs")
    assert r.status == 200 and r.header("Content-Type").startswith("text/plain")
    assert r.body == b"\x01\x01\x01hi\n"
    # A generic-route request without headers gets the combined form.
    r = raw.get(d.url, "/process/session/entrypoint/command/entrypoint_command/logs")
    assert r.body == b"hi\n"


def test_entrypoint_rejects_exec_input_delete_and_is_not_listed(daemon_factory, sdk_for):
    d = daemon_factory.start(args=["sleep", "300"])
    sandbox = sdk_for(d).sandbox
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.execute_session_command("entrypoint", SessionExecuteRequest(command="true"))
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.send_session_command_input("entrypoint", "entrypoint_command", "x")
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.delete_session("entrypoint")
    with pytest.raises(DaytonaBadRequestError):
        sandbox.process.create_session("entrypoint")
    assert "entrypoint" not in {s.session_id for s in sandbox.process.list_sessions()}
    assert sandbox.process.get_entrypoint_session().commands[0].exit_code is None


def test_no_entrypoint_means_not_found(fresh_daemon, sdk_for):
    sandbox = sdk_for(fresh_daemon).sandbox
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_entrypoint_session()
    with pytest.raises(DaytonaNotFoundError):
        sandbox.process.get_entrypoint_logs()


@pytest.mark.deadline(40)
def test_shutdown_terminates_the_entrypoint_tree(daemon_factory, tmp_path):
    pids = tmp_path / "pids"
    script = (
        f"setsid sh -c 'echo $$ >> {pids}; exec sleep 300' & "
        f"sh -c 'trap \"\" TERM; echo $$ >> {pids}; while :; do sleep 1; done' & "
        f"echo $$ >> {pids}; exec sleep 300"
    )
    d = daemon_factory.start(args=["sh", "-c", script])
    assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 3, 10), d.output_tail()
    found = [int(p) for p in pids.read_text().split()]
    rc = d.stop(signal.SIGTERM, timeout=15)
    assert rc == 0, d.output_tail()
    try:
        assert wait_for(lambda: not any(alive(p) for p in found), 3), [p for p in found if alive(p)]
    finally:
        for p in found:
            if alive(p):
                os.kill(p, signal.SIGKILL)


def test_entrypoint_logs_subcommand_follows_the_log(daemon_factory, tmp_path):
    d = daemon_factory.start(args=["sh", "-c", "echo first; echo oops >&2; sleep 1; echo second; sleep 300"])
    env = build_env(home=d.home, log_path=tmp_path / "cli.log", port=1)
    proc = subprocess.Popen(
        [str(daemon_binary()), "entrypoint", "logs"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(2.5)
        assert proc.poll() is None, "the subcommand must keep following"
    finally:
        proc.kill()
    out, err = proc.communicate(timeout=5)
    assert out == b"first\nsecond\n"
    assert err == b"oops\n"


def test_entrypoint_logs_subcommand_without_log(daemon_bin, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = build_env(home=home, log_path=tmp_path / "cli.log", port=1)
    done = subprocess.run(
        [str(daemon_bin), "entrypoint", "logs"], env=env, capture_output=True, timeout=10
    )
    assert done.returncode == 1
    assert b"Logs not found" in done.stdout + done.stderr
