"""`proxy`, the item service: `gunicorn ... 'src.proxy.app:create_app()'` (nothing at import time).

The factory reads the settings; the lifespan reads what the proxy holds (metadata.json,
label.json, the item directory; src/proxy/held.py), opens the process's Redis client (the
tensor cache; connected lazily, so a Redis that is down at start only means BYPASS) and its
one HTTP client to pred, both closed at shutdown. The proxy is ready once pred serves the model
version it holds (/ready); Redis never makes it unready.
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
from src.proxy.cache import open_cache
from src.proxy.held import read_held_model
from src.proxy.predictors import remote_predictor
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
        open_cache(settings) as cache,
        remote_predictor(settings, held.classifier) as predictor,
    ):
        app.state.proxy = routes.Proxy(held, cache, predictor)
        card = held.classifier.card
        logger.info(
            "proxy started",
            extra={
                "model_name": card.name,
                "model_version": card.version,
                "preprocessing_sha256": held.preprocessing_digest,
                "data_dir": str(held.items.root),
                "pred_url": settings.pred_url,
                "redis_timeout_ms": settings.redis_timeout_ms,
                "cache_ttl_s": settings.cache_ttl_s,
            },
        )
        yield


def create_app(settings: ProxySettings | None = None) -> FastAPI:
    settings = settings or ProxySettings()
    setup_logging(settings.log_level)
    # httpx logs every call to pred at INFO: one line per request that says less than the
    # access line (which carries the stage timings and the cache result).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="proxy",
        summary="Item ids in, labels out: a Redis cache of preprocessed tensors before a V2 model "
        "server",
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
