"""Error envelope, routing fallbacks and request-body decoding (README §8, sdk-0.226.md §2.3-2.4,
§3.2)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from daytona import DaytonaBadRequestError, DaytonaNotFoundError
from daytona._utils.errors import intercept_errors

from harness import http as raw

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
ENVELOPE_KEYS = {"statusCode", "message", "source", "timestamp", "path", "method"}


def parse_rfc3339(value: str) -> datetime:
    m = RFC3339.match(value)
    assert m, f"timestamp {value!r} is not RFC 3339"
    frac = (m.group(7) or "")[:7]  # '.' + at most 6 digits for datetime
    tz = m.group(8).upper()
    iso = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}:{m.group(5)}:{m.group(6)}{frac}"
    iso += "+00:00" if tz == "Z" else tz
    return datetime.fromisoformat(iso)


def assert_envelope(r: raw.RawResponse, *, status: int, path: str, method: str, code: str | None):
    assert r.status == status, r.describe()
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("application/json"), f"Content-Type {ctype!r}\n{r.describe()}"
    body = r.json()
    assert isinstance(body, dict), r.describe()
    missing = ENVELOPE_KEYS - set(body)
    assert not missing, f"envelope lacks {missing}: {body}"
    assert body["statusCode"] == status, body
    assert body["source"] == "DAYTONA_DAEMON", body
    assert body["path"] == path, body
    assert body["method"] == method, body
    assert isinstance(body["message"], str) and body["message"], body
    if code is None:
        assert "code" not in body or body["code"] in (None, ""), body
    else:
        assert body.get("code") == code, body
    ts = parse_rfc3339(body["timestamp"])
    now = datetime.now(timezone.utc)
    assert abs(now - ts) < timedelta(minutes=5), f"timestamp {body['timestamp']} is not 'now'"
    return body


# --------------------------------------------------------------------- SDK error mapping


def call_route_like_the_sdk(api_client, method: str, path: str):
    """What every generated operation does: param_serialize → call_api → read →
    response_deserialize (which raises ApiException on non-2xx)."""
    params = api_client.param_serialize(
        method=method,
        resource_path=path,
        header_params={"Accept": "application/json"},
    )
    response = api_client.call_api(*params, _request_timeout=30)
    response.read()
    return api_client.response_deserialize(
        response_data=response,
        response_types_map={"200": "object", "404": "ErrorResponse"},
    ).data


def test_missing_route_raises_sdk_not_found_error(sdk, daemon):
    # The daemon's own message for this path, fetched directly.
    direct = raw.get(daemon.url, "/definitely/not/a/route")
    assert direct.status == 404, direct.describe()
    daemon_message = direct.json()["message"]

    @intercept_errors(message_prefix="Failed to call missing route: ")
    def call():
        # sandbox._toolbox_api is the SDK's ToolboxApiClientProxy: it prefixes /{sandboxId} and
        # sends to the toolbox proxy, exactly like sandbox.fs/process/... methods do.
        return call_route_like_the_sdk(sdk.sandbox._toolbox_api, "GET", "/definitely/not/a/route")  # noqa: SLF001

    with pytest.raises(DaytonaNotFoundError) as info:
        call()
    err = info.value
    assert err.status_code == 404
    assert err.code == "NOT_FOUND"
    assert err.source == "DAYTONA_DAEMON"
    assert str(err).startswith("Failed to call missing route: ")
    assert daemon_message in str(err)


# ------------------------------------------------------------------------- raw envelope


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/no-such-route"),
        ("POST", "/no/such/route"),
        ("DELETE", "/process/no-such-thing"),
        ("PUT", "/zzz"),
    ],
)
def test_unknown_route_envelope(daemon, method, path):
    body = b"{}" if method in ("POST", "PUT") else None
    r = raw.request(daemon.url, method, path, body=body)
    assert_envelope(r, status=404, path=path, method=method, code="NOT_FOUND")


def test_unknown_route_path_excludes_query(daemon):
    r = raw.get(daemon.url, "/no-such-route?x=1&y=2")
    assert_envelope(r, status=404, path="/no-such-route", method="GET", code="NOT_FOUND")


@pytest.mark.parametrize(
    "method,path",
    [
        ("DELETE", "/version"),
        ("POST", "/work-dir"),
        ("PUT", "/user-home-dir"),
        ("GET", "/init"),
        ("GET", "/env"),
        ("GET", "/process/execute"),
        ("PATCH", "/process/execute"),
    ],
)
def test_wrong_method_is_404_not_405(daemon, method, path):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    r = raw.request(daemon.url, method, path, body=body)
    assert r.status != 405, r.describe()
    assert_envelope(r, status=404, path=path, method=method, code="NOT_FOUND")


def test_envelope_through_proxy_is_unchanged(sdk, daemon):
    r = raw.get(sdk.proxy.url, f"/{sdk.sandbox_id}/no-such-route")
    assert_envelope(r, status=404, path="/no-such-route", method="GET", code="NOT_FOUND")


# ------------------------------------------------------------------------ trailing slash


@pytest.mark.parametrize(
    "method,path,status,location",
    [
        ("GET", "/version/", 301, "/version"),
        ("GET", "/work-dir/", 301, "/work-dir"),
        ("POST", "/env/", 307, "/env"),
        ("POST", "/process/execute/", 307, "/process/execute"),
        ("POST", "/init/", 307, "/init"),
    ],
)
def test_trailing_slash_redirect(daemon, method, path, status, location):
    body = b"{}" if method == "POST" else None
    r = raw.request(daemon.url, method, path, body=body)
    assert r.status == status, r.describe()
    assert r.header("Location") == location, r.describe()


def test_trailing_slash_redirect_passes_through_proxy(sdk):
    r = raw.get(sdk.proxy.url, f"/{sdk.sandbox_id}/version/")
    assert r.status == 301, r.describe()
    assert r.header("Location") == "/version", r.describe()


def test_trailing_slash_on_unknown_route_is_404(daemon):
    r = raw.get(daemon.url, "/no-such-route/")
    assert_envelope(r, status=404, path="/no-such-route/", method="GET", code="NOT_FOUND")


# ----------------------------------------------------------------- POST /env body decoding


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b'{"set": {"A": "1"}',  # truncated
        b'{"set": "not-an-object"}',  # type mismatch
        b'{"set": {"A": 1}}',  # value not a string
        b'{"unset": "A"}',  # not a list
    ],
    ids=["garbage", "empty", "truncated", "set-not-object", "value-not-string", "unset-not-list"],
)
@pytest.mark.parametrize("content_type", ["application/json", None], ids=["json", "no-ctype"])
def test_env_invalid_body(daemon, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = raw.request(daemon.url, "POST", "/env", body=body, headers=headers)
    assert_envelope(r, status=400, path="/env", method="POST", code="INVALID_REQUEST_BODY")


@pytest.mark.parametrize(
    "payload",
    [
        {"set": {"": "x"}},
        {"set": {"HARNESS=BAD": "x"}},
        {"set": {"HARNESS_NUL\u0000NAME": "x"}},
        {"set": {"HARNESS_NUL_VALUE": "a\u0000b"}},
    ],
    ids=["empty-name", "name-with-equals", "name-with-nul", "value-with-nul"],
)
def test_env_invalid_name_is_bad_request(daemon, payload):
    r = raw.post_json(daemon.url, "/env", payload)
    body = assert_envelope(r, status=400, path="/env", method="POST", code="BAD_REQUEST")
    assert body["message"].startswith("bad request: "), body


def test_env_invalid_name_via_sdk(sandbox):
    with pytest.raises(DaytonaBadRequestError) as info:
        sandbox.update_env({"HARNESS=BAD": "x"})
    assert info.value.status_code == 400
    assert info.value.code == "BAD_REQUEST"
    assert str(info.value).startswith("Failed to update environment: bad request: ")


def test_env_without_content_type_is_accepted(daemon):
    # The sync SDK sends POST /env (and /init) without Content-Type (sdk-0.226.md §2.1).
    r = raw.request(daemon.url, "POST", "/env", body=b'{"set": {"HARNESS_NO_CTYPE": "1"}}')
    assert r.status == 200, r.describe()
    assert isinstance(r.json(), dict), r.describe()
    assert all(isinstance(v, str) for v in r.json().values()), r.describe()


def test_env_with_foreign_content_type_is_accepted(daemon):
    r = raw.request(
        daemon.url,
        "POST",
        "/env",
        body=b'{"set": {"HARNESS_TEXT_CTYPE": "1"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status == 200, r.describe()
    assert isinstance(r.json(), dict), r.describe()


def test_init_without_content_type_is_accepted(daemon):
    r = raw.request(daemon.url, "POST", "/init", body=b'{"token": "t"}')
    assert r.status == 200, r.describe()
    assert r.json() == {"message": "Auth token set and telemetry initialized successfully"}


@pytest.mark.parametrize("body", [b"", b"{nope"], ids=["empty", "garbage"])
def test_init_invalid_body(daemon, body):
    r = raw.request(daemon.url, "POST", "/init", body=body, headers={"Content-Type": "application/json"})
    assert_envelope(r, status=400, path="/init", method="POST", code="INVALID_REQUEST_BODY")


def test_env_unknown_fields_ignored(daemon):
    r = raw.post_json(daemon.url, "/env", {"set": {"HARNESS_UNKNOWN_FIELD": "1"}, "bogus": [1, 2]})
    assert r.status == 200, r.describe()

