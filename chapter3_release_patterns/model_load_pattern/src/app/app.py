"""The model-load API: `gunicorn ... 'src.app.app:create_app()'` (nothing at import time).

The web single service's T-API and V2 (copied from chapter4_serving_patterns/web_single_pattern)
with a model that arrives at run time (SPEC 2.2): the lifespan serves MODEL_DIR's verified model
if there is one, and starts the reloader (src/app/reloader.py), which fetches MODEL_SOURCE while
there is none and follows it afterwards. The process starts and answers /health either way;
/ready and the prediction routes answer 503 model_not_ready, with the reason, until a model is
served.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from src.app import admin, v2
from src.app.inputs import FLOAT32_MAX
from src.app.reloader import Reloader
from src.app.routes import PREDICT_BODY, add_routes
from src.app.serving import ServedModel, log_predictions_on_access_lines
from src.common.errors import install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import Settings

VERSION = "0.1.0"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    reloader = Reloader(app.state.settings)
    app.state.reloader = reloader
    reloader.load_installed()
    task = asyncio.create_task(reloader.run(), name="model-reloader")
    await reloader.wait_for_first_attempt()
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        reloader.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.log_level)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per fetch request otherwise
    app = FastAPIOffline(
        title="model_load_pattern",
        summary="T-API and V2 with a model fetched at run time (model DB alias, file or http), "
        "verified by sha256 and reloaded when the source changes",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    log_predictions_on_access_lines()
    install_error_handlers(app)
    add_routes(app)  # first: the hot routes are matched first
    app.include_router(v2.router)
    app.include_router(admin.router)
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
        reloader = getattr(app.state, "reloader", None)
        served = reloader.served if isinstance(reloader, Reloader) else None
        if isinstance(served, ServedModel):
            for path in ("/predict", "/predict/label"):
                body = document["paths"][path]["post"]["requestBody"]["content"]
                body["application/json"]["schema"] = rows_schema(served)
            # Kept once a model describes the rows (a reload keeps the task, hence the width).
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
