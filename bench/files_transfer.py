#!/usr/bin/env python3
"""File transfer throughput of the daemon beside nginx and dd, measured in one run.

    python3 bench/files_transfer.py [--bin PATH] [--size BYTES] [--runs N] [--dir DIR]

Needs curl and nginx (Debian: apt-get install curl nginx-light); the script says so and exits
non-zero when one is missing. Build the daemon first with packaging/build-static.sh.

Prints, median of N runs each (MB/s = 10^6 bytes per second):
  (a) downloads of one file: the daemon's GET /files/download and POST /files/bulk-download
      against nginx serving the same file on loopback (sendfile on); client for all three:
      curl -s -o /dev/null -w '%{speed_download}';
  (b) uploads of the same file: POST /files/bulk-upload (curl -F) and POST /files/upload-v2
      (curl -T, raw body) against `dd if=<file> of=<dest> bs=1M` on the same disk;
  (c) the daemon's peak RSS (VmHWM) after the downloads and after the uploads.
Dirty pages are flushed (sync) before every timed run, so runs do not pay for each other's
writeback. A route the daemon does not serve is reported as such, not timed.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import socket

from common import QUICK, REPO, figure, free_port, rss_kib, start_daemon, stop, wait_port

MiB = 1 << 20


def wait_listening(port, proc, timeout=10):
    """Waits until `port` listens without connecting to it (the listener takes one connection)."""
    needle = f":{port:04X} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"listener on {port} exited with code {proc.returncode}")
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if needle in fields[1] + " " and fields[3] == "0A":
                    return
        time.sleep(0.01)
    sys.exit(f"nothing listened on port {port} within {timeout}s")


def make_file(path, size):
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, MiB)
            f.write(block[:n])
            left -= n


def curl(args, metric):
    """Runs curl; returns (http_code, bytes per second)."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", f"%{{http_code}} %{{{metric}}}", *args],
        capture_output=True, text=True, check=False,
    )
    code, _, speed = out.stdout.strip().partition(" ")
    return int(code or 0), float(speed or 0)


NGINX_CONF = """\
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(nginx, tmp, root):
    port = free_port()
    # As root nginx's workers would switch to `nobody`, who cannot read a private temp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = Path(tmp) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root))
    proc = subprocess.Popen([nginx, "-p", tmp, "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port, 20, proc, "nginx")
    return proc, port


def send_file(port, src, size, head=b""):
    """Sends `head` then the `size` bytes of `src` (sendfile) over one loopback connection; with a
    head (an HTTP request) returns the answer's status code once it has arrived, else closes the
    connection after the last byte. The same sender for the daemon and for socat, so the two
    differ only in what receives."""
    with socket.create_connection(("127.0.0.1", port)) as sock, open(src, "rb") as f:
        sock.sendall(head)
        offset = 0
        while offset < size:
            sent = os.sendfile(sock.fileno(), f.fileno(), offset, size - offset)
            if sent == 0:
                raise RuntimeError("the receiver closed the connection early")
            offset += sent
        if not head:
            return None
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def timed_runs(runs, fn, before=None):
    """Median of `runs` results of fn() (bytes/s), or the failure text."""
    speeds = []
    for _ in range(runs):
        if before:
            before()
        subprocess.run(["sync"], check=False)
        result = fn()
        if isinstance(result, str):
            return result
        speeds.append(result)
    return statistics.median(speeds)


def fmt(v, ref=None):
    if isinstance(v, str):
        return f"{'n/a':>10}   ({v})"
    text = f"{v / 1e6:10.1f} MB/s"
    if ref is not None and not isinstance(ref, str) and ref > 0:
        text += f"   {100 * v / ref:5.1f} %"
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "packaging" / "dist" / "daytona-daemon"))
    ap.add_argument("--size", type=int, default=(256 << 20) if QUICK else (1 << 30),
                    help="bytes per transfer (default 1 GiB; 256 MiB with BENCH_QUICK=1)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="directory for the files (default: a new temp dir)")
    args = ap.parse_args()

    missing = []
    if not shutil.which("curl"):
        missing.append("curl (apt-get install curl)")
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not nginx:
        missing.append("nginx (apt-get install nginx-light, or nginx)")
    if missing:
        sys.exit("files_transfer: missing tools: " + ", ".join(missing))
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"files_transfer: daemon binary not found: {binary} (build it with packaging/build-static.sh)")

    tmp = tempfile.mkdtemp(prefix="files-transfer-", dir=args.dir)
    daemon = nginx_proc = None
    try:
        www = Path(tmp) / "www"
        www.mkdir()
        src = www / "payload.bin"
        print(f"preparing a {args.size / MiB:.0f} MiB file in {tmp} ...", flush=True)
        make_file(src, args.size)
        daemon, dport = start_daemon(binary, tmp)
        nginx_proc, nport = start_nginx(nginx, tmp, str(www))
        base = f"http://127.0.0.1:{dport}"

        def download(url, extra=()):
            def run():
                code, speed = curl([*extra, url], "speed_download")
                return speed if code == 200 else f"HTTP {code}"
            return run

        results = {}
        results["nginx GET"] = timed_runs(args.runs, download(f"http://127.0.0.1:{nport}/payload.bin"))
        results["daemon GET /files/download"] = timed_runs(
            args.runs, download(f"{base}/files/download?path={quote(str(src))}"))
        results["daemon POST /files/bulk-download"] = timed_runs(args.runs, download(
            f"{base}/files/bulk-download",
            ["-X", "POST", "-H", "Content-Type: application/json", "--data", json.dumps({"paths": [str(src)]})]))
        hwm_downloads = rss_kib(daemon.pid, "VmHWM")

        dest = Path(tmp) / "uploads" / "dest.bin"
        dest.parent.mkdir()

        def clear():
            dest.unlink(missing_ok=True)

        def dd():
            t0 = time.perf_counter()
            r = subprocess.run(["dd", f"if={src}", f"of={dest}", "bs=1M"], capture_output=True, check=False)
            elapsed = time.perf_counter() - t0
            return args.size / elapsed if r.returncode == 0 else f"dd failed: {r.stderr.decode()[-200:]}"

        def bulk():
            code, speed = curl(["-H", "Expect:", "-F", f"files[0].path={dest}", "-F", f"files[0].file=@{src}",
                                f"{base}/files/bulk-upload"], "speed_upload")
            return speed if code == 200 else f"HTTP {code}"

        def v2():
            code, speed = curl(["-H", "Expect:", "-H", "Content-Type: application/octet-stream", "-X", "POST",
                                "-T", str(src), f"{base}/files/upload-v2?path={quote(str(dest))}"], "speed_upload")
            return speed if code == 200 else f"HTTP {code}"

        def socat_into_dest(send):
            """Starts socat receiving one connection into `dest`, runs `send(port)` and returns
            the throughput from the send's start until socat has closed the file."""
            port = free_port()
            sink = subprocess.Popen(["socat", "-b", "1048576", "-u", f"TCP-LISTEN:{port},reuseaddr", f"OPEN:{dest},creat,trunc"])
            try:
                wait_listening(port, sink)
                t0 = time.perf_counter()
                send(port)
                sink.wait(timeout=60)
                return args.size / (time.perf_counter() - t0)
            finally:
                if sink.poll() is None:
                    sink.kill()
                    sink.wait()

        def socat_tcp():
            # The transport alone: the same bytes over loopback TCP into a file, no HTTP. An
            # upload through any HTTP server on this machine cannot beat this.
            return socat_into_dest(lambda port: subprocess.run(
                ["socat", "-b", "1048576", "-u", f"FILE:{src}", f"TCP:127.0.0.1:{port}"], check=True))

        def v2_raw():
            # upload-v2 from the same sender as socat_raw below: request head, then sendfile.
            head = (f"POST /files/upload-v2?path={quote(str(dest))} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: application/octet-stream\r\nContent-Length: {args.size}\r\n\r\n").encode()
            t0 = time.perf_counter()
            code = send_file(dport, src, args.size, head)
            return args.size / (time.perf_counter() - t0) if code == 200 else f"HTTP {code}"

        def socat_raw():
            return socat_into_dest(lambda port: send_file(port, src, args.size))

        have_socat = shutil.which("socat")
        results["dd bs=1M"] = timed_runs(args.runs, dd, clear)
        results["socat loopback TCP -> file"] = (
            timed_runs(args.runs, socat_tcp, clear) if shutil.which("socat") else "n/a (apt-get install socat)")
        results["daemon POST /files/bulk-upload"] = timed_runs(args.runs, bulk, clear)
        results["daemon POST /files/upload-v2"] = timed_runs(args.runs, v2, clear)
        # The same sender for both: the figure the upload target is about.
        results["sendfile -> socat -> file"] = timed_runs(args.runs, socat_raw, clear) if have_socat else "n/a"
        results["sendfile -> daemon upload-v2"] = timed_runs(args.runs, v2_raw, clear)
        hwm_all = rss_kib(daemon.pid, "VmHWM")
        for name, check in (("bulk-upload", bulk), ("upload-v2", v2), ("upload-v2 (sendfile)", v2_raw)):
            # The last upload must have produced the exact bytes.
            clear()
            check()
            if not dest.exists() or dest.stat().st_size != args.size or not same_content(src, dest):
                results[f"daemon POST /files/{name}"] = "uploaded bytes differ from the source"

        print(f"\nmedian of {args.runs} runs, {args.size / MiB:.0f} MiB, daemon {binary}")
        print("(a) download                              throughput     vs nginx")
        ref = results["nginx GET"]
        for k in ("nginx GET", "daemon GET /files/download", "daemon POST /files/bulk-download"):
            print(f"    {k:36s}{fmt(results[k], ref)}")
        print("(b) upload                                throughput     vs dd")
        ref = results["dd bs=1M"]
        for k in ("dd bs=1M", "socat loopback TCP -> file", "daemon POST /files/bulk-upload",
                  "daemon POST /files/upload-v2"):
            print(f"    {k:36s}{fmt(results[k], ref)}")
        print("(b2) upload, one sender (sendfile)        throughput     vs socat")
        ref = results["sendfile -> socat -> file"]
        for k in ("sendfile -> socat -> file", "sendfile -> daemon upload-v2"):
            print(f"    {k:36s}{fmt(results[k], ref)}")
        print("(c) daemon peak RSS (VmHWM)")
        print(f"    after the downloads                 {hwm_downloads / 1024:8.1f} MiB")
        print(f"    after the uploads                   {hwm_all / 1024:8.1f} MiB")

        def fig(name, ours, base, base_name, target, share):
            if isinstance(ours, str) or isinstance(base, str):
                print(f"no figure for {name}: {ours if isinstance(ours, str) else base}")
                return
            figure(name, ours / 1e6, base / 1e6, "MB/s", target,
                   None if share is None else ours / base >= share, base_name)

        fig("download GET /files/download", results["daemon GET /files/download"], results["nginx GET"],
            "nginx, sendfile", ">= 90 %", 0.90)
        fig("upload-v2 (one sender, sendfile)", results["sendfile -> daemon upload-v2"],
            results["sendfile -> socat -> file"], "socat TCP -> file", ">= 95 %", 0.95)
        fig("upload-v2 (curl -T)", results["daemon POST /files/upload-v2"], results["socat loopback TCP -> file"],
            "socat -> socat -> file", "", None)
        fig("bulk-upload (curl -F)", results["daemon POST /files/bulk-upload"], results["dd bs=1M"],
            "dd bs=1M", "", None)
        figure("peak RSS after 1 GiB transfers" if not QUICK else "peak RSS after the transfers",
               hwm_all / 1024, 0, "MiB", "", None)
    finally:
        for p in (daemon, nginx_proc):
            if p is not None:
                stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


def same_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(MiB), fb.read(MiB)
            if x != y:
                return False
            if not x:
                return True


if __name__ == "__main__":
    main()
