#!/usr/bin/env python3
"""SSH throughput and latency: the daemon's SSH server beside Debian's OpenSSH server.

    cargo build --release -p daytona-daemon
    apt-get install --no-install-recommends openssh-server   # for the baseline; see below
    python3 bench/ssh.py [--bin target/release/daytona-daemon] [--mib 1024] [--runs 20]

Prints, for each server:
  * `scp` of a file of --mib MiB to the server and back (MB/s, best of 2; OpenSSH 9 scp speaks
    SFTP, so this is the SFTP path), and the daemon's share of sshd's throughput (target 80 %);
  * `ssh host true` wall time p50 (connect, key exchange, login, exec, exit status).
Both servers run on free loopback ports with a key made for the run; sshd is started as
`/usr/sbin/sshd -D -f <tmp config>` and stopped at the end. Installing openssh-server on a
Debian host also enables and starts the system's sshd on port 22: stop it
(`systemctl disable --now ssh`) if that is unwanted; in a container without systemd it does not
start. When /usr/sbin/sshd is missing the baseline rows say so and the daemon is still measured.
Only the standard library is used. With BENCH_QUICK=1 the defaults are 64 MiB and 5 runs.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import QUICK, REPO, daemon_env, figure, free_port, stop, wait_port

SSHD = "/usr/sbin/sshd"


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text()


def start_daemon(binary: str, base: Path, pub: str) -> tuple[subprocess.Popen, int]:
    port, ssh_port = free_port(), free_port()
    home = base / "home"
    home.mkdir(parents=True)
    for rc in (".zshrc", ".bashrc"):
        (home / rc).touch()
    env = daemon_env(home, port, base / "daemon.log")
    env.update(DAYTONA_SSH_PORT=str(ssh_port), DAYTONA_SSH_AUTHORIZED_KEYS=pub)
    proc = subprocess.Popen([os.path.abspath(binary)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=base)
    wait_port(ssh_port, 20, proc, "the daemon's SSH server")
    return proc, ssh_port


def start_sshd(base: Path, pub: str) -> tuple[subprocess.Popen, int] | None:
    if not os.path.exists(SSHD):
        return None
    port = free_port()
    host_key = base / "sshd_host_key"
    keygen(host_key)
    (base / "authorized_keys").write_text(pub)
    sftp_server = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server") if os.path.exists(p)),
                       "internal-sftp")
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {base}/authorized_keys\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PidFile none\nPermitRootLogin prohibit-password\nSubsystem sftp {sftp_server}\n"
    )
    # sshd insists on its privilege-separation directory.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, 10, proc, "sshd")
    return proc, port


def ssh_opts(tmp: Path, key: Path) -> list[str]:
    return ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp}/known_hosts",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-i", str(key), "-o", "IdentitiesOnly=yes"]


def scp_seconds(opts: list[str], port: int, src: str, dst: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["scp", "-q", *opts, "-P", str(port), src, dst], check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(name: str, opts: list[str], port: int, src: Path, tmp: Path, runs: int) -> dict:
    user = os.environ.get("USER") or "root"
    remote = tmp / f"remote-{name}.bin"
    back = tmp / f"back-{name}.bin"
    size = src.stat().st_size
    up = min(scp_seconds(opts, port, str(src), f"{user}@127.0.0.1:{remote}") for _ in range(2))
    down = min(scp_seconds(opts, port, f"{user}@127.0.0.1:{remote}", str(back)) for _ in range(2))
    remote.unlink()
    back.unlink()
    lat = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["ssh", *opts, "-p", str(port), f"{user}@127.0.0.1", "true"], check=True,
                       stdin=subprocess.DEVNULL)
        lat.append(time.perf_counter() - t0)
    return {"up": size / up / 1e6, "down": size / down / 1e6, "p50": statistics.median(lat) * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "target/release/daytona-daemon"))
    ap.add_argument("--mib", type=int, default=64 if QUICK else 1024)
    ap.add_argument("--runs", type=int, default=5 if QUICK else 20)
    a = ap.parse_args()
    if shutil.which("scp") is None:
        raise SystemExit("the OpenSSH client (scp, ssh) is needed: apt-get install openssh-client")
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as t:
        tmp = Path(t)
        key = tmp / "id"
        pub = keygen(key)
        src = tmp / "src.bin"
        with open(src, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(a.mib):
                f.write(chunk)
        opts = ssh_opts(tmp, key)
        daemon, dport = start_daemon(a.bin, tmp / "daemon", pub)
        sshd = start_sshd(tmp, pub)
        try:
            rows = {"daemon": measure("daemon", opts, dport, src, tmp, a.runs)}
            if sshd is not None:
                rows["sshd"] = measure("sshd", opts, sshd[1], src, tmp, a.runs)
        finally:
            stop(daemon)
            if sshd is not None:
                stop(sshd[0])
    print(f"scp of {a.mib} MiB (best of 2) and `ssh host true` ({a.runs} runs)")
    print(f"{'server':8} {'upload MB/s':>12} {'download MB/s':>14} {'true p50 ms':>12}")
    for name, r in rows.items():
        print(f"{name:8} {r['up']:12.1f} {r['down']:14.1f} {r['p50']:12.1f}")
    if "sshd" not in rows:
        print(f"sshd     {SSHD} not installed: apt-get install --no-install-recommends openssh-server")
    else:
        d, s = rows["daemon"], rows["sshd"]
        print(f"daemon/sshd throughput: upload {d['up'] / s['up']:.0%}, download {d['down'] / s['down']:.0%} "
              f"(target >= 80%)")
    d, s = rows["daemon"], rows.get("sshd")
    base_name = "OpenSSH sshd" if s else "OpenSSH sshd (not installed)"
    for key, what in (("up", "upload"), ("down", "download")):
        figure(f"scp {what} ({a.mib} MiB)", d[key], s[key] if s else 0, "MB/s", ">= 80 %",
               d[key] / s[key] >= 0.8 if s else None, base_name)
    figure("ssh host true p50", d["p50"], s["p50"] if s else 0, "ms", "", None, base_name)


if __name__ == "__main__":
    main()
