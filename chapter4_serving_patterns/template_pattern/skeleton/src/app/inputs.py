"""Request bodies → float32 feature matrices, with the input rules of SPEC 0.3 and 0.5.

The T-API body `{"data": [[f1, ..., fF], ...]}` is parsed here with `json.loads` and a few type
checks instead of a pydantic model: on a one-row request the model takes microseconds and the
request's own overhead decides the throughput (README, Benchmark). Every refusal is an ApiError
with the code and status SPEC 0.3 names; nothing a client sends can end as a 500.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

from src.common.errors import ApiError

Features = NDArray[np.float32]
NUMBER_TYPES = frozenset({int, float})  # `type(x) in`: bool is not a number here
FLOAT32_MAX = 3.4028234663852886e38
NOT_FLOAT32 = "not a finite float32 number (a number, no NaN, no Infinity, |x| <= 3.4e38)"
BYTES_PER_VALUE = 64  # generous room for one JSON number and its separators
BYTES_PER_REQUEST = 64 * 1024  # the envelope around the rows


def max_body_bytes(max_rows: int, feature_count: int) -> int:
    """The largest body MAX_ROWS rows can take; a larger one is a 413 before parsing."""
    return max_rows * (feature_count + 1) * BYTES_PER_VALUE + BYTES_PER_REQUEST


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


def invalid(loc: list[str | int], message: str, status: int = 422) -> ApiError:
    """422 for the T-API; the V2 routes answer 400 (SPEC 0.5 rule 3)."""
    return ApiError(status, "invalid_input", message, details=[{"loc": loc, "msg": message}])


def too_many_rows(rows: int, max_rows: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"{rows} rows in one request; at most {max_rows} (MAX_ROWS)",
        headers={"Connection": "close"},
    )


def parse_json(body: bytes, status: int = 422) -> Any:
    """The body as Python values. Python's json also reads the NaN, Infinity and -Infinity
    tokens JSON does not have (as floats), and numbers such as 1e999 (as inf): `is_float32`
    refuses them where they stand, so the error names their position."""
    if not body:
        raise invalid(["body"], "a JSON body is required", status)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise invalid(["body"], f"body is not valid JSON: {error}", status) from error


def is_float32(value: Any) -> bool:
    """A JSON number that float32 holds: not a bool, not NaN, not beyond ±3.4e38 (so not ±inf,
    which Python makes of NaN/Infinity tokens and of numbers such as 1e999)."""
    return type(value) in NUMBER_TYPES and -FLOAT32_MAX <= value <= FLOAT32_MAX


def parse_rows(body: bytes, feature_count: int, max_rows: int) -> Features:
    """`{"data": rows}` → float32 [N, feature_count]."""
    document = parse_json(body)
    if type(document) is not dict:
        raise invalid(["body"], 'expected a JSON object {"data": [[...], ...]}')
    if "data" not in document:
        raise invalid(["body", "data"], "field required: data")
    if len(document) > 1:
        unknown = sorted(key for key in document if key != "data")[0]
        raise invalid(["body", unknown], f"unknown field: {unknown}")
    rows = document["data"]
    if type(rows) is not list or not rows:
        raise invalid(["body", "data"], "data must be a non-empty list of rows")
    if len(rows) > max_rows:
        raise too_many_rows(len(rows), max_rows)
    # Plain Python on purpose: on one row, numpy's per-call overhead (isfinite, errstate) cost
    # more than these comparisons, measured in the running server.
    for index, row in enumerate(rows):
        if type(row) is not list or len(row) != feature_count or not all(map(is_float32, row)):
            raise _row_error(index, row, feature_count)
    return np.array(rows, dtype=np.float32)


def _row_error(index: int, row: Any, feature_count: int) -> ApiError:
    where: list[str | int] = ["body", "data", index]
    if type(row) is not list:
        return invalid(where, f"row {index} is not a list of {feature_count} numbers")
    if len(row) != feature_count:
        return invalid(
            where, f"row {index} has {len(row)} values, expected {feature_count} (the features)"
        )
    column = next(column for column, value in enumerate(row) if not is_float32(value))
    return invalid([*where, column], f"row {index}, value {column}: {NOT_FLOAT32}")
