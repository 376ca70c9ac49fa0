"""The image model server `pred`: `gunicorn ... 'src.app.app:create_app()'` (nothing at import
time).

The factory reads the settings and sets up logging; the lifespan loads the model of MODEL_DIR in
each worker (verified by sha256, self-tested on a batch of two) and starts its inference thread
before the worker serves anything. A directory that fails stops the worker, and so the server:
it never serves without its model (gunicorn.conf.py refuses it even earlier, in the master).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from src.app import v2
from src.app.routes import add_routes
from src.app.serving import ServedModel, log_predictions_on_access_lines
from src.common.errors import install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import Settings
from src.ml.model import Model
from src.ml.model_dir import ModelDirectoryError

VERSION = "0.1.0"
logger = logging.getLogger("synchronous_pattern")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    try:
        model = Model.load(settings.model_dir, settings.inference_threads)
    except ModelDirectoryError as error:
        logger.error("refusing to start: %s", error, extra={"model_dir": str(error.directory)})
        raise
    served = ServedModel(model, settings, read_sample_image(settings))
    served.batcher.start()
    app.state.served = served
    card = model.card
    logger.info(
        "model loaded",
        extra={
            "model_dir": str(card.directory),
            "model_name": card.name,
            "model_version": card.version,
            "batching_enabled": settings.batching_enabled,
            "max_batch_size": served.batcher.max_batch_size,
            "max_queue_delay_ms": settings.max_queue_delay_ms,
        },
    )
    try:
        yield
    finally:
        app.state.served = None  # not ready any more while the queue drains
        served.batcher.stop()


def read_sample_image(settings: Settings) -> bytes | None:
    """The image of GET /predict/test; the server runs without it (those routes answer 404)."""
    try:
        return settings.sample_image_path.read_bytes()
    except OSError as error:
        logger.warning(
            "no sample image: /predict/test answers 404 (run `make models`)",
            extra={"sample_image_path": str(settings.sample_image_path), "error": str(error)},
        )
        return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.log_level)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="synchronous_pattern",
        summary="An image model server: I-API (the book's endpoints) and V2, micro-batching",
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
    return app
