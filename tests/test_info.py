"""Info endpoints (misc.md §1-2) through the SDK, the generated client and raw HTTP."""

from __future__ import annotations

import pytest
from daytona_toolbox_api_client import InfoApi, InitializeRequest, ServerApi

from harness import http as raw


def test_sdk_user_home_dir_is_daemon_home(sandbox, daemon):
    assert sandbox.get_user_home_dir() == str(daemon.home)


def test_sdk_work_dir_is_daemon_cwd(sandbox, daemon):
    assert sandbox.get_work_dir() == str(daemon.workdir)


def test_version_via_generated_client(toolbox):
    data = InfoApi(toolbox).get_version()
    assert isinstance(data, dict), data
    assert isinstance(data.get("version"), str) and data["version"].strip(), data


def test_version_raw_shape(daemon):
    r = raw.get(daemon.url, "/version")
    assert r.status == 200, r.describe()
    assert "application/json" in (r.header("Content-Type") or ""), r.describe()
    body = r.json()
    assert set(body) == {"version"}, body
    assert body["version"], body


def test_work_dir_and_home_via_generated_client(toolbox, daemon):
    assert InfoApi(toolbox).get_work_dir().dir == str(daemon.workdir)
    assert InfoApi(toolbox).get_user_home_dir().dir == str(daemon.home)


def test_project_dir_equals_home(daemon):
    r = raw.get(daemon.url, "/project-dir")
    assert r.status == 200, r.describe()
    assert r.json() == {"dir": str(daemon.home)}


def test_init_via_generated_client(toolbox):
    answer = ServerApi(toolbox).initialize(InitializeRequest(token="harness-token"))
    assert answer == {"message": "Auth token set and telemetry initialized successfully"}


def test_init_without_token_is_accepted(daemon):
    # token is optional in the 0.226 model (sdk-0.226.md §4.4) and never enforced (misc.md §2).
    r = raw.post_json(daemon.url, "/init", {})
    assert r.status == 200, r.describe()
    assert r.json() == {"message": "Auth token set and telemetry initialized successfully"}


@pytest.mark.parametrize(
    "body",
    [b"[null]", b"[]", b"null", b'"token"', b'{"token": 1}', b'{"token": ["t"]}'],
    ids=["array-of-null", "array", "null", "string", "token-not-string", "token-list"],
)
def test_init_refuses_what_the_schema_does_not_allow(daemon, body):
    # InitializeRequest is an object whose optional token is a string; anything else used to
    # answer 200.
    r = raw.request(daemon.url, "POST", "/init", body=body, headers={"Content-Type": "application/json"})
    assert r.status == 400, r.describe()
    assert r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()
    assert r.json()["path"] == "/init", r.describe()


@pytest.mark.parametrize(
    "body",
    [b"[null]", b"[]", b'"A=1"', b'{"set": ["A"]}', b'{"set": {"A": null}}', b'{"unset": [1]}',
     b'{"unsetValuePrefix": 5}'],
    ids=["array-of-null", "array", "string", "set-list", "set-null-value", "unset-number", "prefix-number"],
)
def test_env_refuses_what_the_schema_does_not_allow(daemon, body):
    r = raw.request(daemon.url, "POST", "/env", body=body, headers={"Content-Type": "application/json"})
    assert r.status == 400, r.describe()
    assert r.json()["code"] == "INVALID_REQUEST_BODY", r.describe()


def test_init_twice_replaces_token(toolbox):
    api = ServerApi(toolbox)
    for token in ("first", "second"):
        assert api.initialize(InitializeRequest(token=token)) == {
            "message": "Auth token set and telemetry initialized successfully"
        }


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Daytona-Source": "sdk-python", "X-Daytona-SDK-Version": "0.226.1"},
        {"X-Daytona-Source": "sdk-typescript", "X-Daytona-SDK-Version": "0.0.0-dev"},
        {"X-Daytona-Source": "sdk-go", "X-Daytona-SDK-Version": "v0.187.0"},
        {"X-Daytona-SDK-Version": "not a version at all"},
        {"X-Daytona-SDK-Version": "unknown", "X-Daytona-Split-Output": "true"},
        {
            "Authorization": "Bearer whatever",
            "X-Daytona-Organization-ID": "org",
            "User-Agent": "sdk-python/0.226.1",
        },
    ],
    ids=["python", "ts-dev", "go-old", "garbage-version", "unknown-split", "auth-org"],
)
def test_daytona_headers_tolerated(daemon, headers):
    r = raw.get(daemon.url, "/work-dir", headers=headers)
    assert r.status == 200, r.describe()
    assert r.json() == {"dir": str(daemon.workdir)}


def test_sdk_default_headers_reach_daemon_and_are_tolerated(sdk):
    # The SDK objects send these on every toolbox call (sdk-0.226.md §2.1); the calls in this
    # module succeeding through the proxy shows the daemon accepts them. Make sure they are set.
    headers = sdk.daytona._toolbox_api_client.default_headers  # noqa: SLF001
    assert headers.get("X-Daytona-Source") == "sdk-python"
    assert headers.get("X-Daytona-SDK-Version")
    assert sdk.sandbox.get_work_dir()


# Every route the harness exercises, with its method (lower-case, as in OpenAPI).
EXPECTED_OPENAPI_ROUTES = {
    "/version": "get",
    "/work-dir": "get",
    "/user-home-dir": "get",
    "/project-dir": "get",
    "/init": "post",
    "/env": "post",
    "/process/execute": "post",
}


def test_openapi_document(daemon):
    r = raw.get(daemon.url, "/swagger/doc.json")
    assert r.status == 200, r.describe()
    assert "json" in (r.header("Content-Type") or ""), r.describe()
    doc = r.json()
    assert isinstance(doc, dict)
    assert isinstance(doc.get("openapi"), str) and doc["openapi"].startswith("3"), doc.get("openapi")
    paths = doc.get("paths")
    assert isinstance(paths, dict), "no paths object"
    missing = {p: m for p, m in EXPECTED_OPENAPI_ROUTES.items() if m not in (paths.get(p) or {})}
    assert not missing, f"routes missing from /swagger/doc.json: {missing}; has {sorted(paths)}"
