"""Uploads (files.md §6-7, sdk-0.226.md §3.4/§4.6, pitfalls §E 38-41) through the SDK, the
generated client and raw sockets.

Uploads are atomic in this daemon (a deliberate deviation from the reference, which wrote in
place): each file is streamed to a hidden temporary file ``.<name>.XXXXXX.upload`` beside its
final target and renamed into place only when complete. The kill tests below prove that an
interrupted upload leaves the old bytes and no temporary file.

Contents are read back with ``GET /files/download`` when the daemon serves it, else straight
from disk (the daemon runs on this machine)."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from daytona import DaytonaError, FileUpload
from daytona_toolbox_api_client import FileSystemApi

from harness import http as raw

MiB = 1 << 20
GiB = 1 << 30


# ----------------------------------------------------------------------------------- helpers


def sha_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def remote_sha(daemon, path: Path | str) -> str:
    """SHA-256 of a file as the daemon serves it (streamed), or from disk when this build has
    no download route yet."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
    try:
        conn.request("GET", "/files/download?path=" + quote(str(path), safe=""))
        resp = conn.getresponse()
        if resp.status == 404:
            body = resp.read()
            if b"no route" in body:
                return sha_file(path)
            raise AssertionError(f"download of {path}: 404 {body[:500]!r}")
        assert resp.status == 200, (resp.status, resp.read()[:500])
        h = hashlib.sha256()
        while chunk := resp.read(MiB):
            h.update(chunk)
        return h.hexdigest()
    finally:
        conn.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_big_file(path: Path, size: int) -> str:
    """Writes ``size`` pseudo-random bytes (each MiB stamped with its index, so a misplaced
    block shows) without holding more than a MiB; returns the SHA-256."""
    block = bytearray(os.urandom(MiB))
    h = hashlib.sha256()
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < size:
            struct.pack_into("<Q", block, 0, i)
            chunk = block[: min(MiB, size - written)]
            f.write(chunk)
            h.update(chunk)
            written += len(chunk)
            i += 1
    return h.hexdigest()


def temp_leftovers(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".upload"))


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def multipart(parts: list[tuple[str, bytes]], boundary: str = "XyZbOuNdArY") -> tuple[bytes, str]:
    out = bytearray()
    for name, data in parts:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="f"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def post_multipart(daemon, parts, **kw) -> raw.RawResponse:
    body, ct = multipart(parts)
    return raw.request(daemon.url, "POST", "/files/bulk-upload", body=body, headers={"Content-Type": ct}, **kw)


# ------------------------------------------------------------------------- SDK round trips


def test_sdk_upload_bytes_creates_parents_0755_and_file_0644(sandbox, daemon, tmp_path):
    dest = tmp_path / "new" / "deeper" / "hello.txt"
    data = b"hello \x00\xff world\n" * 1000
    sandbox.fs.upload_file(data, str(dest))
    assert remote_sha(daemon, dest) == sha(data)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "deeper").st_mode) == 0o755
    assert temp_leftovers(dest.parent) == []


def test_sdk_upload_overwrites_and_keeps_mode(sandbox, daemon, tmp_path):
    dest = tmp_path / "script.sh"
    dest.write_bytes(b"old old old old old")
    os.chmod(dest, 0o751)
    sandbox.fs.upload_file(b"#!/bin/sh\necho new\n", str(dest))
    assert dest.read_bytes() == b"#!/bin/sh\necho new\n"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o751


def test_sdk_upload_files_many_names_in_one_request(sandbox, daemon, tmp_path):
    src = tmp_path / "local-source.bin"
    src.write_bytes(os.urandom(3 * MiB + 17))
    uploads = {
        tmp_path / "out" / "ünïcødé 文件 🚀.txt": b"unicode name",
        tmp_path / "out" / "it's \"quoted\" and spaced .txt": b"quotes and spaces",
        tmp_path / "out" / "empty.txt": b"",
        tmp_path / "out" / "from-disk.bin": src,
    }
    sandbox.fs.upload_files(
        [FileUpload(source=v if isinstance(v, bytes) else str(v), destination=str(k)) for k, v in uploads.items()]
    )
    for dest, source in uploads.items():
        want = sha(source) if isinstance(source, bytes) else sha_file(source)
        assert remote_sha(daemon, dest) == want, dest
    assert os.path.getsize(tmp_path / "out" / "empty.txt") == 0
    assert temp_leftovers(tmp_path / "out") == []


def test_sdk_upload_empty_file_truncates_existing(sandbox, tmp_path):
    dest = tmp_path / "was-full.txt"
    dest.write_bytes(b"x" * 10000)
    sandbox.fs.upload_file(b"", str(dest))
    assert dest.read_bytes() == b""


def test_sdk_upload_relative_path_lands_in_work_dir(sandbox, daemon):
    name = f"rel-{uuid.uuid4().hex}/r.txt"
    sandbox.fs.upload_file(b"relative", name)
    assert (daemon.workdir / name).read_bytes() == b"relative"


def test_sdk_upload_through_symlink_keeps_the_link(sandbox, daemon, tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    (real_dir / "target.txt").write_bytes(b"before")
    link = tmp_path / "link.txt"
    link.symlink_to("real/target.txt")  # relative link into another directory
    sandbox.fs.upload_file(b"after", str(link))
    assert link.is_symlink() and os.readlink(link) == "real/target.txt"
    assert (real_dir / "target.txt").read_bytes() == b"after"
    assert temp_leftovers(tmp_path) == [] and temp_leftovers(real_dir) == []


def test_sdk_upload_through_dangling_symlink_creates_target(sandbox, daemon, tmp_path):
    link = tmp_path / "dangling"
    target = tmp_path / "sub" / "born.txt"
    (tmp_path / "sub").mkdir()
    link.symlink_to(target)
    assert not link.exists()
    sandbox.fs.upload_file(b"now I exist", str(link))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"now I exist"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_sdk_upload_to_directory_fails(sandbox, tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(DaytonaError) as e:
        sandbox.fs.upload_file(b"data", str(tmp_path / "adir"))
    assert "400" in str(e.value) and "is a directory" in str(e.value), str(e.value)
    assert os.listdir(tmp_path / "adir") == []
    assert temp_leftovers(tmp_path) == []


def test_sdk_upload_under_a_file_fails_with_mkdir_error(sandbox, tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    dest = tmp_path / "plain" / "x.txt"
    with pytest.raises(DaytonaError) as e:
        sandbox.fs.upload_file(b"data", str(dest))
    assert f"{dest}: mkdir {tmp_path / 'plain'}: " in str(e.value), str(e.value)
    assert "not a directory" in str(e.value)


def test_sdk_upload_to_proc_fails_even_for_root(sandbox):
    # /proc/version accepts open(O_WRONLY) from root but every write fails with EIO; no
    # temporary file can be made in /proc, so this also exercises the in-place fallback.
    with pytest.raises(DaytonaError) as e:
        sandbox.fs.upload_file(b"nope", "/proc/version")
    assert "/proc/version: write: " in str(e.value) and "input/output error" in str(e.value), str(e.value)


def test_sdk_upload_to_immutable_file_fails_and_keeps_it(sandbox, tmp_path):
    # chattr +i makes a file unreplaceable and unwritable even for root (CAP_LINUX_IMMUTABLE
    # is needed to set it, plain root rights do not bypass it). The temporary file is written,
    # the rename is refused (EPERM), the in-place fallback is refused too, and the temporary
    # file must be gone afterwards.
    chattr = shutil.which("chattr")
    assert chattr, "this test needs chattr (e2fsprogs)"
    dest = tmp_path / "immutable.txt"
    dest.write_bytes(b"carved in stone")
    r = subprocess.run([chattr, "+i", str(dest)], capture_output=True, text=True)
    assert r.returncode == 0, f"chattr +i failed (needs root and an ext2/3/4-like fs): {r.stderr}"
    try:
        with pytest.raises(DaytonaError) as e:
            sandbox.fs.upload_file(b"graffiti" * 1000, str(dest))
        assert f"{dest}: create: open {dest}: operation not permitted" in str(e.value), str(e.value)
        assert dest.read_bytes() == b"carved in stone"
        assert temp_leftovers(tmp_path) == []
    finally:
        subprocess.run([chattr, "-i", str(dest)], check=False)


def test_sdk_streaming_upload_is_chunked_and_exact(sandbox, daemon, tmp_path):
    data = os.urandom(5 * MiB + 3)
    dest = tmp_path / "streamed.bin"
    seen = []
    sandbox.fs.upload_file_stream(io.BytesIO(data), str(dest), on_progress=lambda p: seen.append(p.bytes_sent))
    assert remote_sha(daemon, dest) == sha(data)
    assert seen and seen[-1] == len(data)


@pytest.mark.deadline(300)
def test_sdk_upload_1gib_round_trip_with_bounded_memory(daemon_factory, sdk_for, tmp_path):
    d = daemon_factory.start()
    sandbox = sdk_for(d).sandbox
    src = tmp_path / "big.src"
    want = make_big_file(src, GiB)
    dest = tmp_path / "dest" / "big.bin"
    t0 = time.monotonic()
    sandbox.fs.upload_file(str(src), str(dest))
    elapsed = time.monotonic() - t0
    hwm = vm_hwm_kib(d.proc.pid)
    assert os.path.getsize(dest) == GiB
    assert remote_sha(d, dest) == want
    assert temp_leftovers(dest.parent) == []
    assert hwm < 64 * 1024, f"daemon peak RSS {hwm} KiB during a 1 GiB upload ({elapsed:.1f}s)"
    src.unlink()
    dest.unlink()


# --------------------------------------------------------------------- upload-v2 and legacy


def test_upload_v2_generated_client_multipart(toolbox, daemon, tmp_path):
    dest = tmp_path / "v2 dir" / "gen é.txt"
    data = os.urandom(100_000)
    res = FileSystemApi(toolbox).upload_file(path=str(dest), file=("ignored-name", data))
    assert (res.name, res.path, res.type) == ("gen é.txt", str(dest), "file")
    assert remote_sha(daemon, dest) == sha(data)
    assert stat.S_IMODE(os.stat(dest.parent).st_mode) == 0o755


def test_upload_v2_raw_body_and_extra_query_params(daemon, tmp_path):
    dest = tmp_path / "raw.bin"
    dest.write_bytes(b"old")
    data = os.urandom(2 * MiB)
    r = raw.request(
        daemon.url,
        "POST",
        f"/files/upload-v2?path={quote(str(dest))}&expires=123&signature=v1_abc",
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status == 200, r.describe()
    assert r.json() == {"name": "raw.bin", "path": str(dest), "type": "file"}
    assert remote_sha(daemon, dest) == sha(data)


def test_upload_v2_errors(daemon, tmp_path):
    r = raw.request(daemon.url, "POST", "/files/upload-v2", body=b"x")
    assert r.status == 400 and r.json()["message"] == "bad request: path is required", r.describe()
    (tmp_path / "d").mkdir()
    r = raw.request(daemon.url, "POST", f"/files/upload-v2?path={quote(str(tmp_path / 'd'))}", body=b"x")
    assert r.status == 400 and "is a directory" in r.json()["message"], r.describe()
    body, ct = multipart([("notfile", b"zzz")])
    r = raw.request(
        daemon.url, "POST", f"/files/upload-v2?path={quote(str(tmp_path / 'n'))}", body=body, headers={"Content-Type": ct}
    )
    assert r.status == 400 and "'file'" in r.json()["message"], r.describe()
    assert not (tmp_path / "n").exists()


def test_legacy_upload_answers_empty_object_and_makes_0750_parents(daemon, tmp_path):
    dest = tmp_path / "legacy" / "l.txt"
    body, ct = multipart([("other", b"skip me"), ("file", b"legacy bytes")])
    r = raw.request(daemon.url, "POST", f"/files/upload?path={quote(str(dest))}", body=body, headers={"Content-Type": ct})
    assert r.status == 200, r.describe()
    assert r.json() == {} and "application/json" in r.header("Content-Type")
    assert dest.read_bytes() == b"legacy bytes"
    assert stat.S_IMODE(os.stat(tmp_path / "legacy").st_mode) == 0o750


# ------------------------------------------------------------------ bulk-upload wire contract


def test_bulk_success_shape_in_order(daemon, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    r = post_multipart(daemon, [("files[0].path", str(a).encode()), ("files[0].file", b"AAA"),
                                ("files[1].path", str(b).encode()), ("files[1].file", b"BB")])
    assert r.status == 200, r.describe()
    assert r.json() == {"files": [{"path": str(a), "bytes": 3}, {"path": str(b), "bytes": 2}]}


def test_bulk_per_file_errors_do_not_stop_later_parts(daemon, tmp_path):
    ok = tmp_path / "ok.txt"
    (tmp_path / "dir").mkdir()
    r = post_multipart(
        daemon,
        [
            ("files[0].file", b"orphan"),
            ("files[1].path", b"  \n "),
            ("files[2].path", str(tmp_path / "dir").encode()),
            ("files[2].file", b"x"),
            ("files[3].path", f"  {ok}\n".encode()),
            ("files[3].file", b"fine"),
        ],
    )
    assert r.status == 400, r.describe()
    body = r.json()
    d = tmp_path / "dir"
    assert body == {
        "errors": [
            "file[0]: missing .path metadata",
            "path[1]: empty path",
            f"{d}: create: open {d}: is a directory",
        ],
        "files": [{"path": str(ok), "bytes": 4}],
    }
    assert ok.read_bytes() == b"fine"


def test_bulk_sdk_error_message(sandbox, tmp_path):
    (tmp_path / "isdir").mkdir()
    with pytest.raises(DaytonaError) as e:
        sandbox.fs.upload_files([FileUpload(source=b"x", destination=str(tmp_path / "isdir"))])
    assert str(e.value).startswith("400: ") or "400: " in str(e.value), str(e.value)
    assert e.value.status_code == 400


def test_bulk_not_multipart(daemon):
    r = raw.request(daemon.url, "POST", "/files/bulk-upload", body=b'{"a":1}', headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json() == {"errors": ["invalid multipart form"], "files": []}, r.describe()


def test_bulk_truncated_body_answers_quickly_and_keeps_old_file(daemon, tmp_path):
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"precious")
    body, ct = multipart([("files[0].path", str(dest).encode()), ("files[0].file", os.urandom(MiB))])
    t0 = time.monotonic()
    r = raw.request(daemon.url, "POST", "/files/bulk-upload", body=body[: len(body) // 2], headers={"Content-Type": ct}, timeout=10)
    assert time.monotonic() - t0 < 5
    assert r.status == 400, r.describe()
    errors = r.json()["errors"]
    assert errors[-1].startswith("reading part: "), errors
    assert dest.read_bytes() == b"precious"
    assert temp_leftovers(tmp_path) == []


def test_bulk_chunked_request_without_content_length(daemon, tmp_path):
    dest = tmp_path / "chunked.bin"
    data = os.urandom(3 * MiB)
    body, ct = multipart([("files[0].path", str(dest).encode()), ("files[0].file", data)])
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
        conn.request("POST", "/files/bulk-upload", body=pieces, headers={"Content-Type": ct}, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert json.loads(resp.read()) == {"files": [{"path": str(dest), "bytes": len(data)}]}
    finally:
        conn.close()
    assert dest.read_bytes() == data


def test_bulk_error_answer_drains_body_and_keeps_connection(daemon, tmp_path):
    # The first part fails at once; the daemon must still read the 8 MiB behind it before
    # answering, so the same connection serves the next request.
    body, ct = multipart([("files[0].file", os.urandom(8 * MiB))])
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        conn.request("POST", "/files/bulk-upload", body=body, headers={"Content-Type": ct})
        resp = conn.getresponse()
        assert resp.status == 400
        assert json.loads(resp.read())["errors"] == ["file[0]: missing .path metadata"]
        conn.request("GET", "/version")
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------- kill tests

KILL_SIZE = 256 * MiB


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.parametrize(
    "route,framing,abort",
    [
        ("bulk", "content-length", "rst"),
        ("bulk", "chunked", "fin"),
        ("v2", "content-length", "fin"),
        ("v2", "chunked", "rst"),
    ],
)
def test_kill_mid_upload_keeps_old_file_and_leaves_no_temp(daemon, tmp_path, route, framing, abort):
    dest = tmp_path / "victim.bin"
    old = os.urandom(100_000)
    dest.write_bytes(old)
    payload_block = os.urandom(MiB)

    if route == "bulk":
        boundary = "KiLlBoUnDaRy"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files[0].path"\r\n\r\n{dest}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files[0].file"; filename="x"\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        target = "/files/bulk-upload"
        ctype = f"multipart/form-data; boundary={boundary}"
    else:
        head, tail = b"", b""
        target = f"/files/upload-v2?path={quote(str(dest))}"
        ctype = "application/octet-stream"
    total = len(head) + KILL_SIZE + len(tail)

    request = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
    if framing == "chunked":
        request += "Transfer-Encoding: chunked\r\n\r\n"
    else:
        request += f"Content-Length: {total}\r\n\r\n"

    def frame(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data

    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    try:
        sock.sendall(request.encode())
        if head:
            sock.sendall(frame(head))
        for _ in range(KILL_SIZE // MiB // 2):
            sock.sendall(frame(payload_block))
        # The daemon is streaming into a temporary file beside the target by now.
        _wait_for(lambda: temp_leftovers(tmp_path) != [], 10, "the temporary upload file")
        assert dest.read_bytes() == old, "the destination changed before the upload finished"
        if abort == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_WR)
    finally:
        sock.close()

    _wait_for(lambda: temp_leftovers(tmp_path) == [], 15, "the daemon to remove the temporary file")
    assert sorted(os.listdir(tmp_path)) == ["victim.bin"]
    assert dest.read_bytes() == old
    # The daemon is fine afterwards.
    assert raw.get(daemon.url, "/version").status == 200
