"""A sandbox's user exhausting it: fork bombs and memory hogs against the static daemon as PID 1.

Every test here runs inside a rootful podman container with a pids limit and a memory limit,
never on the machine running the tests: the module's fixture first proves both limits are
enforced (more sleeps than the pids limit allows must fail; the memory cgroup must show the
limit) and fails the whole module, without running a bomb, when they are not.

Checked for a fork bomb through execute, a session and a PTY: `/version` answers every probe
within 1 s throughout, session creation during the bomb is a clear 503 (never a 500), everything
works again within 5 s of the bomb's end and none of its processes survive. For a memory hog
through execute, code-run and an interpreter context: the result names the OOM kill, the daemon
stays up, and its RSS stays bounded. The figures (probe answers, recovery time, the daemon's
RSS and threads before, during and after) are printed for the closing note (`pytest -s`).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from harness.containers import STATIC_BIN, Images, podman, podman_problem
from harness.daemon import free_port
from harness.proxy import ToolboxProxy
from harness.sdk import make_daytona, make_sandbox

PIDS_LIMIT = 256
MEMORY = "256m"
MEMORY_BYTES = 256 << 20
CONTAINERFILE = Path(__file__).parent / "harness" / "survive.Containerfile"
# The fork bomb: every function call starts two more in the background, for ever.
BOMB = ":(){ :|:& };:"
# Bounds for the daemon itself while the sandbox is exhausted.
RSS_BOUND = 96 << 20
PROBE_BOUND = 1.0
RECOVERY_BOUND = 5.0


def http(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict | str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read().decode()
        status = e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


class Sandbox:
    """The limited container, the SDK pointed at it, and what its PID 1 looks like."""

    def __init__(self, image: str):
        self.name = f"daytona-survive-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        podman(
            "run", "-d", "--name", self.name, "-p", f"127.0.0.1:{self.port}:2280",
            "--pids-limit", str(PIDS_LIMIT), "--memory", MEMORY, "--memory-swap", MEMORY, "--cpus", "1",
            "-v", f"{STATIC_BIN.resolve()}:/usr/local/bin/daytona:ro", "--entrypoint", "/usr/local/bin/daytona",
            "-e", f"DAYTONA_SANDBOX_ID={self.name}",
            image, "sleep", "infinity",
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if http("GET", self.url + "/version", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                logs = podman("logs", self.name, check=False)
                self.remove()
                raise AssertionError(f"the daemon did not answer in the container:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.1)
        # Read from the host: during a bomb `podman exec` cannot start a process in the container.
        self.host_pid = int(podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout)
        self.proxy = ToolboxProxy(self.url).start()
        self.sdk = make_sandbox(make_daytona(), self.proxy.url, sandbox_id=self.name)

    def sh(self, script: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """`script` run by podman exec (not through the daemon), as root."""
        return podman("exec", "-u", "0", self.name, "sh", "-c", script, check=False, timeout=timeout)

    def cgroup_file(self, controller: str, name: str) -> Path:
        """A file of the container's cgroup for `controller`, v1 or v2, as the host sees it."""
        unified = None
        for line in Path(f"/proc/{self.host_pid}/cgroup").read_text().splitlines():
            hid, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return Path(f"/sys/fs/cgroup/{controller}{path}") / name
            if hid == "0":
                unified = path
        for mount in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
            f = Path(f"{mount}{unified}") / name
            if unified is not None and f.exists():
                return f
        raise AssertionError(f"no {controller} cgroup for the container")

    def pids(self) -> int:
        return int(self.cgroup_file("pids", "pids.current").read_text())

    def pid1(self) -> dict[str, int]:
        """The daemon's resident memory (bytes) and thread count, from its /proc on the host."""
        status = Path(f"/proc/{self.host_pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {"rss": int(fields["VmRSS"].split()[0]) * 1024, "threads": int(fields["Threads"])}

    def others(self) -> list[str]:
        """Every live process of the container but the daemon and the entrypoint's sleep."""
        found = []
        for pid in self.cgroup_file("pids", "cgroup.procs").read_text().split():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            state = stat[stat.rindex(")") + 2 :].split()[0]
            if int(pid) == self.host_pid or comm == "sleep" or state == "Z":
                continue
            found.append(f"{pid} {comm}")
        return found

    def remove(self) -> None:
        if getattr(self, "proxy", None) is not None:
            self.proxy.stop()
        podman("rm", "-f", "-t", "0", self.name, check=False)


@pytest.fixture(scope="module")
def image():
    problem = podman_problem()
    if problem is None and not STATIC_BIN.is_file():
        problem = f"static daemon missing at {STATIC_BIN}: run packaging/build-static.sh"
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    images = Images()
    r = subprocess.run([str(Path(__file__).parents[1] / "packaging" / "podman" / "build"), "base"],
                       env=images.env(), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, f"packaging/podman/build base failed:\n{r.stdout}{r.stderr}"
    name = f"localhost/daytona-survive:{images.tag}"
    podman("build", "--pull=never", "-t", name, "-f", str(CONTAINERFILE), str(CONTAINERFILE.parent), timeout=600)
    try:
        yield name
    finally:
        podman("rmi", "-f", name, check=False)
        if not images.had_base:
            podman("rmi", "localhost/debian-base:bookworm", check=False)


@pytest.fixture
def box(image):
    b = Sandbox(image)
    try:
        assert_limits_enforced(b)
        yield b
    finally:
        b.remove()


def assert_limits_enforced(b: Sandbox) -> None:
    """The harmless probes: without enforced limits no bomb may start (the test fails instead)."""
    r = b.sh(
        "python3 - <<'EOF'\n"
        "import subprocess\n"
        "ps = []\n"
        "try:\n"
        f"    for _ in range({PIDS_LIMIT + 64}):\n"
        "        ps.append(subprocess.Popen(['sleep', '30']))\n"
        "except OSError as e:\n"
        "    print('refused', len(ps), e.errno)\n"
        "else:\n"
        "    print('allowed', len(ps))\n"
        "for p in ps:\n"
        "    p.kill(); p.wait()\n"
        "EOF"
    )
    assert r.stdout.startswith("refused"), (
        f"the container's pids limit is not enforced ({r.stdout.strip()} {r.stderr.strip()}): "
        "no fork bomb is started outside a limited container"
    )
    limit = b.sh(
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    ).stdout.strip()
    assert limit == str(MEMORY_BYTES), (
        f"the container's memory limit is not in force (cgroup says {limit!r}): no memory hog is started"
    )


class Prober:
    """`GET /version` every 100 ms in the background, each bounded by PROBE_BOUND."""

    def __init__(self, url: str):
        self.url = url
        self.times: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                status, _ = http("GET", self.url + "/version", timeout=PROBE_BOUND)
                took = time.monotonic() - start
                self.times.append(took)
                if status != 200 or took > PROBE_BOUND:
                    self.failures.append(f"status {status} after {took:.3f} s")
            except OSError as e:
                self.failures.append(f"{type(e).__name__}: {e} after {time.monotonic() - start:.3f} s")
            self._stop.wait(0.1)

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        t = sorted(self.times)
        return f"{len(t)} probes answered, {len(self.failures)} failed, p50 {t[len(t) // 2] * 1000:.1f} ms, max {t[-1] * 1000:.1f} ms" if t else "no probe answered"


def wait_for_exhaustion(b: Sandbox, within: float = 15) -> None:
    """Until the bomb holds (nearly) the whole pids limit."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if b.pids() >= PIDS_LIMIT - 8:
            return
        time.sleep(0.2)
    raise AssertionError(f"the bomb did not exhaust the pids limit within {within} s")


def session_creation_during_the_bomb(b: Sandbox) -> list[int]:
    """Tries to create sessions while the limit is held; every answer must be 201 or a clear 503."""
    statuses: list[int] = []
    deadline = time.monotonic() + 5
    for i in range(50):
        if 503 in statuses and len(statuses) >= 5 or time.monotonic() > deadline:
            break
        status, body = http("POST", b.url + "/process/session", {"sessionId": f"during-{i}"})
        statuses.append(status)
        assert status in (201, 503), f"session creation during the bomb: {status} {body}"
        if status == 503:
            assert body["code"] == "RESOURCE_EXHAUSTED", body
            assert "limit of processes" in body["message"], body
        else:
            # A pid was free for a moment; the session is not the bomb's and goes at once.
            assert http("DELETE", b.url + f"/process/session/during-{i}")[0] == 204
            time.sleep(0.1)
    assert 503 in statuses, f"no session creation was refused while the pids limit was held: {statuses}"
    return statuses


def recovered_within(b: Sandbox, since: float) -> float:
    """Seconds from `since` until a command and a new session work again."""
    deadline = since + RECOVERY_BOUND
    while True:
        try:
            status, body = http("POST", b.url + "/process/execute", {"command": "echo back", "timeout": 2}, timeout=2)
            if status == 200 and body.get("exitCode") == 0 and body.get("result", "").strip() == "back":
                sid = f"after-{uuid.uuid4().hex[:6]}"
                if http("POST", b.url + "/process/session", {"sessionId": sid}, timeout=2)[0] == 201:
                    http("DELETE", b.url + f"/process/session/{sid}", timeout=5)
                    return time.monotonic() - since
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the sandbox did not work again within {RECOVERY_BOUND} s of the bomb's end"
        time.sleep(0.1)


def assert_no_bomb_left(b: Sandbox, before: list[str]) -> None:
    """Nothing but what ran before the bomb (the pre-warmed interpreter, say) is left."""
    deadline = time.monotonic() + 5
    while (left := [p for p in b.others() if p not in before]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes of the bomb survived: {left[:10]} ({len(left)})"


def report(what: str, lines: list[str]) -> None:
    print(f"\n[survive] {what}: " + "; ".join(lines))


def test_fork_bomb_through_execute(box):
    baseline = box.others()
    before = box.pid1()
    prober = Prober(box.url)
    result: dict = {}

    def run():
        result["answer"] = http("POST", box.url + "/process/execute", {"command": f"bash -c '{BOMB}'", "timeout": 12}, timeout=30)
        result["ended"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    wait_for_exhaustion(box)
    during = box.pid1()
    statuses = session_creation_during_the_bomb(box)
    t.join(40)
    assert not t.is_alive(), "execute did not answer after its timeout"
    status, body = result["answer"]
    assert status == 408 and body["code"] == "PROCESS_EXECUTION_TIMEOUT", (status, body)
    recovery = recovered_within(box, result["ended"])
    probes = prober.stop()
    assert_no_bomb_left(box, baseline)
    after = box.pid1()
    assert not prober.failures, f"/version during the bomb: {prober.failures[:5]}"
    for s in (before, during, after):
        assert s["rss"] < RSS_BOUND, (before, during, after)
    report("execute bomb", [probes, f"sessions during it {statuses}", f"recovered in {recovery:.2f} s",
                            f"daemon rss/threads before {before}, during {during}, after {after}"])  # fmt: skip


def test_fork_bomb_through_a_session(box):
    baseline = box.others()
    prober = Prober(box.url)
    box.sdk.process.create_session("bomb")
    from daytona import SessionExecuteRequest

    box.sdk.process.execute_session_command("bomb", SessionExecuteRequest(command=f"bash -c '{BOMB}'", run_async=True))
    wait_for_exhaustion(box)
    during = box.pid1()
    statuses = session_creation_during_the_bomb(box)
    box.sdk.process.delete_session("bomb")
    ended = time.monotonic()
    recovery = recovered_within(box, ended)
    probes = prober.stop()
    assert_no_bomb_left(box, baseline)
    assert not prober.failures, f"/version during the bomb: {prober.failures[:5]}"
    assert during["rss"] < RSS_BOUND, during
    report("session bomb", [probes, f"sessions during it {statuses}", f"recovered in {recovery:.2f} s", f"daemon during {during}"])


def test_fork_bomb_through_a_pty(box):
    from daytona import PtySize

    baseline = box.others()
    prober = Prober(box.url)
    handle = box.sdk.process.create_pty_session(id="bomb", pty_size=PtySize(rows=24, cols=80))
    handle.wait_for_connection()
    handle.send_input(f"{BOMB}\n")
    wait_for_exhaustion(box)
    during = box.pid1()
    statuses = session_creation_during_the_bomb(box)
    handle.kill()
    ended = time.monotonic()
    handle.disconnect()
    recovery = recovered_within(box, ended)
    probes = prober.stop()
    assert_no_bomb_left(box, baseline)
    assert not prober.failures, f"/version during the bomb: {prober.failures[:5]}"
    assert during["rss"] < RSS_BOUND, during
    report("pty bomb", [probes, f"sessions during it {statuses}", f"recovered in {recovery:.2f} s", f"daemon during {during}"])


# Touches every page of 512 MiB: twice the limit, so the OOM killer must end it.
HOG = "x = bytearray(512 << 20)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\nprint('survived')\n"


def test_memory_hog_through_execute_code_run_and_an_interpreter(box):
    before = box.pid1()
    box.sdk.fs.upload_file(HOG.encode(), "/home/daytona/hog.py")
    r = box.sdk.process.exec("python3 /home/daytona/hog.py")
    assert "survived" not in r.result
    assert "killed by the out-of-memory killer" in r.result, (r.exit_code, r.result)
    assert "256 MiB" in r.result, r.result

    r = box.sdk.process.code_run(HOG)
    assert "killed by the out-of-memory killer" in r.result, (r.exit_code, r.result)

    ctx = box.sdk.code_interpreter.create_context()
    out = box.sdk.code_interpreter.run_code(HOG, context=ctx)
    text = f"{out.error} {out.stdout} {out.stderr}"
    assert out.error is not None and "out-of-memory killer" in (out.error.value or ""), text
    # The context works again, afresh.
    out = box.sdk.code_interpreter.run_code("print(6 * 7)", context=ctx)
    assert out.stdout.strip() == "42", out

    after = box.pid1()
    assert http("GET", box.url + "/version")[0] == 200
    assert after["rss"] < RSS_BOUND, (before, after)
    report("memory hogs", [f"daemon rss/threads before {before}, after {after}"])
