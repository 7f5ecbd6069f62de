#!/usr/bin/env python3
"""Round-trip latency of POST /process/code-run beside spawning the interpreter directly, in
one run.

    cargo build --release -p daytona-daemon
    python bench/code_run.py [--bin PATH] [--calls 200]

With BENCH_QUICK=1 the default is 20 calls (after 3 warm-up calls instead of 10).

Run it with a Python that has the generated client (`daytona-toolbox-api-client`, see
tests/requirements.txt). The daemon gets this process' PATH, so both sides run the same
`python3`. Prints p50/p99 over N calls of:
  * `python3 -c "print(1)"` spawned directly (subprocess with its output captured): the cost of
    the interpreter itself, no shell, no HTTP;
  * `sh -c 'python3 -c "print(1)"'` spawned directly: the same behind a shell, as the daemon runs it;
  * POST /process/code-run {"code": "print(1)", "language": "python"} over raw HTTP on a
    kept-alive connection (the daemon's own cost);
  * the generated client's `ProcessApi.code_run` (what the SDK's `process.code_run` calls).
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile

from common import QUICK, REPO, figure, pcts, start_daemon, stop, timed

CODE = "print(1)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "daytona-daemon"))
    ap.add_argument("--calls", type=int, default=20 if QUICK else 200)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"no daemon binary at {args.bin}: cargo build --release -p daytona-daemon")
    try:
        from daytona_toolbox_api_client import ApiClient, CodeRunRequest, Configuration, ProcessApi
    except ImportError:
        sys.exit("needs daytona-toolbox-api-client (pip install -r tests/requirements.txt)")
    python3 = shutil.which("python3")
    if python3 is None:
        sys.exit("no python3 on PATH")

    with tempfile.TemporaryDirectory() as base:
        proc, port = start_daemon(args.bin, base)
        try:
            def native():
                out = subprocess.run([python3, "-c", CODE], capture_output=True, check=True).stdout
                assert out == b"1\n", out

            def native_shell():
                out = subprocess.run(["sh", "-c", f"python3 -c '{CODE}'"], capture_output=True,
                                     check=True).stdout
                assert out == b"1\n", out

            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"code": CODE, "language": "python"})

            def raw_http():
                conn.request("POST", "/process/code-run", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = json.loads(resp.read())
                assert resp.status == 200 and data == {"exitCode": 0, "result": "1\n"}, data

            api = ProcessApi(ApiClient(Configuration(host=f"http://127.0.0.1:{port}")))
            request = CodeRunRequest(code=CODE, language="python")

            def client():
                r = api.code_run(request)
                assert (r.exit_code, r.result) == (0, "1\n"), r

            rows = []
            for name, fn in [
                ("python3 -c (direct spawn)", native),
                ("sh -c 'python3 -c' (direct spawn)", native_shell),
                ("code-run, raw HTTP", raw_http),
                ("code-run, generated client", client),
            ]:
                timed(3 if QUICK else 10, fn)  # warm-up
                rows.append((name, *pcts(timed(args.calls, fn))))
            conn.close()
        finally:
            stop(proc)

    print(f"code-run round trip of {CODE!r}, {args.calls} calls each ({python3})")
    print(f"{'':38} {'p50 ms':>8} {'p99 ms':>8}")
    for name, p50, p99 in rows:
        print(f"{name:38} {p50:8.2f} {p99:8.2f}")
    base50 = rows[0][1]
    print(f"daemon overhead over the direct spawn at p50: raw HTTP {rows[2][1] - base50:+.2f} ms, "
          f"generated client {rows[3][1] - base50:+.2f} ms")
    for label, (_, p50, _) in (("raw HTTP", rows[2]), ("generated client", rows[3])):
        figure(f"code-run print(1) p50 ({label})", p50, base50, "ms", "", None, "python3 -c (direct spawn)")


if __name__ == "__main__":
    main()
