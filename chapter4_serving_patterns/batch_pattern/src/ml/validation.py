"""Whether a row's values can be fed to the model: the one rule the API and the job share.

The API refuses such a row with a 422; the job marks a stored one `error` with the same reason
(another system may have written it straight into the table).
"""

from __future__ import annotations

import json
import math
from typing import Any

FLOAT32_MAX = 3.4028234663852886e38  # the model's input is FP32: larger values become inf


def decode_stored(raw: str | None) -> tuple[Any, str | None]:
    """Values as stored (JSON text) → (value, None), or (None, reason) when not JSON at all."""
    if raw is None:
        return None, "values are missing"
    try:
        return json.loads(raw), None
    except ValueError as error:
        return None, f"values are not valid JSON: {error}"


def row_problem(values: Any, width: int) -> str | None:
    """Why `values` cannot be predicted by a model of `width` features, or None."""
    if not isinstance(values, list):
        return f"values must be a list of {width} numbers, got {type(values).__name__}"
    if len(values) != width:
        return f"expected {width} values, got {len(values)}"
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"value {index} is not a number: {json.dumps(value)[:40]}"
        if abs(value) > FLOAT32_MAX or not math.isfinite(value):  # ints may be huge
            return f"value {index} is not a finite FP32 number: {value!r}"
    return None
