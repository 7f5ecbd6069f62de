"""POST /process/execute (process.md §1, sdk-0.226.md §2.6) through ``sandbox.process.exec``, and
POST /env (sdk-0.226.md §3.2) as seen by later executions."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from daytona import (
    DaytonaBadRequestError,
    DaytonaProcessExecutionTimeoutError,
    DaytonaTimeoutError,
)
from daytona_toolbox_api_client import ServerApi, UpdateEnvRequest

from harness import http as raw
from harness.sdk import make_toolbox_client


def unique(prefix: str = "HARNESS") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10].upper()}"


# ---------------------------------------------------------------------------- basics


def test_output_and_exit_code(sandbox):
    r = sandbox.process.exec("echo hello")
    assert r.exit_code == 0
    assert r.result == "hello\n"


def test_nonzero_exit_code(sandbox):
    r = sandbox.process.exec("echo before; exit 3")
    assert r.exit_code == 3
    assert r.result == "before\n"


def test_stdout_and_stderr_combined_in_order(sandbox):
    r = sandbox.process.exec("echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 7")
    assert r.exit_code == 7
    assert r.result == "out1\nerr1\nout2\nerr2\n"


def test_multiline_script(sandbox):
    script = "x=1\nif [ \"$x\" = 1 ]; then\n  echo one\nfi\nfor i in a b; do\n  echo \"$i\"\ndone\necho two\n"
    r = sandbox.process.exec(script)
    assert r.exit_code == 0
    assert r.result == "one\na\nb\ntwo\n"


def test_here_document(sandbox):
    script = "cat <<'EOF'\nline 1\n  line $2 with $HOME unexpanded\nEOF\necho after\n"
    r = sandbox.process.exec(script)
    assert r.exit_code == 0
    assert r.result == "line 1\n  line $2 with $HOME unexpanded\nafter\n"


def test_long_command_text(sandbox):
    # The command text goes through stdin, not argv (no ARG_MAX limit).
    lines = [f"echo line{i:05d}" for i in range(20000)]  # ~300 KB of script
    r = sandbox.process.exec("\n".join(lines) + "\n", timeout=60)
    assert r.exit_code == 0
    out = r.result.splitlines()
    assert len(out) == 20000
    assert out[0] == "line00000" and out[-1] == "line19999"


@pytest.mark.deadline(30)
def test_cat_sees_eof(sandbox):
    start = time.monotonic()
    r = sandbox.process.exec("cat", timeout=20)
    elapsed = time.monotonic() - start
    assert r.exit_code == 0
    assert r.result == ""
    assert elapsed < 5, f"cat took {elapsed:.1f}s: stdin was not closed"


# ----------------------------------------------------------------------------- cwd


def test_default_cwd_is_daemon_workdir(sandbox, daemon):
    r = sandbox.process.exec("pwd")
    assert r.exit_code == 0
    assert r.result == f"{daemon.workdir}\n"


def test_cwd_absolute(sandbox, daemon):
    sub = daemon.workdir / "abs-sub"
    sub.mkdir(exist_ok=True)
    r = sandbox.process.exec("pwd", cwd=str(sub))
    assert r.exit_code == 0
    assert r.result == f"{sub}\n"


def test_cwd_through_a_symlink_is_the_physical_path(sandbox, daemon):
    # The daemon hands the shell a PWD (so zsh need not work it out by reading every directory
    # up to the root); it must be the path the shell itself would have arrived at.
    real = daemon.workdir / "pwd-real"
    real.mkdir(exist_ok=True)
    link = daemon.workdir / "pwd-link"
    if not link.is_symlink():
        link.symlink_to(real)
    r = sandbox.process.exec('pwd; echo "$PWD"', cwd=str(link))
    assert r.exit_code == 0
    assert r.result == f"{real.resolve()}\n{real.resolve()}\n"
    r = sandbox.process.exec('echo "$PWD"', cwd=str(real), env={"PWD": "/request/value"})
    assert r.result == f"{real.resolve()}\n", "the shell replaces a PWD that does not name its directory"


def test_cwd_relative_resolves_against_daemon_workdir(sandbox, daemon):
    sub = daemon.workdir / "rel-sub"
    sub.mkdir(exist_ok=True)
    r = sandbox.process.exec("pwd", cwd="rel-sub")
    assert r.exit_code == 0
    assert r.result == f"{sub}\n"


def test_bad_cwd_reports_os_error(sandbox, daemon):
    missing = daemon.workdir / "does" / "not" / "exist"
    r = sandbox.process.exec("echo should-not-run", cwd=str(missing))
    assert r.exit_code == -1
    assert "should-not-run" not in r.result
    assert "no such file or directory" in r.result.lower(), r.result


# ------------------------------------------------------------------------------ env


def test_env_passed(sandbox):
    r = sandbox.process.exec('echo "[$HARNESS_FOO] [$HARNESS_BAR]"', env={"HARNESS_FOO": "a b", "HARNESS_BAR": "x=y"})
    assert r.exit_code == 0
    assert r.result == "[a b] [x=y]\n"


def test_env_overrides_inherited(sandbox, daemon):
    before = sandbox.process.exec('echo "$HOME"')
    assert before.result == f"{daemon.home}\n"
    r = sandbox.process.exec('echo "$HOME"', env={"HOME": "/custom/home"})
    assert r.result == "/custom/home\n"
    after = sandbox.process.exec('echo "$HOME"')
    assert after.result == f"{daemon.home}\n", "request envs must not leak into later executions"


@pytest.mark.parametrize("name", ["1BAD", "BAD-NAME", "BAD=NAME", "", "BAD NAME"])
def test_invalid_env_name_is_bad_request(sandbox, name):
    with pytest.raises(DaytonaBadRequestError) as info:
        sandbox.process.exec("true", env={name: "x"})
    err = info.value
    assert err.status_code == 400
    assert err.code == "BAD_REQUEST"
    assert "invalid environment variable name" in str(err), str(err)


@pytest.mark.parametrize("command", ["", "   ", "\n\t \n"], ids=["empty", "spaces", "whitespace"])
def test_empty_command_is_bad_request(sandbox, command):
    with pytest.raises(DaytonaBadRequestError) as info:
        sandbox.process.exec(command)
    assert info.value.status_code == 400
    assert info.value.code == "BAD_REQUEST"


@pytest.mark.parametrize(
    "body,code",
    [
        (b"", "INVALID_REQUEST_BODY"),
        (b"{nope", "INVALID_REQUEST_BODY"),
        (b'{"command": 5}', "INVALID_REQUEST_BODY"),
        (b'{"command": "true", "timeout": -1}', "INVALID_REQUEST_BODY"),
        (b'{"command": "true", "envs": ["A"]}', "INVALID_REQUEST_BODY"),
        (b"[]", "INVALID_REQUEST_BODY"),
        (b"[null]", "INVALID_REQUEST_BODY"),
        (b'"true"', "INVALID_REQUEST_BODY"),
        (b"{}", "BAD_REQUEST"),
        (b'{"command": ""}', "BAD_REQUEST"),
    ],
    ids=["empty", "garbage", "command-not-string", "negative-timeout", "envs-not-object",
         "array", "array-of-null", "string", "no-command", "empty-command"],
)
def test_execute_bad_body(daemon, body, code):
    r = raw.request(
        daemon.url, "POST", "/process/execute", body=body, headers={"Content-Type": "application/json"}
    )
    assert r.status == 400, r.describe()
    envelope = r.json()
    assert envelope.get("statusCode") == 400, envelope
    assert envelope.get("source") == "DAYTONA_DAEMON", envelope
    assert envelope.get("code") == code, envelope
    assert envelope.get("path") == "/process/execute", envelope


# ---------------------------------------------------------------------- timeout/signals


@pytest.mark.deadline(60)
def test_timeout_raises_sdk_timeout_error_and_kills_group(sandbox, daemon):
    marker = daemon.workdir / f"timeout-marker-{uuid.uuid4().hex}"
    # A child of the shell (same process group) that would write the marker after the timeout.
    command = f"(sleep 3; echo late > '{marker}') &\nsleep 30\n"
    start = time.monotonic()
    with pytest.raises(DaytonaTimeoutError) as info:
        sandbox.process.exec(command, timeout=1)
    elapsed = time.monotonic() - start
    err = info.value
    # The SDK maps (DAYTONA_DAEMON, PROCESS_EXECUTION_TIMEOUT) to this subclass of
    # DaytonaTimeoutError; a bare DaytonaTimeoutError/DaytonaConnectionTimeoutError would mean the
    # daemon never answered (the SDK's own HTTP timeout is timeout+5 s) or sent no code.
    assert isinstance(err, DaytonaProcessExecutionTimeoutError), repr(err)
    assert err.status_code == 408
    assert err.code == "PROCESS_EXECUTION_TIMEOUT"
    assert err.source == "DAYTONA_DAEMON"
    assert "command execution timeout" in str(err)
    assert elapsed < 4, f"timeout of 1s answered after {elapsed:.1f}s"
    time.sleep(4)
    assert not marker.exists(), "a child in the command's process group survived the timeout"


def test_timeout_raw_envelope(daemon):
    r = raw.post_json(daemon.url, "/process/execute", {"command": "sleep 10", "timeout": 1}, timeout=15)
    assert r.status == 408, r.describe()
    body = r.json()
    assert body["statusCode"] == 408
    assert body["code"] == "PROCESS_EXECUTION_TIMEOUT"
    assert body["message"] == "command execution timeout"
    assert body["source"] == "DAYTONA_DAEMON"
    assert body["path"] == "/process/execute"
    assert body["method"] == "POST"


def test_fast_command_with_timeout_is_not_affected(sandbox):
    r = sandbox.process.exec("echo quick", timeout=5)
    assert r.exit_code == 0
    assert r.result == "quick\n"


def test_killed_by_signal_is_minus_one(sandbox):
    r = sandbox.process.exec("echo before-kill; kill -9 $$; echo after-kill")
    assert r.exit_code == -1
    assert "before-kill" in r.result
    assert "after-kill" not in r.result


def test_sigterm_death_is_minus_one(sandbox):
    r = sandbox.process.exec("kill -TERM $$")
    assert r.exit_code == -1


@pytest.mark.deadline(40)
def test_redirected_background_job_returns_promptly(sandbox):
    start = time.monotonic()
    r = sandbox.process.exec("nohup sleep 30 >/dev/null 2>&1 &\necho $!", timeout=25)
    elapsed = time.monotonic() - start
    pid = int(r.result.strip().splitlines()[-1])
    try:
        assert r.exit_code == 0
        assert elapsed < 5, f"returned after {elapsed:.1f}s"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------------------ output


def test_invalid_utf8_replaced(sandbox):
    r = sandbox.process.exec(r"printf 'a\377b\n'")
    assert r.exit_code == 0
    assert r.result == "a\ufffdb\n"


def test_invalid_utf8_each_byte_replaced(sandbox):
    # Truncated 3-byte sequence E2 82 followed by 'x': Go replaces each invalid byte
    # (pitfalls.md #48), so two U+FFFD.
    r = sandbox.process.exec(r"printf 'a\342\202x\n'")
    assert r.exit_code == 0
    assert r.result == "a\ufffd\ufffdx\n"


def test_valid_utf8_and_control_chars_round_trip(sandbox):
    r = sandbox.process.exec("printf 'h\\303\\251llo \\342\\202\\254 <&> \\001\\n'")
    assert r.result == "héllo € <&> \x01\n"


@pytest.mark.deadline(90)
def test_large_output_delivered_whole(sandbox):
    size = 5 * 1024 * 1024
    r = sandbox.process.exec(f"yes 0123456789abcde | head -c {size}", timeout=60)
    assert r.exit_code == 0
    assert len(r.result) == size
    line = "0123456789abcde\n"
    assert r.result == (line * (size // len(line) + 1))[:size]


# --------------------------------------------------------------------------- POST /env


def test_update_env_seen_by_later_exec(sandbox):
    name = unique()
    sandbox.update_env({name: "1"})
    r = sandbox.process.exec(f'echo "${{{name}-missing}}"')
    assert r.result == "1\n"


def test_update_env_replaces_value(sandbox):
    name = unique()
    sandbox.update_env({name: "first"})
    sandbox.update_env({name: "second value"})
    assert sandbox.process.exec(f'echo "${name}"').result == "second value\n"


def test_update_env_unset_overlay_variable(sandbox):
    name = unique()
    sandbox.update_env({name: "1"})
    sandbox.update_env({}, unset=[name])
    assert sandbox.process.exec(f'echo "${{{name}-unset}}"').result == "unset\n"


def test_update_env_set_wins_over_unset(sandbox):
    name = unique()
    sandbox.update_env({name: "kept"}, unset=[name])
    assert sandbox.process.exec(f'echo "${{{name}-unset}}"').result == "kept\n"


def test_request_env_overrides_overlay(sandbox):
    name = unique()
    sandbox.update_env({name: "overlay"})
    r = sandbox.process.exec(f'echo "${name}"', env={name: "request"})
    assert r.result == "request\n"
    assert sandbox.process.exec(f'echo "${name}"').result == "overlay\n"


def test_update_env_response_is_object(daemon):
    r = raw.post_json(daemon.url, "/env", {"set": {unique(): "x"}})
    assert r.status == 200, r.describe()
    body = r.json()
    assert isinstance(body, dict) and all(isinstance(v, str) for v in body.values()), body


def test_update_env_via_generated_client(toolbox, sandbox):
    name = unique()
    answer = ServerApi(toolbox).update_env(UpdateEnvRequest(set={name: "generated"}))
    assert isinstance(answer, dict)
    assert sandbox.process.exec(f'echo "${name}"').result == "generated\n"


INHERITED = "HARNESS_INHERITED_VAR"
SECRET_INHERITED = "HARNESS_SECRET_INHERITED"


@pytest.fixture
def env_daemon(daemon_factory):
    return daemon_factory.start(
        extra_env={INHERITED: "from-start", SECRET_INHERITED: "secret:inherited"}
    )


def test_unset_removes_inherited_variable(env_daemon, sdk_for):
    sandbox = sdk_for(env_daemon).sandbox
    assert sandbox.process.exec(f'echo "${{{INHERITED}-unset}}"').result == "from-start\n"
    sandbox.update_env({}, unset=[INHERITED])
    assert sandbox.process.exec(f'echo "${{{INHERITED}-unset}}"').result == "unset\n"
    # ... and `env` agrees (the variable is gone, not just empty).
    assert f"{INHERITED}=" not in sandbox.process.exec("env").result


def test_unset_value_prefix(env_daemon, sdk_for):
    session = sdk_for(env_daemon)
    sandbox = session.sandbox
    api = ServerApi(make_toolbox_client(env_daemon.url, session.daytona))
    api.update_env(
        UpdateEnvRequest(set={"HARNESS_P1": "secret:one", "HARNESS_P2": "secret:two", "HARNESS_P3": "plain"})
    )
    api.update_env(UpdateEnvRequest(set={"HARNESS_P2": "secret:new"}, unset_value_prefix="secret:"))
    script = (
        'echo "P1=${HARNESS_P1-unset}"; echo "P2=${HARNESS_P2-unset}"; '
        f'echo "P3=${{HARNESS_P3-unset}}"; echo "INH=${{{SECRET_INHERITED}-unset}}"'
    )
    r = sandbox.process.exec(script)
    assert r.result.splitlines() == ["P1=unset", "P2=secret:new", "P3=plain", "INH=unset"]


def test_env_change_does_not_need_content_type(env_daemon, sdk_for):
    # update_env() of the sync SDK sends no Content-Type; verified above through the SDK, here
    # the bare route with a body exactly like the SDK's.
    r = raw.request(env_daemon.url, "POST", "/env", body=b'{"set": {"HARNESS_RAW": "raw"}}')
    assert r.status == 200, r.describe()
    sandbox = sdk_for(env_daemon).sandbox
    assert sandbox.process.exec('echo "$HARNESS_RAW"').result == "raw\n"

