"""Paths on every `/files` route (issue 24): names that are not UTF-8 act on the raw bytes
everywhere, invalid paths are refused with a 400 envelope before the file system is touched,
plus the find truncation signal and FILE_READ_FAILED on the single download.

A client cannot put non-UTF-8 bytes in a JSON body or through the SDK (Python strings are text),
so the raw-byte tests speak HTTP directly: ``%FF`` in a query parameter is the byte 0xFF, and a
bulk-upload path part carries the bytes as they are. Where the SDK can look (listings), it does.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
import yarl
from daytona import DaytonaError, FileDownloadRequest

from harness import http as raw

NAME = b"\xff\xfe"
SHOWN = "\ufffd\ufffd"  # how JSON answers spell it: one U+FFFD per invalid byte


@pytest.fixture
def area(daemon) -> Path:
    d = Path(daemon.workdir) / f"paths-{uuid.uuid4().hex[:10]}"
    d.mkdir()
    return d


def q(path: bytes | str | Path) -> str:
    if isinstance(path, Path):
        path = bytes(path)
    return quote(path, safe="/")


def names(d: Path) -> list[bytes]:
    return sorted(os.listdir(bytes(d)))


def multipart(parts: list[tuple[str, bytes]], boundary: str = "XyZ") -> tuple[bytes, dict[str, str]]:
    body = b""
    for name, data in parts:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="f"\r\n\r\n'.encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# ------------------------------------------------------------------------- raw-byte names


def test_upload_v2_writes_the_raw_name_not_a_replacement_twin(daemon, area):
    target = bytes(area) + b"/" + NAME
    r = raw.request(daemon.url, "POST", f"/files/upload-v2?path={q(target)}", body=b"v2 content\n")
    assert r.status == 200, r.describe()
    assert r.json() == {"name": SHOWN, "path": f"{area}/{SHOWN}", "type": "file"}
    assert names(area) == [NAME], "the upload must not create a U+FFFD-named file"
    assert open(target, "rb").read() == b"v2 content\n"


def test_legacy_and_bulk_uploads_write_the_raw_name(daemon, area):
    target = bytes(area) + b"/" + NAME
    body, headers = multipart([("file", b"legacy\n")])
    r = raw.request(daemon.url, "POST", f"/files/upload?path={q(target)}", body=body, headers=headers)
    assert r.status == 200, r.describe()
    assert names(area) == [NAME]
    assert open(target, "rb").read() == b"legacy\n"

    body, headers = multipart([("files[0].path", target), ("files[0].file", b"bulk\n")])
    r = raw.request(daemon.url, "POST", "/files/bulk-upload", body=body, headers=headers)
    assert r.status == 200, r.describe()
    assert r.json() == {"files": [{"path": f"{area}/{SHOWN}", "bytes": 5}]}
    assert names(area) == [NAME]
    assert open(target, "rb").read() == b"bulk\n"


def test_a_raw_name_round_trips_through_every_route(daemon, sandbox, area):
    target = bytes(area) + b"/" + NAME
    r = raw.request(daemon.url, "POST", f"/files/upload-v2?path={q(target)}", body=b"find the needle\n")
    assert r.status == 200, r.describe()

    # Listed (through the SDK too), stat'ed, downloaded.
    listed = sandbox.fs.list_files(str(area))
    assert [f.name for f in listed] == [SHOWN]
    r = raw.get(daemon.url, f"/files?path={q(area)}")
    assert [(e["name"], e["path"]) for e in r.json()] == [(SHOWN, f"{area}/{SHOWN}")]
    r = raw.get(daemon.url, f"/files/info?path={q(target)}")
    assert r.status == 200, r.describe()
    assert (r.json()["name"], r.json()["size"], r.json()["isDir"]) == (SHOWN, 16, False)
    r = raw.get(daemon.url, f"/files/download?path={q(target)}")
    assert r.status == 200, r.describe()
    assert r.body == b"find the needle\n"
    r = raw.request(daemon.url, "HEAD", f"/files/download?path={q(target)}")
    assert (r.status, r.header("Content-Length")) == (200, "16")

    # Found by content and by a raw-byte glob.
    r = raw.get(daemon.url, f"/files/find?path={q(area)}&pattern=needle")
    assert r.json() == [{"file": f"{area}/{SHOWN}", "line": 1, "content": "find the needle"}]
    r = raw.get(daemon.url, f"/files/search?path={q(area)}&pattern={q(NAME)}")
    assert r.json() == {"files": [f"{area}/{SHOWN}"]}

    # Permissions, move, delete: each on the raw name.
    r = raw.request(daemon.url, "POST", f"/files/permissions?path={q(target)}&mode=0600")
    assert r.status == 200, r.describe()
    assert os.stat(target).st_mode & 0o777 == 0o600
    moved = bytes(area) + b"/moved-\xfd"

    async def watch_it_move_away():
        # Watched under its raw name; moving it away ends the watch with its `deleted`.
        async with aiohttp.ClientSession() as session:
            url = yarl.URL(f"{daemon.url}/files/watch?path={q(target)}", encoded=True)
            async with session.ws_connect(url) as ws:
                r = await asyncio.to_thread(
                    raw.request, daemon.url, "POST", f"/files/move?source={q(target)}&destination={q(moved)}"
                )
                assert r.status == 200, r.describe()
                msg = await ws.receive(timeout=5)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                ev = json.loads(msg.data)
                assert (ev["type"], ev["path"]) == ("deleted", f"{area}/{SHOWN}"), ev
                msg = await ws.receive(timeout=5)
                assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1000, msg

    asyncio.run(watch_it_move_away())
    assert names(area) == [b"moved-\xfd"]
    r = raw.request(daemon.url, "DELETE", f"/files?path={q(moved)}")
    assert r.status == 204, r.describe()
    assert names(area) == []
    r = raw.get(daemon.url, f"/files/info?path={q(moved)}")
    assert (r.status, r.json()["code"]) == (404, "FILE_NOT_FOUND")


def test_watch_a_raw_named_directory(daemon, area):
    watched = bytes(area) + b"/d\xff"
    os.mkdir(watched)

    async def scenario():
        async with aiohttp.ClientSession() as session:
            url = yarl.URL(f"{daemon.url}/files/watch?path={q(watched)}", encoded=True)
            async with session.ws_connect(url) as ws:
                with open(watched + b"/" + NAME, "wb") as f:
                    f.write(b"x")
                msg = await ws.receive(timeout=5)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                ev = json.loads(msg.data)
                assert (ev["type"], ev["path"], ev["isDir"]) == ("created", f"{area}/d\ufffd/{SHOWN}", False), ev

    asyncio.run(scenario())


# ------------------------------------------------------------------------------ bad paths


ROUTES = [
    ("GET", "/files?path={}"),
    ("GET", "/files/info?path={}"),
    ("GET", "/files/download?path={}"),
    ("POST", "/files/folder?path={}"),
    ("POST", "/files/move?source={}&destination=/tmp/elsewhere"),
    ("POST", "/files/permissions?path={}&mode=644"),
    ("DELETE", "/files?path={}"),
    ("GET", "/files/find?path={}&pattern=a"),
    ("GET", "/files/search?path={}&pattern=*"),
    ("POST", "/files/upload-v2?path={}"),
    ("POST", "/files/upload?path={}"),
    ("GET", "/files/watch?path={}"),
]


@pytest.mark.parametrize("bad", ["/tmp%00x", "/tmp/" + "n" * 300 + "/f"], ids=["nul", "long-name"])
@pytest.mark.parametrize("method, template", ROUTES, ids=[f"{m} {t.split('?')[0]}" for m, t in ROUTES])
def test_invalid_paths_are_400_invalid_file_path(daemon, method, template, bad):
    r = raw.request(daemon.url, method, template.replace("{}", bad), body=b"")
    assert r.status == 400, r.describe()
    v = r.json()
    assert (v["code"], v["statusCode"], v["source"]) == ("INVALID_FILE_PATH", 400, "DAYTONA_DAEMON"), v
    assert v["message"].startswith("invalid file path: "), v


def test_find_and_search_with_nul_are_400_through_the_sdk(sandbox):
    with pytest.raises(DaytonaError) as e:
        sandbox.fs.find_files("/tmp\x00x", "a")
    assert "NUL" in str(e.value)
    with pytest.raises(DaytonaError):
        sandbox.fs.search_files("/tmp\x00x", "*")


def test_duplicate_path_keys_are_400(daemon, area):
    for method, template in ROUTES:
        r = raw.request(daemon.url, method, template.replace("{}", f"{q(area)}&path={q(area)}&source=/a"))
        assert r.status == 400, (method, template, r.describe())
        assert "duplicate parameter" in r.json()["message"], r.describe()


def test_bulk_download_refuses_bad_paths_per_part(sandbox, area):
    (area / "ok.txt").write_bytes(b"fine")
    results = sandbox.fs.download_files(
        [FileDownloadRequest(source=str(area / "ok.txt")), FileDownloadRequest(source="/tmp/" + "n" * 300)]
    )
    assert results[0].result == b"fine" and results[0].error is None
    assert results[1].result is None and "invalid file path" in results[1].error, results[1]


# ----------------------------------------------------------------- find truncation (one file)


def test_one_file_with_more_matches_than_the_bound_says_truncated(daemon, sandbox, area):
    many = area / "many.txt"
    many.write_bytes(b"hit\n" * 100_005)
    for root in (many, area):
        r = raw.get(daemon.url, f"/files/find?path={q(root)}&pattern=hit", timeout=120)
        assert r.status == 200, r.describe()
        found = r.json()
        assert len(found) == 100_000
        assert found[-1] == {"file": str(many), "line": 100_000, "content": "hit"}
        assert r.header("X-Daytona-Results-Truncated") == "true", root
    # Exactly at the bound is not a cut.
    many.write_bytes(b"hit\n" * 100_000)
    r = raw.get(daemon.url, f"/files/find?path={q(many)}&pattern=hit", timeout=120)
    assert len(r.json()) == 100_000 and r.header("X-Daytona-Results-Truncated") is None
    assert len(sandbox.fs.find_files(str(many), "hit")) == 100_000


# ----------------------------------------------------------------- FILE_READ_FAILED (download)


def test_a_file_that_opens_but_cannot_be_read_is_file_read_failed(daemon):
    # The daemon's own memory at address 0: opening works, reading fails with EIO.
    r = raw.get(daemon.url, "/files/download?path=/proc/self/mem")
    assert r.status == 500, r.describe()
    v = r.json()
    assert (v["code"], v["message"]) == (
        "FILE_READ_FAILED",
        "failed to read file: read /proc/self/mem: input/output error",
    )
