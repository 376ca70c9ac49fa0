"""`proxy`, the quick answer + job API: `gunicorn ... 'src.proxy.app:create_app()'` (nothing at
import time).

The factory reads the settings; the lifespan reads what the proxy holds of both models (their
metadata.json and label.json), the sample image, opens the process's Redis client and one HTTP
client per model server (pred_sync with SYNC_TIMEOUT_MS, pred_async for its probes), and closes
them at shutdown. A Redis error on the job routes becomes a 503 `dependency_unavailable` with
Retry-After; POST /predict handles it itself (src/proxy/both.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from redis.exceptions import RedisError

from src.common.errors import error_response, install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import ProxySettings
from src.held import read_classifier, read_sample
from src.jobs.connection import redis_client
from src.jobs.store import JobStore
from src.ml import pipeline
from src.ml.image_input import ImageInputError
from src.ml.model_dir import Unservable, read_card
from src.ml.pipeline import ImageClassifier
from src.pred_client import pred_client
from src.proxy import routes
from src.proxy.both import Proxy
from src.web import log_fields_on_access_lines

VERSION = "0.1.0"
logger = logging.getLogger("proxy")


def read_sync_classifier(settings: ProxySettings, sample: bytes) -> ImageClassifier:
    """The quick model SYNC_MODEL_DIR describes; its preprocessing is self-tested on the sample."""
    classifier = ImageClassifier.from_card(read_card(settings.sync_model_dir))
    try:
        pipeline.preprocess_file(sample, classifier, settings.max_image_bytes)
    except ImageInputError as error:
        message = f"{settings.sample_image_path}: the quick model cannot read it: {error}"
        raise Unservable(settings.sync_model_dir, message) from error
    return classifier


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ProxySettings = app.state.settings
    try:
        classifier = read_classifier(settings)
        sample = read_sample(settings, classifier)
        sync_classifier = read_sync_classifier(settings, sample)
    except Unservable as error:
        logger.critical("refusing to start: %s", error, extra={"path": str(error.path)})
        raise
    redis = redis_client(settings)
    try:
        async with AsyncExitStack() as stack:
            sync_pred = await stack.enter_async_context(
                pred_client(settings.sync_call(), sync_classifier)
            )
            async_pred = await stack.enter_async_context(pred_client(settings, classifier))
            store = JobStore(redis, settings)
            app.state.proxy = Proxy(
                settings, store, sync_pred, async_pred, sync_classifier, classifier, sample
            )
            app.state.outcomes = routes.Outcomes()
            logger.info(
                "proxy started",
                extra={
                    "sync_model": f"{sync_classifier.card.name} {sync_classifier.card.version}",
                    "model_name": classifier.card.name,
                    "model_version": classifier.card.version,
                    "queue_prefix": settings.queue_prefix,
                    "sync_timeout_ms": settings.sync_timeout_ms,
                },
            )
            yield
    finally:
        await redis.aclose()


async def redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    settings: ProxySettings = request.app.state.settings
    message = f"redis is unavailable: {type(exc).__name__}: {exc}"
    headers = {"Retry-After": str(settings.poll_after_s)}
    return error_response(503, "dependency_unavailable", message, headers=headers)


def create_app(settings: ProxySettings | None = None) -> FastAPI:
    settings = settings or ProxySettings()
    setup_logging(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per model call otherwise
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="proxy",
        summary="A quick answer from a light model now, the heavy model's answer through a queue",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    log_fields_on_access_lines()
    install_error_handlers(app)
    app.add_exception_handler(RedisError, redis_unavailable)
    app.include_router(routes.router)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    return app
