"""`pred`, the V2 model server: `gunicorn ... 'src.pred.app:create_app()'` (nothing at import time).

The lifespan loads MODEL_DIR in each worker (sha256 verified, graph checked against metadata,
self-tested) before the worker serves anything; a directory that fails stops the worker, and so
the process (the gunicorn master refuses it even earlier, src/pred/gunicorn.conf.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from src.common.errors import error_responses, install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import PredSettings
from src.ml.model import Model
from src.ml.model_dir import ModelDirectoryError
from src.pred import v2
from src.web import health, log_fields_on_access_lines

VERSION = "0.1.0"
logger = logging.getLogger("pred")


class Ready(BaseModel):
    status: str
    model: str
    version: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: PredSettings = app.state.settings
    try:
        model = Model.load(settings.model_dir)
    except ModelDirectoryError as error:
        logger.critical("refusing to start: %s", error, extra={"path": str(error.path)})
        raise
    app.state.served = v2.Served(model, settings.max_batch_size)
    logger.info(
        "model loaded",
        extra={
            "model_dir": str(settings.model_dir),
            "model_name": model.card.name,
            "model_version": model.card.version,
        },
    )
    yield


async def ready(request: Request) -> Ready:
    """200 once this worker has loaded and self-tested its model, else 503 model_not_ready."""
    card = v2.served(request).card
    return Ready(status="ready", model=card.name, version=card.version)


def create_app(settings: PredSettings | None = None) -> FastAPI:
    settings = settings or PredSettings()
    setup_logging(settings.log_level)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="pred",
        summary="A plain V2 (Open Inference Protocol) model server for FP32 tensors",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    log_fields_on_access_lines()
    install_error_handlers(app)
    app.add_api_route("/health", health, methods=["GET"], tags=["health"])
    app.add_api_route(
        "/ready", ready, methods=["GET"], responses=error_responses(503), tags=["health"]
    )
    app.include_router(v2.router)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    return app
