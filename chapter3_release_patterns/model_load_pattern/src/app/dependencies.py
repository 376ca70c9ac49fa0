"""What routes receive: the served model, or 503 `model_not_ready` with the reason (e.g.
"alias production not found for iris/iris_svc") before one is loaded; and the reloader."""

from __future__ import annotations

from fastapi import Request

from src.app.reloader import Reloader
from src.app.serving import ServedModel
from src.common.errors import ApiError

RETRY_AFTER_S = "1"


def reloader(request: Request) -> Reloader:
    value = request.app.state.reloader
    assert isinstance(value, Reloader), "the lifespan starts the reloader"
    return value


def served_model(request: Request) -> ServedModel:
    # Called directly by the handlers rather than through Depends: it is on every request.
    # One read of the reloader's slot per request: a reload swapping the model meanwhile does
    # not change the model this request is answered with.
    current = reloader(request)
    served = current.served
    if served is None:
        raise ApiError(
            503,
            "model_not_ready",
            f"the model is not loaded: {current.not_ready_reason}",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    return served
