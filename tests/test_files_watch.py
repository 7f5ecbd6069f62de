"""`GET /files/watch`: the file-watch WebSocket (beyond the reference; the daemon defines it).

No official client calls this route, so a plain WebSocket client is used: aiohttp's, which the
SDK already depends on (pinned in requirements.txt).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import time
from pathlib import Path

import aiohttp
import pytest

from harness import http as raw

SDK_PROTOCOL = "X-Daytona-SDK-Version~0.226.1"


# ---------------------------------------------------------------------------------- helpers


class Watch:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.seen: list[dict] = []

    async def next(self, timeout: float = 5.0) -> dict | None:
        """The next event, or None when the server closed the socket."""
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.TEXT:
            ev = json.loads(msg.data)
            self.seen.append(ev)
            return ev
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return None
        raise AssertionError(f"unexpected frame {msg!r}")

    async def until(self, pred, timeout: float = 5.0) -> list[dict]:
        """Events up to and including the first matching `pred`."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout}s; got {summary(got)}")
            try:
                ev = await self.next(left)
            except asyncio.TimeoutError:
                raise AssertionError(f"no matching event within {timeout}s; got {summary(got)}") from None
            if ev is None:
                raise AssertionError(f"socket closed before a matching event; got {summary(got)}")
            got.append(ev)
            if pred(ev):
                return got

    async def quiet(self, seconds: float) -> list[dict]:
        """Everything that arrives within `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = await self.next(left)
            except asyncio.TimeoutError:
                break
            if ev is None:
                break
            got.append(ev)
        return got

    async def until_silent(self, gap: float, timeout: float) -> list[dict]:
        """Everything until nothing arrived for `gap` seconds."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = await self.next(gap)
            except asyncio.TimeoutError:
                return got
            if ev is None:
                break
            got.append(ev)
        raise AssertionError(f"the stream did not go quiet; got {summary(got)}")

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


def summary(events: list[dict]) -> str:
    if len(events) <= 20:
        return str(events)
    return f"{len(events)} events, the last: {events[-10:]}"


async def open_watch(
    daemon, path: str, recursive: bool | None = None, protocols=(), autoping: bool = True
) -> Watch:
    params = {"path": path}
    if recursive is not None:
        params["recursive"] = "true" if recursive else "false"
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(
            f"{daemon.url}/files/watch", params=params, protocols=protocols, autoping=autoping
        )
    except BaseException:
        await session.close()
        raise
    return Watch(session, ws)


def is_ev(kind: str, path, **extra):
    def pred(ev):
        same = ev["type"] == kind and ev.get("path") == str(path)
        return same and all(ev.get(k) == v for k, v in extra.items())

    return pred


def index_of(events, kind, path) -> int:
    for i, ev in enumerate(events):
        if ev["type"] == kind and ev.get("path") == str(path):
            return i
    raise AssertionError(f"no {kind} for {path} in {events}")


def handshake_headers() -> dict[str, str]:
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }


def inotify_fds(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                n += 1
        except OSError:
            pass
    return n


def notify_threads(pid: int) -> int:
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if Path(f"/proc/{pid}/task/{tid}/comm").read_text().startswith("notify-rs"):
                n += 1
        except OSError:
            pass
    return n


def wait_until(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


# ------------------------------------------------------------------------------------ tests


def test_changes_in_a_nested_tree_arrive_in_order(daemon, tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()

    async def scenario():
        w = await open_watch(daemon, str(root), recursive=True, protocols=(SDK_PROTOCOL,))
        try:
            assert w.ws.protocol == SDK_PROTOCOL
            # A nested directory created in one go, and a file written at once inside it: the
            # file must be reported although its directory's watch did not exist yet.
            (root / "a" / "b").mkdir(parents=True)
            f = root / "a" / "b" / "f.txt"
            f.write_text("one")
            got = await w.until(is_ev("created", f))
            ia = index_of(got, "created", root / "a")
            ib = index_of(got, "created", root / "a" / "b")
            i_f = len(got) - 1
            assert ia < ib < i_f, got
            assert got[ia]["isDir"] is True and got[i_f]["isDir"] is False, got
            assert [e for e in got if e["type"] not in ("created", "modified")] == [], got
            await w.quiet(0.3)

            # A file in the new directory created later is seen through its own watch.
            (root / "a" / "b" / "later.txt").write_text("x")
            await w.until(is_ev("created", root / "a" / "b" / "later.txt"))
            await w.quiet(0.3)

            # Modify: a burst of writes is one event.
            with open(f, "a") as fh:
                for _ in range(50):
                    fh.write("more")
                    fh.flush()
            got = await w.until(is_ev("modified", f))
            assert got == [got[-1]], got
            assert [e for e in await w.quiet(0.3) if e.get("path") == str(f)] == []

            # Rename inside the tree: one event with both paths.
            g = root / "g.txt"
            f.rename(g)
            got = await w.until(lambda e: e["type"] == "renamed")
            assert got[-1]["oldPath"] == str(f) and got[-1]["path"] == str(g), got
            assert got[-1]["isDir"] is False

            # A directory renamed inside the tree keeps being watched under its new name.
            (root / "a").rename(root / "c")
            got = await w.until(lambda e: e["type"] == "renamed")
            last = got[-1]
            assert (last["oldPath"], last["path"], last["isDir"]) == (str(root / "a"), str(root / "c"), True)
            (root / "c" / "b" / "deep.txt").write_text("d")
            await w.until(is_ev("created", root / "c" / "b" / "deep.txt"))
            await w.quiet(0.3)

            # Out of the tree is deleted, into it created.
            g.rename(outside / "g.txt")
            await w.until(is_ev("deleted", g))
            (outside / "g.txt").rename(root / "back.txt")
            await w.until(is_ev("created", root / "back.txt", isDir=False))

            # Delete.
            (root / "back.txt").unlink()
            got = await w.until(is_ev("deleted", root / "back.txt"))
            for ev in w.seen:
                assert ev["timestamp"].endswith("Z") or ev["timestamp"][-6] in "+-", ev
        finally:
            await w.close()

    asyncio.run(scenario())


def test_paths_follow_the_requested_form(daemon):
    rel = "watch-rel"
    base = daemon.workdir / rel
    base.mkdir(exist_ok=True)

    async def scenario():
        w = await open_watch(daemon, rel + "/")
        try:
            (base / "x").write_text("1")
            got = await w.until(lambda e: e["type"] == "created")
            assert got[-1]["path"] == f"{rel}/x", got
        finally:
            await w.close()

    asyncio.run(scenario())


def test_non_recursive_ignores_nested_changes(daemon, tmp_path):
    root = tmp_path / "flat"
    (root / "sub").mkdir(parents=True)

    async def scenario():
        w = await open_watch(daemon, str(root), recursive=False)
        try:
            assert w.ws.protocol is None  # nothing offered, nothing selected
            (root / "sub" / "nested.txt").write_text("n")
            (root / "sub" / "newdir").mkdir()
            (root / "sub" / "newdir" / "deeper").write_text("d")
            (root / "top.txt").write_text("t")
            got = await w.until(is_ev("created", root / "top.txt"))
            got += await w.quiet(0.5)
            assert [e for e in got if "sub" in e.get("path", "")] == [], got
        finally:
            await w.close()

    asyncio.run(scenario())


def test_watching_a_single_file(daemon, tmp_path):
    f = tmp_path / "single.txt"
    f.write_text("a")
    (tmp_path / "neighbour.txt").write_text("n")

    async def scenario():
        w = await open_watch(daemon, str(f))
        try:
            f.write_text("b")
            (tmp_path / "neighbour.txt").write_text("changed")
            got = await w.until(is_ev("modified", f))
            got += await w.quiet(0.3)
            assert {e["path"] for e in got} == {str(f)}, got
            f.unlink()
            await w.until(is_ev("deleted", f, isDir=False))
            assert await w.next(5) is None
            assert w.ws.close_code == 1000
        finally:
            await w.close()

    asyncio.run(scenario())


def test_pings_are_answered_and_the_route_is_documented(daemon, tmp_path):
    async def scenario():
        w = await open_watch(daemon, str(tmp_path), autoping=False)
        try:
            await w.ws.ping(b"are-you-there")
            msg = await w.ws.receive(timeout=5)
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.PONG, b"are-you-there"), msg
        finally:
            await w.close()

    asyncio.run(scenario())
    doc = raw.get(daemon.url, "/swagger/doc.json").json()
    op = doc["paths"]["/files/watch"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"path", "recursive"}, op
    assert "101" in op["responses"] and "404" in op["responses"], op
    schema = doc["components"]["schemas"]["WatchEvent"]
    assert {"type", "path", "oldPath", "isDir", "dropped", "timestamp"} <= set(schema["properties"]), schema


def test_deleting_the_root_ends_the_stream(daemon, tmp_path):
    root = tmp_path / "doomed"
    (root / "inner").mkdir(parents=True)
    (root / "inner" / "f").write_text("x")

    async def scenario():
        w = await open_watch(daemon, str(root), recursive=True)
        try:
            shutil.rmtree(root)
            got = await w.until(is_ev("deleted", root))
            assert got[-1]["isDir"] is True
            assert index_of(got, "deleted", root / "inner" / "f") < len(got) - 1, got
            assert await w.next(5) is None, "nothing may follow the root's deletion"
            assert w.ws.close_code == 1000
        finally:
            await w.close()

    asyncio.run(scenario())


def test_bad_requests_are_refused_before_the_upgrade(daemon, tmp_path):
    cases = [
        ("/files/watch", 400, "BAD_REQUEST"),
        ("/files/watch?path=", 400, "BAD_REQUEST"),
        (f"/files/watch?path={tmp_path}/missing", 404, "FILE_NOT_FOUND"),
        (f"/files/watch?path={tmp_path}&recursive=maybe", 400, "BAD_REQUEST"),
    ]
    for target, status, code in cases:
        r = raw.get(daemon.url, target, headers=handshake_headers())
        assert r.status == status, (target, r.describe())
        assert r.header("Upgrade") is None, r.describe()
        body = r.json()
        assert body["code"] == code and body["statusCode"] == status, body
        assert body["path"] == "/files/watch", body
    # Not a WebSocket request at all, with a good path: a 400 envelope saying so.
    r = raw.get(daemon.url, f"/files/watch?path={tmp_path}")
    assert r.status == 400, r.describe()
    assert "WebSocket" in r.json()["message"], r.describe()

    async def client_sees_status():
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await open_watch(daemon, str(tmp_path / "missing"))
        assert e.value.status == 404

    asyncio.run(client_sees_status())


@pytest.mark.deadline(150)
def test_a_flood_overflows_and_the_stream_recovers(fresh_daemon, tmp_path):
    root = tmp_path / "flood"
    root.mkdir()
    # Long names make the flood far bigger than what the socket buffers can absorb.
    stem = "f" * 200

    async def scenario():
        w = await open_watch(fresh_daemon, str(root))
        try:
            for i in range(50_000):
                os.close(os.open(root / f"{stem}{i}", os.O_CREAT | os.O_WRONLY, 0o644))
            await asyncio.sleep(1)  # not reading: the daemon's queue fills and overflows
            # Reading again makes room: each loss is reported once, where it happened (the
            # flood may have filled the queue several times while the socket drained a bit).
            got = await w.until(lambda e: e["type"] == "overflow", timeout=60)
            got += await w.until_silent(1.0, timeout=60)
            overflows = [e for e in got if e["type"] == "overflow"]
            created = [e for e in got if e["type"] == "created"]
            for a, b in zip(got, got[1:]):
                assert not (a["type"] == b["type"] == "overflow"), "adjacent losses must be one event"
            for e in overflows:
                assert set(e) <= {"type", "dropped", "timestamp"}, e
            if all("dropped" in e for e in overflows):
                # Only the daemon dropped: every change is either delivered or counted.
                dropped = sum(e["dropped"] for e in overflows)
                assert dropped > 0 and len(created) + dropped == 50_000, (len(created), overflows)
            assert created[0]["path"] == str(root / f"{stem}0"), created[0]
            # Still healthy: new changes arrive promptly.
            marker = root / "after-the-flood"
            marker.write_text("m")
            got = await w.until(is_ev("created", marker), timeout=5)
            assert [e["type"] for e in got] == ["created"], got
        finally:
            await w.close()

    asyncio.run(scenario())


def test_leaving_clients_leave_no_watch_behind(fresh_daemon, tmp_path):
    pid = fresh_daemon.proc.pid
    base_fds, base_threads = inotify_fds(pid), notify_threads(pid)

    async def scenario():
        # Graceful close.
        w = await open_watch(fresh_daemon, str(tmp_path), recursive=True)
        assert inotify_fds(pid) == base_fds + 1 and notify_threads(pid) == base_threads + 1
        await w.close()
        assert wait_until(lambda: inotify_fds(pid) == base_fds), "watch left after a close"
        assert wait_until(lambda: notify_threads(pid) == base_threads), "thread left after a close"

        # A client that vanishes without a close frame.
        w = await open_watch(fresh_daemon, str(tmp_path), recursive=True)
        assert inotify_fds(pid) == base_fds + 1
        w.ws._conn.transport.abort()
        await w.session.close()
        assert wait_until(lambda: inotify_fds(pid) == base_fds), "watch left after an abort"
        assert wait_until(lambda: notify_threads(pid) == base_threads), "thread left after an abort"

        # A refused request leaves nothing either.
        r = raw.get(fresh_daemon.url, f"/files/watch?path={tmp_path}")
        assert r.status == 400
        assert inotify_fds(pid) == base_fds

    asyncio.run(scenario())
