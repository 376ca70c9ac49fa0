"""The web single service: `gunicorn ... 'src.app.app:create_app()'` (nothing at import time).

The factory reads the settings and sets up logging; the lifespan loads the model of MODEL_DIR
in each worker (verified by sha256, self-tested on its data sample) before the worker serves
anything. A directory that fails stops the worker, and so the service: it never serves
without its model (gunicorn.conf.py refuses it even earlier, in the master).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from src.app import v2
from src.app.inputs import FLOAT32_MAX
from src.app.routes import PREDICT_BODY, add_routes
from src.app.serving import ServedModel, log_predictions_on_access_lines
from src.common.errors import install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import Settings
from src.ml.model import Model
from src.ml.model_dir import ModelDirectoryError

VERSION = "0.1.0"
logger = logging.getLogger("web_single_pattern")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    try:
        model = Model.load(settings.model_dir)
    except ModelDirectoryError as error:
        logger.error("refusing to start: %s", error, extra={"model_dir": str(error.directory)})
        raise
    app.state.served = ServedModel(model, settings.max_rows)
    card = model.card
    logger.info(
        "model loaded",
        extra={
            "model_dir": str(card.directory),
            "model_name": card.name,
            "model_version": card.version,
        },
    )
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.log_level)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="web_single_pattern",
        summary="One web service holding the iris model: T-API (the book's endpoints) and V2",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    log_predictions_on_access_lines()
    install_error_handlers(app)
    add_routes(app)  # first: the hot routes are matched first
    app.include_router(v2.router)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    app.openapi = describing_the_model(app, app.openapi)  # type: ignore[method-assign]
    return app


def describing_the_model(
    app: FastAPI, generate: Callable[[], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document with the T-API rows narrowed to the loaded model: exactly
    `feature_count` finite float32 numbers per row, 1 to MAX_ROWS rows."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        served = getattr(app.state, "served", None)
        if isinstance(served, ServedModel):
            for path in ("/predict", "/predict/label"):
                body = document["paths"][path]["post"]["requestBody"]["content"]
                body["application/json"]["schema"] = rows_schema(served)
        app.openapi_schema = document
        return document

    return openapi


def rows_schema(served: ServedModel) -> dict[str, Any]:
    schema = copy.deepcopy(PREDICT_BODY["requestBody"]["content"]["application/json"])
    rows = schema["schema"]["properties"]["data"]
    width = served.card.feature_count
    rows.update(minItems=1, maxItems=served.max_rows)
    rows["items"].update(minItems=width, maxItems=width)
    rows["items"]["items"].update(minimum=-FLOAT32_MAX, maximum=FLOAT32_MAX)
    return dict(schema["schema"])
