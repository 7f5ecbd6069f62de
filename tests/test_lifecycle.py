"""Start-up, configuration errors, readiness, entrypoint, logging and graceful shutdown
(README §2, §3, §5, §6)."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest

from harness import http as raw
from harness.daemon import STOP_TIMEOUT, run_daemon_to_exit, wait_for


# ------------------------------------------------------------------------- configuration


def test_missing_sandbox_id_exits_2(daemon_bin, tmp_path):
    done = run_daemon_to_exit(tmp_path, sandbox_id=None)
    assert done.returncode == 2, f"exit code {done.returncode}\n{done.output}"
    assert "DAYTONA_SANDBOX_ID" in done.output, done.output
    assert "Starting toolbox server" not in done.stdout, done.stdout


def test_empty_sandbox_id_exits_2(daemon_bin, tmp_path):
    done = run_daemon_to_exit(tmp_path, sandbox_id="")
    assert done.returncode == 2, f"exit code {done.returncode}\n{done.output}"
    assert "DAYTONA_SANDBOX_ID" in done.output, done.output


@pytest.mark.parametrize(
    "name,value",
    [
        ("DAYTONA_DAEMON_LOG_COMPRESS", ""),
        ("DAYTONA_DAEMON_LOG_COMPRESS", "maybe"),
        ("DAYTONA_USER_HOME_AS_WORKDIR", "yes"),
        ("DAYTONA_DAEMON_LOG_MAX_SIZE_MB", "0"),
        ("DAYTONA_DAEMON_LOG_MAX_BACKUPS", "many"),
        ("DAYTONA_TERMINATION_GRACE_PERIOD", "500ms"),
        ("DAYTONA_TERMINATION_CHECK_INTERVAL", "soon"),
    ],
    ids=["compress-empty", "compress-word", "home-workdir-yes", "max-size-0", "backups-word",
         "grace-too-short", "interval-word"],
)
def test_invalid_config_exits_2_naming_variable(daemon_bin, tmp_path, name, value):
    done = run_daemon_to_exit(tmp_path, extra_env={name: value})
    assert done.returncode == 2, f"{name}={value!r}: exit code {done.returncode}\n{done.output}"
    assert name in done.output, done.output


@pytest.mark.parametrize("value", ["1", "t", "TRUE", "False", "0", "f"])
def test_go_bool_spellings_accepted(daemon_factory, value):
    d = daemon_factory.start(extra_env={"DAYTONA_DAEMON_LOG_COMPRESS": value})
    assert raw.get(d.url, "/version").status == 200


def test_user_home_as_workdir(daemon_factory):
    d = daemon_factory.start(extra_env={"DAYTONA_USER_HOME_AS_WORKDIR": "true"})
    r = raw.get(d.url, "/work-dir")
    assert r.status == 200, r.describe()
    assert r.json() == {"dir": str(d.home)}


# ---------------------------------------------------------------------------- start-up


def test_readiness_line_printed_exactly(fresh_daemon):
    lines = list(fresh_daemon.stdout.lines)
    assert fresh_daemon.ready_line in lines, lines
    assert fresh_daemon.ready_line == f"Starting toolbox server on port {fresh_daemon.port}"


def test_config_dir_created(fresh_daemon):
    assert (fresh_daemon.home / ".daytona").is_dir()


def test_log_file_written(fresh_daemon):
    for _ in range(3):
        assert raw.get(fresh_daemon.url, "/version").status == 200
    rc = fresh_daemon.stop()
    assert rc == 0, fresh_daemon.output_tail()
    log = fresh_daemon.log_path
    assert log.is_file(), f"{log} was not created"
    assert log.stat().st_size > 0, f"{log} is empty"


def test_log_file_parent_created(daemon_factory, tmp_path):
    log = tmp_path / "nested" / "dirs" / f"{uuid.uuid4().hex}.log"
    d = daemon_factory.start(extra_env={"DAYTONA_DAEMON_LOG_FILE_PATH": str(log)})
    assert raw.get(d.url, "/version").status == 200
    assert d.stop() == 0, d.output_tail()
    assert log.is_file() and log.stat().st_size > 0


# -------------------------------------------------------------------------- entrypoint


def test_entrypoint_argv_is_run(daemon_factory, tmp_path):
    marker = tmp_path / "entrypoint-marker"
    d = daemon_factory.start(args=["sh", "-c", f"echo hi > '{marker}'"])
    assert wait_for(marker.exists, 10), f"entrypoint did not create {marker}\n{d.output_tail()}"
    assert wait_for(lambda: marker.read_text() == "hi\n", 5), repr(marker.read_text())


def test_entrypoint_argv_quoting_preserved(daemon_factory, tmp_path):
    # Each argv element is passed as one word, including spaces, quotes and $.
    marker = tmp_path / "quoted marker"
    script = 'printf "%s|" "$@" > "$0"'
    d = daemon_factory.start(args=["sh", "-c", script, str(marker), "a b", "it's", "$HOME"])
    assert wait_for(marker.exists, 10), f"entrypoint did not create {marker}\n{d.output_tail()}"
    assert wait_for(lambda: marker.read_text() == "a b|it's|$HOME|", 5), repr(marker.read_text())


def test_entrypoint_runs_in_daemon_workdir(daemon_factory, tmp_path):
    d = daemon_factory.start(args=["sh", "-c", "pwd > entry-pwd.txt"])
    out = d.workdir / "entry-pwd.txt"
    assert wait_for(lambda: out.exists() and out.read_text().strip() != "", 10), d.output_tail()
    assert out.read_text() == f"{d.workdir}\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.deadline(40)
def test_shutdown_stops_long_running_entrypoint(daemon_factory, tmp_path):
    pidfile = tmp_path / "entry.pid"
    d = daemon_factory.start(args=["sh", "-c", f"echo $$ > '{pidfile}'; exec sleep 600"])
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), 10), d.output_tail()
    pid = int(pidfile.read_text())
    assert _pid_alive(pid)
    start = time.monotonic()
    rc = d.stop(signal.SIGTERM, timeout=15)
    assert rc == 0, f"exit code {rc}\n{d.output_tail()}"
    assert time.monotonic() - start < 12
    try:
        assert wait_for(lambda: not _pid_alive(pid), 3), "entrypoint process survived shutdown"
    finally:
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- shutdown


@pytest.mark.deadline(60)
def test_sigterm_drains_in_flight_execute(daemon_factory, sdk_for):
    d = daemon_factory.start()
    sandbox = sdk_for(d).sandbox
    started = d.workdir / "inflight-started"
    result: dict = {}

    def run():
        try:
            result["response"] = sandbox.process.exec(f"touch '{started}'; sleep 1; echo done", timeout=20)
        except BaseException as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert wait_for(started.exists, 10), f"execute never started\n{d.output_tail()}"
    d.send_signal(signal.SIGTERM)
    t.join(15)
    assert not t.is_alive(), "in-flight execute did not complete"
    assert "error" not in result, f"in-flight execute failed: {result.get('error')!r}\n{d.output_tail()}"
    assert result["response"].exit_code == 0
    assert result["response"].result == "done\n"
    rc = d.wait(STOP_TIMEOUT)
    assert rc == 0, f"exit code {rc}\n{d.output_tail()}"


@pytest.mark.deadline(60)
def test_no_new_connections_after_sigterm(daemon_factory):
    d = daemon_factory.start()
    result: dict = {}

    def run():
        result["r"] = raw.post_json(d.url, "/process/execute", {"command": "sleep 2; echo late"}, timeout=20)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(0.5)
    d.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):
        raw.get(d.url, "/version", timeout=3)
    t.join(15)
    assert result["r"].status == 200 and result["r"].json()["result"] == "late\n"
    assert d.wait(STOP_TIMEOUT) == 0, d.output_tail()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero(daemon_factory, sig):
    d = daemon_factory.start()
    assert raw.get(d.url, "/version").status == 200
    start = time.monotonic()
    rc = d.stop(sig, timeout=STOP_TIMEOUT)
    assert rc == 0, f"exit code {rc}\n{d.output_tail()}"
    assert time.monotonic() - start < 3, "idle daemon took too long to stop"


@pytest.mark.deadline(200)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_right_after_readiness_exits_zero(daemon_factory, sig):
    # Whoever watches for the readiness line (the runner) may stop the daemon at once; the
    # signal must be handled from then on: no death by the default action, no lost signal.
    results = []
    for _ in range(25):
        d = daemon_factory.start()
        results.append(d.stop(sig, timeout=STOP_TIMEOUT))
    bad = [rc for rc in results if rc != 0]
    assert not bad, (
        f"{len(bad)}/{len(results)} daemons did not exit 0 when signalled right after readiness "
        f"(negative = killed by that signal, None = still running after {STOP_TIMEOUT:.0f}s): {results}"
    )


def test_idle_keepalive_connection_does_not_block_shutdown(daemon_factory):
    import http.client

    d = daemon_factory.start()
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
    try:
        conn.request("GET", "/version")
        assert conn.getresponse().read()
        start = time.monotonic()
        rc = d.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
        assert rc == 0, d.output_tail()
        assert time.monotonic() - start < 3, "an idle keep-alive connection held up shutdown"
    finally:
        conn.close()

