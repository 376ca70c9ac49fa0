"""HTTP pieces both apps use: JSON bodies read within a limit, float32 numbers written exactly,
the constant liveness answer, and the model fields added to each request's access line.

Logging: a prediction adds `model_name`, `model_version` (and stage timings) to the request's
one access line, written by RequestIdMiddleware with the request's `latency_ms`, instead of a
second line per request.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import Any

import numpy as np
from fastapi import Request
from numpy.typing import NDArray
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from src.common.errors import ApiError

JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one instance: dumps() builds one per call
FLOAT32_FORMAT = "%.9g"  # 9 significant digits give back every float32 exactly
HEALTH_BODY = b'{"health":"ok"}'
RETRY_AFTER_S = "1"

_access_fields: ContextVar[dict[str, Any] | None] = ContextVar("access_fields", default=None)


class AccessFields(logging.Filter):
    """Adds the fields `add_access_fields` set during the request to its access line."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _access_fields.get()
        if fields:
            record.__dict__.update(fields)
        return True


ACCESS_FIELDS = AccessFields()


def log_fields_on_access_lines() -> None:
    logging.getLogger("access").addFilter(ACCESS_FIELDS)  # once: the same instance


def add_access_fields(**fields: Any) -> None:
    """Called in the request's own task (not in a worker thread): the context is the request's."""
    current = _access_fields.get()
    _access_fields.set({**(current or {}), **fields})


async def health(request: Request) -> Response:
    """Constant (liveness; it checks nothing): a pre-encoded JSON body."""
    return Response(HEALTH_BODY, media_type="application/json")


def json_response(content: str, headers: dict[str, str] | None = None) -> Response:
    return Response(content.encode(), media_type="application/json", headers=headers)


def float32_json(values: NDArray[np.float32]) -> str:
    """A float32 vector as a JSON array of numbers with 9 significant digits: the float32 values
    exactly, in about half the bytes (and time) of the 17-digit repr of their float64 copies."""
    return "[" + ",".join(map(FLOAT32_FORMAT.__mod__, values.ravel().tolist())) + "]"


def check_content_type(content_type: str | None) -> None:
    """415 unless JSON. No Content-Type at all is read as JSON, as FastAPI does."""
    if content_type is None:
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise ApiError(
        415, "unsupported_media_type", f"expected application/json, got {media_type or '?'}"
    )


async def read_body(request: Request, limit: int, why: str) -> bytes:
    """The body, refused with 413 as soon as it is longer than `limit` (declared or sent), so
    that a huge upload is never held whole in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit, why)
    chunks: list[bytes] = []
    size = 0
    more_body = True
    while more_body:  # the ASGI messages themselves: lighter than Request.stream()
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit, why)
        chunks.append(chunk)
        more_body = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def body_too_large(limit: int, why: str) -> ApiError:
    # The rest of the body is not read: close the connection rather than drain it.
    return ApiError(
        413,
        "payload_too_large",
        f"body larger than {limit} bytes ({why})",
        headers={"Connection": "close"},
    )


def invalid(loc: list[str | int], message: str, status: int = 422) -> ApiError:
    """422 `invalid_input` for prep's I-API; the V2 routes of pred answer 400 (SPEC 0.5)."""
    return ApiError(status, "invalid_input", message, details=[{"loc": loc, "msg": message}])


def parse_json(body: bytes, status: int = 422) -> Any:
    if not body:
        raise invalid(["body"], "a JSON body is required", status)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise invalid(["body"], f"body is not valid JSON: {error}", status) from error
