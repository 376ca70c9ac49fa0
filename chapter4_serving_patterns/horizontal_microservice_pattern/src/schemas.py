"""T-API bodies and input rules (SPEC 0.3), shared by the model services and the proxy.

    {"data": [[5.1, 3.5, 1.4, 0.2], ...]}  →  {"prediction": [[p0, p1], ...]}

Numbers only (integers accepted; strings, booleans, NaN and ±Infinity refused), 1 to MAX_ROWS
rows (more → 413), every row exactly the model's feature count (else 422 naming the row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, NoReturn

import numpy as np
from pydantic import BaseModel, Field

from src.common.errors import ApiError

# strict: "1.5" and true are not numbers; integers still are. No NaN or ±Infinity.
Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]
FLOAT32_MAX = float(np.finfo(np.float32).max)
SAMPLE = [[5.1, 3.5, 1.4, 0.2]]  # the book's sample row (an iris setosa)


class PredictRequest(BaseModel):
    data: list[list[Feature]] = Field(min_length=1, examples=[SAMPLE])


class Probabilities(BaseModel):
    """One list of class probabilities per input row, in input order."""

    prediction: list[list[float]] = Field(examples=[[[0.98, 0.02]]])


class Labels(BaseModel):
    prediction: list[str] = Field(examples=[["setosa"]])


def check_rows(data: Sequence[Sequence[float]], feature_count: int, max_rows: int) -> None:
    """The rules a type cannot say: row count, row width, and values a float32 can hold."""
    if len(data) > max_rows:
        message = f"{len(data)} rows; at most {max_rows} per request"
        raise ApiError(413, "payload_too_large", message)
    for index, row in enumerate(data):
        if len(row) != feature_count:
            invalid_row(index, f"row {index} has {len(row)} values, expected {feature_count}")
        if row and (max(row) > FLOAT32_MAX or min(row) < -FLOAT32_MAX):
            invalid_row(index, f"row {index} holds a value beyond the float32 range")


def invalid_row(index: int, message: str) -> NoReturn:
    details = [{"loc": ["body", "data", index], "msg": message}]
    raise ApiError(422, "invalid_input", message, details=details)
