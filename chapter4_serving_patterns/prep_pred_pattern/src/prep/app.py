"""`prep`, the image service: `gunicorn ... 'src.prep.app:create_app()'` (nothing at import time).

The factory reads the settings; the lifespan reads what prep holds of the model (metadata.json,
label.json, the sample image; src/prep/held.py) and opens the process's one HTTP client to pred,
closed at shutdown. prep is ready once pred serves the model version it holds (/ready).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from src.common.errors import install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import PrepSettings
from src.ml.model_dir import Unservable
from src.ml.pipeline import ImageClassifier
from src.prep import routes
from src.prep.held import read_held_model
from src.prep.predictors import Predictor, remote_predictor
from src.web import log_fields_on_access_lines

VERSION = "0.1.0"
logger = logging.getLogger("prep")
OpenPredictor = Callable[[PrepSettings, ImageClassifier], AbstractAsyncContextManager[Predictor]]


def lifespan_with(
    open_predictor: OpenPredictor,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: PrepSettings = app.state.settings
        try:
            held = read_held_model(settings)
        except Unservable as error:
            logger.critical("refusing to start: %s", error, extra={"path": str(error.path)})
            raise
        async with open_predictor(settings, held.classifier) as predictor:
            app.state.prep = routes.Prep(held, predictor)
            card = held.classifier.card
            logger.info(
                "prep started",
                extra={
                    "model_name": card.name,
                    "model_version": card.version,
                    "pred_url": settings.pred_url,
                    "pred_timeout_ms": settings.pred_timeout_ms,
                },
            )
            yield

    return lifespan


def create_app(
    settings: PrepSettings | None = None, open_predictor: OpenPredictor = remote_predictor
) -> FastAPI:
    settings = settings or PrepSettings()
    setup_logging(settings.log_level)
    # httpx logs every call to pred at INFO: one line per request that says less than the
    # access line (which carries the stage timings).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="prep",
        summary="Image in, label out: preprocessing and postprocessing around a V2 model server",
        version=VERSION,
        lifespan=lifespan_with(open_predictor),
    )
    app.state.settings = settings
    log_fields_on_access_lines()
    install_error_handlers(app)
    app.include_router(routes.router)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    return app
