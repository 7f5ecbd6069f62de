"""Telemetry (misc.md §6): with ``DAYTONA_OTEL_ENDPOINT`` set and after ``POST /init``, the daemon
exports traces, logs and metrics over OTLP/HTTP protobuf, each request authenticated by the
``sandbox-auth-token`` header; before ``/init`` nothing; a collector that is down or silent costs
requests nothing and does not hold up shutdown."""

from __future__ import annotations

import socket
import statistics
import time

import pytest
from daytona_toolbox_api_client import InitializeRequest, ServerApi

from harness import http as raw
from harness.daemon import free_port
from harness.otlp import Blackhole, OtlpReceiver, attrs
from harness.sdk import make_toolbox_client

ENTRYPOINT = ["sh", "-c", "echo 'hello from stdout'; echo 'trouble on stderr' >&2; exec sleep 300"]
TOKEN = "sandbox-token-123"
FAST = {
    # Pushes every half second rather than every 10 s (spans every 5 s by default, logs every 1 s).
    "DAYTONA_OTEL_METRICS_INTERVAL": "500ms",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
}
LABELS = {
    "DAYTONA_SANDBOX_OTEL_EXTRA_LABELS": "team=infra,tier=gold",
    "DAYTONA_ORGANIZATION_ID": "org-1",
    "DAYTONA_REGION_ID": "eu-1",
    "DAYTONA_SANDBOX_SNAPSHOT": "",
}


@pytest.fixture
def receiver():
    r = OtlpReceiver().start()
    yield r
    r.stop()


def init(d, token: str = TOKEN) -> None:
    api = ServerApi(make_toolbox_client(d.url))
    answer = api.initialize(InitializeRequest(token=token))
    assert answer["message"].startswith("Auth token set"), answer


def hostname() -> str:
    with open("/proc/sys/kernel/hostname") as f:
        return f.read().strip() or "unknown"


def test_traces_logs_and_metrics_after_init(daemon_factory, sdk_for, receiver):
    d = daemon_factory.start(
        extra_env={"DAYTONA_OTEL_ENDPOINT": receiver.url + "/", **FAST, **LABELS},
        args=ENTRYPOINT,
        sandbox_id="sb-otel",
    )
    sandbox = sdk_for(d, "sb-otel").sandbox
    # Requests before /init are not exported, and nothing else is either.
    sandbox.fs.create_folder("before-init", "755")
    time.sleep(1.0)
    assert receiver.snapshot() == [], "exported before /init"

    init(d)
    sandbox.fs.create_folder("after-init", "755")
    assert sandbox.process.exec("echo hi").result.strip() == "hi"
    assert sandbox.fs.get_file_info("after-init").is_dir
    assert raw.get(d.url, "/version").status == 200
    # Not a toolbox request: no span, whatever the proxy route answers.
    raw.get(d.url, "/proxy/1/")
    # A handler error: the span is not marked as the server's error for a 4xx.
    assert raw.get(d.url, "/process/session/no-such-session").status == 404

    def spans_by_name():
        return {s.name: (res, s) for res, s in receiver.spans()}

    want = {"POST /files/folder", "POST /process/execute", "GET /files/info", "GET /version"}
    got = receiver.wait_for(lambda: want <= spans_by_name().keys() and spans_by_name(), 15)
    assert got, f"spans received: {sorted(spans_by_name())}"
    paths = [attrs(s.attributes)["url.path"] for _, s in receiver.spans()]
    assert not any(p.startswith("/proxy") for p in paths), paths
    # The folder made before /init has no span: only the one made after.
    assert [s.name for _, s in receiver.spans()].count("POST /files/folder") == 1, paths

    res, span = got["POST /files/folder"]
    a = attrs(span.attributes)
    assert span.kind == span.SPAN_KIND_SERVER
    assert a["http.request.method"] == "POST"
    assert a["url.path"] == "/files/folder"
    assert a["http.route"] == "/files/folder"
    assert a["http.response.status_code"] == 201 or a["http.response.status_code"] == 200
    assert span.status.code != span.status.STATUS_CODE_ERROR
    assert span.end_time_unix_nano >= span.start_time_unix_nano > 0
    assert res == {
        "service.name": "sandbox-sb-otel",
        "service.version": raw.get(d.url, "/version").json()["version"],
        "service.instance.id": hostname(),
        "deployment.environment.name": "",
        "team": "infra",
        "tier": "gold",
        "daytona_organization_id": "org-1",
        "daytona_region_id": "eu-1",
    }
    session = receiver.wait_for(lambda: spans_by_name().get("GET /process/session/{sessionId}"), 10)
    assert session, sorted(spans_by_name())
    assert attrs(session[1].attributes)["http.response.status_code"] == 404
    assert session[1].status.code != session[1].status.STATUS_CODE_ERROR

    # Logs: the daemon's own records and the entrypoint's output, stdout at INFO, stderr at ERROR.
    def entrypoint_logs():
        return {
            r.body.string_value: r
            for _, r in receiver.logs()
            if attrs(r.attributes).get("daytona-entrypoint") is True
        }

    ep = receiver.wait_for(lambda: len(entrypoint_logs()) >= 2 and entrypoint_logs(), 10)
    assert ep, [r.body for _, r in receiver.logs()]
    assert set(ep) == {"hello from stdout", "trouble on stderr"}
    assert ep["hello from stdout"].severity_number == 9  # INFO
    assert ep["hello from stdout"].severity_text == "INFO"
    assert ep["trouble on stderr"].severity_number == 17  # ERROR
    assert all(res["service.name"] == "sandbox-sb-otel" for res, _ in receiver.logs())

    # Metrics: every gauge of the daytona.sandbox meter, with sane values.
    def latest_metrics():
        out = {}
        for _, scope, m in receiver.metrics():
            if scope == "daytona.sandbox" and m.gauge.data_points:
                p = m.gauge.data_points[-1]
                out[m.name] = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
        return out

    gauges = {
        "daytona.sandbox.cpu.limit",
        "daytona.sandbox.cpu.utilization",
        "daytona.sandbox.memory.limit",
        "daytona.sandbox.memory.usage",
        "daytona.sandbox.memory.utilization",
        "daytona.sandbox.filesystem.usage",
        "daytona.sandbox.filesystem.total",
        "daytona.sandbox.filesystem.available",
        "daytona.sandbox.filesystem.utilization",
    }
    m = receiver.wait_for(lambda: gauges <= latest_metrics().keys() and latest_metrics(), 10)
    assert m, sorted(latest_metrics())
    assert 0 < m["daytona.sandbox.cpu.limit"] <= 4096
    assert 0 <= m["daytona.sandbox.cpu.utilization"] <= 100
    assert 0 < m["daytona.sandbox.memory.usage"] <= m["daytona.sandbox.memory.limit"]
    assert 0 < m["daytona.sandbox.memory.utilization"] <= 100
    fs_total = m["daytona.sandbox.filesystem.total"]
    assert 0 < m["daytona.sandbox.filesystem.usage"] <= fs_total
    assert 0 < m["daytona.sandbox.filesystem.available"] <= fs_total
    assert 0 < m["daytona.sandbox.filesystem.utilization"] <= 100

    # Every export was protobuf and authenticated with the token.
    exports = receiver.snapshot()
    assert {e.path for e in exports} == {"/v1/traces", "/v1/logs", "/v1/metrics"}
    assert all(e.headers.get("sandbox-auth-token") == TOKEN for e in exports)
    assert all(e.content_type == "application/x-protobuf" for e in exports)

    # A second /init: the new token from then on, and the entrypoint output is not sent again.
    init(d, "second-token")
    sandbox.fs.create_folder("after-second-init", "755")
    n = len(receiver.snapshot())
    assert receiver.wait_for(
        lambda: any(e.headers.get("sandbox-auth-token") == "second-token" for e in receiver.snapshot()[n:]), 10
    )
    time.sleep(0.5)
    assert sorted(r.body.string_value for _, r in receiver.logs() if "daytona-entrypoint" in attrs(r.attributes)) == [
        "hello from stdout",
        "trouble on stderr",
    ]

    # Shutdown flushes: a request just before SIGTERM still arrives, well within the flush limit.
    raw.get(d.url, "/user-home-dir")
    started = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - started < 5
    assert any(s.name == "GET /user-home-dir" for _, s in receiver.spans())
    # The daemon's own records (those of the shutdown itself included), with their level.
    daemon_records = {r.body.string_value: r for _, r in receiver.logs() if not attrs(r.attributes).get("daytona-entrypoint")}
    assert "Shutdown complete" in daemon_records, list(daemon_records)
    assert daemon_records["Shutdown complete"].severity_text == "INFO"
    # Not the telemetry module's own records (they are about exports).
    assert not any(body.startswith("telemetry:") for body in daemon_records), list(daemon_records)


def test_nothing_without_init_or_without_endpoint(daemon_factory, receiver):
    d = daemon_factory.start(extra_env={"DAYTONA_OTEL_ENDPOINT": receiver.url, **FAST}, args=ENTRYPOINT)
    for _ in range(5):
        assert raw.get(d.url, "/version").status == 200
    time.sleep(1.5)
    assert receiver.snapshot() == []
    assert d.stop() == 0
    assert receiver.snapshot() == [], "exported at shutdown without /init"

    # /init without an endpoint: nothing either (and /init still answers as always).
    d = daemon_factory.start(extra_env=FAST)
    init(d)
    raw.get(d.url, "/version")
    time.sleep(1.5)
    assert d.stop() == 0
    assert receiver.snapshot() == []


def median_latencies(urls: list[str], n: int) -> list[float]:
    """Median time of ``GET /version`` on each daemon, the daemons taking turns so that a load
    change on the machine hits them alike."""
    times: list[list[float]] = [[] for _ in urls]
    for _ in range(n):
        for i, url in enumerate(urls):
            t = time.perf_counter()
            assert raw.get(url, "/version").status == 200
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("collector", ["closed-port", "blackhole"])
def test_a_dead_collector_costs_requests_nothing(daemon_factory, collector):
    blackhole = Blackhole().start() if collector == "blackhole" else None
    try:
        endpoint = blackhole.url if blackhole else closed_port_url()
        plain = daemon_factory.start()
        d = daemon_factory.start(extra_env={"DAYTONA_OTEL_ENDPOINT": endpoint, **FAST}, args=ENTRYPOINT)
        init(d)
        # Warm both, then compare medians (a sanity bound, not a benchmark).
        median_latencies([plain.url, d.url], 5)
        base, with_telemetry = median_latencies([plain.url, d.url], 60)
        assert with_telemetry < 2 * base + 0.005, (with_telemetry, base)
        if blackhole:
            assert receiver_wait(lambda: blackhole.accepted > 0, 5), "the daemon never tried the collector"
        started = time.monotonic()
        assert d.stop() == 0
        elapsed = time.monotonic() - started
        assert elapsed < 2.5, f"shutdown took {elapsed:.2f}s with the collector {collector}"
    finally:
        if blackhole:
            blackhole.stop()


def test_dropped_exports_are_counted_and_reported(daemon_factory):
    d = daemon_factory.start(extra_env={"DAYTONA_OTEL_ENDPOINT": closed_port_url(), **FAST})
    init(d)
    for _ in range(5):
        raw.get(d.url, "/version")
    # The failed exports are counted and reported once (not once per failure).
    assert receiver_wait(lambda: "data was dropped" in d.stdout.text(), 10), d.output_tail()
    time.sleep(2)
    assert d.stdout.text().count("data was dropped") == 1, d.output_tail()
    assert d.stop() == 0


def receiver_wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()
