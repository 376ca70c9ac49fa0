"""Request bodies read within bounds, and the I-API body `{"image_data": "<base64>"}` parsed.

Every refusal is an ApiError with the status and code SPEC 0.4 and 0.6 name; nothing a client
sends can end as a 500. Image bytes themselves are checked by src.ml.image_input (415/413/422).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from src.common.errors import ApiError

ENVELOPE_BYTES = 64 * 1024  # room for the JSON around the base64 text
JSON_TYPES = ("application/json",)


def base64_length(size: int) -> int:
    """Characters of the base64 text of `size` bytes (padded)."""
    return (size + 2) // 3 * 4


def predict_body_limit(max_image_bytes: int) -> int:
    """The largest `/predict` body an image of MAX_IMAGE_BYTES can take; larger is a 413."""
    return base64_length(max_image_bytes) + ENVELOPE_BYTES


def media_type(content_type: str | None) -> str | None:
    return content_type.partition(";")[0].strip().lower() if content_type is not None else None


def check_content_type(content_type: str | None, *accepted: str) -> None:
    """415 unless JSON (or one of `accepted`). None at all is read as JSON, as FastAPI does."""
    kind = media_type(content_type)
    if kind is None or kind in (*JSON_TYPES, *accepted):
        return
    if kind.startswith("application/") and kind.endswith("+json"):
        return
    expected = " or ".join((*JSON_TYPES, *accepted))
    raise ApiError(415, "unsupported_media_type", f"expected {expected}, got {kind or '?'}")


def invalid(loc: list[str | int], message: str, status: int = 422) -> ApiError:
    """422 for the I-API; the V2 routes answer 400 (SPEC 0.5 rule 3)."""
    return ApiError(status, "invalid_input", message, details=[{"loc": loc, "msg": message}])


def too_large(message: str) -> ApiError:
    # The rest of the body is not read: close the connection rather than drain it.
    return ApiError(413, "payload_too_large", message, headers={"Connection": "close"})


async def read_body(request: Request, limit: int, setting: str) -> bytes:
    """The body, refused with 413 as soon as it is longer than `limit` (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(f"body of {declared} bytes; at most {limit} ({setting})")
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
            raise too_large(f"body larger than {limit} bytes ({setting})")
        chunks.append(chunk)
        more_body = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(body: bytes, status: int = 422) -> Any:
    if not body:
        raise invalid(["body"], "a JSON body is required", status)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise invalid(["body"], f"body is not valid JSON: {error}", status) from error


def parse_image_data(body: bytes) -> str:
    """`{"image_data": "<base64 of an image file>"}` → the base64 text (SPEC 0.4)."""
    document = parse_json(body)
    if type(document) is not dict:
        raise invalid(["body"], 'expected a JSON object {"image_data": "<base64>"}')
    if "image_data" not in document:
        raise invalid(["body", "image_data"], "field required: image_data")
    unknown = sorted(key for key in document if key != "image_data")
    if unknown:
        raise invalid(["body", unknown[0]], f"unknown field: {unknown[0]}")
    text = document["image_data"]
    if type(text) is not str:
        raise invalid(["body", "image_data"], "image_data must be a base64 string")
    return text
