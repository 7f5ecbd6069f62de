"""Property-based fuzzing of every operation in the served OpenAPI document with schemathesis
(pinned in requirements.txt), against a daemon jailed in a throw-away root (harness/jail.py):
generated requests delete, move and chmod whatever they name and run whatever they make up, and
only the jail's own directories can change.

Fails on any 5xx, a status or content type the document does not list, a response body that
does not match its schema, or a daemon that died. Bounded: about 25 examples per operation,
two workers, a few minutes.

`/computeruse/*` is left out: with no desktop in the jail every one of those routes answers its
documented 503, which the 5xx check would count; their layer is tested by the
test_computer_use_* files and the agent's router tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harness.daemon import daemon_binary
from harness.jail import JailedDaemon

EXAMPLES = int(os.environ.get("DAYTONA_FUZZ_EXAMPLES", "25"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def schemathesis_cli() -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    assert exe.exists(), f"schemathesis is not installed next to {sys.executable}: pip install -r tests/requirements.txt"
    return str(exe)


@pytest.mark.deadline(900)
def test_schemathesis_finds_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    report = tmp_path / "report.xml"
    with JailedDaemon(root, daemon_binary()) as d:
        with urllib.request.urlopen(d.url + "/swagger/doc.json", timeout=10) as r:
            doc = json.loads(r.read())
        operations = sum(
            1
            for path, item in doc["paths"].items()
            if not path.startswith("/computeruse")
            for m in item
            if m in ("get", "post", "put", "delete", "patch", "head")
        )
        run = subprocess.run(
            [
                schemathesis_cli(), "run", d.url + "/swagger/doc.json",
                "--max-examples", str(EXAMPLES),
                "--checks", CHECKS,
                "--phases", "examples,coverage,fuzzing",
                "--exclude-path-regex", "^/computeruse",
                "--workers", "2",
                "--request-timeout", "60",
                "--max-failures", "200",
                "--seed", "24",
                "--no-color",
                "--report", "junit", "--report-junit-path", str(report),
            ],
            capture_output=True, text=True, timeout=840, cwd=tmp_path,
        )
        alive = d.alive()
        output = run.stdout[-20000:] + "\n" + run.stderr[-4000:]
        daemon_tail = d.output()
    generated = re.search(r"(\d+) generated", run.stdout)
    summary = f"{operations} operations, {generated.group(1) if generated else '?'} test cases generated"
    print(summary)
    assert alive, f"the daemon died under fuzzing ({summary})\n{daemon_tail}"
    assert run.returncode == 0, f"schemathesis found failures ({summary}):\n{output}\n--- daemon ---\n{daemon_tail}"
    assert operations >= 60, summary
