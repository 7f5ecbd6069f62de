"""Apps for the preview proxy to relay to (tests/test_proxy.py): an HTTP/1.1 target that shows
what reached it, a target that drops kept-alive connections, and a WebSocket echo server.

All run on threads of the test process and stop when their context ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BLOCK = 1 << 20


def block(i: int, base: bytes) -> bytes:
    """Block `i` of a generated download: its index, then `base`, so that a dropped, doubled or
    reordered block changes the checksum."""
    return i.to_bytes(8, "big") + base[8:]


def download_sha256(blocks: int, base: bytes) -> str:
    h = hashlib.sha256()
    for i in range(blocks):
        h.update(block(i, base))
    return h.hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Routes on the raw path:

    ``/big?blocks=N``   N generated MiB blocks (Content-Length set).
    ``/upload``         reads the body (Content-Length or chunked); answers its length and sha256.
    ``/sse``            two server-sent events a second apart; records when each was sent.
    ``/endless``        writes blocks until the peer goes away; records when it noticed.
    ``/bare404``        404 without a body or content type.
    anything else       JSON: the raw request line, the headers in order, the peer address.
    """

    protocol_version = "HTTP/1.1"
    server: "TargetServer"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _json(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Target-Hop", "1")
        self.send_header("Connection", "X-Target-Hop")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        self.server.seen.append(self.requestline)
        if parts.path == "/big":
            blocks = int(parse_qs(parts.query)["blocks"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(blocks * BLOCK))
            self.end_headers()
            for i in range(blocks):
                self.wfile.write(block(i, self.server.base))
            return
        if parts.path == "/upload":
            h = hashlib.sha256()
            total = 0
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = self._body()
                h.update(data)
                total = len(data)
            else:
                left = int(self.headers.get("Content-Length") or 0)
                while left:
                    chunk = self.rfile.read(min(left, BLOCK))
                    if not chunk:
                        break
                    h.update(chunk)
                    total += len(chunk)
                    left -= len(chunk)
            self._json(200, {"length": total, "sha256": h.hexdigest()})
            return
        if parts.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for n, pause in ((1, 1.0), (2, 0.0)):
                event = f"id: {n}\ndata: event {n}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                self.server.events[f"sent{n}"] = time.monotonic()
                time.sleep(pause)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.server.events["finished"] = time.monotonic()
            return
        if parts.path == "/endless":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            chunk = self.server.base
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                self.server.events["endless_gone"] = time.monotonic()
                self.close_connection = True
            return
        if parts.path == "/bare404":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._body()
        self._json(
            200,
            {
                "requestline": self.requestline,
                "headers": [[k, v] for k, v in self.headers.items()],
                "client": self.client_address[0],
                "body": body.decode("latin-1"),
            },
        )

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def do_HEAD(self):  # noqa: N802 - the base class's naming
        self.server.seen.append(self.requestline)
        self.send_response(200)
        self.send_header("Content-Length", "1234")
        self.end_headers()


class TargetServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, family: socket.AddressFamily):
        self.address_family = family
        super().__init__((host, 0), Handler)
        self.seen: list[str] = []
        self.events: dict[str, float] = {}
        self.base = bytes(range(256)) * (BLOCK // 256)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> "TargetServer":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


def ipv4_target() -> TargetServer:
    return TargetServer("127.0.0.1", socket.AF_INET)


def ipv6_only_target() -> TargetServer:
    """Listens on ::1 only: nothing answers on 127.0.0.1 for its port."""
    return TargetServer("::1", socket.AF_INET6)


class OneShotConnections:
    """Answers the first request on each connection (keeping it open, without `Connection:
    close`) and closes the connection without answering when a second request arrives: a target
    whose kept-alive connections go stale under the proxy's pool."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False

    def _serve(self, conn: socket.socket, n: int) -> None:
        with conn:
            f = conn.makefile("rb")
            for answered in (False, True):
                if not _read_head(f):
                    return
                if answered:
                    return  # the stale case: read the request, close without a word
                body = f"connection {n}".encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def __enter__(self) -> "OneShotConnections":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self.sock.close()


def _read_head(f) -> bool:
    while True:
        line = f.readline()
        if not line:
            return False
        if line in (b"\r\n", b"\n"):
            return True


class WebSocketEcho:
    """An aiohttp WebSocket server echoing every message, on its own event loop thread."""

    def __init__(self):
        self.port = 0
        self.handshake_headers: dict[str, str] = {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner = None

    async def _start(self) -> None:
        from aiohttp import WSMsgType, web

        async def echo(request: web.Request) -> web.WebSocketResponse:
            self.handshake_headers = dict(request.headers)
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
            return ws

        app = web.Application()
        app.router.add_get("/ws", echo)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the bound port
        self._ready.set()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start())
        self._loop.run_forever()

    def __enter__(self) -> "WebSocketEcho":
        threading.Thread(target=self._run, daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket echo server did not start")
        return self

    def __exit__(self, *exc) -> None:
        loop = self._loop
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
