"""A small OTLP/HTTP (protobuf) receiver for the telemetry tests, and a collector that never
answers.

``OtlpReceiver`` records every export request (path, headers, decoded body) and answers 200 with
an empty export response, as a collector does. ``Blackhole`` accepts connections and reads what
is sent but never answers: the worst collector a daemon can meet.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_DECODERS = {
    "/v1/traces": trace_service_pb2.ExportTraceServiceRequest,
    "/v1/logs": logs_service_pb2.ExportLogsServiceRequest,
    "/v1/metrics": metrics_service_pb2.ExportMetricsServiceRequest,
}
_RESPONSES = {
    "/v1/traces": trace_service_pb2.ExportTraceServiceResponse,
    "/v1/logs": logs_service_pb2.ExportLogsServiceResponse,
    "/v1/metrics": metrics_service_pb2.ExportMetricsServiceResponse,
}


@dataclass
class Export:
    path: str
    headers: dict[str, str]  # lower-case names
    content_type: str
    message: Any  # the decoded Export*ServiceRequest, or None for an unknown path


def any_value(v) -> Any:
    """An OTLP AnyValue as a Python value."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attrs(key_values) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


class OtlpReceiver:
    def __init__(self) -> None:
        self.exports: list[Export] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                decoder = _DECODERS.get(self.path)
                message = decoder.FromString(body) if decoder else None
                export = Export(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    content_type=self.headers.get("Content-Type", ""),
                    message=message,
                )
                with receiver._lock:
                    receiver.exports.append(export)
                answer = _RESPONSES[self.path]().SerializeToString() if decoder else b""
                self.send_response(200 if decoder else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[Export]:
        with self._lock:
            return list(self.exports)

    def of(self, path: str) -> list[Export]:
        return [e for e in self.snapshot() if e.path == path]

    # ------------------------------------------------------------------ decoded views

    def spans(self) -> list[tuple[dict, Any]]:
        """(resource attributes, span) for every span received."""
        out = []
        for e in self.of("/v1/traces"):
            for rs in e.message.resource_spans:
                res = attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    out.extend((res, s) for s in ss.spans)
        return out

    def logs(self) -> list[tuple[dict, Any]]:
        out = []
        for e in self.of("/v1/logs"):
            for rl in e.message.resource_logs:
                res = attrs(rl.resource.attributes)
                for sl in rl.scope_logs:
                    out.extend((res, r) for r in sl.log_records)
        return out

    def metrics(self) -> list[tuple[dict, str, Any]]:
        """(resource attributes, meter name, metric) for every metric received."""
        out = []
        for e in self.of("/v1/metrics"):
            for rm in e.message.resource_metrics:
                res = attrs(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    out.extend((res, sm.scope.name, m) for m in sm.metrics)
        return out

    def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.1)


class Blackhole:
    """Listens, accepts and reads, never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, name="otlp-blackhole", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> "Blackhole":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            conn.setblocking(False)
            self._conns.append(conn)
            self.accepted += 1
            # Drain what arrived so the sender never blocks on a full window, answer nothing.
            for c in list(self._conns):
                try:
                    while c.recv(65536):
                        pass
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self._conns:
            c.close()
        self._sock.close()
