"""A secured standalone daemon (DAYTONA_AUTH_TOKEN, DAYTONA_SIGNING_KEY): the official SDK with
the token as its API key works; a missing or wrong token is a 401 on every port (toolbox routes,
the preview proxy, websockets, the web terminal, the dashboard) and a refused login on SSH, where
the token is the password; the preview proxy does not hand the token on; the SDK's own signed
URLs download and upload without a token and are refused (403, saying why) when tampered with,
expired or used for another method; children never see the secrets; the daemon's log holds none
of them. Without a token or key the daemon asks for nothing (the rest of the suite)."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
import requests
from daytona import DaytonaAuthenticationError, SessionExecuteRequest
from daytona._utils.file_url_signing import compute_file_url_signature

from harness import http as raw
from harness.browser import SCREEN_TEXT, Cdp, open_page, start_chromium
from harness.daemon import free_port, run_daemon_to_exit, start_daemon, wait_listening, wait_ssh_banner
from harness.http_targets import ipv4_target
from harness.sdk import make_daytona, make_sandbox

TOKEN = "test-token-" + secrets.token_hex(12)
KEY = "test-signing-key-" + secrets.token_hex(12)
WRONG = "wrong-token-" + secrets.token_hex(12)
SANDBOX_ID = "harness-sandbox"

# Every signature a test sent: none may show up in the daemon's log.
SENT_SIGNATURES: list[str] = []


@dataclass
class Secured:
    daemon: object
    terminal: int
    dashboard: int
    ssh: int
    tmp: Path

    @property
    def url(self) -> str:
        return self.daemon.url




@pytest.fixture(scope="module")
def secured(daemon_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    terminal, dashboard, ssh = free_port(), free_port(), free_port()
    recordings = tmp / "recordings"
    recordings.mkdir()
    d = start_daemon(
        tmp / "daemon",
        extra_env={
            "DAYTONA_AUTH_TOKEN": TOKEN,
            "DAYTONA_SIGNING_KEY": KEY,
            "DAYTONA_TERMINAL_PORT": str(terminal),
            "DAYTONA_RECORDING_DASHBOARD_PORT": str(dashboard),
            "DAYTONA_SSH_PORT": str(ssh),
            "DAYTONA_RECORDINGS_DIR": str(recordings),
            # Request spans (with their URIs) are logged at debug: the redaction is then tested.
            "LOG_LEVEL": "debug",
        },
    )
    try:
        wait_listening(terminal)
        wait_listening(dashboard)
        wait_ssh_banner(ssh)
        yield Secured(d, terminal, dashboard, ssh, tmp)
    finally:
        rc = d.stop()
        assert rc == 0, d.output_tail()


@pytest.fixture(scope="module")
def sandbox(secured):
    """The SDK's Sandbox with the token as API key, pointed straight at the daemon: its calls go
    to `{daemon}/{sandboxId}/…`, which the daemon serves itself."""
    return make_sandbox(make_daytona(api_key=TOKEN), secured.url, sandbox_id=SANDBOX_ID)


def envelope(r: raw.RawResponse, status: int, code: str, says: str) -> dict:
    assert r.status == status, r.describe()
    v = r.json()
    assert (v["statusCode"], v["code"]) == (status, code), v
    assert says in v["message"], v
    for secret in (TOKEN, KEY, WRONG):
        assert secret.encode() not in r.body, f"an answer echoes a secret: {r.describe()}"
    return v


def assert_401(r: raw.RawResponse, says: str) -> None:
    envelope(r, 401, "UNAUTHORIZED", says)
    assert r.header("WWW-Authenticate") == "Bearer", r.describe()


MISSING = "authentication required"
WRONG_HEADER = "the bearer token does not match"
WRONG_QUERY = "DAYTONA_SANDBOX_AUTH_KEY query parameter does not match"


# ------------------------------------------------------------------------- the SDK with a token


def test_sdk_with_the_token_as_api_key(sandbox, secured):
    work = secured.daemon.workdir
    r = sandbox.process.exec("echo sum=$((40+2))")
    assert (r.exit_code, r.result.strip()) == (0, "sum=42")

    sandbox.fs.create_folder(str(work / "d"), "755")
    sandbox.fs.upload_file(b"uploaded bytes", str(work / "d" / "f.txt"))
    assert sandbox.fs.download_file(str(work / "d" / "f.txt")) == b"uploaded bytes"
    assert [f.name for f in sandbox.fs.list_files(str(work / "d"))] == ["f.txt"]

    sandbox.process.create_session("auth-s")
    out = sandbox.process.execute_session_command("auth-s", SessionExecuteRequest(command="echo in-session"))
    assert "in-session" in (out.output or out.stdout or ""), out
    sandbox.process.delete_session("auth-s")

    assert sandbox.process.exec(f"git init -q {work / 'repo'}").exit_code == 0
    assert sandbox.git.status(str(work / "repo")).current_branch in ("main", "master")

    # A PTY: the SDK's websocket carries the token in its Authorization header.
    h = sandbox.process.create_pty_session(id="auth-pty")
    try:
        h.send_input("echo pty-$((6*7))\n")
        buf = bytearray()
        deadline = time.monotonic() + 15
        while b"pty-42" not in buf and time.monotonic() < deadline:
            h.wait(on_data=buf.extend, timeout=0.2)
        assert b"pty-42" in buf, bytes(buf)
    finally:
        h.disconnect()
        sandbox.process.kill_pty_session("auth-pty")

    # The interpreter's websocket too.
    result = sandbox.code_interpreter.run_code("print(6 * 7)")
    assert "42" in result.stdout, result


def test_children_never_see_the_secrets(sandbox):
    env = sandbox.process.exec("env").result
    assert "DAYTONA_SANDBOX_ID" in env, "the environment was listed"
    for name_or_value in ("DAYTONA_AUTH_TOKEN", "DAYTONA_SIGNING_KEY", TOKEN, KEY):
        assert name_or_value not in env
    sandbox.process.create_session("auth-env")
    out = sandbox.process.execute_session_command("auth-env", SessionExecuteRequest(command="env"))
    text = out.output or out.stdout or ""
    assert "DAYTONA_SANDBOX_ID" in text and TOKEN not in text and KEY not in text
    sandbox.process.delete_session("auth-env")


def test_sdk_with_a_wrong_token_is_refused(secured):
    wrong = make_sandbox(make_daytona(api_key=WRONG), secured.url, sandbox_id=SANDBOX_ID)
    with pytest.raises(DaytonaAuthenticationError) as e:
        wrong.process.exec("echo never")
    assert "does not match" in str(e.value)
    assert WRONG not in str(e.value)


# --------------------------------------------------------------------------- raw HTTP: the 401s


def test_every_toolbox_route_asks_for_the_token(secured):
    url = secured.url
    routes = [
        ("GET", "/version"),
        ("GET", "/files?path=/"),
        ("POST", "/process/execute"),
        ("GET", "/swagger/doc.json"),
        ("GET", "/proxy/8080/anything"),
        ("GET", f"/{SANDBOX_ID}/version"),
        ("GET", "/no/such/route"),
    ]
    for method, path in routes:
        assert_401(raw.request(url, method, path), MISSING)
        assert_401(raw.request(url, method, path, headers={"Authorization": f"Bearer {WRONG}"}), WRONG_HEADER)
        sep = "&" if "?" in path else "?"
        assert_401(raw.request(url, method, f"{path}{sep}DAYTONA_SANDBOX_AUTH_KEY={WRONG}"), WRONG_QUERY)
    # A websocket upgrade is refused before the switch.
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    assert_401(raw.get(url, "/process/pty/none/connect", headers=upgrade), MISSING)
    # With the token: the usual answers.
    ok = raw.get(url, "/version", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200, ok.describe()
    ok = raw.get(url, f"/{SANDBOX_ID}/version?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")
    assert ok.status == 200, ok.describe()
    missing = raw.get(url, "/no/such/route", headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status == 404, missing.describe()
    other = raw.get(url, "/another-sandbox/version", headers={"Authorization": f"Bearer {TOKEN}"})
    assert other.status == 404, other.describe()
    redirect = raw.get(url, f"/{SANDBOX_ID}/version/?a=1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (redirect.status, redirect.header("Location")) == (301, f"/{SANDBOX_ID}/version?a=1")


def test_a_websocket_with_the_token_in_the_query(secured):
    """What a browser does (no headers on a websocket): the token as DAYTONA_SANDBOX_AUTH_KEY."""

    async def main():
        base = secured.url.replace("http://", "ws://")
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{base}/process/interpreter/execute?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}") as ws:
                await ws.send_str(json.dumps({"code": "print('ws-ok')"}))
                seen = ""
                while "ws-ok" not in seen:
                    msg = await ws.receive(timeout=20)
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    seen += msg.data
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect(f"{base}/process/interpreter/execute")
            assert e.value.status == 401

    asyncio.run(main())


def test_the_proxy_does_not_hand_the_token_on(secured):
    with ipv4_target() as target:
        r = raw.get(
            secured.url,
            f"/proxy/{target.port}/echo?a=1&DAYTONA_SANDBOX_AUTH_KEY={TOKEN}&b=2",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status == 200, r.describe()
        seen = r.json()
        assert seen["requestline"] == "GET /echo?a=1&b=2 HTTP/1.1", seen
        assert all(k.lower() != "authorization" for k, _ in seen["headers"]), seen
        # The app's own Authorization (the token came in the query) is the app's: passed on.
        r = raw.get(
            secured.url,
            f"/{SANDBOX_ID}/proxy/{target.port}/app?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}",
            headers={"Authorization": "Bearer the-apps-own"},
        )
        assert r.status == 200, r.describe()
        seen = r.json()
        assert seen["requestline"] == "GET /app HTTP/1.1", seen
        assert ["authorization", "Bearer the-apps-own"] in [[k.lower(), v] for k, v in seen["headers"]], seen
        assert TOKEN not in json.dumps(seen)
        # The proxy's own redirect keeps the parameter: a browser following it is let in again.
        r = raw.get(secured.url, f"/{SANDBOX_ID}/proxy/{target.port}?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")
        assert r.status == 301, r.describe()
        assert r.header("Location") == f"/{SANDBOX_ID}/proxy/{target.port}/?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"
        r = requests.get(f"{secured.url}/{SANDBOX_ID}/proxy/{target.port}?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}", timeout=30)
        assert r.status_code == 200 and r.json()["requestline"] == "GET / HTTP/1.1", r.text
        # Without the token, nothing reaches the app.
        before = len(target.seen)
        assert_401(raw.get(secured.url, f"/proxy/{target.port}/x"), MISSING)
        assert len(target.seen) == before


def test_the_side_ports_ask_for_the_token(secured):
    terminal = f"http://127.0.0.1:{secured.terminal}"
    dashboard = f"http://127.0.0.1:{secured.dashboard}"
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    for base, path, headers in [
        (terminal, "/", {}),
        (terminal, "/xterm.js", {}),
        (terminal, "/ws", upgrade),
        (dashboard, "/", {}),
        (dashboard, "/api/recordings", {}),
    ]:
        assert_401(raw.get(base, path, headers=headers), MISSING)
        assert_401(raw.get(base, path, headers={**headers, "Authorization": f"Bearer {WRONG}"}), WRONG_HEADER)
        sep = "&" if "?" in path else "?"
        assert_401(raw.get(base, f"{path}{sep}DAYTONA_SANDBOX_AUTH_KEY={WRONG}", headers=headers), WRONG_QUERY)
    for base, path in [(terminal, "/"), (terminal, "/xterm.js"), (dashboard, "/"), (dashboard, "/api/recordings")]:
        r = raw.get(base, f"{path}?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}")
        assert r.status == 200, r.describe()
    r = raw.get(dashboard, "/api/recordings", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (r.status, r.json()) == (200, {"recordings": []})

    async def terminal_ws():
        async with aiohttp.ClientSession() as s:
            url = f"ws://127.0.0.1:{secured.terminal}/ws?DAYTONA_SANDBOX_AUTH_KEY={TOKEN}"
            async with s.ws_connect(url) as ws:
                await ws.send_str("echo term-$((2*21))\n")
                seen = ""
                while "term-42" not in seen:
                    msg = await ws.receive(timeout=15)
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    seen += msg.data

    asyncio.run(terminal_ws())


# ------------------------------------------------------------------------------------------ SSH


def ssh(port: int, password: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    askpass = tmp / f"askpass-{secrets.token_hex(4)}.sh"
    askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{password}'\n")
    askpass.chmod(0o700)
    env = {"PATH": "/usr/bin:/bin", "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
    cmd = [
        "ssh",
        "-o", "StrictHostKeyChecking=no",
        "-o", f"UserKnownHostsFile={tmp / 'known_hosts'}",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=10",
        "-F", "/dev/null",
        "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password",
        "-o", "NumberOfPasswordPrompts=1",
        "-p", str(port),
        "user@127.0.0.1",
        *args,
    ]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    finally:
        askpass.unlink()


def test_ssh_takes_the_token_as_password(secured):
    assert shutil.which("ssh"), "OpenSSH client missing (apt-get install openssh-client)"
    ok = ssh(secured.ssh, TOKEN, secured.tmp, "echo ssh-ok; env")
    assert ok.returncode == 0, ok.stderr
    out = ok.stdout.decode()
    assert out.startswith("ssh-ok\n"), out
    assert TOKEN not in out and KEY not in out and "DAYTONA_AUTH_TOKEN" not in out
    for password in (WRONG, "sandbox-ssh"):
        refused = ssh(secured.ssh, password, secured.tmp, "echo never")
        assert refused.returncode == 255, (password, refused)
        assert b"never" not in refused.stdout
        assert b"Permission denied" in refused.stderr, refused.stderr


# -------------------------------------------------------------------------------- the browser




def test_the_web_terminal_and_dashboard_in_a_browser_with_and_without_the_key(secured, tmp_path):
    devtools = free_port()
    proc = start_chromium(tmp_path / "chromium", devtools)
    page_url = f"http://127.0.0.1:{secured.terminal}/"
    video = secured.tmp / "recordings" / "0a0b0c0d-1111-4222-8333-444455556666_auth_20260101_000000.mp4"
    video.write_bytes(b"\x00" * 64)

    async def main():
        async with aiohttp.ClientSession() as s:
            page = await open_page(s, devtools)
            async with s.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = Cdp(ws)
                await cdp.call("Page.enable")
                # Without the key: the 401 envelope, no terminal.
                await cdp.call("Page.navigate", url=page_url)
                text = await cdp.wait("document.body && document.body.innerText", "the refusal shows")
                assert "UNAUTHORIZED" in text, text
                assert not await cdp.eval("!!window.term")
                # With it: the page loads its scripts and websocket with the key, and works.
                await cdp.call("Page.navigate", url=f"{page_url}?{urlencode({'DAYTONA_SANDBOX_AUTH_KEY': TOKEN})}")
                await cdp.wait("!!(window.term && document.querySelector('.xterm-rows'))", "the terminal is made")
                await cdp.wait(f"({SCREEN_TEXT}).trim()", "a prompt in the terminal")
                await cdp.eval("window.term.focus()")
                await cdp.call("Input.insertText", text="echo hello-$((6*7))")
                for kind in ("keyDown", "keyUp"):
                    await cdp.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                                   windowsVirtualKeyCode=13, nativeVirtualKeyCode=13,
                                   **({"text": "\r"} if kind == "keyDown" else {}))
                await cdp.wait(f"({SCREEN_TEXT}).includes('hello-42')", "the command's output")
                assert not cdp.exceptions, cdp.exceptions

                # The dashboard the same way: refused without the key; with it, its API calls and
                # the video links carry the key on.
                dashboard = f"http://127.0.0.1:{secured.dashboard}/"
                await cdp.call("Page.navigate", url=dashboard)
                text = await cdp.wait("document.body && document.body.innerText", "the refusal shows")
                assert "UNAUTHORIZED" in text, text
                await cdp.call("Page.navigate", url=f"{dashboard}?{urlencode({'DAYTONA_SANDBOX_AUTH_KEY': TOKEN})}")
                href = await cdp.wait(
                    "document.querySelector('a[download]') && document.querySelector('a[download]').href",
                    "the recording's download link",
                )
                assert "DAYTONA_SANDBOX_AUTH_KEY=" in href, href
                status = await cdp.eval(f"fetch({json.dumps(href)}).then(r => r.status)")
                assert status == 200, status
                assert not cdp.exceptions, cdp.exceptions

    try:
        asyncio.run(main())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# ------------------------------------------------------------------------------- signed URLs


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    q.update(changes)
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(q)}"


def sent(url: str) -> str:
    SENT_SIGNATURES.extend(parse_qs(urlsplit(url).query).get("signature", []))
    return url


def assert_403(r: requests.Response, says: str) -> None:
    assert r.status_code == 403, (r.status_code, r.text)
    v = r.json()
    assert v["code"] == "FORBIDDEN" and says in v["message"], v


@pytest.fixture
def signing(sandbox):
    """The SDK's sandbox with its cached signing key set to the daemon's (it would fetch it from
    the control plane)."""
    sandbox._signing_key = KEY  # noqa: SLF001
    sandbox._signing_key_fetched_at = time.monotonic()  # noqa: SLF001
    return sandbox


def test_signed_urls_from_the_sdk_download_and_upload_without_the_token(signing, secured):
    work = secured.daemon.workdir
    f = work / "signed dir" / "a b+c ü.txt"
    f.parent.mkdir()
    f.write_bytes(b"signed content")

    url = sent(signing.download_url(str(f)))
    assert url.startswith(f"{secured.url}/{SANDBOX_ID}/files/download?"), url
    r = requests.get(url, timeout=30)
    assert (r.status_code, r.content) == (200, b"signed content"), r.text
    r = requests.head(url, timeout=30)
    assert (r.status_code, r.headers["Content-Length"]) == (200, "14")
    r = requests.get(sent(signing.download_url(str(f), ttl_seconds=0)), timeout=30)
    assert r.status_code == 200 and "expires=0" in r.url

    target = work / "uploaded via url.bin"
    url = sent(signing.upload_url(str(target)))
    r = requests.post(url, files={"file": ("x.bin", b"\x00payload\xff")}, timeout=30)
    assert r.status_code == 200, r.text
    assert target.read_bytes() == b"\x00payload\xff"


def test_bad_signed_urls_are_refused_saying_why(signing, secured):
    work = secured.daemon.workdir
    f = work / "guarded.txt"
    f.write_text("guarded")
    (work / "other.txt").write_text("other")
    good = sent(signing.download_url(str(f)))

    assert_403(requests.get(with_query(good, path=str(work / "other.txt")), timeout=30), "signature does not match")
    sig = parse_qs(urlsplit(good).query)["signature"][0]
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert_403(requests.get(sent(with_query(good, signature=flipped)), timeout=30), "signature does not match")
    assert_403(requests.get(with_query(good, signature="v2_" + sig[3:]), timeout=30), "scheme")
    assert_403(requests.get(with_query(good, signature="v1_***"), timeout=30), "base64url")
    assert_403(requests.get(with_query(good, expires="0"), timeout=30), "signature does not match")

    expiring = sent(signing.download_url(str(f), ttl_seconds=1))
    time.sleep(2.2)
    assert_403(requests.get(expiring, timeout=30), "expired at")
    past = int(time.time()) - 60
    old = compute_file_url_signature(KEY, "GET", str(f), past)
    assert_403(requests.get(sent(with_query(good, expires=str(past), signature=old)), timeout=30), "expired at")

    # A download signature does not upload, and an upload one does not download.
    target = work / "never-written.bin"
    as_upload = sent(signing.download_url(str(target))).replace("/files/download?", "/files/upload-v2?")
    r = requests.post(as_upload, files={"file": ("x", b"nope")}, timeout=30)
    assert_403(r, "signature does not match")
    assert not target.exists(), "a refused upload leaves no file"
    assert [p.name for p in work.iterdir() if "never-written" in p.name] == []
    upload_sig = sent(signing.upload_url(str(f))).replace("/files/upload-v2?", "/files/download?")
    assert_403(requests.get(upload_sig, timeout=30), "signature does not match")

    # Half a signed URL is a 400; elsewhere a signature is no credential at all.
    r = requests.get(f"{secured.url}/files/download?{urlencode({'path': str(f), 'expires': '0'})}", timeout=30)
    assert r.status_code == 400 and "`signature`" in r.json()["message"], r.text
    r = requests.get(good.replace("/files/download?", "/files/info?"), timeout=30)
    assert r.status_code == 401, r.text


def test_stray_signature_parameters_without_a_key_are_ignored(daemon_factory):
    plain = daemon_factory.start()
    f = plain.workdir / "f.txt"
    f.write_text("plain")
    query = urlencode({"path": str(f), "expires": "1", "signature": "v1_bogus"})
    r = requests.get(f"{plain.url}/files/download?{query}", timeout=30)
    assert (r.status_code, r.text) == (200, "plain")
    # Behind the prefix too.
    r = requests.get(f"{plain.url}/{SANDBOX_ID}/files/download?{query}", timeout=30)
    assert (r.status_code, r.text) == (200, "plain")

    token_only = daemon_factory.start(extra_env={"DAYTONA_AUTH_TOKEN": TOKEN})
    f = token_only.workdir / "f.txt"
    f.write_text("token only")
    query = urlencode({"path": str(f), "expires": "1", "signature": "v1_bogus"})
    r = requests.get(f"{token_only.url}/files/download?{query}", timeout=30)
    assert r.status_code == 401, r.text
    r = requests.get(f"{token_only.url}/files/download?{query}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert (r.status_code, r.text) == (200, "token only")

    # With a key too: a good token is enough, whatever stray parameters ride along.
    both = daemon_factory.start(extra_env={"DAYTONA_AUTH_TOKEN": TOKEN, "DAYTONA_SIGNING_KEY": KEY})
    f = both.workdir / "f.txt"
    f.write_text("both")
    for stray in ({"expires": "0", "signature": "v1_stray"}, {"signature": "v1_stray"}):
        query = urlencode({"path": str(f), **stray})
        r = requests.get(f"{both.url}/files/download?{query}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert (r.status_code, r.text) == (200, "both"), (stray, r.text)
        r = requests.get(f"{both.url}/files/download?{query}", timeout=30)
        assert r.status_code in (400, 403), (stray, r.status_code, r.text)


def test_a_token_an_authorization_header_cannot_carry_stops_the_start(tmp_path):
    for token in ("with space 0123456789", "tr\u00e4iling-0123456789abc"):
        done = run_daemon_to_exit(tmp_path / secrets.token_hex(4), extra_env={"DAYTONA_AUTH_TOKEN": token})
        assert done.returncode == 2, (token, done.output)
        assert "visible ASCII" in done.output, done.output


# ---------------------------------------------------------------------------- configuration


def test_a_short_token_or_a_token_beside_an_ssh_password_stops_the_start(tmp_path):
    for env, says in [
        ({"DAYTONA_AUTH_TOKEN": "short"}, "DAYTONA_AUTH_TOKEN: too short"),
        ({"DAYTONA_SIGNING_KEY": "short"}, "DAYTONA_SIGNING_KEY: too short"),
        ({"DAYTONA_AUTH_TOKEN": TOKEN, "DAYTONA_SSH_PASSWORD": "pw"}, "DAYTONA_SSH_PASSWORD"),
        ({"DAYTONA_AUTH_TOKEN_FILE": str(tmp_path / "missing")}, "DAYTONA_AUTH_TOKEN_FILE"),
    ]:
        done = run_daemon_to_exit(tmp_path / secrets.token_hex(4), extra_env=env)
        assert done.returncode == 2, (env, done.output)
        assert says in done.output, done.output
        assert TOKEN not in done.output


def test_the_token_from_a_file(daemon_factory, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    d = daemon_factory.start(extra_env={"DAYTONA_AUTH_TOKEN_FILE": str(token_file)})
    assert_401(raw.get(d.url, "/version"), MISSING)
    assert raw.get(d.url, "/version", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
    env = raw.post_json(d.url, "/process/execute", {"command": "env"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert env.status == 200 and b"DAYTONA_AUTH_TOKEN" not in env.body and TOKEN.encode() not in env.body


# ------------------------------------------------------------------------ last: the daemon's log


def test_zz_no_secret_in_the_daemons_log(secured):
    """After everything above: the log file and the daemon's output hold no token, key or
    signature (the requests themselves are there, with the secrets redacted)."""
    d = secured.daemon
    texts = {"log file": d.log_path.read_text(errors="replace"), "stdout": d.stdout.text(), "stderr": d.stderr.text()}
    assert "/files/download" in texts["log file"], "the signed requests were logged"
    assert "REDACTED" in texts["log file"], "their secrets redacted"
    assert SENT_SIGNATURES, "signatures were sent"
    for where, text in texts.items():
        for secret in [TOKEN, KEY, WRONG, *SENT_SIGNATURES]:
            assert secret not in text, f"{secret[:12]}… in the daemon's {where}"
