"""Listing, metadata and file operations (files.md §1-3, §10-14; sdk-0.226.md §4.1, §2.6, §2.7)
through the official SDK (`sandbox.fs.*`), with raw HTTP where the SDK hides the wire.

The tests create their fixtures directly on disk (the daemon runs on this machine) and check
what the daemon reports or did against `os.stat`. Several checks need root (chown to arbitrary
ids); the CI runs as root, and so do these tests: they fail otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from daytona import (
    DaytonaBadRequestError,
    DaytonaConflictError,
    DaytonaError,
    DaytonaFileAccessDeniedError,
    DaytonaFileNotFoundError,
)

from harness import http as raw

UNICODE_NAME = "ünïcødé-日本語.txt"
QUOTED_NAME = 'with "quotes" and spaces.txt'
# A /proc entry the daemon itself cannot change even as root (EPERM): permission bits do not
# stop root, and chattr +i needs CAP_LINUX_IMMUTABLE, which containers usually lack.
PROC_READ_ONLY = "/proc/self/status"


@pytest.fixture
def area(daemon) -> Path:
    d = Path(daemon.workdir) / f"area-{uuid.uuid4().hex[:10]}"
    d.mkdir()
    return d


def q(path) -> str:
    return quote(str(path), safe="/")


def go_mode(st_mode: int) -> str:
    """Go's FileMode.String() for a raw st_mode, written independently of the daemon."""
    fmt = stat.S_IFMT(st_mode)
    letters = ""
    letters += "d" if fmt == stat.S_IFDIR else ""
    letters += "L" if fmt == stat.S_IFLNK else ""
    letters += "D" if fmt in (stat.S_IFBLK, stat.S_IFCHR) else ""
    letters += "p" if fmt == stat.S_IFIFO else ""
    letters += "S" if fmt == stat.S_IFSOCK else ""
    letters += "u" if st_mode & stat.S_ISUID else ""
    letters += "g" if st_mode & stat.S_ISGID else ""
    letters += "c" if fmt == stat.S_IFCHR else ""
    letters += "t" if st_mode & stat.S_ISVTX else ""
    rwx = "".join(c if st_mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return (letters or "-") + rwx


GO_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{0,8}[1-9]))? ([+-])(\d{2})(\d{2}) (\S+)$"
)
RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{0,8}[1-9]))?(Z|([+-])(\d{2}):(\d{2}))$"
)


def _epoch_ns(date_time: str, frac: str | None, sign: str, hh: str, mm: str) -> int:
    naive = datetime.strptime(date_time, "%Y-%m-%d %H:%M:%S")
    offset = (int(hh) * 3600 + int(mm) * 60) * (-1 if sign == "-" else 1)
    secs = int((naive - datetime(1970, 1, 1)).total_seconds()) - offset
    return secs * 1_000_000_000 + int((frac or "").ljust(9, "0"))


def mod_time_ns(value: str) -> tuple[int, str]:
    m = GO_TIME.match(value)
    assert m, f"modTime {value!r} is not Go's time.String() layout"
    offset = m.group(3) + m.group(4) + m.group(5)
    return _epoch_ns(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)), offset


def modified_at_ns(value: str) -> tuple[int, str]:
    m = RFC3339.match(value)
    assert m, f"modifiedAt {value!r} is not RFC 3339 with trimmed nanoseconds"
    if m.group(4) == "Z":
        sign, hh, mm = "+", "00", "00"
    else:
        sign, hh, mm = m.group(5), m.group(6), m.group(7)
    return _epoch_ns(f"{m.group(1)} {m.group(2)}", m.group(3), sign, hh, mm), sign + hh + mm


def assert_info_matches(info, path: Path, name: str):
    st = os.stat(path)  # follows links, as the daemon does
    assert info.name == name
    assert info.size == st.st_size, (info.size, st.st_size)
    assert info.is_dir == stat.S_ISDIR(st.st_mode)
    assert info.mode == go_mode(st.st_mode)
    assert info.permissions == f"{st.st_mode & 0o777:04o}"
    assert info.owner == str(st.st_uid) and info.group == str(st.st_gid)
    t1, off1 = mod_time_ns(info.mod_time)
    t2, off2 = modified_at_ns(info.modified_at)
    assert t1 == t2 == st.st_mtime_ns, (info.mod_time, info.modified_at, st.st_mtime_ns)
    assert off1 == off2, "both times are in the daemon's local zone"


def make_tree(area: Path) -> None:
    (area / "plain.txt").write_text("hello\n")
    (area / "empty").write_bytes(b"")
    (area / UNICODE_NAME).write_text("unicode")
    (area / QUOTED_NAME).write_text("quoted")
    (area / "sub" / "deeper").mkdir(parents=True)
    (area / "sub" / "inner.txt").write_text("inner")
    (area / "sub" / "deeper" / "leaf").write_text("leaf")
    (area / "link-to-file").symlink_to(area / "plain.txt")
    (area / "link-to-dir").symlink_to(area / "sub")
    (area / "dangling").symlink_to(area / "missing-target")


# ------------------------------------------------------------------------------- list_files


def test_list_files_depth_one_renders_every_entry(sandbox, area):
    make_tree(area)
    listing = sandbox.fs.list_files(str(area))
    names = [f.name for f in listing]
    expected = sorted(
        ["plain.txt", "empty", UNICODE_NAME, QUOTED_NAME, "sub", "link-to-file", "link-to-dir"],
        key=lambda n: n.encode(),
    )
    # Sorted by bytes; the dangling link's stat fails, so it is silently left out.
    assert names == expected
    for f in listing:
        assert_info_matches(f, area / f.name, f.name)
        assert f.path == f"{area}/{f.name}"
    by_name = {f.name: f for f in listing}
    assert by_name["empty"].size == 0
    assert by_name["link-to-file"].size == len("hello\n") and not by_name["link-to-file"].is_dir
    assert by_name["link-to-dir"].is_dir and by_name["link-to-dir"].mode.startswith("d")


def test_list_files_depth_walks_in_preorder_without_following_links(sandbox, area):
    make_tree(area)
    rel = os.path.relpath(area, sandbox.get_work_dir())
    two = sandbox.fs.list_files(rel, depth=2)
    paths = [f.path for f in two]
    top = sorted(
        ["plain.txt", "empty", UNICODE_NAME, QUOTED_NAME, "sub", "link-to-file", "link-to-dir"],
        key=lambda n: n.encode(),
    )
    expected = []
    for n in top:
        expected.append(f"{rel}/{n}")
        if n == "sub":  # a real directory; link-to-dir is listed but not entered
            expected += [f"{rel}/sub/deeper", f"{rel}/sub/inner.txt"]
    assert paths == expected
    three = sandbox.fs.list_files(f"{rel}/./", depth=3)
    assert [f.path for f in three if "/sub/" in f.path] == [
        f"{rel}/sub/deeper",
        f"{rel}/sub/deeper/leaf",
        f"{rel}/sub/inner.txt",
    ], "the path is the cleaned join of the requested spelling and the relative path"
    leaf = next(f for f in three if f.path.endswith("leaf"))
    assert_info_matches(leaf, area / "sub" / "deeper" / "leaf", "leaf")
    # depth=1 is the plain listing; through a symlinked root the reported paths keep the
    # requested spelling.
    assert [f.path for f in sandbox.fs.list_files(rel, depth=1)] == [f"{rel}/{n}" for n in top]
    via_link = sandbox.fs.list_files(str(area / "link-to-dir"), depth=5)
    assert [f.path for f in via_link] == [
        f"{area}/link-to-dir/deeper",
        f"{area}/link-to-dir/deeper/leaf",
        f"{area}/link-to-dir/inner.txt",
    ]


def test_list_files_empty_dir_and_default_path(sandbox, daemon, area):
    assert sandbox.fs.list_files(str(area)) == []
    r = raw.get(daemon.url, f"/files?path={q(area)}")
    assert r.status == 200 and r.body.strip() == b"[]", r.describe()
    # No path: the daemon's work dir.
    r = raw.get(daemon.url, "/files")
    assert r.status == 200, r.describe()
    assert area.name in [e["name"] for e in r.json()]


def test_list_files_errors(sandbox, daemon, area):
    with pytest.raises(DaytonaFileNotFoundError) as info:
        sandbox.fs.list_files(str(area / "does-not-exist"))
    assert info.value.status_code == 404 and info.value.code == "FILE_NOT_FOUND"
    (area / "f").write_text("x")
    with pytest.raises(DaytonaBadRequestError) as info:  # a file where a directory is needed
        sandbox.fs.list_files(str(area / "f"))
    assert info.value.status_code == 400 and "not a directory" in str(info.value)
    for bad in ("0", "-2", "abc", "1.5"):
        r = raw.get(daemon.url, f"/files?path={q(area)}&depth={bad}")
        assert r.status == 400, r.describe()
        body = r.json()
        assert body["message"] == "bad request: depth must be an integer >= 1", body
        assert body["code"] == "BAD_REQUEST" and body["source"] == "DAYTONA_DAEMON", body
    with pytest.raises(DaytonaError, match="depth must be at least 1"):
        sandbox.fs.list_files(str(area), depth=0)  # refused by the SDK itself


def test_slash_forms_answer_directly(daemon, area):
    (area / "a").write_text("1")
    (area / "b").write_text("2")
    for route in ("/files", "/files/"):
        r = raw.get(daemon.url, f"{route}?path={q(area)}")
        assert r.status == 200, r.describe()
        assert [e["name"] for e in r.json()] == ["a", "b"]
    r = raw.request(daemon.url, "DELETE", f"/files/?path={q(area / 'a')}")
    assert r.status == 204 and r.body == b"", r.describe()
    r = raw.request(daemon.url, "DELETE", f"/files?path={q(area / 'b')}")
    assert r.status == 204 and r.body == b"", r.describe()
    assert list(area.iterdir()) == []


def test_path_field_left_out_for_strict_go_clients(daemon, area):
    (area / "x").write_text("")
    old_go = {"X-Daytona-Source": "sdk-go", "X-Daytona-SDK-Version": "0.187.3"}
    r = raw.get(daemon.url, f"/files?path={q(area)}", headers=old_go)
    assert r.status == 200 and r.json() and "path" not in r.json()[0], r.describe()
    for headers in (
        {"X-Daytona-Source": "sdk-go", "X-Daytona-SDK-Version": "0.188.0"},
        {"X-Daytona-Source": "sdk-go", "X-Daytona-SDK-Version": "0.0.0-dev"},
        {"X-Daytona-Source": "sdk-python", "X-Daytona-SDK-Version": "0.100.0"},
    ):
        r = raw.get(daemon.url, f"/files?path={q(area)}", headers=headers)
        assert r.json()[0]["path"] == f"{area}/x", (headers, r.describe())


# ---------------------------------------------------------------------------- get_file_info


def test_get_file_info_kinds(sandbox, area):
    make_tree(area)
    for name in ("plain.txt", "empty", UNICODE_NAME, QUOTED_NAME, "sub"):
        info = sandbox.fs.get_file_info(str(area / name))
        assert_info_matches(info, area / name, name)
        assert info.path is None, "only listings carry path"
    # A symlink is followed; the name stays the link's.
    link = area / "link-to-file"
    assert_info_matches(sandbox.fs.get_file_info(str(link)), link, "link-to-file")
    assert sandbox.fs.get_file_info(str(area / "link-to-dir")).is_dir
    # Name rules: trailing slashes removed, "/" for the root.
    assert sandbox.fs.get_file_info(str(area / "sub") + "//").name == "sub"
    assert sandbox.fs.get_file_info("/").name == "/"
    assert sandbox.fs.get_file_info(".").name == "."


def test_get_file_info_mode_letters(sandbox, area):
    suid = area / "suid"
    suid.write_text("#!/bin/sh\n")
    os.chmod(suid, 0o4755)
    sticky = area / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    sgid = area / "sgid"
    sgid.mkdir()
    os.chmod(sgid, 0o2755)
    fifo = area / "fifo"
    os.mkfifo(fifo, 0o644)
    sock_path = area / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        want = {
            suid: ("urwxr-xr-x", "0755"),
            sticky: ("dtrwxrwxrwx", "0777"),
            sgid: ("dgrwxr-xr-x", "0755"),
            fifo: ("prw-r--r--", "0644"),
            Path("/dev/null"): ("Dcrw-rw-rw-", "0666"),
        }
        for path, (mode, perms) in want.items():
            info = sandbox.fs.get_file_info(str(path))
            assert (info.mode, info.permissions) == (mode, perms), path
            assert_info_matches(info, path, path.name)
        info = sandbox.fs.get_file_info(str(sock_path))
        assert info.mode == go_mode(os.stat(sock_path).st_mode) and info.mode.startswith("S")
    finally:
        sock.close()


def test_get_file_info_errors(sandbox, daemon, area):
    (area / "dangling").symlink_to(area / "nowhere")
    for missing in (area / "nope", area / "dangling", area / "nope" / "deeper"):
        with pytest.raises(DaytonaFileNotFoundError) as info:
            sandbox.fs.get_file_info(str(missing))
        err = info.value
        assert type(err) is DaytonaFileNotFoundError
        assert (err.status_code, err.code, err.source) == (404, "FILE_NOT_FOUND", "DAYTONA_DAEMON")
        assert str(err).startswith("Failed to get file info: ")
    r = raw.get(daemon.url, "/files/info")
    assert r.status == 400, r.describe()
    assert r.json()["message"] == "bad request: path is required"
    assert r.json()["code"] == "BAD_REQUEST"


# ---------------------------------------------------------------------------- create_folder


def test_create_folder(sandbox, daemon, area):
    umask = os.umask(0)
    os.umask(umask)
    nested = area / "a" / "b" / UNICODE_NAME
    sandbox.fs.create_folder(str(nested), "750")
    for d in (area / "a", area / "a" / "b", nested):
        assert d.is_dir()
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o750 & ~umask
    # Existing directory: success, mode untouched.
    sandbox.fs.create_folder(str(nested), "777")
    assert stat.S_IMODE(os.stat(nested).st_mode) == 0o750 & ~umask
    # Leading zero, special bits dropped; relative to the work dir.
    rel = os.path.relpath(area / QUOTED_NAME, daemon.workdir)
    sandbox.fs.create_folder(rel, "04755")
    assert stat.S_IMODE(os.stat(area / QUOTED_NAME).st_mode) == 0o755 & ~umask
    r = raw.request(daemon.url, "POST", f"/files/folder?path={q(area / 'defaults')}")
    assert r.status == 201 and r.body == b"", r.describe()
    assert stat.S_IMODE(os.stat(area / "defaults").st_mode) == 0o755 & ~umask


def test_create_folder_errors(sandbox, daemon, area):
    for bad in ("abc", "9", "0o755", "+755"):
        with pytest.raises(DaytonaBadRequestError, match="invalid mode format"):
            sandbox.fs.create_folder(str(area / "x"), bad)
    assert not (area / "x").exists()
    (area / "file").write_text("")
    with pytest.raises(DaytonaBadRequestError) as info:  # a file is in the way
        sandbox.fs.create_folder(str(area / "file" / "sub"), "755")
    assert info.value.code == "BAD_REQUEST"
    r = raw.request(daemon.url, "POST", "/files/folder?mode=755")
    assert r.status == 400 and r.json()["message"] == "bad request: path is required", r.describe()


# ------------------------------------------------------------------------------- move_files


def test_move_files(sandbox, daemon, area):
    (area / UNICODE_NAME).write_text("content")
    sandbox.fs.move_files(str(area / UNICODE_NAME), str(area / QUOTED_NAME))
    assert not (area / UNICODE_NAME).exists()
    assert (area / QUOTED_NAME).read_text() == "content"
    (area / "dir" / "inner").mkdir(parents=True)
    (area / "dir" / "inner" / "f").write_text("f")
    rel = os.path.relpath(area, daemon.workdir)
    sandbox.fs.move_files(f"{rel}/dir", f"{rel}/renamed")
    assert (area / "renamed" / "inner" / "f").read_text() == "f" and not (area / "dir").exists()
    # A symlink is moved as a link.
    (area / "link").symlink_to(area / "renamed")
    sandbox.fs.move_files(str(area / "link"), str(area / "link2"))
    assert (area / "link2").is_symlink()


def test_move_files_never_overwrites(sandbox, area):
    (area / "a").write_text("a")
    (area / "b").write_text("b")
    (area / "d").mkdir()
    for dest in ("b", "d"):
        with pytest.raises(DaytonaConflictError) as info:
            sandbox.fs.move_files(str(area / "a"), str(area / dest))
        assert info.value.status_code == 409 and info.value.code == "CONFLICT"
        assert "destination already exists" in str(info.value)
    assert (area / "a").read_text() == "a" and (area / "b").read_text() == "b"


def test_move_files_errors(sandbox, daemon, area):
    (area / "a").write_text("a")
    with pytest.raises(DaytonaFileNotFoundError):
        sandbox.fs.move_files(str(area / "missing"), str(area / "c"))
    with pytest.raises(DaytonaFileNotFoundError):  # the destination's parent does not exist
        sandbox.fs.move_files(str(area / "a"), str(area / "no" / "c"))
    r = raw.request(daemon.url, "POST", f"/files/move?source={q(area / 'a')}")
    assert r.status == 400, r.describe()
    assert r.json()["message"] == "bad request: source and destination paths are required"
    (area / "d").mkdir()
    with pytest.raises(DaytonaBadRequestError):  # into its own subtree
        sandbox.fs.move_files(str(area / "d"), str(area / "d" / "inside"))
    assert (area / "d").is_dir()


def test_move_across_file_systems_copies_then_deletes(sandbox, area):
    # /dev/shm is a tmpfs in containers; rename(2) fails with EXDEV and the daemon copies.
    other = Path("/dev/shm")
    assert other.is_dir() and os.stat(other).st_dev != os.stat(area).st_dev, (
        "this test needs /dev/shm on a different file system than the daemon's work dir"
    )
    src = area / "tree"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(src / "bin" / "run.sh", 0o751)
    (src / "data.txt").write_text("data")
    (src / "link").symlink_to(src / "data.txt")
    dest = other / f"moved-{uuid.uuid4().hex[:8]}"
    try:
        sandbox.fs.move_files(str(src), str(dest))
        assert not src.exists()
        assert (dest / "data.txt").read_text() == "data"
        assert stat.S_IMODE(os.stat(dest / "bin" / "run.sh").st_mode) == 0o751
        # Links are followed by the copy.
        assert not (dest / "link").is_symlink() and (dest / "link").read_text() == "data"
        single = area / "single"
        single.write_text("one")
        sandbox.fs.move_files(str(single), str(dest / "single"))
        assert (dest / "single").read_text() == "one" and not single.exists()
    finally:
        shutil.rmtree(dest, ignore_errors=True)


# --------------------------------------------------------------------- set_file_permissions


def test_set_file_permissions(sandbox, daemon, area):
    assert os.geteuid() == 0, "chown to arbitrary ids needs root (the CI runs as root)"
    f = area / QUOTED_NAME
    f.write_text("x")
    sandbox.fs.set_file_permissions(str(f), mode="640")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o640
    sandbox.fs.set_file_permissions(str(f), mode="4755")  # special bits are dropped
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o755
    sandbox.fs.set_file_permissions(str(f), owner="1234", group="5678")
    st = os.stat(f)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    sandbox.fs.set_file_permissions(str(f), group="-1")  # -1 leaves it unchanged
    assert os.stat(f).st_gid == 5678
    # Names come from /etc/passwd and /etc/group.
    sandbox.fs.set_file_permissions(str(f), owner="root", group="root")
    st = os.stat(f)
    assert (st.st_uid, st.st_gid) == (0, 0)
    # A symlink is followed.
    (area / "link").symlink_to(f)
    sandbox.fs.set_file_permissions(str(area / "link"), mode="600")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    rel = os.path.relpath(f, daemon.workdir)
    sandbox.fs.set_file_permissions(rel, mode="0604")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o604


def test_set_file_permissions_errors(sandbox, area):
    f = area / "f"
    f.write_text("x")
    os.chmod(f, 0o644)
    with pytest.raises(DaytonaBadRequestError, match="invalid mode format"):
        sandbox.fs.set_file_permissions(str(f), mode="rwx")
    with pytest.raises(DaytonaBadRequestError, match="user not found"):
        sandbox.fs.set_file_permissions(str(f), owner="no-such-user-here")
    with pytest.raises(DaytonaBadRequestError, match="group not found"):
        sandbox.fs.set_file_permissions(str(f), mode="600", group="no-such-group-here")
    # Mode is applied before ownership: the failing lookup left the mode changed.
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    with pytest.raises(DaytonaFileNotFoundError):
        sandbox.fs.set_file_permissions(str(area / "missing"), mode="600")
    with pytest.raises(DaytonaFileAccessDeniedError) as info:
        sandbox.fs.set_file_permissions(PROC_READ_ONLY, mode="777")
    assert (info.value.status_code, info.value.code) == (403, "FILE_ACCESS_DENIED")


# ------------------------------------------------------------------------- replace_in_files


def test_replace_in_files(sandbox, area):
    a = area / UNICODE_NAME
    a.write_text("foo(x) = foo(y); foo(x)\n")
    os.chmod(a, 0o751)
    b = area / QUOTED_NAME
    b.write_text("nothing to see\n")
    old = time.time() - 3600
    os.utime(b, (old, old))
    (area / "link").symlink_to(a)
    empty = area / "empty"
    empty.write_bytes(b"")
    results = sandbox.fs.replace_in_files(
        [str(area / "link"), str(b), str(empty), str(area / "missing"), str(area)],
        "foo(x)",  # literal, not a regular expression
        "日本",
    )
    got = [(r.file, r.success, r.error) for r in results]
    assert got[:3] == [(str(p), True, None) for p in (area / "link", b, empty)]
    missing = f"open {area}/missing: no such file or directory"
    assert got[3] == (str(area / "missing"), False, missing)
    assert got[4] == (str(area), False, f"read {area}: is a directory")
    assert a.read_text() == "日本 = foo(y); 日本\n"
    assert (area / "link").is_symlink(), "the link is kept; its target is rewritten"
    assert stat.S_IMODE(os.stat(a).st_mode) == 0o751
    assert b.read_text() == "nothing to see\n"
    assert os.stat(b).st_mtime > old + 60, "written back even without a match"
    assert empty.read_bytes() == b""
    assert sorted(p.name for p in area.iterdir()) == sorted(
        [UNICODE_NAME, QUOTED_NAME, "link", "empty"]
    ), "no temporary files left behind"
    # Replacing with the empty string.
    sandbox.fs.replace_in_files([str(a)], "日本", "")
    assert a.read_text() == " = foo(y); \n"


def test_replace_in_files_unwritable_target(sandbox, area):
    # Root may open /proc/version for writing, but the write itself fails: the per-file result
    # reports it and the others are still processed.
    ok = area / "ok"
    ok.write_text("Linux\n")
    results = sandbox.fs.replace_in_files(["/proc/version", str(ok)], "Linux", "Unix")
    assert results[0].file == "/proc/version" and results[0].success is False
    assert results[0].error and "/proc/version" in results[0].error
    assert (results[1].success, ok.read_text()) == (True, "Unix\n")
    assert open("/proc/version").read().startswith("Linux")


def test_replace_in_files_body_errors(daemon):
    r = raw.post_json(daemon.url, "/files/replace", {"files": [], "pattern": "a", "newValue": ""})
    assert r.status == 200 and r.json() == [], r.describe()
    for body, field in (
        ({"pattern": "a", "newValue": "b"}, "files"),
        ({"files": ["x"], "pattern": "", "newValue": "b"}, "pattern"),
        ({"files": ["x"], "pattern": "a"}, "newValue"),
    ):
        r = raw.post_json(daemon.url, "/files/replace", body)
        assert r.status == 400, r.describe()
        assert r.json()["message"] == f"bad request: invalid request body: {field} is required"
    r = raw.request(daemon.url, "POST", "/files/replace", body="{not json")
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()


# ------------------------------------------------------------------------------ delete_file


def test_delete_file(sandbox, daemon, area):
    make_tree(area)
    sandbox.fs.delete_file(str(area / UNICODE_NAME))
    sandbox.fs.delete_file(str(area / QUOTED_NAME))
    sandbox.fs.delete_file(os.path.relpath(area / "empty", daemon.workdir))
    assert not (area / UNICODE_NAME).exists() and not (area / QUOTED_NAME).exists()
    assert not (area / "empty").exists()
    # A link to a file: the link goes, the target stays.
    sandbox.fs.delete_file(str(area / "link-to-file"))
    assert not (area / "link-to-file").is_symlink() and (area / "plain.txt").exists()
    # A link to a directory needs recursive, and then only the link goes.
    no_recursive = "cannot delete directory without recursive flag"
    with pytest.raises(DaytonaBadRequestError, match=no_recursive):
        sandbox.fs.delete_file(str(area / "link-to-dir"))
    sandbox.fs.delete_file(str(area / "link-to-dir"), recursive=True)
    assert not (area / "link-to-dir").is_symlink() and (area / "sub" / "deeper" / "leaf").exists()
    # A dangling link cannot be deleted here: the existence check follows it (Go quirk).
    with pytest.raises(DaytonaFileNotFoundError):
        sandbox.fs.delete_file(str(area / "dangling"), recursive=True)
    assert (area / "dangling").is_symlink()
    with pytest.raises(DaytonaBadRequestError, match=no_recursive):
        sandbox.fs.delete_file(str(area / "sub"))
    sandbox.fs.delete_file(str(area / "sub"), recursive=True)
    assert not (area / "sub").exists()


def test_delete_file_errors(sandbox, daemon, area):
    with pytest.raises(DaytonaFileNotFoundError) as info:
        sandbox.fs.delete_file(str(area / "missing"))
    assert info.value.status_code == 404
    # Only the exact string "true" enables recursion.
    (area / "d").mkdir()
    r = raw.request(daemon.url, "DELETE", f"/files?path={q(area / 'd')}&recursive=True")
    assert r.status == 400, r.describe()
    assert r.json()["message"] == "bad request: cannot delete directory without recursive flag"
    r = raw.request(daemon.url, "DELETE", "/files/")
    assert r.status == 400 and r.json()["message"] == "bad request: path is required", r.describe()
    with pytest.raises(DaytonaFileAccessDeniedError) as info:
        sandbox.fs.delete_file(PROC_READ_ONLY)
    assert (info.value.status_code, info.value.code) == (403, "FILE_ACCESS_DENIED")
    assert str(info.value).startswith("Failed to delete file: ")
