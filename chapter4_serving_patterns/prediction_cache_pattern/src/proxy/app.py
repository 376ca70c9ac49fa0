"""`proxy`, the client-facing service: `gunicorn ... 'src.proxy.app:create_app()'` (nothing at
import time).

The factory reads the settings; the lifespan reads what the proxy holds (metadata.json,
label.json, DATA_DIR; src/proxy/held.py) and opens the worker's one HTTP client to pred and its
one Redis client, closed at shutdown. The proxy is ready once pred serves the model; Redis is
optional (SPEC 3.8 behaviour 4): without it every answer is a BYPASS.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from src.common.errors import install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import ProxySettings
from src.ml.model_dir import Unservable
from src.proxy import routes
from src.proxy.cache import PredictionCache, open_redis
from src.proxy.held import read_held_model
from src.proxy.pred_client import open_pred_client
from src.web import log_fields_on_access_lines

VERSION = "0.1.0"
logger = logging.getLogger("proxy")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ProxySettings = app.state.settings
    try:
        held = read_held_model(settings)
    except Unservable as error:
        logger.critical("refusing to start: %s", error, extra={"path": str(error.path)})
        raise
    async with (
        open_pred_client(settings, held.classifier) as pred,
        open_redis(settings) as redis,
    ):
        app.state.proxy = routes.Proxy(held, pred, PredictionCache(redis, settings))
        logger.info(
            "proxy started",
            extra={
                "model_name": held.classifier.card.name,
                "pred_url": settings.pred_url,
                "cache_ttl_s": settings.cache_ttl_s,
                "cache_wait_ms": settings.cache_wait_ms,
                "model_info_ttl_s": settings.model_info_ttl_s,
                "data_dir": str(settings.data_dir),
            },
        )
        yield


def create_app(settings: ProxySettings | None = None) -> FastAPI:
    settings = settings or ProxySettings()
    setup_logging(settings.log_level)
    # httpx logs every call to pred at INFO: one line per request that says less than the
    # access line (which carries the cache result and the model).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="proxy",
        summary="Image classification with a prediction cache in Redis in front of a V2 server",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    log_fields_on_access_lines()
    install_error_handlers(app)
    app.include_router(routes.router)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    return app
