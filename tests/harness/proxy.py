"""A loopback stand-in for Daytona's toolbox proxy.

The SDK sends every toolbox call to ``{toolbox_proxy_url}/{sandboxId}{route}``; Daytona's proxy
removes ``/{sandboxId}`` and forwards ``{route}`` to the daemon. This proxy does the same for
one upstream daemon:

* the first path segment is stripped, the rest of the path and the query are forwarded in their
  original (percent-encoded) form;
* method, headers (minus hop-by-hop ones) and the request body are forwarded; bodies are
  streamed both ways, never buffered whole;
* status, reason and headers of the answer come back unchanged; redirects are passed through,
  not followed (``Location`` is not rewritten either);
* WebSocket upgrades are relayed frame by frame: the offered sub-protocols are forwarded, the
  one the daemon selects is returned to the client, text/binary frames go both ways, and the
  close code and reason are forwarded. A failed upstream handshake is returned with its status
  and headers (its body is lost: aiohttp does not expose it).

It runs an aiohttp server in a background thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Iterable

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

# RFC 9110 §7.6.1 hop-by-hop headers, plus the framing headers that each hop sets itself.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
# Headers aiohttp's client adds on its own when absent; we tell it not to, so the daemon sees
# what the SDK sent (e.g. the sync SDK's POST /env without Content-Type).
CLIENT_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
# Handshake headers that aiohttp's ws_connect generates itself.
WS_HANDSHAKE_HEADERS = frozenset(
    h.lower()
    for h in (
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
    )
)


def _connection_tokens(headers) -> set[str]:
    tokens: set[str] = set()
    for value in headers.getall("Connection", []):
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def _filtered(headers, drop: Iterable[str] = ()) -> CIMultiDict:
    dropped = HOP_BY_HOP | _connection_tokens(headers) | {d.lower() for d in drop}
    out: CIMultiDict = CIMultiDict()
    for k, v in headers.items():
        if k.lower() not in dropped:
            out.add(k, v)
    return out


def strip_first_segment(raw_path: str) -> str:
    """``/sbx/files/a%20b?x=1`` → ``/files/a%20b?x=1``; ``/sbx`` → ``/``; ``/sbx/`` → ``/``."""
    path, sep, query = raw_path.partition("?")
    rest = path.lstrip("/")
    _, slash, tail = rest.partition("/")
    new_path = "/" + tail if slash else "/"
    return new_path + sep + query


class ToolboxProxy:
    """``with ToolboxProxy(upstream_url) as p: p.url`` → ``http://127.0.0.1:<port>``."""

    def __init__(self, upstream: str, host: str = "127.0.0.1"):
        self.upstream = URL(upstream)
        self.host = host
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # ----------------------------------------------------------------- lifecycle (sync side)

    @property
    def url(self) -> str:
        assert self.port is not None, "proxy not started"
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "ToolboxProxy":
        self._thread = threading.Thread(target=self._thread_main, name="toolbox-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("toolbox proxy did not start in time")
        if self._start_error is not None:
            raise RuntimeError("toolbox proxy failed to start") from self._start_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                fut.result(timeout)
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)

    def __enter__(self) -> "ToolboxProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as e:  # noqa: BLE001
            self._start_error = e
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,  # pass bytes through untouched
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
        )
        server = web.Server(self._handle)  # low-level server: no routing, no 405s, no rewriting
        self._runner = web.ServerRunner(server, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # ----------------------------------------------------------------------------- handlers

    def _target(self, request: web.BaseRequest) -> URL:
        return URL(str(self.upstream) + strip_first_segment(request.raw_path), encoded=True)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if (
            request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in _connection_tokens(request.headers)
        ):
            return await self._handle_websocket(request)
        return await self._handle_http(request)

    async def _handle_http(self, request: web.BaseRequest) -> web.StreamResponse:
        assert self._session is not None
        headers = _filtered(request.headers, drop=("Host",))
        headers["Host"] = self.upstream.raw_authority
        skip = [h for h in CLIENT_AUTO_HEADERS if h not in request.headers]

        data = None
        if request.body_exists:
            # Content-Length is forwarded as is (then aiohttp sends exactly that many bytes);
            # a chunked request body is re-chunked.
            data = request.content

        try:
            upstream = await self._session.request(
                request.method,
                self._target(request),
                headers=headers,
                data=data,
                allow_redirects=False,
                skip_auto_headers=skip,
                compress=None,
            )
        except aiohttp.ClientError as e:
            return web.Response(status=502, text=f"harness proxy: upstream error: {e}\n")

        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in _filtered(upstream.headers, drop=("Content-Length",)).items():
                response.headers.add(k, v)
            if upstream.headers.get("Content-Length") is not None:
                response.content_length = int(upstream.headers["Content-Length"])
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_chunked(256 * 1024):
                    await response.write(chunk)
            await response.write_eof()
            return response

    async def _handle_websocket(self, request: web.BaseRequest) -> web.StreamResponse:
        assert self._session is not None
        offered = [
            p.strip()
            for value in request.headers.getall("Sec-WebSocket-Protocol", [])
            for p in value.split(",")
            if p.strip()
        ]
        headers = _filtered(request.headers, drop=("Host", *WS_HANDSHAKE_HEADERS))
        headers["Host"] = self.upstream.raw_authority
        target = self._target(request)
        target = target.with_scheme("ws" if target.scheme == "http" else "wss")
        try:
            upstream = await self._session.ws_connect(
                target,
                protocols=offered,
                headers=headers,
                autoclose=False,
                autoping=True,
                max_msg_size=0,
                compress=0,
            )
        except aiohttp.WSServerHandshakeError as e:
            resp = web.Response(status=e.status)
            if e.headers:
                for k, v in _filtered(e.headers, drop=("Content-Length",)).items():
                    resp.headers.add(k, v)
            return resp
        except aiohttp.ClientError as e:
            return web.Response(status=502, text=f"harness proxy: upstream error: {e}\n")

        selected = upstream.protocol
        client = web.WebSocketResponse(
            protocols=(selected,) if selected else (),
            autoclose=False,
            autoping=True,
            max_msg_size=0,
            compress=False,
        )
        await client.prepare(request)

        async def pump(src, dst, src_is_client: bool) -> None:
            """Copy frames src → dst; forward a close frame; abort dst if src vanished."""
            while True:
                msg = await src.receive()
                if msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == WSMsgType.CLOSE:
                    # aiohttp reports a close frame without a status as 0, which is not a code
                    # anyone may send back (the ws package rejects it): answer 1000.
                    code = msg.data or 1000
                    reason = (msg.extra or "").encode("utf-8")
                    # Answer the closing side, then forward its code and reason.
                    await src.close(code=code, message=reason)
                    if not dst.closed:
                        await dst.close(code=code, message=reason)
                    return
                elif msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                    # The peer went away without a close frame: drop the other side too, so
                    # the client observes an abnormal closure as it would without the proxy.
                    if src_is_client:
                        if not dst.closed:
                            await dst.close(code=1001)
                    else:
                        transport = request.transport
                        if transport is not None:
                            transport.abort()
                    return
                # PING/PONG are answered by autoping on each side.

        to_upstream = asyncio.ensure_future(pump(client, upstream, True))
        to_client = asyncio.ensure_future(pump(upstream, client, False))
        try:
            done, pending = await asyncio.wait(
                {to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED
            )
            # Give the other direction a moment to see the close handshake finish.
            if pending:
                await asyncio.wait(pending, timeout=5)
        finally:
            for t in (to_upstream, to_client):
                if not t.done():
                    t.cancel()
            if not upstream.closed:
                await upstream.close()
        return client
