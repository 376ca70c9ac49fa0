"""`proxy`, the submit / status / result API: `gunicorn ... 'src.proxy.app:create_app()'`
(nothing at import time).

The factory reads the settings; the lifespan reads what the proxy holds of the model
(metadata.json, label.json, the sample image), opens the process's Redis client and its HTTP
client to pred, and closes both at shutdown. Every Redis error a route meets becomes a 503
`dependency_unavailable` with Retry-After, naming the reason: accepted jobs stay in Redis, and
the proxy serves again as soon as Redis answers, without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
from src.ml.model_dir import Unservable
from src.pred_client import pred_client
from src.proxy import routes
from src.web import log_fields_on_access_lines

VERSION = "0.1.0"
logger = logging.getLogger("proxy")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ProxySettings = app.state.settings
    try:
        classifier = read_classifier(settings)
        sample = read_sample(settings, classifier)
    except Unservable as error:
        logger.critical("refusing to start: %s", error, extra={"path": str(error.path)})
        raise
    redis = redis_client(settings)
    try:
        async with pred_client(settings, classifier) as pred:
            store = JobStore(redis, settings)
            app.state.proxy = routes.Proxy(settings, store, pred, classifier, sample)
            logger.info(
                "proxy started",
                extra={
                    "model_name": classifier.card.name,
                    "model_version": classifier.card.version,
                    "queue_prefix": settings.queue_prefix,
                    "max_queue_length": settings.max_queue_length,
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
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call to pred otherwise
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="proxy",
        summary="Asynchronous image classification: submit, poll, read the result",
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
