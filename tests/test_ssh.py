"""The SSH server (misc.md §9, issue "SSH and SFTP on port 22220") driven by the OpenSSH client
tools: exec (output, stderr apart, exit codes, stdin, env, signal deaths), an interactive shell
on a PTY (tmux: prompt, resize, Ctrl-C), scp and sftp of 200 MB both ways with checksums, sftp
file operations, -L and -R forwarding of an HTTP server, an interrupted upload that leaves no
partial target, who is let in (gateway password, authorized keys from the user's file and from
DAYTONA_SSH_AUTHORIZED_KEYS, never an unlisted key, no password when it is turned off), and a
host key that survives a restart."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import DaemonFactory
from harness.daemon import free_port, wait_ssh_banner



@pytest.fixture(autouse=True)
def _openssh_client():
    # CI installs it (tests/ensure-deps); a machine without it fails here, saying so, never skips.
    missing = [t for t in ("ssh", "scp", "sftp", "ssh-keygen") if shutil.which(t) is None]
    assert not missing, f"OpenSSH client tools missing: {', '.join(missing)} (apt-get install openssh-client)"

PASSWORD = "sandbox-ssh"




def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


class Client:
    """OpenSSH client invocations against one daemon."""

    def __init__(self, port: int, tmp: Path):
        self.port = port
        self.tmp = tmp
        self.known_hosts = tmp / "known_hosts"
        askpass = tmp / "askpass.sh"
        askpass.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
        askpass.chmod(0o755)
        self.askpass = askpass

    def opts(self, key: Path | None = None, password: str | None = PASSWORD) -> list[str]:
        o = [
            "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10",
            "-F", "/dev/null",
        ]
        if key is not None:
            o += ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no", "-o", "BatchMode=yes"]
        else:
            o += [
                "-o", "PubkeyAuthentication=no",
                "-o", "PreferredAuthentications=password",
                "-o", "NumberOfPasswordPrompts=1",
            ]
        return o

    def env(self, password: str | None = PASSWORD) -> dict[str, str]:
        env = dict(os.environ)
        if password is not None:
            script = self.tmp / f"askpass-{abs(hash(password))}.sh"
            script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{password}'\n")
            script.chmod(0o755)
            env.update(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force", DISPLAY=env.get("DISPLAY", ":0"))
        return env

    def ssh(self, *args: str, key: Path | None = None, password: str | None = PASSWORD, input: bytes | None = None,
            timeout: float = 30, extra: list[str] = ()) -> subprocess.CompletedProcess:
        cmd = ["ssh", *self.opts(key), *extra, "-p", str(self.port), "user@127.0.0.1", *args]
        return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=self.env(password),
                              stdin=None if input is not None else subprocess.DEVNULL)

    # sftp -b runs ssh in batch mode, which never asks for a password: transfers use a key.
    transfer_key: Path | None = None

    def scp(self, src: str, dst: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = ["scp", "-q", *self.opts(self.transfer_key), "-P", str(self.port), src, dst]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=self.env(), stdin=subprocess.DEVNULL)

    def sftp_cmd(self, batch: Path) -> list[str]:
        return ["sftp", "-q", *self.opts(self.transfer_key), "-P", str(self.port), "-b", str(batch), "user@127.0.0.1"]

    def sftp(self, commands: str, timeout: float = 120) -> subprocess.CompletedProcess:
        batch = self.tmp / "batch"
        batch.write_text(commands)
        return subprocess.run(self.sftp_cmd(batch), capture_output=True, timeout=timeout, env=self.env(),
                              stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def server(daemon_bin, tmp_path_factory):
    """One daemon for the module: SSH on a free port, a key in the variable and one in the
    user's authorized_keys, and shell start-up files that set a recognisable prompt."""
    tmp = tmp_path_factory.mktemp("ssh")
    env_key, user_key, stranger = tmp / "env_key", tmp / "user_key", tmp / "stranger"
    env_pub, user_pub = keygen(env_key), keygen(user_key)
    keygen(stranger)
    home = tmp / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text(f"# the user's own\n{user_pub}\n")
    (home / ".zshrc").write_text("PROMPT='ssh-prompt%# '\n")
    (home / ".bashrc").write_text("PS1='ssh-prompt$ '\n")
    port = free_port()
    factory = DaemonFactory(tmp / "daemons")
    d = factory.start(extra_env={
        "HOME": str(home),
        "DAYTONA_SSH_PORT": str(port),
        "DAYTONA_SSH_AUTHORIZED_KEYS": f"# configured\n{env_pub}\n",
    })
    wait_ssh_banner(port)
    client = Client(port, tmp)
    client.daemon = d
    client.keys = {"env": env_key, "user": user_key, "stranger": stranger}
    client.transfer_key = env_key
    yield client
    factory.finish()


# ------------------------------------------------------------------------------------- exec


def test_exec_output_stderr_and_exit_code(server):
    r = server.ssh("echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n"), r


def test_exec_stdin_env_and_work_dir(server):
    r = server.ssh("cat; echo \"[$GREETING]\"; pwd", input=b"from stdin\n",
                   extra=["-o", 'SetEnv=GREETING="hello world"'])
    assert r.returncode == 0, r
    lines = r.stdout.decode().splitlines()
    assert lines[:2] == ["from stdin", "[hello world]"], r
    assert lines[2] == str(server.daemon.workdir)


def test_signal_death_is_status_1(server):
    r = server.ssh("kill -9 $$")
    assert r.returncode == 1, r


def test_large_output_is_complete(server):
    r = server.ssh("head -c 5000000 /dev/zero | tr '\\0' x")
    assert r.returncode == 0 and r.stdout == b"x" * 5_000_000


# -------------------------------------------------------------------------------------- auth


def test_keys_from_the_variable_and_the_users_file_are_accepted(server):
    for name in ("env", "user"):
        r = server.ssh("echo ok", key=server.keys[name], password=None)
        assert (r.returncode, r.stdout) == (0, b"ok\n"), (name, r)


def test_an_unlisted_key_is_refused(server):
    r = server.ssh("echo ok", key=server.keys["stranger"], password=None)
    assert r.returncode == 255 and r.stdout == b"", r
    assert b"Permission denied" in r.stderr


def test_a_wrong_password_is_refused(server):
    r = server.ssh("echo ok", password="not-the-password")
    assert r.returncode == 255 and r.stdout == b"", r
    log = server.daemon.stdout.text() + server.daemon.stderr.text()
    assert "SSH login refused" in log
    assert "not-the-password" not in log


def test_password_login_can_be_turned_off(daemon_factory, tmp_path):
    key = tmp_path / "k"
    pub = keygen(key)
    port = free_port()
    daemon_factory.start(extra_env={
        "DAYTONA_SSH_PORT": str(port),
        "DAYTONA_SSH_PASSWORD_AUTH": "false",
        "DAYTONA_SSH_AUTHORIZED_KEYS": pub,
    })
    wait_ssh_banner(port)
    c = Client(port, tmp_path)
    r = c.ssh("echo ok")
    assert r.returncode == 255 and r.stdout == b"", r
    r = c.ssh("echo ok", key=key, password=None)
    assert (r.returncode, r.stdout) == (0, b"ok\n"), r


def test_a_custom_password_logs_in_and_no_child_can_read_it(daemon_factory, sdk_for, tmp_path):
    """DAYTONA_SSH_PASSWORD is the daemon's secret: not in the environment of what it runs."""
    port = free_port()
    secret = "s3cret-gateway-password"
    d = daemon_factory.start(extra_env={"DAYTONA_SSH_PORT": str(port), "DAYTONA_SSH_PASSWORD": secret})
    wait_ssh_banner(port)
    c = Client(port, tmp_path)
    assert c.ssh("echo ok").returncode == 255, "the default password must not work any more"
    r = c.ssh("env", password=secret)
    assert r.returncode == 0 and b"HOME=" in r.stdout, r
    assert secret.encode() not in r.stdout and b"DAYTONA_SSH_PASSWORD" not in r.stdout, r.stdout
    out = sdk_for(d).sandbox.process.exec("env").result
    assert "HOME=" in out and secret not in out and "DAYTONA_SSH_PASSWORD" not in out, out


def test_the_host_key_survives_a_restart(daemon_factory, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {"HOME": str(home), "DAYTONA_SSH_PORT": str(port)}

    def scan() -> str:
        wait_ssh_banner(port)
        r = subprocess.run(["ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1"],
                           capture_output=True, text=True, timeout=20)
        return next(l.split(None, 1)[1] for l in r.stdout.splitlines() if not l.startswith("#"))

    d = daemon_factory.start(extra_env=env)
    first = scan()
    assert d.stop() == 0
    key_file = home / ".daytona" / "ssh" / "host_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    daemon_factory.start(extra_env=env)
    assert scan() == first


# --------------------------------------------------------------------------------------- pty


def test_interactive_shell_on_a_pty(server, tmp_path):
    assert shutil.which("tmux"), "tmux is not installed (apt-get install tmux; tests/ensure-deps installs it)"
    sock = str(tmp_path / "tmux.sock")
    ssh = " ".join(["ssh", "-tt", *server.opts(), "-p", str(server.port), "user@127.0.0.1"])
    env = server.env()

    def tmux(*a: str) -> str:
        return subprocess.run(["tmux", "-S", sock, *a], capture_output=True, text=True, env=env, timeout=10).stdout

    def screen_has(text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = tmux("capture-pane", "-p", "-t", "t")
            if text in out:
                return out
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen:\n{out}")

    subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "100", "-y", "30",
                    ssh], check=True, env=env, timeout=10)
    try:
        tmux("set-option", "-t", "t", "status", "off")
        screen_has("ssh-prompt")
        tmux("send-keys", "-t", "t", "stty size; echo tty=$(tty)", "Enter")
        screen_has("tty=/dev/pts/")
        tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
        time.sleep(0.3)
        tmux("send-keys", "-t", "t", "clear; stty size", "Enter")
        screen_has("40 120")
        tmux("send-keys", "-t", "t", "sleep 100", "Enter")
        time.sleep(0.5)
        tmux("send-keys", "-t", "t", "C-c")
        tmux("send-keys", "-t", "t", "echo after-$((20+22))", "Enter")
        screen_has("after-42", timeout=5)
        tmux("send-keys", "-t", "t", "exit", "Enter")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "t" in tmux("list-sessions", "-F", "#S").split():
            time.sleep(0.1)
        assert "t" not in tmux("list-sessions", "-F", "#S").split(), "ssh did not end with the shell"
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)


# ------------------------------------------------------------------------------ scp and sftp


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("big") / "big.bin"
    with open(p, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    return p


def test_scp_200mb_both_ways(server, big_file, tmp_path):
    remote = server.daemon.workdir / "scp-up.bin"
    r = server.scp(str(big_file), f"user@127.0.0.1:{remote}")
    assert r.returncode == 0, r
    assert sha256(remote) == sha256(big_file)
    back = tmp_path / "scp-down.bin"
    r = server.scp(f"user@127.0.0.1:{remote}", str(back))
    assert r.returncode == 0, r
    assert sha256(back) == sha256(big_file)
    remote.unlink()


def test_scp_exits_0_every_time(server, tmp_path):
    # The SFTP exit status used to lose a race with the close OpenSSH sends right after its end
    # of file: the client then reported -1 and scp failed about one time in five.
    src = tmp_path / "small.bin"
    src.write_bytes(os.urandom(64 * 1024))
    remote = server.daemon.workdir / "small.bin"
    assert server.scp(str(src), f"user@127.0.0.1:{remote}").returncode == 0
    codes = [server.scp(f"user@127.0.0.1:{remote}", str(tmp_path / f"d{i}")).returncode for i in range(20)]
    assert codes == [0] * 20


def test_sftp_200mb_both_ways_with_relative_paths(server, big_file, tmp_path):
    back = tmp_path / "sftp-down.bin"
    r = server.sftp(f"put {big_file} sftp-up.bin\nget sftp-up.bin {back}\n")
    assert r.returncode == 0, r
    up = server.daemon.workdir / "sftp-up.bin"
    assert sha256(up) == sha256(big_file) == sha256(back)
    up.unlink()


def test_sftp_file_operations(server, tmp_path):
    base = server.daemon.workdir / "ops"
    local = tmp_path / "small.txt"
    local.write_text("hello sftp\n")
    r = server.sftp(
        f"mkdir {base}\n"
        f"put {local} {base}/a.txt\n"
        f"rename {base}/a.txt {base}/b.txt\n"
        f"chmod 600 {base}/b.txt\n"
        f"symlink {base}/b.txt {base}/link\n"
        f"mkdir {base}/gone\n"
        f"rmdir {base}/gone\n"
        f"put {local} {base}/c.txt\n"
        f"rm {base}/c.txt\n"
        f"ls -l {base}\n"
    )
    assert r.returncode == 0, r
    assert sorted(os.listdir(base)) == ["b.txt", "link"]
    assert (base / "b.txt").read_text() == "hello sftp\n"
    assert stat.S_IMODE((base / "b.txt").stat().st_mode) == 0o600
    assert os.readlink(base / "link") == f"{base}/b.txt"
    assert b"b.txt" in r.stdout


def test_an_interrupted_upload_leaves_no_partial_target(server, big_file, tmp_path):
    target_dir = server.daemon.workdir / "interrupted"
    target_dir.mkdir()
    old = target_dir / "kept.bin"
    old.write_bytes(b"old contents")
    batch = tmp_path / "batch-int"
    batch.write_text(f"put {big_file} {target_dir}/new.bin\nput {big_file} {old}\n")
    # Slow the copy down so it is surely cut off half-way.
    cmd = server.sftp_cmd(batch)
    cmd[1:1] = ["-l", "40000"]
    p = subprocess.Popen(cmd, env=server.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            temps = [e for e in os.listdir(target_dir) if e.endswith(".upload")]
            if temps and (target_dir / temps[0]).stat().st_size > 1 << 20:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the upload never started: {os.listdir(target_dir)}")
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sorted(os.listdir(target_dir)) != ["kept.bin"]:
        time.sleep(0.1)
    assert sorted(os.listdir(target_dir)) == ["kept.bin"]
    assert old.read_bytes() == b"old contents"


# ----------------------------------------------------------------------------- forwarding


@pytest.fixture
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"served {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def fetch_via(port: int, path: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("direction", ["-L", "-R"])
def test_port_forwarding_of_an_http_server(server, http_server, direction):
    port = free_port()
    cmd = ["ssh", *server.opts(), "-N", "-o", "ExitOnForwardFailure=yes",
           direction, f"{port}:127.0.0.1:{http_server}", "-p", str(server.port), "user@127.0.0.1"]
    p = subprocess.Popen(cmd, env=server.env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert fetch_via(port, "/one") == "served /one"
        assert fetch_via(port, "/two") == "served /two"
    finally:
        p.terminate()
        p.wait(10)


def test_unix_socket_forwarding_both_ways(server, http_server, tmp_path):
    # -L to a socket on the server side (direct-streamlocal), served by a relay of the HTTP
    # server; then -R of a socket on the server side to the HTTP server (streamlocal-forward).
    remote_sock = tmp_path / "remote" / "http.sock"
    remote_sock.parent.mkdir()
    relay = socket.socket(socket.AF_UNIX)
    relay.bind(str(remote_sock))
    relay.listen()

    def serve_relay():
        while True:
            try:
                c, _ = relay.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", http_server))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve_relay, daemon=True).start()
    port = free_port()
    cmd = ["ssh", *server.opts(), "-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{port}:{remote_sock}",
           "-p", str(server.port), "user@127.0.0.1"]
    p = subprocess.Popen(cmd, env=server.env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert fetch_via(port, "/via-socket") == "served /via-socket"
    finally:
        p.terminate()
        p.wait(10)
        relay.close()

    listen_path = tmp_path / "made" / "deeper" / "fwd.sock"
    cmd = ["ssh", *server.opts(), "-N", "-o", "ExitOnForwardFailure=yes", "-R", f"{listen_path}:127.0.0.1:{http_server}",
           "-p", str(server.port), "user@127.0.0.1"]
    p = subprocess.Popen(cmd, env=server.env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while not listen_path.exists():
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() is not None else ""
            time.sleep(0.05)
        assert stat.S_IMODE(listen_path.parent.stat().st_mode) == 0o700
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(listen_path))
            s.sendall(b"GET /back HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data.endswith(b"served /back"), data
    finally:
        p.terminate()
        p.wait(10)
    # The listener and its socket file go with the connection.
    deadline = time.monotonic() + 10
    while listen_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not listen_path.exists()


def _pump(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def test_agent_forwarding(server, tmp_path):
    assert shutil.which("ssh-agent"), "ssh-agent is not installed (it comes with openssh-client)"
    agent_sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(agent_sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not agent_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = dict(os.environ, SSH_AUTH_SOCK=str(agent_sock))
        subprocess.run(["ssh-add", "-q", str(server.keys["stranger"])], env=env, check=True, capture_output=True)
        want = subprocess.run(["ssh-add", "-l"], env=env, capture_output=True, text=True).stdout.split()[1]
        r = server.ssh("echo sock=$SSH_AUTH_SOCK; ssh-add -l", extra=["-A", "-o", f"IdentityAgent={agent_sock}"])
        assert r.returncode == 0, r
        out = r.stdout.decode()
        assert "sock=/" in out and want in out, out
    finally:
        agent.terminate()
        agent.wait(5)


def test_a_command_with_t_runs_on_a_terminal(server):
    r = server.ssh("tty; stty size", extra=["-tt", "-o", "RequestTTY=force"])
    assert r.returncode == 0, r
    lines = r.stdout.decode().replace("\r", "").splitlines()
    assert lines[0].startswith("/dev/pts/"), lines


def test_at_the_cap_an_idle_connection_makes_room_and_a_busy_one_never(daemon_factory, tmp_path):
    """Daytona's gateway opens a connection per channel and closes only the channel: at the cap
    the oldest connection with nothing open is closed for the newcomer; one in use never is, and
    when every connection is in use the newcomer is refused."""
    port = free_port()
    daemon_factory.start(extra_env={"DAYTONA_SSH_PORT": str(port), "DAYTONA_SSH_MAX_CONNECTIONS": "2"})
    wait_ssh_banner(port)
    time.sleep(0.2)  # the probe's place is given back
    c = Client(port, tmp_path)

    def busy() -> subprocess.Popen:
        cmd = ["ssh", *c.opts(), "-p", str(port), "user@127.0.0.1", "echo started; sleep 30"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=c.env())
        assert p.stdout.readline() == b"started\n"
        return p

    def banner(sock: socket.socket) -> bytes:
        sock.settimeout(5)
        return sock.recv(64)

    first = busy()
    try:
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert banner(idle).startswith(b"SSH-2.0-")
        # Full (one busy, one idle): the newcomer gets in, the idle one is closed, the busy stays.
        newcomer = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert banner(newcomer).startswith(b"SSH-2.0-")
        idle.settimeout(5)
        assert idle.recv(64) == b"", "the idle connection was not closed"
        assert first.poll() is None, "the busy connection was closed"
        # Two busy connections: the second pushes the idle newcomer out, then nobody gets in.
        second = busy()
        try:
            assert newcomer.recv(64) == b""
            with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
                assert banner(extra) == b"", "a connection got in while every one was in use"
            assert first.poll() is None and second.poll() is None
        finally:
            second.kill()
            second.wait()
    finally:
        first.kill()
        first.wait()
        idle.close()
        newcomer.close()
    # Places are free again once the connections go.
    deadline = time.monotonic() + 5
    while True:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            if banner(s).startswith(b"SSH-2.0-"):
                break
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _procs_with(tag: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if tag.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("tty", [False, True])
def test_a_client_that_goes_away_takes_its_command_along(server, tty):
    tag = f"{time.time_ns() % 100000}.{int(tty)}"
    # On a terminal the job runs in a group of its own (job control) and must be hung up too.
    command = f"sleep 7{tag} & sleep 8{tag}; wait" if tty else f"sleep 7{tag}; true"
    cmd = ["ssh", *server.opts(), *(["-tt"] if tty else []), "-p", str(server.port), "user@127.0.0.1", command]
    p = subprocess.Popen(cmd, env=server.env(), stdin=subprocess.PIPE if tty else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not _procs_with(f"7{tag}"):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 10
    while _procs_with(f"7{tag}") or _procs_with(f"8{tag}"):
        assert time.monotonic() < deadline, "the command outlived its client"
        time.sleep(0.1)


def test_a_command_that_does_not_read_its_input_never_wedges_the_channel(server):
    """Megabytes sent to a program that never reads stdin: the client can still leave, and the
    program goes with it (a blocked write used to hold the channel, the task and the program)."""
    tag = f"9{time.time_ns() % 100000}"
    cmd = ["ssh", *server.opts(), "-p", str(server.port), "user@127.0.0.1", f"sleep {tag}"]
    p = subprocess.Popen(cmd, env=server.env(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not _procs_with(tag):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
        feeding = threading.Thread(target=lambda: _feed(p, 16 << 20), daemon=True)
        feeding.start()
        time.sleep(1.0)  # far more than a pipe holds is on its way
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 10
    while _procs_with(tag):
        assert time.monotonic() < deadline, "the command outlived its client"
        time.sleep(0.1)
    # The server still serves.
    assert server.ssh("echo ok").stdout == b"ok\n"


def _feed(p: subprocess.Popen, size: int) -> None:
    try:
        p.stdin.write(b"\0" * size)
        p.stdin.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass


def test_a_connection_that_does_not_log_in_is_closed(daemon_factory):
    port = free_port()
    daemon_factory.start(extra_env={"DAYTONA_SSH_PORT": str(port), "DAYTONA_SSH_LOGIN_TIMEOUT": "1s"})
    wait_ssh_banner(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
        silent.settimeout(10)
        t0 = time.monotonic()
        assert silent.recv(64).startswith(b"SSH-2.0-")
        # Says nothing more: closed after the login timeout, not kept for ever.
        while silent.recv(4096):
            pass
        assert 0.5 < time.monotonic() - t0 < 5
    # A client that got through the key exchange but stalls at the password prompt as well.
    c = Client(port, Path(tempfile.mkdtemp(prefix="ssh-login-")))
    env = c.env()
    slow = c.tmp / "slow-askpass.sh"
    slow.write_text("#!/bin/sh\nsleep 3\necho sandbox-ssh\n")
    slow.chmod(0o755)
    env["SSH_ASKPASS"] = str(slow)
    r = subprocess.run(["ssh", *c.opts(), "-p", str(port), "user@127.0.0.1", "true"], env=env,
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    # The client only reads the server's disconnect once its prompt returns.
    assert r.returncode == 255 and b"login grace time exceeded" in r.stderr, r
