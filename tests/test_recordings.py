"""Screen recordings through ``sandbox.computer_use.recording`` (start, stop, list, get, delete,
download), end to end.

One desktop (Xvfb + xfce4 started with ``computer_use.start()``) serves the whole module; its
daemon records into a directory of this module and runs its dashboard on a free port. Daemons
with a special environment (no ffmpeg, no display, a failing ffmpeg, restarts) come from
``daemon_factory`` and record the same desktop's display.

The daemon's claims are checked independently: ffprobe/ffmpeg read the files (codec, duration,
frames, the MP4 boxes), the files on disk are compared byte for byte with the downloads, and the
ffmpeg processes are found in /proc by the file they write.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from daytona.common.errors import (
    DaytonaBadRequestError,
    DaytonaError,
    DaytonaInternalServerError,
    DaytonaNotFoundError,
    DaytonaRecordingFfmpegNotFoundError,
    DaytonaRecordingStillActiveError,
    DaytonaServiceUnavailableError,
)

from harness import http
from harness.daemon import free_port, start_daemon, wait_for
from harness.desktop import Desktop, free_display
from harness.recording import (
    alive,
    file_name_id,
    frame,
    mp4_top_level_boxes,
    parse_time,
    probe,
    probed_duration,
    recorders_of,
    require_tool,
    video_stream,
)

BASE = "/computeruse/recordings"
FILE_NAME = re.compile(r"^(?P<id>[0-9a-f-]{36})_(?P<label>.+)_(?P<stamp>\d{8}_\d{6})\.mp4$", re.S)
STATUSES = {"recording", "completed", "failed", "interrupted"}

# Where the pointer sits when the recording starts and when it stops (the screen is at least
# 1024x768); the frames at both ends must show it there.
POINTER_FROM = (200, 300)
POINTER_TO = (760, 520)
RECORD_SECONDS = 2.5


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tools() -> None:
    require_tool("ffmpeg")
    require_tool("ffprobe")


@pytest.fixture(scope="module")
def rec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(os.path.realpath(tmp_path_factory.mktemp("recordings")))


@pytest.fixture(scope="module")
def desk(tools, rec_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The module's desktop, its daemon recording into ``rec_dir`` (the dashboard on a free port)."""
    d = Desktop(tmp_path_factory.mktemp("rec-desktop"), extra_env={"DAYTONA_RECORDINGS_DIR": str(rec_dir)})
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def rec(desk):
    return desk.sandbox.computer_use.recording


@pytest.fixture(scope="module")
def finished(desk, rec):
    """A default-label recording of ~2.5 s during which the pointer moves (SDK) from
    ``POINTER_FROM`` to ``POINTER_TO``, stopped; with the wall-clock bounds around it."""
    mouse = desk.sandbox.computer_use.mouse
    mouse.move(*POINTER_FROM)
    time.sleep(0.3)
    t_before_start = time.monotonic()
    started = rec.start()
    t_started = time.monotonic()
    time.sleep(0.8)
    steps = 6
    for i in range(1, steps + 1):
        x = POINTER_FROM[0] + (POINTER_TO[0] - POINTER_FROM[0]) * i // steps
        y = POINTER_FROM[1] + (POINTER_TO[1] - POINTER_FROM[1]) * i // steps
        mouse.move(x, y)
        time.sleep(0.05)
    while time.monotonic() - t_started < RECORD_SECONDS:
        time.sleep(0.05)
    t_before_stop = time.monotonic()
    stopped = rec.stop(started.id)
    t_stopped = time.monotonic()
    return {
        "started": started,
        "stopped": stopped,
        "shortest": t_before_stop - t_started,  # start answered … stop sent
        "longest": t_stopped - t_before_start,  # start sent … stop answered
    }


def daemon_env(desk, rec_dir: Path, **more: str) -> dict[str, str]:
    """Variables for a daemon recording ``desk``'s display into ``rec_dir``."""
    env = {k: desk.env[k] for k in ("DISPLAY", "XAUTHORITY") if k in desk.env}
    env["DAYTONA_RECORDINGS_DIR"] = str(rec_dir)
    env["DAYTONA_RECORDING_DASHBOARD_PORT"] = str(free_port())
    env.update(more)
    return env


# -------------------------------------------------------------------------------- helpers


def raw_recording(url: str, rid: str) -> dict:
    """The recording's JSON as the daemon sends it (the SDK model keeps ``error`` aside)."""
    r = http.get(url, f"{BASE}/{rid}")
    assert r.status == 200, r.describe()
    return r.json()


def assert_envelope(r: http.RawResponse, status: int, code: str | None) -> dict:
    assert r.status == status, r.describe()
    assert (r.header("Content-Type") or "").startswith("application/json"), r.describe()
    body = r.json()
    assert body.get("statusCode") == status, body
    assert body.get("source") == "DAYTONA_DAEMON", body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body.get("code") == code, body
    return body


def assert_sdk_error(exc: DaytonaError, status: int, code: str | None) -> None:
    assert exc.status_code == status, repr(exc)
    if code is not None:
        assert exc.code == code, repr(exc)


def assert_well_formed(r, rec_dir: Path, label: str = "session") -> None:
    """The SDK model of a recording: id, file name and path, times as the contract says."""
    assert r.status in STATUSES, r
    uuid.UUID(r.id)
    m = FILE_NAME.match(r.file_name)
    assert m, f"file name {r.file_name!r} is not <id>_<label>_<YYYYMMDD_HHMMSS>.mp4"
    assert m["id"] == r.id, r
    assert m["label"] == label, r
    assert r.file_path == str(rec_dir / r.file_name), r
    start = parse_time(r.start_time)
    # The stamp in the name is the start time in the daemon's local zone (the test runner's).
    stamp = datetime.strptime(m["stamp"], "%Y%m%d_%H%M%S")
    assert abs((stamp - start.astimezone().replace(tzinfo=None)).total_seconds()) <= 2, (r.file_name, r.start_time)
    if r.end_time is not None:
        assert parse_time(r.end_time) >= start, r


def region_difference(a: bytes, b: bytes, width: int, center: tuple[int, int], half: int = 14) -> float:
    """Mean absolute difference of two gray frames in the square around ``center``."""
    cx, cy = center
    total = n = 0
    for y in range(cy - half, cy + half):
        row = y * width
        for x in range(cx - half, cx + half):
            total += abs(a[row + x] - b[row + x])
            n += 1
    return total / n


def wait_status(rec, rid: str, status: str, timeout: float = 5.0):
    seen = []

    def check() -> bool:
        seen[:] = [rec.get(rid)]
        return seen[0].status == status

    wait_for(check, timeout, 0.1)
    assert seen[0].status == status, f"after {timeout}s the recording is {seen[0]}"
    return seen[0]


# ------------------------------------------------------------------------- the desktop one


def test_a_recording_is_an_h264_mp4_as_long_as_it_says(finished, desk, rec_dir: Path):
    started, stopped = finished["started"], finished["stopped"]
    assert started.status == "recording", started
    assert started.end_time is None and started.duration_seconds is None, started
    assert_well_formed(started, rec_dir)
    assert stopped.id == started.id and stopped.file_path == started.file_path, (started, stopped)
    assert stopped.status == "completed", stopped
    assert_well_formed(stopped, rec_dir)
    assert stopped.end_time is not None, stopped
    assert stopped.duration_seconds is not None, stopped
    # The recording ran from the start request to the stop answer, at least from the start's
    # answer to the stop request (~2.5 s).
    assert finished["shortest"] - 0.5 <= stopped.duration_seconds <= finished["longest"] + 0.5, (stopped, finished)
    assert 2.0 <= stopped.duration_seconds <= 4.0, stopped
    end_minus_start = (parse_time(stopped.end_time) - parse_time(stopped.start_time)).total_seconds()
    assert abs(end_minus_start - stopped.duration_seconds) < 0.1, stopped

    path = Path(stopped.file_path)
    assert path.is_file(), f"{path} is not on disk"
    assert stopped.size_bytes == path.stat().st_size, (stopped, path.stat().st_size)
    boxes = mp4_top_level_boxes(path)
    assert boxes[0] == "ftyp" and "moov" in boxes and "mdat" in boxes, f"MP4 not finalized: boxes {boxes}"

    info = probe(path)
    video = video_stream(info)
    assert video["codec_name"] == "h264", video
    assert video["pix_fmt"] == "yuv420p", video
    assert video["r_frame_rate"] == "30/1", video
    screen = desk.run(["xdpyinfo"]).stdout
    dims = re.search(r"dimensions:\s+(\d+)x(\d+) pixels", screen)
    assert dims, screen
    assert (video["width"], video["height"]) == (int(dims[1]), int(dims[2])), video
    assert abs(probed_duration(info) - stopped.duration_seconds) <= 1.0, (info["format"], stopped)

    # The video shows the live screen: the pointer is at its first place in the first frame and
    # at its last place in the last one.
    w, h = video["width"], video["height"]
    first, last = frame(path, last=False, width=w, height=h), frame(path, last=True, width=w, height=h)
    moved_from = region_difference(first, last, w, POINTER_FROM)
    moved_to = region_difference(first, last, w, POINTER_TO)
    assert moved_from > 5 and moved_to > 5, (
        f"the pointer does not appear to move in the video (mean differences {moved_from:.1f} at "
        f"{POINTER_FROM}, {moved_to:.1f} at {POINTER_TO})"
    )


def test_list_and_get_describe_the_recording(finished, rec, desk, rec_dir: Path):
    stopped = finished["stopped"]
    listed = rec.list().recordings
    mine = [r for r in listed if r.id == stopped.id]
    assert len(mine) == 1, listed
    for r in (mine[0], rec.get(stopped.id)):
        assert r.status == "completed", r
        assert r.file_name == stopped.file_name and r.file_path == stopped.file_path, r
        assert r.start_time == stopped.start_time and r.end_time == stopped.end_time, (r, stopped)
        assert r.duration_seconds == stopped.duration_seconds, (r, stopped)
        assert r.size_bytes == Path(stopped.file_path).stat().st_size, r
        assert_well_formed(r, rec_dir)
    # Wire names as the contract spells them, and nothing unexpected on a completed one.
    body = raw_recording(desk.agent_url, stopped.id)
    assert {"id", "fileName", "filePath", "startTime", "endTime", "status", "durationSeconds", "sizeBytes"} <= set(body), body
    assert set(body) <= {"id", "fileName", "filePath", "startTime", "endTime", "status", "durationSeconds", "sizeBytes", "error"}, body
    assert "error" not in body or not body["error"], body
    listing = http.get(desk.agent_url, BASE)
    assert listing.status == 200 and set(listing.json()) == {"recordings"}, listing.describe()


def test_stop_of_an_ended_recording_answers_it_as_it_is(finished, rec):
    stopped = finished["stopped"]
    again = rec.stop(stopped.id)
    assert again.status == "completed", again
    assert (again.end_time, again.duration_seconds, again.size_bytes) == (
        stopped.end_time, stopped.duration_seconds, stopped.size_bytes,
    ), (again, stopped)


def test_download_gives_the_bytes_on_disk(finished, rec, desk, tmp_path: Path):
    stopped = finished["stopped"]
    disk = Path(stopped.file_path).read_bytes()
    target = tmp_path / "nested" / "copy.mp4"
    rec.download(stopped.id, str(target))
    assert target.read_bytes() == disk

    r = http.get(desk.agent_url, f"{BASE}/{stopped.id}/download")
    assert r.status == 200, r.describe()
    assert r.body == disk
    assert r.header("Content-Type") == "video/mp4", r.describe()
    assert r.header("Content-Length") == str(len(disk)), r.describe()
    assert r.header("Accept-Ranges") == "bytes", r.describe()
    assert r.header("Last-Modified"), r.describe()
    assert r.header("Content-Disposition") is None, r.describe()


def test_download_honours_a_range(finished, desk):
    stopped = finished["stopped"]
    disk = Path(stopped.file_path).read_bytes()
    url = f"{BASE}/{stopped.id}/download"
    r = http.get(desk.agent_url, url, headers={"Range": "bytes=100-1123"})
    assert r.status == 206, r.describe()
    assert r.body == disk[100:1124]
    assert r.header("Content-Range") == f"bytes 100-1123/{len(disk)}", r.describe()
    assert r.header("Content-Length") == "1024", r.describe()

    r = http.get(desk.agent_url, url, headers={"Range": "bytes=-64"})
    assert r.status == 206, r.describe()
    assert r.body == disk[-64:]
    assert r.header("Content-Range") == f"bytes {len(disk) - 64}-{len(disk) - 1}/{len(disk)}", r.describe()

    # A range past the end is 416 with the size, as for any static file.
    r = http.get(desk.agent_url, url, headers={"Range": f"bytes={len(disk)}-"})
    assert r.status == 416, r.describe()
    assert r.header("Content-Range") == f"bytes */{len(disk)}", r.describe()


def test_a_label_goes_into_the_file_name(rec, rec_dir: Path):
    labelled = rec.start(label="demo run-1.v2")
    unlabelled = rec.start(label="")  # an empty label is no label (spec §8: only a non-empty one is checked)
    try:
        assert_well_formed(labelled, rec_dir, label="demo run-1.v2")
        assert_well_formed(unlabelled, rec_dir, label="session")
        assert labelled.id != unlabelled.id
    finally:
        for r in (labelled, unlabelled):
            rec.stop(r.id)
    for r in (labelled, unlabelled):
        got = rec.get(r.id)
        assert got.status == "completed" and got.file_name == r.file_name, got
        assert Path(got.file_path).is_file(), got


@pytest.mark.parametrize(
    "label",
    ["../escape", "a/b", "a\\b", ".hidden", "   ", "x" * 101, "star*", "café"],
    ids=["dotdot", "slash", "backslash", "leading-dot", "blank", "too-long", "star", "non-ascii"],
)
def test_an_invalid_label_is_a_400_and_records_nothing(label, rec, desk, rec_dir: Path):
    before = {r.id for r in rec.list().recordings}
    files_before = sorted(p.name for p in rec_dir.iterdir())
    with pytest.raises(DaytonaBadRequestError) as e:
        rec.start(label=label)
    assert_sdk_error(e.value, 400, "BAD_REQUEST")
    assert "invalid label" in e.value.message, e.value.message
    r = http.post_json(desk.agent_url, f"{BASE}/start", {"label": label})
    assert_envelope(r, 400, "BAD_REQUEST")
    assert {r.id for r in rec.list().recordings} == before
    assert sorted(p.name for p in rec_dir.iterdir()) == files_before


def test_unknown_ids_are_404_and_a_missing_id_is_400(rec, desk):
    unknown = str(uuid.uuid4())
    for call in (lambda: rec.get(unknown), lambda: rec.stop(unknown), lambda: rec.delete(unknown)):
        with pytest.raises(DaytonaNotFoundError) as e:
            call()
        assert_sdk_error(e.value, 404, "NOT_FOUND")
    assert_envelope(http.get(desk.agent_url, f"{BASE}/{unknown}"), 404, "NOT_FOUND")
    assert_envelope(http.get(desk.agent_url, f"{BASE}/{unknown}/download"), 404, "NOT_FOUND")
    assert_envelope(http.request(desk.agent_url, "DELETE", f"{BASE}/{unknown}"), 404, "NOT_FOUND")
    assert_envelope(http.post_json(desk.agent_url, f"{BASE}/stop", {"id": unknown}), 404, "NOT_FOUND")

    with pytest.raises(DaytonaBadRequestError) as e:
        rec.stop("")
    assert_sdk_error(e.value, 400, None)
    assert_envelope(http.post_json(desk.agent_url, f"{BASE}/stop", {}), 400, None)
    assert_envelope(http.post_json(desk.agent_url, f"{BASE}/stop", {"id": ""}), 400, None)


def test_delete_while_recording_is_409_then_stop_and_delete(rec, desk, finished, rec_dir: Path):
    active = rec.start(label="deleteme")
    try:
        listed = rec.list().recordings
        # Active recordings first, then the others by file name.
        assert listed[0].id == active.id and listed[0].status == "recording", listed
        rest = [r.file_name for r in listed[1:]]
        assert rest == sorted(rest), rest
        assert all(r.status != "recording" for r in listed[1:]), listed

        with pytest.raises(DaytonaRecordingStillActiveError) as e:
            rec.delete(active.id)
        assert_sdk_error(e.value, 409, "RECORDING_STILL_ACTIVE")
        assert_envelope(http.request(desk.agent_url, "DELETE", f"{BASE}/{active.id}"), 409, "RECORDING_STILL_ACTIVE")
        assert rec.get(active.id).status == "recording"
    finally:
        stopped = rec.stop(active.id)
    assert stopped.status == "completed", stopped
    path = Path(stopped.file_path)
    assert path.is_file()

    assert rec.delete(active.id) is None
    assert not path.exists(), f"{path} is still there after delete"
    with pytest.raises(DaytonaNotFoundError) as e:
        rec.get(active.id)
    assert_sdk_error(e.value, 404, "NOT_FOUND")
    assert active.id not in {r.id for r in rec.list().recordings}
    assert_envelope(http.get(desk.agent_url, f"{BASE}/{active.id}/download"), 404, None)
    with pytest.raises(DaytonaNotFoundError):
        rec.delete(active.id)
    # The other recordings are untouched.
    assert rec.get(finished["stopped"].id).status == "completed"


def test_a_killed_ffmpeg_makes_the_recording_failed(rec, desk):
    active = rec.start(label="killed")
    pids = recorders_of(active.file_path, ancestor=desk.daemon.proc.pid)
    assert len(pids) == 1, f"expected one ffmpeg below the daemon writing {active.file_path}, found {pids}"
    os.kill(pids[0], signal.SIGKILL)
    failed = wait_status(rec, active.id, "failed", timeout=5)
    body = raw_recording(desk.agent_url, active.id)
    assert isinstance(body.get("error"), str) and body["error"].strip(), body
    assert failed.additional_properties.get("error") == body["error"], failed
    assert re.search(r"SIGKILL|signal:? ?9\b", body["error"]), f"the error does not name the signal: {body['error']!r}"
    assert any(r.id == active.id and r.status == "failed" for r in rec.list().recordings)
    # Stop on an ended recording is its record as it is: still failed.
    again = rec.stop(active.id)
    assert again.status == "failed", again


def test_plain_mp4_files_in_the_directory_are_listed(finished, rec, rec_dir: Path):
    source = Path(finished["stopped"].file_path)
    plain = rec_dir / "clip.mp4"
    prefixed_id = str(uuid.uuid4())
    prefixed = rec_dir / f"{prefixed_id}_copied_20240101_000000.mp4"
    shutil.copyfile(source, plain)
    shutil.copyfile(source, prefixed)
    (rec_dir / "notes.txt").write_text("not a video")

    listed = {r.file_name: r for r in rec.list().recordings}
    assert "notes.txt" not in listed, listed
    for path, rid in ((plain, file_name_id(str(plain))), (prefixed, prefixed_id)):
        r = listed.get(path.name)
        assert r is not None, f"{path.name} is not listed: {sorted(listed)}"
        assert r.id == rid, r
        assert r.status == "completed" and r.file_path == str(path), r
        assert r.size_bytes == path.stat().st_size, r
        assert rec.get(rid).file_name == path.name
    assert rec.list().recordings == rec.list().recordings  # ids are stable across calls

    rec.delete(file_name_id(str(plain)))
    rec.delete(prefixed_id)
    assert not plain.exists() and not prefixed.exists()


# --------------------------------------------------------------------- other environments


def test_without_ffmpeg_start_is_a_503_naming_it(daemon_factory, sdk_for, desk, tmp_path: Path):
    empty = tmp_path / "bin-without-ffmpeg"
    empty.mkdir()
    d = daemon_factory.start(extra_env=daemon_env(desk, tmp_path / "recs", PATH=str(empty)))
    rec = sdk_for(d).sandbox.computer_use.recording
    with pytest.raises(DaytonaRecordingFfmpegNotFoundError) as e:
        rec.start()
    assert_sdk_error(e.value, 503, "RECORDING_FFMPEG_NOT_FOUND")
    body = assert_envelope(http.post_json(d.url, f"{BASE}/start", {}), 503, "RECORDING_FFMPEG_NOT_FOUND")
    assert "ffmpeg" in body["message"].lower(), body
    assert rec.list().recordings == []


def test_without_a_display_start_is_a_503_naming_it(daemon_factory, sdk_for, tools, tmp_path: Path):
    display = f":{free_display()}"
    env = {
        "DISPLAY": display,
        "DAYTONA_RECORDINGS_DIR": str(tmp_path / "recs"),
        "DAYTONA_RECORDING_DASHBOARD_PORT": str(free_port()),
    }
    d = daemon_factory.start(extra_env=env)
    rec = sdk_for(d).sandbox.computer_use.recording
    with pytest.raises(DaytonaServiceUnavailableError) as e:
        rec.start()
    assert_sdk_error(e.value, 503, "RECORDING_DISPLAY_UNAVAILABLE")
    body = assert_envelope(http.post_json(d.url, f"{BASE}/start", {"label": "x"}), 503, "RECORDING_DISPLAY_UNAVAILABLE")
    assert display in body["message"], body


def test_an_ffmpeg_that_exits_at_once_is_a_500_with_its_stderr(daemon_factory, sdk_for, desk, tmp_path: Path):
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    script = fake / "ffmpeg"
    script.write_text("#!/bin/sh\necho 'fake-ffmpeg: refusing to record' >&2\nexit 1\n")
    script.chmod(0o755)
    path = f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    d = daemon_factory.start(extra_env=daemon_env(desk, tmp_path / "recs", PATH=path))
    rec = sdk_for(d).sandbox.computer_use.recording
    with pytest.raises(DaytonaInternalServerError) as e:
        rec.start(label="doomed")
    assert_sdk_error(e.value, 500, "RECORDING_FAILED")
    assert "fake-ffmpeg: refusing to record" in e.value.message, e.value.message
    listed = rec.list().recordings
    assert len(listed) == 1 and listed[0].status == "failed", listed
    assert "fake-ffmpeg: refusing to record" in (listed[0].additional_properties.get("error") or ""), listed[0]
    body = assert_envelope(http.post_json(d.url, f"{BASE}/start", {}), 500, "RECORDING_FAILED")
    assert "fake-ffmpeg: refusing to record" in body["message"], body


@pytest.mark.deadline(90)
def test_recordings_survive_a_restart_and_a_sigterm_interrupts_one(daemon_factory, sdk_for, desk, tmp_path: Path):
    recs_dir = Path(os.path.realpath(tmp_path)) / "recs"
    env = daemon_env(desk, recs_dir)
    d1 = daemon_factory.start(extra_env=env)
    rec1 = sdk_for(d1).sandbox.computer_use.recording
    done = rec1.start(label="before-restart")
    time.sleep(1.0)
    done = rec1.stop(done.id)
    assert done.status == "completed", done
    live = rec1.start(label="cut-short")
    time.sleep(1.5)
    rc = d1.stop(signal.SIGTERM)
    assert rc == 0, f"daemon exit code after SIGTERM while recording: {rc}\n{d1.output_tail()}"
    assert recorders_of(live.file_path) == [], "ffmpeg outlived the daemon's SIGTERM"

    env["DAYTONA_RECORDING_DASHBOARD_PORT"] = str(free_port())
    d2 = daemon_factory.start(extra_env=env)
    rec2 = sdk_for(d2).sandbox.computer_use.recording
    listed = {r.id: r for r in rec2.list().recordings}
    assert set(listed) == {done.id, live.id}, listed
    again = listed[done.id]
    assert again.status == "completed", again
    assert (again.file_name, again.start_time, again.end_time, again.duration_seconds, again.size_bytes) == (
        done.file_name, done.start_time, done.end_time, done.duration_seconds, done.size_bytes,
    ), (again, done)

    cut = rec2.get(live.id)
    assert cut.status == "interrupted", cut
    assert cut.file_name == live.file_name and cut.start_time == live.start_time, (cut, live)
    error = raw_recording(d2.url, live.id).get("error")
    assert isinstance(error, str) and error.strip(), f"an interrupted recording says why: {error!r}"
    info = probe(cut.file_path)
    assert video_stream(info)["codec_name"] == "h264", info
    assert 0.5 <= probed_duration(info) <= 5, info["format"]
    assert "moov" in mp4_top_level_boxes(cut.file_path)

    # Stop on ended recordings: 200, as they are.
    assert rec2.stop(live.id).status == "interrupted"
    assert rec2.stop(done.id).status == "completed"
    # A recording started after the restart gets a fresh id and is listed first.
    fresh = rec2.start()
    try:
        assert fresh.id not in listed
        assert rec2.list().recordings[0].id == fresh.id
    finally:
        rec2.stop(fresh.id)


@pytest.mark.deadline(90)
def test_a_sigkilled_daemon_leaves_an_interrupted_playable_recording(daemon_factory, sdk_for, desk, tmp_path: Path):
    recs_dir = Path(os.path.realpath(tmp_path)) / "recs"
    env = daemon_env(desk, recs_dir)
    d1 = daemon_factory.start(extra_env=env)
    rec1 = sdk_for(d1).sandbox.computer_use.recording
    live = rec1.start(label="orphaned")
    pids = recorders_of(live.file_path, ancestor=d1.proc.pid)
    assert len(pids) == 1, f"expected one ffmpeg below the daemon writing {live.file_path}, found {pids}"
    try:
        time.sleep(1.5)
        d1.stop(signal.SIGKILL)
        env["DAYTONA_RECORDING_DASHBOARD_PORT"] = str(free_port())
        d2 = daemon_factory.start(extra_env=env)
        rec2 = sdk_for(d2).sandbox.computer_use.recording
        cut = rec2.get(live.id)
        assert cut.status == "interrupted", cut
        # The orphaned ffmpeg is asked to finish the file.
        assert wait_for(lambda: not alive(pids[0]), 10, 0.1), f"the orphaned ffmpeg {pids[0]} still runs"
        info = probe(cut.file_path)
        assert video_stream(info)["codec_name"] == "h264", info
        assert probed_duration(info) >= 0.5, info["format"]
    finally:
        if alive(pids[0]):
            os.kill(pids[0], signal.SIGKILL)

