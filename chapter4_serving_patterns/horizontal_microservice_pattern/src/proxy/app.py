"""The composition proxy: `gunicorn ... 'src.proxy.app:create_app()'` (nothing at import time).

The factory reads the settings; the lifespan opens the process's one HTTP client to the
backends named by SERVICES and closes it at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from src.common.errors import install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import ProxySettings
from src.proxy import routes
from src.proxy.fanout import Fanout

VERSION = "0.1.0"
# Connections per backend: enough for the bench's concurrency; more requests wait their turn.
BACKEND_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=32)
logger = logging.getLogger("proxy")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ProxySettings = app.state.settings
    async with backend_client(settings) as client:
        app.state.fanout = Fanout(client, settings.backend_urls(), settings.backend_timeout_s)
        logger.info(
            "proxy started",
            extra={"backends": settings.backend_urls(), "timeout_ms": settings.backend_timeout_ms},
        )
        yield


def backend_client(settings: ProxySettings) -> httpx.AsyncClient:
    """The process's one client, with a connection pool of its own per backend: a hung
    backend holds only its own connections (a bulkhead), and each pool, which httpcore scans
    on every request, stays small. trust_env=False: the backends are the URLs configured,
    never reached through an HTTP(S)_PROXY the environment happens to name."""
    urls = [httpx.URL(url) for url in settings.backend_urls().values()]
    origins = {f"{url.scheme}://{url.netloc.decode()}" for url in urls}  # mounts match these
    pools = {
        origin: httpx.AsyncHTTPTransport(limits=BACKEND_LIMITS, trust_env=False)
        for origin in origins
    }
    return httpx.AsyncClient(timeout=settings.backend_timeout_s, mounts=pools, trust_env=False)


def create_app(settings: ProxySettings | None = None) -> FastAPI:
    settings = settings or ProxySettings()
    setup_logging(settings.log_level)
    # httpx logs every backend call at INFO: three lines per request that say less than the
    # access line and the warnings the fan-out writes for failed calls.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="proxy",
        summary="Fans each prediction out to every model service at once and gathers the answers",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_exception_handler(routes.NoBackendAnswered, routes.no_backend_answered)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    app.include_router(routes.router)
    return app
