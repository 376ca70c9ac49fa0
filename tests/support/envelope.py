"""The error envelope of SPEC 0.6 as every pattern's tests check it."""

from __future__ import annotations

from typing import Any

import httpx

ENVELOPE_KEYS = frozenset({"error", "code", "request_id", "details"})


def expect_error(
    response: httpx.Response, status: int, code: str, *, envelope_only: bool = False
) -> dict[str, Any]:
    """The SPEC 0.6 envelope with this status and code; its request id is the header's.
    `envelope_only`: the body has no key beyond the envelope's."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    if envelope_only:
        assert set(body) <= ENVELOPE_KEYS, body
    return body
