"""File downloads (files.md §4, §4.1, §5; sdk-0.226.md §2.3, §3.4, §4.5; pitfalls.md §E 36-37).

Through the official SDK (``sandbox.fs.download_file``/``download_files``/``download_file_stream``,
all of which use ``POST /files/bulk-download``), the generated client, and raw HTTP for the
single-file route's headers, ranges and conditionals. Big files are generated and compared with
streaming hashes, never held in memory whole.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import stat
import time
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import pytest
from daytona import (
    DaytonaError,
    DaytonaFileAccessDeniedError,
    DaytonaFileNotFoundError,
    DaytonaInvalidFilePathError,
    FileDownloadRequest,
)
from daytona_toolbox_api_client import FileSystemApi

from harness import http as raw

BOUNDARY = "DAYTONA-FILE-BOUNDARY"
GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024


# ----------------------------------------------------------------------------- helpers


def q(path: str | Path) -> str:
    return quote(str(path), safe="")


def get_path(d, path, method="GET", headers=None, extra_query=""):
    return raw.request(d.url, method, f"/files/download?path={q(path)}{extra_query}", headers=headers)


def bulk_raw(d, paths) -> raw.RawResponse:
    return raw.post_json(d.url, "/files/bulk-download", {"paths": paths}, timeout=60)


def split_parts(body: bytes) -> tuple[list[tuple[dict[str, bytes], bytes]], bool]:
    """Splits a DAYTONA-FILE-BOUNDARY multipart body; returns (parts, closed). Header values are
    kept as raw bytes (they are latin-1, not UTF-8)."""
    delim = f"--{BOUNDARY}".encode()
    assert body.startswith(delim + b"\r\n"), body[:200]
    closed = body.endswith(b"\r\n" + delim + b"--\r\n")
    inner = body[len(delim) + 2 :]
    if closed:
        inner = inner[: -len(b"\r\n" + delim + b"--\r\n")]
    parts = []
    for chunk in inner.split(b"\r\n" + delim + b"\r\n"):
        head, _, data = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            k, _, v = line.partition(b": ")
            headers[k.decode().lower()] = v
        parts.append((headers, data))
    return parts, closed


def write_pattern_file(path: Path, size: int) -> str:
    """Writes ``size`` bytes where every MiB block differs (block index stamped into a random
    block), and returns the SHA-256, without holding more than one block in memory."""
    base = bytearray(os.urandom(MIB))
    h = hashlib.sha256()
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < size:
            base[:8] = i.to_bytes(8, "little")
            block = bytes(base[: min(MIB, size - written)])
            f.write(block)
            h.update(block)
            written += len(block)
            i += 1
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture
def files(daemon, tmp_path_factory) -> Path:
    """A fresh directory the daemon can read, with a few files."""
    d = tmp_path_factory.mktemp("dl")
    (d / "hello.txt").write_bytes(b"hello world\n")
    (d / "empty.bin").write_bytes(b"")
    (d / "日本語 café.txt").write_bytes("unicode ✓\n".encode())
    (d / 'say "hi" there.txt').write_bytes(b"quoted\n")
    (d / "back\\slash.txt").write_bytes(b"backslash\n")
    (d / "link.txt").symlink_to(d / "hello.txt")
    (d / "sub").mkdir()
    data = bytes(range(256)) * 40  # 10240 bytes
    (d / "bytes.bin").write_bytes(data)
    return d


# --------------------------------------------------------------------- SDK: download_file


def test_sdk_download_bytes(sandbox, files):
    assert sandbox.fs.download_file(str(files / "hello.txt")) == b"hello world\n"
    assert sandbox.fs.download_file(str(files / "bytes.bin")) == bytes(range(256)) * 40


def test_sdk_download_relative_path_resolves_against_workdir(sandbox, daemon):
    (daemon.workdir / "rel.txt").write_bytes(b"relative\n")
    assert sandbox.fs.download_file("rel.txt") == b"relative\n"
    assert sandbox.fs.download_file("./rel.txt") == b"relative\n"


@pytest.mark.parametrize("name", ["日本語 café.txt", 'say "hi" there.txt', "back\\slash.txt"])
def test_sdk_download_awkward_names(sandbox, files, name):
    # The SDK maps parts back to requests by the decoded filename* (the full requested path).
    assert sandbox.fs.download_file(str(files / name)) == (files / name).read_bytes()


def test_sdk_download_empty_file(sandbox, files, tmp_path):
    assert sandbox.fs.download_file(str(files / "empty.bin")) == b""
    local = tmp_path / "out" / "empty.bin"
    sandbox.fs.download_file(str(files / "empty.bin"), str(local))
    assert local.exists() and local.read_bytes() == b""


def test_sdk_download_symlink_follows_target(sandbox, files):
    assert sandbox.fs.download_file(str(files / "link.txt")) == b"hello world\n"


def test_sdk_download_to_local_file(sandbox, files, tmp_path):
    local = tmp_path / "nested" / "dir" / "copy.bin"
    assert sandbox.fs.download_file(str(files / "bytes.bin"), str(local)) is None
    assert local.read_bytes() == (files / "bytes.bin").read_bytes()


def test_sdk_missing_file_raises_file_not_found(sandbox, files):
    missing = str(files / "nope.txt")
    with pytest.raises(DaytonaFileNotFoundError) as ei:
        sandbox.fs.download_file(missing)
    e = ei.value
    assert e.status_code == 404, vars(e)
    assert e.code == "FILE_NOT_FOUND" and e.source == "DAYTONA_DAEMON", vars(e)
    assert f"file not found: {missing}" in str(e)


def test_sdk_directory_raises_invalid_file_path(sandbox, files):
    with pytest.raises(DaytonaInvalidFilePathError) as ei:
        sandbox.fs.download_file(str(files / "sub"))
    assert ei.value.status_code == 400
    assert f"path points to a directory: {files / 'sub'}" in str(ei.value)


def test_sdk_read_failure_mid_stream_is_reported_as_truncated(sandbox):
    # Opening the daemon's own memory works, reading offset 0 fails with EIO: the daemon must
    # stop without the closing boundary, which the SDK reports as a truncated answer.
    with pytest.raises(DaytonaError) as ei:
        sandbox.fs.download_file("/proc/self/mem")
    assert "Truncated multipart response" in str(ei.value), str(ei.value)


# -------------------------------------------------------------------- SDK: download_files


def test_sdk_download_files_mixed_results_in_request_order(sandbox, files, tmp_path):
    local = tmp_path / "local" / "u.txt"
    reqs = [
        FileDownloadRequest(source=str(files / "hello.txt")),
        FileDownloadRequest(source=str(files / "日本語 café.txt"), destination=str(local)),
        FileDownloadRequest(source=str(files / "missing.bin")),
        FileDownloadRequest(source=str(files / "sub")),
        FileDownloadRequest(source=str(files / "empty.bin")),
        FileDownloadRequest(source=str(files / "link.txt")),
    ]
    res = sandbox.fs.download_files(reqs)
    assert [r.source for r in res] == [r.source for r in reqs]
    assert res[0].error is None and res[0].result == b"hello world\n"
    assert res[1].error is None and res[1].result == str(local)
    assert local.read_bytes() == "unicode ✓\n".encode()
    assert res[2].result is None and "file not found" in res[2].error
    d = res[2].error_details
    assert (d.status_code, d.code, d.source) == (404, "FILE_NOT_FOUND", "DAYTONA_DAEMON"), d
    assert res[3].error_details.code == "INVALID_FILE_PATH" and res[3].error_details.status_code == 400
    assert res[4].error is None and res[4].result == b""
    assert res[5].result == b"hello world\n"


def test_sdk_download_file_stream(sandbox, files, tmp_path):
    big = tmp_path / "stream.bin"
    digest = write_pattern_file(big, 5 * MIB + 123)
    h = hashlib.sha256()
    progress = []
    for piece in sandbox.fs.download_file_stream(str(big), on_progress=progress.append):
        h.update(piece)
    assert h.hexdigest() == digest
    assert progress and progress[-1].bytes_received == 5 * MIB + 123
    assert progress[-1].total_bytes == 5 * MIB + 123  # from the part's Content-Length
    with pytest.raises(DaytonaFileNotFoundError):
        list(sandbox.fs.download_file_stream(str(files / "nope")))


# ------------------------------------------------------------------ raw bulk-download wire


def test_bulk_wire_format(daemon, files):
    uni = str(files / "日本語 café.txt")
    paths = [str(files / "hello.txt"), uni, "", str(files / "nope"), str(files / "empty.bin"), str(files / "hello.txt")]
    r = bulk_raw(daemon, paths)
    assert r.status == 200, r.describe()
    assert r.header("Content-Type") == f"multipart/form-data; boundary={BOUNDARY}"
    parts, closed = split_parts(r.body)
    assert closed
    assert len(parts) == len(paths)

    h, data = parts[0]
    assert h["content-disposition"] == (
        f'form-data; name="file"; filename="{files}/hello.txt"; '
        f"filename*=utf-8''{quote(str(files), safe='')}%2Fhello.txt"
    ).encode()
    assert h["content-length"] == b"12" and h["content-type"] == b"text/plain" and data == b"hello world\n"

    # Latin-1 fallback: one raw byte per character (é = 0xE9), '_' beyond Latin-1.
    h, data = parts[1]
    latin = str(files).encode("latin-1") + "/___ café.txt".encode("latin-1")
    assert f'filename="'.encode() + latin + b'"' in h["content-disposition"], h
    star = h["content-disposition"].split(b"filename*=utf-8''")[1].decode("ascii")
    assert re.fullmatch(r"[A-Za-z0-9!#$&+\-.^_`|~%]+", star), star
    assert "%E6%97%A5%E6%9C%AC%E8%AA%9E%20caf%C3%A9.txt" in star
    assert data == (files / "日本語 café.txt").read_bytes()

    for idx, status, code, message in [
        (2, 400, "INVALID_FILE_PATH", "invalid file path: path is empty"),
        (3, 404, "FILE_NOT_FOUND", f"file not found: {files}/nope"),
    ]:
        h, data = parts[idx]
        assert h["content-disposition"].startswith(b'form-data; name="error"; filename="'), h
        assert h["content-type"] == b"application/json; charset=utf-8"
        assert "content-length" not in h
        body = json.loads(data)
        assert set(body) == {"statusCode", "message", "code", "source", "timestamp", "path", "method"}
        assert (body["statusCode"], body["code"], body["message"]) == (status, code, message)
        assert body["source"] == "DAYTONA_DAEMON" and body["method"] == "POST"
        assert body["path"] == paths[idx]
        assert body["timestamp"].endswith("Z")

    h, data = parts[4]
    assert h["content-length"] == b"0" and data == b""
    assert parts[5][1] == b"hello world\n"  # duplicates give duplicate parts


@pytest.mark.parametrize("body", ["", "{}", '{"paths": []}', '{"paths": null}', '{"paths": [1]}', "not json"])
def test_bulk_bad_body_is_400_envelope(daemon, body):
    r = raw.request(daemon.url, "POST", "/files/bulk-download", body=body, headers={"Content-Type": "application/json"})
    assert r.status == 400, r.describe()
    assert r.header("Content-Type").startswith("application/json")
    v = r.json()
    assert v["message"] == 'bad request: request body must be {"paths": [ ... ]} and non-empty', v
    assert v["code"] == "BAD_REQUEST" and v["source"] == "DAYTONA_DAEMON"


# ---------------------------------------------------------------- GET/HEAD /files/download


def test_get_headers_and_body(daemon, files):
    p = files / "日本語 café.txt"
    r = get_path(daemon, p)
    assert r.status == 200, r.describe()
    assert r.body == p.read_bytes()
    assert r.header("Content-Type") == "application/octet-stream"
    # http.client decodes header bytes as latin-1, so the raw 0xE9 comes back as "é".
    assert r.header("Content-Disposition") == (
        "attachment; filename=\"___ café.txt\"; filename*=utf-8''%E6%97%A5%E6%9C%AC%E8%AA%9E%20caf%C3%A9.txt"
    )
    assert r.header("Content-Description") == "File Transfer"
    assert r.header("Content-Transfer-Encoding") == "binary"
    assert r.header("Expires") == "0"
    assert r.header("Cache-Control") == "must-revalidate"
    assert r.header("Pragma") == "public"
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Content-Length") == str(len(p.read_bytes()))
    assert r.header("Last-Modified") == formatdate(p.stat().st_mtime, usegmt=True)


def test_get_quotes_in_base_name_and_relative_path(daemon, files):
    r = get_path(daemon, files / 'say "hi" there.txt')
    assert r.status == 200 and r.body == b"quoted\n"
    assert r.header("Content-Disposition") == (
        'attachment; filename="say \\"hi\\" there.txt"; filename*=utf-8\'\'say%20%22hi%22%20there.txt'
    )
    (daemon.workdir / "r.txt").write_bytes(b"rel")
    r = get_path(daemon, "sub/../r.txt")
    assert r.status == 200 and r.body == b"rel", r.describe()
    assert "filename=\"r.txt\"" in r.header("Content-Disposition")


def test_get_symlink_and_empty(daemon, files):
    r = get_path(daemon, files / "link.txt")
    assert r.status == 200 and r.body == b"hello world\n"
    assert 'filename="link.txt"' in r.header("Content-Disposition")
    r = get_path(daemon, files / "empty.bin")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "0"


def test_get_via_generated_client(toolbox, files):
    data = FileSystemApi(toolbox).download_file(path=str(files / "bytes.bin"))
    assert bytes(data) == (files / "bytes.bin").read_bytes()


def test_head_has_headers_without_body_and_ignores_presign_params(daemon, files):
    p = files / "bytes.bin"
    r = get_path(daemon, p, method="HEAD", extra_query="&expires=0&signature=v1_abc")
    assert r.status == 200, r.describe()
    assert r.body == b""
    assert r.header("Content-Length") == "10240"
    assert r.header("Content-Disposition") == "attachment; filename=\"bytes.bin\"; filename*=utf-8''bytes.bin"
    assert r.header("Accept-Ranges") == "bytes"
    r = get_path(daemon, files / "nope", method="HEAD")
    assert r.status == 404


@pytest.mark.parametrize(
    "path_query, status, code, message",
    [
        ("", 400, "BAD_REQUEST", "bad request: path is required"),
        ("?path=", 400, "BAD_REQUEST", "bad request: path is required"),
    ],
)
def test_get_missing_path_param(daemon, path_query, status, code, message):
    r = raw.get(daemon.url, f"/files/download{path_query}")
    assert r.status == status, r.describe()
    v = r.json()
    assert (v["code"], v["message"], v["source"]) == (code, message, "DAYTONA_DAEMON")


def test_get_errors(daemon, files):
    r = get_path(daemon, files / "nope")
    assert r.status == 404, r.describe()
    assert r.json()["code"] == "FILE_NOT_FOUND"
    r = get_path(daemon, files / "sub")
    assert r.status == 400, r.describe()
    v = r.json()
    assert (v["code"], v["message"]) == ("INVALID_FILE_PATH", "path must be a file")


# ------------------------------------------------------------------------------- ranges


def test_single_range(daemon, files):
    data = (files / "bytes.bin").read_bytes()
    for rng, start, end in [("bytes=10-19", 10, 19), ("bytes=10240-", None, None), ("bytes=-5", 10235, 10239),
                            ("bytes=10000-99999", 10000, 10239), ("bytes=0-", 0, 10239)]:
        r = get_path(daemon, files / "bytes.bin", headers={"Range": rng})
        if start is None:
            assert r.status == 416, r.describe()
            assert r.header("Content-Range") == "bytes */10240"
            continue
        assert r.status == 206, (rng, r.describe())
        assert r.header("Content-Range") == f"bytes {start}-{end}/10240"
        assert r.header("Content-Length") == str(end - start + 1)
        assert r.body == data[start : end + 1]


def test_unsatisfiable_and_malformed_ranges(daemon, files):
    r = get_path(daemon, files / "empty.bin", headers={"Range": "bytes=0-"})
    assert r.status == 416 and r.header("Content-Range") == "bytes */0"
    r = get_path(daemon, files / "bytes.bin", headers={"Range": "bytes=9-3"})
    assert r.status == 416


def test_multiple_ranges_are_multipart_byteranges(daemon, files):
    data = (files / "bytes.bin").read_bytes()
    r = get_path(daemon, files / "bytes.bin", headers={"Range": "bytes=0-2, 100-104, -3"})
    assert r.status == 206, r.describe()
    ctype = r.header("Content-Type")
    m = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", ctype)
    assert m, ctype
    assert r.header("Content-Length") == str(len(r.body))
    b = m.group(1).encode()
    assert r.body.startswith(b"--" + b + b"\r\n") and r.body.endswith(b"\r\n--" + b + b"--\r\n")
    chunks = r.body[len(b) + 4 : -(len(b) + 8)].split(b"\r\n--" + b + b"\r\n")
    got = []
    for c in chunks:
        head, _, body = c.partition(b"\r\n\r\n")
        assert b"Content-Type: application/octet-stream" in head
        got.append((re.search(rb"Content-Range: bytes (\d+)-(\d+)/10240", head).groups(), body))
    assert got == [
        ((b"0", b"2"), data[0:3]),
        ((b"100", b"104"), data[100:105]),
        ((b"10237", b"10239"), data[10237:]),
    ]


# ------------------------------------------------------------------------- conditionals


def test_conditionals(daemon, files):
    p = files / "hello.txt"
    mtime = int(p.stat().st_mtime)
    at = lambda t: formatdate(t, usegmt=True)  # noqa: E731

    r = get_path(daemon, p, headers={"If-Modified-Since": at(mtime)})
    assert r.status == 304 and r.body == b"", r.describe()
    assert r.header("Last-Modified") == at(mtime)
    r = get_path(daemon, p, headers={"If-Modified-Since": at(mtime - 10)})
    assert r.status == 200 and r.body == b"hello world\n"

    r = get_path(daemon, p, headers={"If-Unmodified-Since": at(mtime - 10)})
    assert r.status == 412 and r.body == b"", r.describe()
    r = get_path(daemon, p, headers={"If-Unmodified-Since": at(mtime + 10)})
    assert r.status == 200

    r = get_path(daemon, p, headers={"Range": "bytes=0-4", "If-Range": at(mtime)})
    assert r.status == 206 and r.body == b"hello"
    r = get_path(daemon, p, headers={"Range": "bytes=0-4", "If-Range": at(mtime - 10)})
    assert r.status == 200 and r.body == b"hello world\n"
    r = get_path(daemon, p, headers={"Range": "bytes=0-4", "If-Range": '"some-etag"'})
    assert r.status == 200


# ------------------------------------------------------------------------- permissions


@pytest.fixture
def unprivileged_daemon(daemon_factory, tmp_path, monkeypatch):
    """A daemon that file permissions apply to. As root, it runs as uid 0 without any
    capability (so mode 000 files are unreadable to it); otherwise as the current user."""
    if os.geteuid() == 0:
        from harness.daemon import daemon_binary

        real = daemon_binary()
        wrapper = tmp_path / "daemon-without-caps"
        # setpriv (util-linux) is needed here; the test fails, not skips, when it is missing.
        wrapper.write_text(
            f"#!/bin/sh\nexec setpriv --bounding-set=-all --inh-caps=-all -- '{real}' \"$@\"\n"
        )
        wrapper.chmod(0o755)
        monkeypatch.setenv("DAYTONA_DAEMON_BIN", str(wrapper))
    return daemon_factory.start()


def test_unreadable_file(unprivileged_daemon, sdk_for, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    secret.chmod(0)
    try:
        d = unprivileged_daemon
        r = get_path(d, secret)
        assert r.status == 403, r.describe()
        assert r.json()["code"] == "FILE_ACCESS_DENIED"
        sandbox = sdk_for(d).sandbox
        with pytest.raises(DaytonaFileAccessDeniedError) as ei:
            sandbox.fs.download_file(str(secret))
        assert ei.value.status_code == 403
        assert f"permission denied: {secret}" in str(ei.value)
    finally:
        secret.chmod(stat.S_IRUSR | stat.S_IWUSR)


# ----------------------------------------------------------------------------- 1 GiB


@pytest.mark.deadline(300)
def test_one_gib_download_is_exact_and_memory_bounded(fresh_daemon, sdk_for, tmp_path):
    src = tmp_path / "big.bin"
    digest = write_pattern_file(src, GIB + 12345)
    sandbox = sdk_for(fresh_daemon).sandbox
    pid = fresh_daemon.proc.pid

    # SDK (bulk-download through the proxy) into a local file.
    local = tmp_path / "big.copy"
    t0 = time.monotonic()
    sandbox.fs.download_file(str(src), str(local))
    sdk_secs = time.monotonic() - t0
    assert local.stat().st_size == GIB + 12345
    assert sha256_file(local) == digest
    local.unlink()

    # Raw single-file GET, hashed while streaming.
    conn = http.client.HTTPConnection("127.0.0.1", fresh_daemon.port, timeout=120)
    try:
        t0 = time.monotonic()
        conn.request("GET", f"/files/download?path={q(src)}")
        resp = conn.getresponse()
        assert resp.status == 200
        assert int(resp.getheader("Content-Length")) == GIB + 12345
        h = hashlib.sha256()
        n = 0
        while chunk := resp.read(4 * MIB):
            h.update(chunk)
            n += len(chunk)
        get_secs = time.monotonic() - t0
    finally:
        conn.close()
    assert n == GIB + 12345 and h.hexdigest() == digest

    hwm = vm_hwm_kib(pid)
    print(f"1 GiB: SDK {sdk_secs:.1f}s, raw GET {get_secs:.1f}s, daemon VmHWM {hwm} KiB")
    assert hwm < 64 * 1024, f"daemon peak RSS {hwm} KiB while streaming 1 GiB"
