"""The clipboard routes (ours: not in Daytona's daemon), raw HTTP through the daemon.

``GET``/``POST /computeruse/clipboard`` move UTF-8 text through the X11 CLIPBOARD selection.
The independent observer is ``xclip``: it pastes what the agent owns (also after the call
returned, and a value large enough to need INCR), and owns values the agent reads.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness import http
from harness.daemon import wait_for

CLIP = "/computeruse/clipboard"
# Above the agent's 256 KiB INCR chunk several times over, with multi-byte characters crossing
# chunk boundaries.
LARGE = ("clipboard ✓ Übergröße 日本語 " * 60000)[: 1_500_000]


@pytest.fixture(scope="module", autouse=True)
def xclip():
    if shutil.which("xclip") is None:
        pytest.fail("xclip is missing: the clipboard tests need it (tests/ensure-deps installs it)")


def set_text(desktop, text: str) -> None:
    r = http.post_json(desktop.agent_url, CLIP, {"text": text})
    assert r.status == 200, r.describe()
    assert r.json() == {}


def get_text(desktop) -> str:
    r = http.get(desktop.agent_url, CLIP)
    assert r.status == 200, r.describe()
    return r.json()["text"]


def paste(desktop, target: str | None = None) -> subprocess.CompletedProcess:
    argv = ["xclip", "-selection", "clipboard", "-o", *(["-t", target] if target else [])]
    return subprocess.run(argv, env=desktop.env, capture_output=True, timeout=30)


def xclip_owns(desktop, data: bytes, target: str | None = None) -> subprocess.Popen:
    """xclip as the clipboard's owner, in the foreground (-quiet) so the test can end it."""
    argv = ["xclip", "-selection", "clipboard", "-i", "-quiet", *(["-t", target] if target else [])]
    p = desktop.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.stdin.write(data)
    p.stdin.close()
    # It takes the selection once it has read its input; until then the previous owner answers.
    if target:
        owned = lambda: target.encode() in paste(desktop, "TARGETS").stdout.split()  # noqa: E731
    else:
        owned = lambda: paste(desktop).stdout == data  # noqa: E731
    assert wait_for(owned, 10, 0.05), "xclip never owned the clipboard"
    return p


def end(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
    p.wait(10)


def test_set_by_us_is_pasted_by_xclip_also_after_the_call_returned(desktop):
    text = "héllo wörld ✓ 日本語 — clipboard"
    set_text(desktop, text)
    for _ in range(3):
        r = paste(desktop)
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode() == text
    targets = paste(desktop, "TARGETS").stdout.decode().split()
    assert {"TARGETS", "UTF8_STRING", "TEXT"} <= set(targets), targets
    # Not Latin-1: STRING is refused rather than mangled.
    assert "STRING" not in targets
    assert paste(desktop, "STRING").returncode != 0
    assert get_text(desktop) == text


def test_latin1_text_is_also_offered_as_string(desktop):
    set_text(desktop, "café crème")
    assert "STRING" in paste(desktop, "TARGETS").stdout.decode().split()
    assert paste(desktop, "STRING").stdout == "café crème".encode("latin-1")
    assert paste(desktop, "UTF8_STRING").stdout == "café crème".encode()


def test_a_large_value_is_pasted_through_incr(desktop):
    set_text(desktop, LARGE)
    r = paste(desktop)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == len(LARGE.encode()) and r.stdout.decode() == LARGE
    assert get_text(desktop) == LARGE


def test_a_large_latin1_value_is_pasted_as_string_by_several_requestors_at_once(desktop):
    # One Latin-1 conversion shared by concurrent INCR transfers (fewer than the agent's cap of 8
    # at once), each requestor getting the whole value, and the next value converted anew.
    for text in ("é" * 700_000, "ÿ" * 600_000):
        set_text(desktop, text)
        argv = ["xclip", "-selection", "clipboard", "-o", "-t", "STRING"]
        ps = [desktop.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
        outs = [p.communicate(timeout=60) for p in ps]
        for p, (out, err) in zip(ps, outs):
            assert p.returncode == 0, err
            assert out == text.encode("latin-1")


def test_set_by_xclip_is_read_by_us(desktop):
    text = "from xclip: ő ✓ 中文"
    p = xclip_owns(desktop, text.encode())
    try:
        assert get_text(desktop) == text
        # A large value from another owner (xclip sends it by INCR when it exceeds its chunk).
    finally:
        end(p)
    p = xclip_owns(desktop, LARGE.encode())
    try:
        assert get_text(desktop) == LARGE
    finally:
        end(p)


def test_a_new_owner_replaces_ours_and_we_take_it_back(desktop):
    set_text(desktop, "ours first")
    p = xclip_owns(desktop, b"theirs now")
    try:
        assert get_text(desktop) == "theirs now"
        assert paste(desktop).stdout == b"theirs now"
        set_text(desktop, "ours again")
        # xclip exits once it lost the selection: we really own it again.
        p.wait(10)
        assert paste(desktop).stdout == b"ours again"
        assert get_text(desktop) == "ours again"
    finally:
        end(p)


def test_no_owner_is_empty_text(desktop):
    p = xclip_owns(desktop, b"short-lived")
    end(p)
    # The selection has no owner once its owner's window is gone.
    assert wait_for(lambda: paste(desktop).returncode != 0, 10, 0.05)
    assert get_text(desktop) == ""


def test_an_owner_without_text_is_409(desktop):
    p = xclip_owns(desktop, b"\x89PNG\r\n\x1a\nnot really", target="image/png")
    try:
        r = http.get(desktop.agent_url, CLIP)
        assert r.status == 409, r.describe()
        v = r.json()
        assert v["code"] == "CONFLICT"
        assert "holds no text" in v["message"]
    finally:
        end(p)


def test_bad_bodies_are_4xx_envelopes(desktop):
    r = http.post_json(desktop.agent_url, CLIP, {})
    assert r.status == 400, r.describe()
    assert r.json()["code"] == "INVALID_REQUEST_BODY" and "text" in r.json()["message"]
    r = http.post_json(desktop.agent_url, CLIP, {"text": 5})
    assert r.status == 400, r.describe()
    r = http.post_json(desktop.agent_url, CLIP, {"text": "x" * (16 * 1024 * 1024 + 1)})
    assert r.status == 413, r.describe()
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"
    # Exactly the limit is fine.
    set_text(desktop, "y" * (16 * 1024 * 1024))
    assert get_text(desktop) == "y" * (16 * 1024 * 1024)
