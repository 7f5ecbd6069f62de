"""`bench/all`, the one command that runs the benchmarks and prints their table.

Runs it for real on the shortest benchmark (start-up, quick mode) with the static binary the
suite already builds, and checks what a reader relies on: the raw lines come through, the
summary table has a row per figure with our value, the baseline, the ratio, the target and a
result, the JSON file holds the same figures, and a benchmark name it does not know is an error
that lists the known ones. The figures themselves are not judged here (that is what the
benchmarks are for; a loaded CI machine would make a timed assertion flaky).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.containers import STATIC_BIN

REPO = Path(__file__).resolve().parent.parent
BENCH_ALL = REPO / "bench" / "all"


@pytest.mark.deadline(180)
def test_quick_startup_run_prints_the_table_and_writes_the_json(tmp_path):
    assert STATIC_BIN.exists(), f"the static daemon {STATIC_BIN} is missing: run packaging/build-static.sh"
    out_json = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, str(BENCH_ALL), "--quick", "--only", "startup", "--bin", str(STATIC_BIN),
         "--json", str(out_json)],
        capture_output=True, text=True, timeout=170, env=dict(os.environ, BENCH_QUICK="0"),
    )
    out = run.stdout
    # Exit 0 or 1 (a target missed on a loaded machine); anything else is a crash.
    assert run.returncode in (0, 1), f"exit {run.returncode}\n{out}\n{run.stderr}"
    assert "===== startup:" in out and "daemon start -> readiness line" in out, out
    summary = out[out.index("===== summary (quick run"):]
    header = summary.splitlines()[1]
    for column in ("benchmark", "figure", "ours", "baseline", "ratio", "target", "result"):
        assert column in header, header
    rows = [line for line in summary.splitlines() if line.startswith("startup ")]
    names = ("start -> readiness line, over /bin/true", "idle RSS")
    for name in names:
        row = next((r for r in rows if name in r), None)
        assert row is not None, f"no row for {name!r} in\n{summary}"
        assert row.rstrip().endswith(("pass", "FAIL")), row
    readiness = next(r for r in rows if names[0] in r)
    assert " ms" in readiness and "x (+" in readiness and "(/bin/true" in readiness, readiness

    data = json.loads(out_json.read_text())
    assert data["quick"] is True and data["failures"] == {}
    figures = {f["name"]: f for f in data["figures"]}
    ready = figures[names[0]]
    assert ready["benchmark"] == "startup" and ready["unit"] == "ms" and ready["target"] == "+10 ms"
    assert 0 < ready["baseline"] < ready["ours"], ready
    assert abs(ready["ratio"] - ready["ours"] / ready["baseline"]) < 0.01, ready
    assert ready["pass"] == (ready["ours"] - ready["baseline"] <= 10), ready
    assert figures["idle RSS"]["ours"] > 1, figures["idle RSS"]
    # The exit code follows the results.
    missed = any(f["pass"] is False for f in data["figures"])
    assert run.returncode == (1 if missed else 0)


def test_an_unknown_benchmark_is_refused_with_the_known_names():
    run = subprocess.run([sys.executable, str(BENCH_ALL), "--only", "nosuch"], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 2, run
    assert "unknown benchmark(s) nosuch" in run.stderr and "startup" in run.stderr, run.stderr
