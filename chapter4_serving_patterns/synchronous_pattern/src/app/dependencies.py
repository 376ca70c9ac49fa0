"""What routes receive: the served model, or 503 `model_not_ready` before it is loaded."""

from __future__ import annotations

from fastapi import Request

from src.app.serving import ServedModel
from src.common.errors import ApiError

RETRY_AFTER_S = "1"


def served_model(request: Request) -> ServedModel:
    # Called directly by the handlers rather than through Depends: it is on every request.
    served = getattr(request.app.state, "served", None)
    if served is None:
        raise ApiError(
            503,
            "model_not_ready",
            "the model is not loaded",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    assert isinstance(served, ServedModel)
    return served
