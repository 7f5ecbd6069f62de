"""Raw HTTP for assertions the generated client would hide (status lines, redirects, headers,
exact bodies). Never follows redirects, adds no headers beyond ``Host`` and
``Content-Length`` (when a body is given), and always uses a timeout."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        text = self.body[:2000].decode("utf-8", "replace")
        return f"HTTP {self.status} {self.reason}\n{self.headers}\n{text}"


def request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> RawResponse:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        # skip_accept_encoding: http.client would otherwise add "Accept-Encoding: identity".
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.reason, resp.headers, data)
    finally:
        conn.close()


def get(base_url: str, path: str, **kw) -> RawResponse:
    return request(base_url, "GET", path, **kw)


def post_json(base_url: str, path: str, payload: Any, **kw) -> RawResponse:
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return request(base_url, "POST", path, body=json.dumps(payload), headers=headers, **kw)
