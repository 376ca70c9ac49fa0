"""A model service: `gunicorn ... 'src.app.app:create_app()'` (nothing at import time).

One code path for service_setosa, service_versicolor and service_virginica: the model
directory comes from MODEL_DIR. The lifespan loads it in each worker, sha256 verified, before
the worker serves anything; a directory that fails stops the worker, and so the service: it
never serves without its model. (gunicorn.conf.py refuses such a directory even earlier, in
the master, with one log line.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from src.app.routers import tapi, v2
from src.common.errors import install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import ServiceSettings
from src.ml.model import ModelError, load_model

VERSION = "0.1.0"
logger = logging.getLogger("service")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServiceSettings = app.state.settings
    try:
        model = load_model(settings.model_dir)
    except ModelError as error:
        logger.critical(f"cannot serve the model: {error}")
        raise
    app.state.model = model
    logger.info(
        "model loaded",
        extra={
            "model_name": model.name,
            "model_version": model.version,
            "path": str(model.directory),
        },
    )
    yield


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    setup_logging(settings.log_level)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title=settings.process_name,
        summary="T-API and Open Inference Protocol (V2) service of one tabular model",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings, app.state.model = settings, None
    install_error_handlers(app)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    app.include_router(tapi.router)
    app.include_router(v2.router)
    return app
