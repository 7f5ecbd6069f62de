"""`GET /system/metrics` (sdk-0.226.md §3.3) through `Sandbox.get_metrics_latest()`: every
figure checked against what the test reads itself from the cgroup files, /proc and statvfs;
then a daemon moved into a cgroup with a CPU quota and a memory limit reports the limits, its
CPU figure rises under a busy loop run in a session, and its memory figure follows an
allocation."""

from __future__ import annotations

import math
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from daytona import SessionExecuteRequest

from harness import http as raw
from harness.daemon import wait_for

V1_UNLIMITED = 0x7FFF_FFFF_FFFF_F000


# ------------------------------------------------------------------------ independent readers


def mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount root, mount point, fstype, v1 controllers) of each cgroup mount."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if r[0] in ("cgroup", "cgroup2"):
            ctrls = set(r[2].split(",")) - {"rw", "ro"} if r[0] == "cgroup" else set()
            out.append((f[3], f[4].replace("\\040", " "), r[0], ctrls))
    return out


def cgroup_dir(controller: str, pid: int | str = "self") -> Path | None:
    """The directory of `pid`'s cgroup for `controller` (v1 mount carrying it, else v2)."""
    member = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        member[ctrls] = path
    for root, point, fstype, ctrls in mounts():
        if fstype == "cgroup" and controller in ctrls:
            path = next(p for c, p in member.items() if controller in c.split(","))
            rel = path[len(root):] if root != "/" and path.startswith(root) else path
            d = Path(point) / rel.lstrip("/")
            return d if d.is_dir() else Path(point)
    for root, point, fstype, _ in mounts():
        if fstype == "cgroup2":
            d = Path(point) / member.get("", "/").lstrip("/")
            return d if d.is_dir() else Path(point)
    return None


def read(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, v = line.split(":", 1)
        out[k] = int(v.split()[0]) * 1024
    return out


def cpu_quota(pid="self") -> float | None:
    d = cgroup_dir("cpu", pid)
    quotas = []
    while d is not None:
        if (v := read(d / "cpu.max")) is not None:
            q, _, per = v.partition(" ")
            if q != "max":
                quotas.append(int(q) / int(per))
        elif (q := read(d / "cpu.cfs_quota_us")) is not None and int(q) > 0:
            quotas.append(int(q) / int(read(d / "cpu.cfs_period_us")))
        d = d.parent if d.parent != d and (d.parent / "cgroup.procs").exists() else None
    return min(quotas) if quotas else None


def memory_limit(pid="self") -> int | None:
    d = cgroup_dir("memory", pid)
    limits = []
    while d is not None:
        v = read(d / "memory.max") or read(d / "memory.limit_in_bytes")
        if v and v != "max" and int(v) < V1_UNLIMITED:
            limits.append(int(v))
        d = d.parent if d.parent != d and (d.parent / "cgroup.procs").exists() else None
    return min(limits) if limits else None


def memory_usage(pid="self") -> int | None:
    d = cgroup_dir("memory", pid)
    v = d and (read(d / "memory.current") or read(d / "memory.usage_in_bytes"))
    return int(v) if v else None


def expected_cpu_count(pid="self") -> int:
    cpus = len(os.sched_getaffinity(0))
    q = cpu_quota(pid)
    return math.ceil(min(q, cpus)) if q else cpus


def expected_mem_total(pid="self") -> int:
    host = meminfo()["MemTotal"]
    limit = memory_limit(pid)
    return min(limit, host) if limit else host


# ---------------------------------------------------------------------------------- tests


def test_latest_metrics_match_the_cgroup_proc_and_statvfs(daemon, sandbox):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    m = sandbox.get_metrics_latest()
    after = datetime.now(timezone.utc)

    # The daemon is the test's child: same cgroups.
    assert m.cpu_count == expected_cpu_count(daemon.proc.pid)
    assert m.mem_total == expected_mem_total(daemon.proc.pid)
    usage = memory_usage(daemon.proc.pid)
    if usage is None:  # a v2 root cgroup: the host's MemTotal - MemFree
        info = meminfo()
        usage = info["MemTotal"] - info["MemFree"]
    assert abs(m.mem_used - usage) < max(64 << 20, usage // 5), (m.mem_used, usage)
    assert 0 <= m.mem_cache <= m.mem_used, m
    assert 0 < m.mem_used <= max(m.mem_total, usage), m

    st = os.statvfs("/")
    total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    assert m.disk_total == total
    slack = 256 << 20  # other processes write meanwhile
    assert abs(m.disk_used - used) < slack, (m, used)
    # The SDK's SandboxMetrics drops diskFree; the wire has it.
    wire = raw.get(daemon.url, "/system/metrics").json()
    assert abs(wire["diskFree"] - free) < slack and wire["diskTotal"] == total, (wire, free)

    assert 0.0 <= m.cpu_used_pct <= 100.0
    assert m.timestamp.tzinfo is not None and m.timestamp.utcoffset().total_seconds() == 0
    assert before <= m.timestamp <= after, (before, m.timestamp, after)


def test_the_wire_format_is_what_the_client_parses_strictly(daemon):
    r = raw.get(daemon.url, "/system/metrics")
    assert r.status == 200, r.describe()
    v = r.json()
    assert set(v) == {
        "cpuCount", "cpuUsedPct", "memTotal", "memUsed", "memCache",
        "diskTotal", "diskUsed", "diskFree", "timestamp", "timestampUnix",
    }
    for k in v.keys() - {"cpuUsedPct", "timestamp"}:
        assert type(v[k]) is int, (k, v[k])
    assert isinstance(v["cpuUsedPct"], float)
    ts = datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00"))
    assert v["timestamp"].endswith("Z") and ts.microsecond == 0, v["timestamp"]
    assert int(ts.timestamp()) == v["timestampUnix"]
    assert abs(v["timestampUnix"] - time.time()) < 5


def test_the_route_answers_at_once(daemon):
    """The CPU figure is sampled in the background: no call waits for a sample."""
    times = []
    for _ in range(20):
        t = time.perf_counter()
        assert raw.get(daemon.url, "/system/metrics").status == 200
        times.append(time.perf_counter() - t)
    times.sort()
    assert times[10] < 0.1, f"median {times[10] * 1000:.1f} ms"


# --------------------------------------------------------------------- a daemon with limits


class LimitedCgroup:
    """A cgroup with a CPU quota and a memory limit, made by hand (v1 controllers where they
    are mounted, else v2); processes moved in go back to where they were when it is removed."""

    def __init__(self, cpu_quota_us: int, period_us: int, memory_bytes: int):
        self.name = f"daemon-test-{uuid.uuid4().hex[:8]}"
        self.dirs: dict[str, Path] = {}
        self.origins: dict[int, dict[str, str]] = {}
        problems = []
        for controller in ("cpu", "cpuacct", "memory"):
            v1 = [point for _, point, fstype, ctrls in mounts() if fstype == "cgroup" and controller in ctrls]
            if v1:
                self.dirs.setdefault(controller, Path(v1[0]) / self.name)
        v2 = [point for _, point, fstype, _ in mounts() if fstype == "cgroup2"]
        if ("cpu" not in self.dirs or "memory" not in self.dirs) and v2:
            root = Path(v2[0])
            enabled = (read(root / "cgroup.subtree_control") or "").split()
            for c in ("cpu", "memory"):
                if c not in self.dirs and c not in enabled:
                    try:
                        (root / "cgroup.subtree_control").write_text(f"+{c}")
                    except OSError as e:
                        problems.append(f"cannot enable the v2 {c} controller: {e}")
                self.dirs.setdefault(c, root / self.name)
            self.dirs.setdefault("cpuacct", root / self.name)
        if problems or {"cpu", "memory"} - self.dirs.keys():
            raise RuntimeError(f"no writable cpu and memory cgroup controllers: {problems or mounts()}")
        for d in set(self.dirs.values()):
            d.mkdir()
        cpu = self.dirs["cpu"]
        if (cpu / "cpu.max").exists():
            (cpu / "cpu.max").write_text(f"{cpu_quota_us} {period_us}")
        else:
            (cpu / "cpu.cfs_period_us").write_text(str(period_us))
            (cpu / "cpu.cfs_quota_us").write_text(str(cpu_quota_us))
        mem = self.dirs["memory"]
        limit_file = mem / "memory.max" if (mem / "memory.max").exists() else mem / "memory.limit_in_bytes"
        limit_file.write_text(str(memory_bytes))

    def move(self, pid: int) -> None:
        for d in set(self.dirs.values()):
            (d / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        for d in set(self.dirs.values()):
            if not d.exists():
                continue
            # Back to the parent (the mount's root): a cgroup with members cannot be removed.
            for pid in (read(d / "cgroup.procs") or "").split():
                try:
                    (d.parent / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            wait_for(lambda: not (read(d / "cgroup.procs") or ""), 5)
            d.rmdir()


@pytest.fixture
def limited_cgroup():
    if os.geteuid() != 0:
        pytest.fail("creating a cgroup with limits needs root", pytrace=False)
    try:
        cg = LimitedCgroup(cpu_quota_us=50_000, period_us=100_000, memory_bytes=256 << 20)
    except (RuntimeError, OSError) as e:
        pytest.fail(f"cannot create a test cgroup: {e}", pytrace=False)
    yield cg
    cg.remove()


@pytest.mark.deadline(90)
def test_a_daemon_under_limits_reports_them_and_its_own_usage(daemon_factory, sdk_for, limited_cgroup):
    d = daemon_factory.start()
    limited_cgroup.move(d.proc.pid)
    sandbox = sdk_for(d).sandbox

    m = sandbox.get_metrics_latest()
    assert m.cpu_count == 1, "a 0.5-CPU quota is ceil(0.5) = 1 CPU"
    assert m.mem_total == 256 << 20
    assert m.mem_used == pytest.approx(memory_usage(d.proc.pid), abs=16 << 20)

    # Idle: the daemon alone in its cgroup uses next to nothing of its half CPU.
    assert wait_for(lambda: sandbox.get_metrics_latest().cpu_used_pct < 20, 10), sandbox.get_metrics_latest()

    busy_session, hog_session = f"busy-{uuid.uuid4().hex[:8]}", f"hog-{uuid.uuid4().hex[:8]}"
    sandbox.process.create_session(busy_session)
    sandbox.process.create_session(hog_session)  # a session runs its commands one after another
    try:
        # Children inherit the daemon's cgroup: the busy loop runs under its quota.
        busy = f"{sys.executable} -c 'while True: pass'"
        sandbox.process.execute_session_command(busy_session, SessionExecuteRequest(command=busy, run_async=True))
        seen: list[float] = []

        def busy_reported() -> bool:
            seen.append(sandbox.get_metrics_latest().cpu_used_pct)
            return seen[-1] >= 40

        assert wait_for(busy_reported, 10, 0.3), f"cpuUsedPct under a busy loop: {seen}"
        assert max(seen) <= 100
        sandbox.process.delete_session(busy_session)
        # Stopped: the figure falls back.
        assert wait_for(lambda: sandbox.get_metrics_latest().cpu_used_pct < 20, 10), sandbox.get_metrics_latest()

        # An allocation in the cgroup shows in memUsed (the cgroup's figure, not the host's).
        base = sandbox.get_metrics_latest().mem_used
        hog = f"{sys.executable} -c 'b = bytearray(96 << 20); import time; time.sleep(60)'"
        sandbox.process.execute_session_command(hog_session, SessionExecuteRequest(command=hog, run_async=True))
        assert wait_for(lambda: sandbox.get_metrics_latest().mem_used >= base + (80 << 20), 10), (
            base,
            sandbox.get_metrics_latest(),
        )
        assert sandbox.get_metrics_latest().mem_used <= 256 << 20
    finally:
        for s in (busy_session, hog_session):
            try:
                sandbox.process.delete_session(s)
            except Exception:  # noqa: BLE001 - deleted above
                pass
