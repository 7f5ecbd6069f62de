"""Shutdown in order (issue: PID 1 done right): on SIGTERM the image's command gets its SIGTERM
and the grace period while its output is still read, so a trap that prints, sleeps and writes a
file completes, and what it printed is in the entrypoint log; a command that ignores SIGTERM is
killed at the grace period; a command that exits by itself leaves the daemon serving, with its
exit code in the session API and the daemon's log. The same run as PID 1 of a fresh PID
namespace is in test_static_pid1.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from harness import http as raw
from harness.daemon import wait_for

GRACE = 3


def entrypoint_log(home: Path) -> bytes:
    path = home / ".daytona" / "sessions" / "entrypoint" / "entrypoint_command" / "output.log"
    return path.read_bytes() if path.exists() else b""


def test_sigterm_lets_the_entrypoint_finish_its_trap_and_keeps_its_output(daemon_factory, tmp_path):
    bye = tmp_path / "bye"
    # Prints while shutting down: with the output no longer read, the first echo would be a
    # SIGPIPE and the trap would never reach the file.
    script = (
        f'trap "echo got-TERM; sleep 1; echo bye > {bye}; echo after-file; exit 0" TERM; '
        "echo started; while :; do sleep 0.2; done"
    )
    d = daemon_factory.start(args=["bash", "-c", script], extra_env={"DAYTONA_TERMINATION_GRACE_PERIOD": f"{GRACE}s"})
    assert wait_for(lambda: b"started" in entrypoint_log(d.home), 10), d.output_tail()
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=GRACE + 10)
    took = time.monotonic() - t0
    assert rc == 0, d.output_tail()
    assert bye.exists() and bye.read_text() == "bye\n", "the trap did not complete"
    # It waited for the trap (1 s of it), and not much past the grace period.
    assert 0.9 <= took <= GRACE + 1, took
    log = entrypoint_log(d.home)
    assert b"got-TERM" in log and b"after-file" in log, log


def test_an_entrypoint_ignoring_sigterm_is_killed_at_the_grace_period(daemon_factory, tmp_path):
    pid_file = tmp_path / "pid"
    script = f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.1; done"
    d = daemon_factory.start(args=["sh", "-c", script], extra_env={"DAYTONA_TERMINATION_GRACE_PERIOD": "2s"})
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 10), d.output_tail()
    pid = int(pid_file.read_text())
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=12)
    took = time.monotonic() - t0
    assert rc == 0, d.output_tail()
    assert 1.8 <= took <= 2 + 1.5, took
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_an_entrypoint_that_exits_leaves_the_daemon_serving_with_its_code(daemon_factory):
    d = daemon_factory.start(args=["sh", "-c", "echo done; exit 7"])
    def exit_code():
        r = raw.get(d.url, "/process/session/entrypoint")
        assert r.status == 200, r
        cmds = r.json().get("commands") or []
        return cmds[0].get("exitCode") if cmds else None

    assert wait_for(lambda: exit_code() == 7, 10), d.output_tail()
    # Still serving.
    assert raw.get(d.url, "/version").status == 200
    assert wait_for(lambda: "the entrypoint exited" in d.stderr.tail(200) + d.stdout.tail(200), 5), d.output_tail()
    assert "exit_code=7" in d.stderr.tail(200) + d.stdout.tail(200), d.output_tail()


def test_a_deleted_session_is_read_until_its_command_is_gone(sandbox, tmp_path):
    """`DELETE /process/session/{id}` terminates the command, but what the command prints while
    it stops still reaches a follower (no SIGPIPE), and its trap runs to the end."""
    import asyncio
    import threading
    import uuid

    from daytona import SessionExecuteRequest

    session = f"del-{uuid.uuid4().hex[:10]}"
    done = tmp_path / "done"
    sandbox.process.create_session(session)
    script = (
        f'trap "echo stopping; sleep 0.5; echo still-here; touch {done}; exit 0" TERM; '
        "echo ready; while :; do sleep 0.1; done"
    )
    r = sandbox.process.execute_session_command(session, SessionExecuteRequest(command=script, run_async=True))
    out: list[str] = []

    def follow():
        try:
            asyncio.run(sandbox.process.get_session_command_logs_async(session, r.cmd_id, out.append, out.append))
        except Exception as e:  # the stream may end with the session
            out.append(f"<follow ended: {e}>")

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    assert wait_for(lambda: "ready" in "".join(out), 10), out
    sandbox.process.delete_session(session)
    assert wait_for(lambda: done.exists(), 5), ("the trap did not complete", out)
    t.join(10)
    text = "".join(out)
    assert "stopping" in text and "still-here" in text, text


def test_a_session_created_again_under_a_deleted_id_is_its_own(sandbox):
    """The deleted session's processes may take the grace period to go; a session created again
    under the same id meanwhile keeps its directory, and its commands complete."""
    import uuid

    from daytona import SessionExecuteRequest

    s = f"again-{uuid.uuid4().hex[:8]}"
    sandbox.process.create_session(s)
    sandbox.process.execute_session_command(s, SessionExecuteRequest(command="trap '' TERM; sleep 30", run_async=True))
    time.sleep(0.3)
    sandbox.process.delete_session(s)
    sandbox.process.create_session(s)
    # Past the old session's grace period (5 s) and the removal that follows it.
    start, i = time.monotonic(), 0
    while time.monotonic() - start < 8:
        r = sandbox.process.execute_session_command(s, SessionExecuteRequest(command=f"echo round-{i}"), timeout=10)
        assert (r.exit_code, r.stdout) == (0, f"round-{i}\n"), r
        time.sleep(0.5)
        i += 1
    sandbox.process.delete_session(s)


def test_delete_does_not_wait_behind_input_nobody_reads(daemon, sandbox):
    """Input sent to a command that never reads it blocks its writer once the pipe is full; a
    delete of the session (and so the daemon's shutdown) must not wait behind that write."""
    import threading
    import uuid

    from daytona import SessionExecuteRequest

    s = f"stuck-{uuid.uuid4().hex[:8]}"
    sandbox.process.create_session(s)
    r = sandbox.process.execute_session_command(s, SessionExecuteRequest(command="exec sleep 600", run_async=True))

    def flood():
        try:
            raw.post_json(daemon.url, f"/process/session/{s}/command/{r.cmd_id}/input", {"data": "x" * 200_000}, timeout=30)
        except Exception:
            pass

    threading.Thread(target=flood, daemon=True).start()
    time.sleep(1)
    t0 = time.monotonic()
    sandbox.process.delete_session(s)
    assert time.monotonic() - t0 < 3, "the delete waited behind a blocked input write"
