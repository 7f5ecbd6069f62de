"""Screenshots, display info and the window list of the computer-use agent, through
``sandbox.computer_use``.

Images are decoded by an independent observer: PIL in Debian's ``/usr/bin/python3``
(python3-pil, which python3-matplotlib brings), run as a subprocess; the test venv has no
image library. Windows are checked against ``xdotool``.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import http
from harness.daemon import wait_for

from daytona import ScreenshotOptions, ScreenshotRegion

SYSTEM_PYTHON = "/usr/bin/python3"

# argv: image files. Prints per image: format, size, and the RGB pixels as hex.
DECODE = r"""
import json, sys
from PIL import Image
out = []
for path in sys.argv[1:]:
    im = Image.open(path)
    fmt = im.format
    rgb = im.convert("RGB")
    out.append({"format": fmt, "size": list(rgb.size), "pixels": rgb.tobytes().hex()})
print(json.dumps(out))
"""


class Decoded:
    def __init__(self, d: dict):
        self.format = d["format"]
        self.width, self.height = d["size"]
        self.pixels = bytes.fromhex(d["pixels"])

    def px(self, x: int, y: int) -> tuple[int, int, int]:
        i = (y * self.width + x) * 3
        return tuple(self.pixels[i : i + 3])

    def crop(self, x: int, y: int, w: int, h: int) -> bytes:
        rows = [self.pixels[((y + r) * self.width + x) * 3 : ((y + r) * self.width + x + w) * 3] for r in range(h)]
        return b"".join(rows)


def decode(*b64: str) -> list[Decoded]:
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, s in enumerate(b64):
            p = Path(d) / f"img{i}"
            p.write_bytes(base64.b64decode(s, validate=True))
            paths.append(str(p))
        r = subprocess.run([SYSTEM_PYTHON, "-c", DECODE, *paths], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"PIL decoder failed: {r.stderr}"
        return [Decoded(x) for x in json.loads(r.stdout)]


def cu(desktop):
    return desktop.sandbox.computer_use


@pytest.fixture(scope="module")
def window(desktop):
    """A zenity dialog, so screenshots have something other than a flat background."""
    title = "screen-test-window"
    p = desktop.popen(["zenity", "--info", "--title", title, "--text", "Screenshots see this text"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    r = desktop.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", f"^{title}$"], timeout=20)
    assert r.returncode == 0 and r.stdout.strip(), "zenity window did not appear"
    wid = int(r.stdout.split()[0])
    desktop.run(["xdotool", "windowactivate", "--sync", str(wid)])
    yield {"title": title, "pid": p.pid, "wid": wid}
    p.kill()
    p.wait(5)


def park_pointer(desktop, x=5, y=5):
    cu(desktop).mouse.move(x, y)


# -------------------------------------------------------------------------------- screenshots


def test_full_screenshot_is_a_png_of_the_display(desktop, window):
    park_pointer(desktop)
    s = cu(desktop).screenshot.take_full_screen()
    (img,) = decode(s.screenshot)
    assert (img.format, img.width, img.height) == ("PNG", 1024, 768)
    assert (s.cursor_position.x, s.cursor_position.y) == (0, 0)
    assert s.size_bytes is None
    assert len(set(img.pixels[i : i + 3] for i in range(0, len(img.pixels), 3 * 997))) > 3, "image is flat"


def test_cursor_overlay_is_drawn_where_the_pointer_is(desktop, window):
    cu(desktop).mouse.move(300, 200)
    # The desktop may still repaint (panel clock, a tooltip): take plain / cursor / plain until
    # the two plain ones agree, so a difference below can only come from the overlay.
    for _ in range(10):
        shots = [cu(desktop).screenshot.take_full_screen(show_cursor=c) for c in (False, True, False)]
        a, b, again = decode(*(s.screenshot for s in shots))
        if a.pixels == again.pixels:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the desktop never stopped changing between screenshots")
    with_cursor = shots[1]
    assert (with_cursor.cursor_position.x, with_cursor.cursor_position.y) == (300, 200)
    assert b.px(300, 200) == (255, 0, 0) and b.px(302, 302 - 100) == (255, 0, 0)
    assert b.px(310, 200) == (0, 0, 0) and b.px(310, 199) == (255, 255, 255) and b.px(310, 201) == (255, 255, 255)
    assert b.px(300, 215) == (0, 0, 0) and b.px(299, 215) == (255, 255, 255)
    # Outside the crosshair's 41x41 box the two images are identical.
    for y in (0, 150, 179, 221, 500, 767):
        assert a.crop(0, y, 1024, 1) == b.crop(0, y, 1024, 1), y
    assert a.crop(0, 200, 279, 1) == b.crop(0, 200, 279, 1)


def test_region_pixels_equal_the_same_area_of_a_full_screenshot(desktop, window):
    park_pointer(desktop)
    x, y, w, h = xwininfo(desktop, window["wid"])
    region = ScreenshotRegion(x=x + 3, y=y + 5, width=min(w, 301), height=min(h, 117))
    r = cu(desktop).screenshot.take_region(region)
    full = cu(desktop).screenshot.take_full_screen()
    assert (r.cursor_position.x, r.cursor_position.y) == (region.x, region.y)
    ri, fi = decode(r.screenshot, full.screenshot)
    assert (ri.format, ri.width, ri.height) == ("PNG", region.width, region.height)
    assert ri.pixels == fi.crop(region.x, region.y, region.width, region.height)


def test_region_with_cursor_and_beyond_the_screen(desktop, window):
    cu(desktop).mouse.move(150, 120)
    r = cu(desktop).screenshot.take_region(ScreenshotRegion(x=100, y=100, width=100, height=50), show_cursor=True)
    assert (r.cursor_position.x, r.cursor_position.y) == (150, 120)
    (img,) = decode(r.screenshot)
    assert img.px(50, 20) == (255, 0, 0)
    park_pointer(desktop)
    r = cu(desktop).screenshot.take_region(ScreenshotRegion(x=1000, y=740, width=50, height=40))
    full = cu(desktop).screenshot.take_full_screen()
    img, f = decode(r.screenshot, full.screenshot)
    assert (img.width, img.height) == (50, 40)
    assert img.crop(0, 0, 24, 28) == f.crop(1000, 740, 24, 28)
    assert set(img.crop(24, 28, 26, 12)) == {0}, "outside the screen is black"


def test_compressed_formats_scale_and_quality(desktop, window):
    park_pointer(desktop)
    shot = cu(desktop).screenshot
    jpeg = shot.take_compressed(ScreenshotOptions(fmt="jpeg", quality=90, scale=0.5))
    low = shot.take_compressed(ScreenshotOptions(fmt="jpeg", quality=10, scale=0.5))
    png = shot.take_compressed(ScreenshotOptions(fmt="png", scale=0.25))
    other = shot.take_compressed(ScreenshotOptions(fmt="webp", scale=0.5))
    default = shot.take_compressed(ScreenshotOptions())
    imgs = decode(jpeg.screenshot, low.screenshot, png.screenshot, other.screenshot, default.screenshot)
    assert [(i.format, i.width, i.height) for i in imgs] == [
        ("JPEG", 512, 384), ("JPEG", 512, 384), ("PNG", 256, 192), ("PNG", 1024, 768), ("PNG", 1024, 768)]
    for s in (jpeg, low, png, other, default):
        assert s.size_bytes == len(base64.b64decode(s.screenshot))
        assert s.cursor_position is None
    assert low.size_bytes < jpeg.size_bytes
    # Nearest neighbour: the PNG at 1/4 takes every fourth pixel of the full image. The two come
    # from separate captures, so compare only when the screen held still across the scaled one
    # (a full shot before and after it alike): the desktop may still be drawing its icons.
    for _ in range(20):
        before = shot.take_compressed(ScreenshotOptions()).screenshot
        quarter = shot.take_compressed(ScreenshotOptions(fmt="png", scale=0.25)).screenshot
        after = shot.take_compressed(ScreenshotOptions()).screenshot
        if before == after:
            break
        time.sleep(0.25)
    else:
        pytest.fail("the screen never held still for three captures in a row")
    small, full = decode(quarter, after)
    assert small.crop(0, 10, 256, 1) == b"".join(bytes(full.px(4 * i, 40)) for i in range(256))


# argv: a PNG, then triples of (JPEG file, quality, crop box "x,y,w,h"). Prints per JPEG the
# PSNR against the PNG's crop, and that of libjpeg (PIL) encoding the same crop at the same
# quality and chroma subsampling (4:2:0 below 90, else 4:4:4), as a reference.
PSNR = r"""
import io, json, math, sys
from PIL import Image, ImageChops
png = Image.open(sys.argv[1]).convert("RGB")
def psnr(a, b):
    h = ImageChops.difference(a, b.convert("RGB")).histogram()
    mse = sum((i % 256) ** 2 * n for i, n in enumerate(h)) / (a.width * a.height * 3)
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)
out = []
args = sys.argv[2:]
for k in range(0, len(args), 3):
    q = int(args[k + 1])
    x, y, w, h = map(int, args[k + 2].split(","))
    ref = png.crop((x, y, x + w, y + h))
    buf = io.BytesIO()
    ref.save(buf, "JPEG", quality=q, subsampling=2 if q < 90 else 0)
    out.append([psnr(ref, Image.open(args[k])), psnr(ref, Image.open(io.BytesIO(buf.getvalue())))])
print(json.dumps(out))
"""


def psnr_vs_libjpeg(png_b64: str, jpegs: list[tuple[str, int, tuple[int, int, int, int]]]) -> list[list[float]]:
    with tempfile.TemporaryDirectory() as d:
        argv = [str(Path(d) / "screen.png")]
        Path(argv[0]).write_bytes(base64.b64decode(png_b64))
        for i, (b64, q, box) in enumerate(jpegs):
            p = Path(d) / f"{i}.jpg"
            p.write_bytes(base64.b64decode(b64))
            argv += [str(p), str(q), ",".join(map(str, box))]
        r = subprocess.run([SYSTEM_PYTHON, "-c", PSNR, *argv], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"PIL failed: {r.stderr}"
        return json.loads(r.stdout)


def flat_square(img: Decoded, size: int = 32) -> tuple[int, int] | None:
    """The corner of a `size`-pixel square of one colour, aligned to 16 (a whole JPEG MCU)."""
    for y in range(0, img.height - size + 1, 16):
        for x in range(0, img.width - size + 1, 16):
            first = img.px(x, y)
            if img.crop(x, y, size, size) == bytes(first) * (size * size):
                return x, y
    return None


def test_jpeg_pixels_match_the_screen(desktop, window):
    """The agent's own JPEG encoder: at 4:2:0 (quality < 90) and 4:4:4 (from 90), full screen
    and an odd-sized region (edge padding), decoded by PIL as close to the lossless PNG of the
    same screen as libjpeg's encoding at the same settings; flat areas (which the encoder codes
    without a transform) keep their colour."""
    park_pointer(desktop)
    shot = cu(desktop).screenshot
    region = ScreenshotRegion(x=101, y=57, width=333, height=211)
    for _ in range(20):
        before = shot.take_full_screen().screenshot
        jpegs = [shot.take_compressed(ScreenshotOptions(fmt="jpeg", quality=q)).screenshot for q in (85, 95)]
        part = shot.take_compressed_region(region, ScreenshotOptions(fmt="jpeg", quality=70)).screenshot
        if shot.take_full_screen().screenshot == before:
            break
        time.sleep(0.25)
    else:
        pytest.fail("the screen never held still")
    png, j85, j95, jpart = decode(before, *jpegs, part)
    assert [(i.format, i.width, i.height) for i in (j85, j95, jpart)] == [
        ("JPEG", 1024, 768), ("JPEG", 1024, 768), ("JPEG", 333, 211)]
    full = (0, 0, 1024, 768)
    scores = psnr_vs_libjpeg(before, [(jpegs[0], 85, full), (jpegs[1], 95, full), (part, 70, (101, 57, 333, 211))])
    for ours, libjpeg in scores:
        # As faithful as libjpeg at the same settings (ours rounds a little differently).
        assert ours > libjpeg - 0.5 and ours > 25, scores
    assert scores[1][0] > scores[0][0], "quality 95 is closer than 85"
    corner = flat_square(png)
    assert corner, "the desktop has a flat background somewhere"
    x, y = corner
    colour = png.px(x, y)
    for img in (j85, j95):
        inner = [img.px(x + 8 + i, y + 8 + j) for j in range(16) for i in range(16)]
        assert all(max(abs(a - b) for a, b in zip(p, colour)) <= 2 for p in inner), (colour, set(inner))


def test_compressed_cursor_positions_are_scaled(desktop, window):
    cu(desktop).mouse.move(301, 201)
    shot = cu(desktop).screenshot
    s = shot.take_compressed(ScreenshotOptions(show_cursor=True, fmt="png", scale=0.5))
    assert (s.cursor_position.x, s.cursor_position.y) == (150, 100)
    (img,) = decode(s.screenshot)
    assert img.px(150, 100) == (255, 0, 0)
    r = shot.take_compressed_region(ScreenshotRegion(x=100, y=100, width=400, height=300),
                                    ScreenshotOptions(show_cursor=True, fmt="jpeg", scale=0.5, quality=80))
    assert (r.cursor_position.x, r.cursor_position.y) == (200, 150)
    (img,) = decode(r.screenshot)
    assert (img.format, img.width, img.height) == ("JPEG", 200, 150)


def test_screenshot_query_validation(desktop):
    url = desktop.agent_url
    cases = [
        ("/computeruse/screenshot?showCursor=maybe", "invalid query parameter showCursor: must be a boolean"),
        ("/computeruse/screenshot?show_cursor=2&showCursor=true", "invalid query parameter show_cursor: must be a boolean"),
        ("/computeruse/screenshot/region?y=1&width=1&height=1", "missing required query parameter: x"),
        ("/computeruse/screenshot/region?x=1&y=z&width=1&height=1", "invalid query parameter y: must be an integer"),
        ("/computeruse/screenshot/region?x=1&y=1&width=0&height=1", "invalid query parameter width: must be greater than zero"),
        ("/computeruse/screenshot/compressed?quality=0", "invalid query parameter quality: must be between 1 and 100"),
        ("/computeruse/screenshot/compressed?quality=high", "invalid query parameter quality: must be an integer"),
        ("/computeruse/screenshot/compressed?scale=1.5", "invalid query parameter scale: must be between 0.1 and 1.0"),
        ("/computeruse/screenshot/compressed?scale=big", "invalid query parameter scale: must be a number"),
        ("/computeruse/screenshot/region/compressed?x=1&y=1&width=1&quality=0", "missing required query parameter: height"),
    ]
    for path, text in cases:
        r = http.request(url, "GET", path)
        assert r.status == 400, r.describe()
        assert r.json()["message"] == "bad request: " + text and r.json()["code"] == "BAD_REQUEST", r.describe()


# ------------------------------------------------------------------------------ display info


def geometry(desktop, wid: int) -> tuple[int, int, int, int]:
    r = desktop.run(["xdotool", "getwindowgeometry", "--shell", str(wid)])
    g = dict(line.split("=", 1) for line in r.stdout.split())
    return int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"])


def xwininfo(desktop, wid: int) -> tuple[int, int, int, int]:
    out = desktop.run(["xwininfo", "-id", str(wid)]).stdout
    val = lambda k: int(re.search(rf"{k}:\s+(-?\d+)", out).group(1))
    return val("Absolute upper-left X"), val("Absolute upper-left Y"), val("Width"), val("Height")


def test_display_info(desktop):
    info = cu(desktop).display.get_info()
    assert [(d.id, d.x, d.y, d.width, d.height, d.is_active) for d in info.displays] == [(0, 0, 0, 1024, 768, True)]


def test_window_list_shows_the_zenity_window(desktop, window):
    desktop.run(["xdotool", "windowactivate", "--sync", str(window["wid"])])
    assert wait_for(lambda: desktop.run(["xdotool", "getactivewindow"]).stdout.strip() == str(window["wid"]), 10)
    wins = cu(desktop).display.get_windows().windows
    mine = [w for w in wins if w.title == window["title"]]
    assert len(mine) == 1, [w.title for w in wins]
    w = mine[0]
    assert w.id == window["pid"]
    # xwininfo, not xdotool: xdotool's getwindowgeometry adds the frame offset twice.
    assert (w.x, w.y, w.width, w.height) == xwininfo(desktop, window["wid"])
    assert w.width > 0 and w.height > 0
    assert w.is_active is True
    assert all(not o.is_active for o in wins if o is not w)
