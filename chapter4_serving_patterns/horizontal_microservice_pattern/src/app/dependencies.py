"""What the service's routes receive: its settings and its loaded model."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from src.common.errors import ApiError
from src.configurations import ServiceSettings
from src.ml.model import TabularModel

RETRY = {"Retry-After": "1"}


def settings(request: Request) -> ServiceSettings:
    value = request.app.state.settings
    assert isinstance(value, ServiceSettings)
    return value


def model(request: Request) -> TabularModel:
    """The loaded model; 503 `model_not_ready` before the lifespan has loaded it."""
    value = request.app.state.model
    if not isinstance(value, TabularModel):
        raise ApiError(503, "model_not_ready", "the model is not loaded yet", headers=RETRY)
    return value


Settings = Annotated[ServiceSettings, Depends(settings)]
Model = Annotated[TabularModel, Depends(model)]
