"""POST /process/code-run (process.md §2, sdk-0.226.md §2.6) through ``sandbox.process.code_run``.

The daemon of this module runs with ``/usr/bin`` first on PATH: its ``python3`` is the system
one, which has matplotlib, numpy and PIL (python3-matplotlib). javascript needs ``node`` and
typescript ``ts-node`` (with typescript 5) or ``npx``.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
import warnings
from pathlib import Path

import pytest
from daytona import (
    BarChart,
    BoxAndWhiskerChart,
    CodeRunParams,
    CompositeChart,
    LineChart,
    PieChart,
    Sandbox,
    ScatterChart,
)

from daytona_toolbox_api_client.exceptions import ApiException, BadRequestException

from conftest import DaemonFactory
from harness import http as raw
from harness.daemon import Daemon
from harness.sdk import make_sandbox_dto

SYSTEM_PATH = "/usr/bin:/bin"

# `process.code_run` of the 0.226.1 SDK is not wrapped by its error interception: failures reach
# the caller as the generated client's exceptions (status, raw body), not Daytona*Error classes.


@pytest.fixture(scope="module")
def daemon(daemon_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    """This module's shared daemon (overrides conftest's): Debian's python3 first on PATH."""
    factory = DaemonFactory(tmp_path_factory.mktemp("code-run-daemon"))
    d = factory.start(extra_env={"PATH": SYSTEM_PATH + ":" + os.environ.get("PATH", "")})
    yield d
    factory.finish()


def sandbox_for(sdk, language: str) -> Sandbox:
    """An SDK Sandbox on the same daemon whose language label is ``language`` (the SDK sends it
    as the code-run language)."""
    daytona = sdk.daytona
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return Sandbox(
            make_sandbox_dto(sdk.sandbox_id, sdk.proxy.url),
            daytona._toolbox_api_client,  # noqa: SLF001 - as harness.sdk.make_sandbox
            daytona._sandbox_api,  # noqa: SLF001
            language,
            subscription_manager=daytona._subscription_manager,  # noqa: SLF001
            http_client=daytona._http_client,  # noqa: SLF001
        )


@pytest.fixture(scope="module")
def js(sdk) -> Sandbox:
    return sandbox_for(sdk, "javascript")


@pytest.fixture(scope="module")
def ts(sdk) -> Sandbox:
    return sandbox_for(sdk, "typescript")


def unique(prefix: str = "CR") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10].upper()}"


def code_run_raw(d: Daemon, body: dict) -> raw.RawResponse:
    return raw.request(
        d.url, "POST", "/process/code-run", body=json.dumps(body),
        headers={"Content-Type": "application/json"}, timeout=60,
    )


# ------------------------------------------------------------------------- languages


def test_python_argv_env_and_output(sandbox):
    code = "import os, sys\nprint(sys.argv[1:])\nprint(os.environ['CR_VALUE'])\n"
    r = sandbox.process.code_run(
        code, params=CodeRunParams(argv=["one", "two words", "$HOME"], env={"CR_VALUE": "v 1"})
    )
    assert r.exit_code == 0, r.result
    assert r.result == "['one', 'two words', '$HOME']\nv 1\n"
    assert r.artifacts.stdout == r.result
    assert r.artifacts.charts == []


def test_python_is_unbuffered_and_output_merged_in_order(sandbox):
    code = "import sys\nprint('out1')\nprint('err1', file=sys.stderr)\nprint('out2')\n"
    r = sandbox.process.code_run(code)
    assert r.result == "out1\nerr1\nout2\n"


def test_python_exit_code(sandbox):
    r = sandbox.process.code_run("import sys\nprint('partial')\nsys.exit(3)\n")
    assert (r.exit_code, r.result) == (3, "partial\n")


def test_python_traceback_of_plain_code(sandbox):
    r = sandbox.process.code_run("def f():\n    raise ValueError('boom')\nf()\n")
    assert r.exit_code == 1
    assert "ValueError: boom" in r.result
    assert "Traceback (most recent call last)" in r.result


def test_javascript_argv_env_and_exit_code(js):
    code = (
        "console.log(JSON.stringify(process.argv.slice(1)));\n"
        "console.log(process.env.CR_VALUE);\n"
        "console.error('to stderr');\n"
        "process.exit(process.argv.length);\n"
    )
    r = js.process.code_run(code, params=CodeRunParams(argv=["a", "b c"], env={"CR_VALUE": "js"}))
    assert r.result == '["a","b c"]\njs\nto stderr\n'
    assert r.exit_code == 3  # [node, "a", "b c"]


def test_javascript_error_line_numbers(js):
    r = js.process.code_run("const a = 1;\nnull.x;\n")
    assert r.exit_code == 1
    assert "TypeError" in r.result
    assert "[stdin]:2" in r.result, r.result


def test_typescript_argv_env_and_types(ts, daemon):
    marker = daemon.workdir / f"{unique('ts')}.txt"
    code = (
        "import * as fs from 'fs';\n"
        "const n: number = 21;\n"
        f"fs.writeFileSync({json.dumps(str(marker))}, __filename);\n"
        "console.log(process.argv.slice(1).join('|'), process.env.CR_VALUE, n * 2);\n"
    )
    r = ts.process.code_run(code, params=CodeRunParams(argv=["x", "y z"], env={"CR_VALUE": "ts"}))
    assert (r.exit_code, r.result) == (0, "x|y z ts 42\n")
    # The program ran from a private temp file, gone once the answer came.
    script = Path(marker.read_text())
    assert script.name.startswith("dtn_") and script.suffix == ".ts"
    assert not script.exists()


def test_typescript_exit_code(ts):
    r = ts.process.code_run("const code: number = 4;\nconsole.log('bye');\nprocess.exit(code);\n")
    assert (r.exit_code, r.result) == (4, "bye\n")


def test_env_from_update_env_reaches_programs(sandbox):
    name = unique()
    sandbox.update_env({name: "from-env"})
    r = sandbox.process.code_run(f"import os\nprint(os.environ.get({name!r}))\n")
    assert r.result == "from-env\n"
    r = sandbox.process.code_run(
        f"import os\nprint(os.environ.get({name!r}))\n", params=CodeRunParams(env={name: "request"})
    )
    assert r.result == "request\n"


def test_large_output(sandbox):
    r = sandbox.process.code_run("import sys\nfor i in range(20000):\n    print(f'{i:08d}' + 'x' * 100)\n")
    assert r.exit_code == 0
    lines = r.result.split("\n")
    assert len(lines) == 20001 and lines[-1] == ""
    assert lines[12345] == "00012345" + "x" * 100


# -------------------------------------------------------------------------- timeouts


@pytest.mark.deadline(60)
def test_timeout(sandbox):
    with pytest.raises(ApiException) as info:
        sandbox.process.code_run("import time\nprint('started')\ntime.sleep(30)\n", timeout=1)
    assert info.value.status == 408
    body = json.loads(info.value.body)
    assert body["code"] == "PROCESS_EXECUTION_TIMEOUT" and body["source"] == "DAYTONA_DAEMON"
    assert "started" not in info.value.body


@pytest.mark.deadline(60)
def test_typescript_timeout_removes_the_temp_file(ts, daemon):
    marker = daemon.workdir / f"{unique('ts')}.txt"
    code = (
        "import * as fs from 'fs';\n"
        f"fs.writeFileSync({json.dumps(str(marker))}, __filename);\n"
        "setInterval(() => {}, 1000);\n"
    )
    # ts-node needs a moment to start; the timeout must leave it time to write the marker.
    with pytest.raises(ApiException) as info:
        ts.process.code_run(code, timeout=8)
    assert info.value.status == 408
    assert marker.exists(), "ts-node did not start the program within the 8 s timeout"
    script = Path(marker.read_text())
    assert script.name.startswith("dtn_")
    assert not script.exists()


# ---------------------------------------------------------------------------- errors


def test_unsupported_language(sdk):
    ruby = sandbox_for(sdk, "ruby")
    with pytest.raises(BadRequestException) as info:
        ruby.process.code_run("puts 1")
    body = json.loads(info.value.body)
    assert (body["code"], body["message"]) == ("BAD_REQUEST", "bad request: unsupported language: ruby")


def test_empty_code(sandbox):
    with pytest.raises(BadRequestException) as info:
        sandbox.process.code_run("")
    body = json.loads(info.value.body)
    assert (body["code"], body["message"]) == ("INVALID_REQUEST_BODY", "invalid body request: code is required")


def test_request_errors_on_the_wire(daemon):
    r = code_run_raw(daemon, {"code": "print(1)"})
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()
    assert r.json()["message"] == "invalid body request: language is required"
    r = code_run_raw(daemon, {"code": "print(1)", "language": "python", "argv": "a"})
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()
    r = code_run_raw(daemon, {"code": "print(1)", "language": "python", "envs": {"1BAD": "x"}})
    assert r.status == 400, r.describe()
    assert r.json()["message"] == "bad request: invalid environment variable name: '1BAD'"
    r = code_run_raw(daemon, {"code": "print(1)", "language": "python"})
    assert r.status == 200 and r.json() == {"exitCode": 0, "result": "1\n"}, r.describe()


# ---------------------------------------------------------------------------- charts


def one_chart(r):
    assert r.exit_code == 0, r.result
    assert len(r.artifacts.charts) == 1, r.result
    return r.artifacts.charts[0]


def assert_png(chart):
    data = base64.b64decode(chart.png)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


# One program shows one chart of each kind (matplotlib's import alone takes a second or two);
# each test below checks its own chart, found by title.
GALLERY = """\
import matplotlib.pyplot as plt
print('before')

plt.plot([0, 1, 2], [0, 10, 20], label='tens')
plt.plot([0, 1], [5, 6])
plt.title('Lines'); plt.xlabel('time'); plt.ylabel('value'); plt.grid(True)
plt.show()

plt.scatter([1, 2, 3], [4, 5, 6], label='pts')
plt.axhline(5)
plt.title('Dots')
plt.show()

fig, ax = plt.subplots()
ax.bar(['apples', 'pears', 'plums'], [3, 2.5, 7], label='2024')
ax.set_title('Fruit'); ax.set_xlabel('kind'); ax.set_ylabel('kg')
plt.show()

plt.barh(['a', 'b'], [5, 6])
plt.title('Sideways'); plt.xlabel('amount'); plt.ylabel('item')
plt.show()

plt.pie([1, 1, 2], labels=['x', 'y', 'z'], autopct='%1.0f%%')
plt.title('Shares')
plt.show()

plt.boxplot([[1, 2, 3, 4, 5, 40], [10, 20, 30]], labels=['A', 'B'])
plt.title('Spread'); plt.xlabel('group'); plt.ylabel('measure')
plt.show()

print('after')
"""


@pytest.fixture(scope="module")
def gallery(sandbox):
    r = sandbox.process.code_run(GALLERY)
    assert r.exit_code == 0, r.result
    return r


def chart_titled(r, title):
    found = [c for c in r.artifacts.charts if c.title == title]
    assert len(found) == 1, [c.title for c in r.artifacts.charts]
    return found[0]


def test_gallery_output_and_order(gallery):
    assert gallery.result == "before\nafter\n"
    titles = [c.title for c in gallery.artifacts.charts]
    assert titles == ["Lines", "Dots", "Fruit", "Sideways", "Shares", "Spread"]
    for chart in gallery.artifacts.charts:
        assert_png(chart)


def test_line_chart(gallery):
    chart = chart_titled(gallery, "Lines")
    assert isinstance(chart, LineChart)
    assert (chart.x_label, chart.y_label) == ("time", "value")
    assert chart.x_scale == "linear" and chart.y_scale == "linear"
    assert len(chart.x_ticks) == len(chart.x_tick_labels) > 0
    first, second = chart.elements
    assert first.label == "tens"
    assert first.points == [[0, 0], [1, 10], [2, 20]]
    assert second.points == [[0, 5], [1, 6]]


def test_scatter_chart(gallery):
    chart = chart_titled(gallery, "Dots")
    assert isinstance(chart, ScatterChart)
    (series,) = chart.elements
    assert series.label == "pts"
    assert series.points == [[1, 4], [2, 5], [3, 6]]


def test_bar_chart(gallery):
    chart = chart_titled(gallery, "Fruit")
    assert isinstance(chart, BarChart)
    assert (chart.x_label, chart.y_label) == ("kind", "kg")
    assert [(e.label, e.group, e.value) for e in chart.elements] == [
        ("apples", "2024", "3"),
        ("pears", "2024", "2.5"),
        ("plums", "2024", "7"),
    ]
    assert chart.x_scale == "categorical"
    assert chart.x_tick_labels == ["apples", "pears", "plums"]


def test_horizontal_bar_chart_names_the_category_axis_x(gallery):
    chart = chart_titled(gallery, "Sideways")
    assert isinstance(chart, BarChart)
    assert (chart.x_label, chart.y_label) == ("item", "amount")
    assert [(e.label, e.value) for e in chart.elements] == [("a", "5"), ("b", "6")]


def test_pie_chart(gallery):
    chart = chart_titled(gallery, "Shares")
    assert isinstance(chart, PieChart)
    assert [e.label for e in chart.elements] == ["x", "y", "z"]
    assert [round(e.angle, 6) for e in chart.elements] == [90, 90, 180]
    assert all(e.radius == 1 for e in chart.elements)


def test_box_and_whisker_chart(gallery):
    chart = chart_titled(gallery, "Spread")
    assert isinstance(chart, BoxAndWhiskerChart)
    assert (chart.x_label, chart.y_label) == ("group", "measure")
    a, b = chart.elements
    assert a.label == "A"
    assert (a.min, a.first_quartile, a.median, a.third_quartile, a.max) == (1, 2.25, 3.5, 4.75, 5)
    assert a.outliers == [40]
    assert b.label == "B"
    assert (b.min, b.first_quartile, b.median, b.third_quartile, b.max) == (10, 15, 20, 25, 30)
    # A box without outliers says so with an empty list, not by leaving the field out.
    assert b.outliers == []


def test_pie_with_shadows_is_a_pie(sandbox):
    # matplotlib adds a Shadow patch per wedge; shadows are decoration, not elements.
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.pie([1, 1, 2], labels=['x', 'y', 'z'], shadow=True)\n"
        "plt.title('Shaded')\n"
        "plt.show()\n"
    )
    chart = one_chart(sandbox.process.code_run(code))
    assert isinstance(chart, PieChart)
    assert chart.title == "Shaded"
    assert [e.label for e in chart.elements] == ["x", "y", "z"]
    assert [round(e.angle, 6) for e in chart.elements] == [90, 90, 180]
    assert_png(chart)


def test_box_outliers_on_the_wire(daemon):
    code = "import matplotlib.pyplot as plt\nplt.boxplot([[1, 2, 3, 4, 5, 40], [10, 20, 30]])\nplt.show()\n"
    r = code_run_raw(daemon, {"code": code, "language": "python"})
    assert r.status == 200, r.describe()
    (chart,) = r.json()["artifacts"]["charts"]
    assert chart["type"] == "box_and_whisker"
    assert [e["outliers"] for e in chart["elements"]] == [[40], []]


def test_composite_chart(sandbox):
    code = (
        "import matplotlib.pyplot as plt\n"
        "fig, (left, right) = plt.subplots(1, 2)\n"
        "fig.suptitle('Both')\n"
        "left.plot([1, 2], [3, 4]); left.set_title('L'); left.set_xlabel('lx')\n"
        "right.bar(['p', 'q'], [1, 2]); right.set_title('R')\n"
        "plt.show()\n"
    )
    chart = one_chart(sandbox.process.code_run(code))
    assert isinstance(chart, CompositeChart)
    assert chart.title == "Both"
    assert [(e.type, e.title) for e in chart.elements] == [("line", "L"), ("bar", "R")]
    assert chart.elements[0].x_label == "lx"
    assert_png(chart)


def test_same_figure_shown_twice_is_reported_once(sandbox):
    code = (
        "import matplotlib.pyplot as plt\n"
        "def draw(n):\n"
        "    plt.plot([0, 1], [0, n]); plt.title(f'n={n}'); plt.show()\n"
        "draw(1)\n"
        "draw(1)\n"
        "draw(2)\n"
    )
    r = sandbox.process.code_run(code)
    assert r.exit_code == 0, r.result
    assert [c.title for c in r.artifacts.charts] == ["n=1", "n=2"]
    assert r.result == ""


def test_matplotlib_without_charts_has_no_artifacts(sandbox, daemon):
    code = "import matplotlib\nimport sys\nprint(matplotlib.__name__, sys.argv[1:])\n"
    r = sandbox.process.code_run(code, params=CodeRunParams(argv=["q"]))
    assert (r.exit_code, r.result) == (0, "matplotlib ['q']\n")
    assert r.artifacts.charts == []
    raw_answer = code_run_raw(daemon, {"code": code, "language": "python"}).json()
    assert "artifacts" not in raw_answer


def test_user_traceback_under_the_chart_wrapper(sandbox):
    code = (
        "import matplotlib.pyplot as plt\n"
        "\n"
        "def divide(a):\n"
        "    return a / 0\n"
        "\n"
        "print('working')\n"
        "divide(1)\n"
    )
    r = sandbox.process.code_run(code)
    assert r.exit_code == 1
    assert r.result.startswith("working\nTraceback (most recent call last):\n")
    assert 'File "<target_code>", line 7, in <module>' in r.result
    assert 'File "<target_code>", line 4, in divide' in r.result
    assert "return a / 0" in r.result
    assert r.result.rstrip().endswith("ZeroDivisionError: division by zero")
    # Only the user's frames: nothing of the wrapper program.
    assert "<stdin>" not in r.result and "_dtn_main" not in r.result


def test_chart_wrapper_keeps_exit_codes_and_main_module(sandbox):
    code = (
        "import matplotlib.pyplot as plt, sys, pickle\n"
        "class Point: pass\n"
        "assert pickle.loads(pickle.dumps(Point())).__class__.__name__ == 'Point'\n"
        "print(__name__)\n"
        "plt.plot([1, 2]); plt.show()\n"
        "sys.exit(7)\n"
    )
    r = sandbox.process.code_run(code)
    assert (r.exit_code, r.result) == (7, "__main__\n")
    assert len(r.artifacts.charts) == 1


def test_large_output_with_chart(sandbox):
    code = (
        "import matplotlib.pyplot as plt\n"
        "for i in range(5000):\n"
        "    print('y' * 200)\n"
        "plt.plot([1, 2, 3]); plt.show()\n"
        "print('end')\n"
    )
    r = sandbox.process.code_run(code)
    chart = one_chart(r)
    assert isinstance(chart, LineChart)
    assert r.result == ("y" * 200 + "\n") * 5000 + "end\n"
