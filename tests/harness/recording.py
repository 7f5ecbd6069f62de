"""Independent observers for screen recordings: what ffprobe and ffmpeg say about a file, the MP4
box structure, and which processes record a given file.

Nothing here asks the daemon anything; the tests compare its answers with these.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

from .procs import alive, argv_of, parent_map  # noqa: F401 (re-exported for the tests)

import pytest

# Debian package that brings both tools.
FFMPEG_PACKAGE = "ffmpeg"


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test naming it (a recording test never skips)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed on the test runner's PATH (Debian package {FFMPEG_PACKAGE})", pytrace=False)
    return path


def probe(path: str | Path) -> dict:
    """``ffprobe`` of a file as JSON (streams and format); fails the test with ffprobe's stderr."""
    r = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, f"ffprobe rejects {path}: {r.stderr.strip()}"
    return json.loads(r.stdout)


def video_stream(info: dict) -> dict:
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    assert len(streams) == 1, f"expected one video stream, ffprobe says: {info.get('streams')}"
    return streams[0]


def probed_duration(info: dict) -> float:
    return float(info["format"]["duration"])


def frame(path: str | Path, *, last: bool, width: int = 64, height: int = 36) -> bytes:
    """The first (or the last) frame of a video, scaled down to gray pixels."""
    seek = ["-sseof", "-0.5"] if last else []
    r = subprocess.run(
        [require_tool("ffmpeg"), "-v", "error", *seek, "-i", str(path), "-frames:v", "1",
         "-vf", f"scale={width}:{height}", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 0, f"ffmpeg cannot decode a frame of {path}: {r.stderr.decode(errors='replace')}"
    assert len(r.stdout) == width * height, f"expected a {width}x{height} frame, got {len(r.stdout)} bytes"
    return r.stdout


def mp4_top_level_boxes(path: str | Path) -> list[str]:
    """Types of the top-level ISO-BMFF boxes: a finalized MP4 has ``ftyp``, ``mdat`` and ``moov``."""
    boxes = []
    size_total = os.path.getsize(path)
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size_total:
            f.seek(pos)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:  # 64-bit size follows the type
                (size,) = struct.unpack(">Q", f.read(8))
            elif size == 0:  # box runs to the end of the file
                size = size_total - pos
            boxes.append(kind.decode("latin-1"))
            if size < 8:
                break
            pos += size
    return boxes


def file_name_id(path: str) -> str:
    """The id a plain ``*.mp4`` without a UUID prefix gets: the UUID v5 of its full path (URL namespace)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, path))


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp (with offset or ``Z``, any fraction of a second) → aware datetime."""
    t = text.replace("Z", "+00:00") if text.endswith("Z") else text
    # fromisoformat of 3.11 takes up to 6 fraction digits; Go and Rust print up to 9.
    head, dot, rest = t.partition(".")
    if dot:
        n = len(rest) - len(rest.lstrip("0123456789"))
        t = f"{head}.{rest[:min(n, 6)]}{rest[n:]}"
    parsed = datetime.fromisoformat(t)
    assert parsed.tzinfo is not None, f"timestamp without an offset: {text!r}"
    return parsed


# --------------------------------------------------------------------------------- processes


def recorders_of(file_path: str, ancestor: int | None = None) -> list[int]:
    """Live processes with ``file_path`` as an argument (ffmpeg writing that recording), optionally
    only those below ``ancestor`` in the process tree."""
    parents = parent_map()
    found = []
    for pid in parents:
        if file_path not in argv_of(pid):
            continue
        if ancestor is not None:
            p = parents.get(pid)
            while p not in (None, 0, 1, ancestor):
                p = parents.get(p)
            if p != ancestor:
                continue
        found.append(pid)
    return found


