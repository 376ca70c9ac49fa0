"""The registry's FastAPI app: `gunicorn ... 'src.app.app:create_app()'` (nothing at import time).

The factory reads the settings and sets up logging; the lifespan opens the database engine and
prepares the artifact root (no table is created here: migrations own the schema).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from src.app.dependencies import settings as app_settings
from src.app.routers import experiments, health, models, projects, registry, versions
from src.app.routers.health import RETRY_AFTER_S
from src.common.errors import error_response, install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import Settings
from src.db.database import Database, describe_database_error
from src.db.repository import Conflict, InvalidReference, NotFound
from src.storage import ArtifactStore, InvalidFilename, PayloadTooLarge

VERSION = "0.1.0"
logger = logging.getLogger("model_db")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    current = app.state.settings
    store = ArtifactStore(current.artifact_root, current.max_artifact_bytes)
    store.prepare()
    db = Database(current.database_url, current.db_timeout_s)
    app.state.db, app.state.store = db, store
    logger.info(
        "model_db started",
        extra={
            "database": db.engine.url.render_as_string(hide_password=True),
            "artifact_root": str(store.root),
        },
    )
    try:
        yield
    finally:
        db.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    setup_logging(settings.log_level)
    # FastAPIOffline: /docs and /redoc serve their scripts from the package, not from a CDN.
    app = FastAPIOffline(
        title="model_db",
        summary="Model registry: projects, models, experiments, versions, aliases, artifacts",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_registry_errors(app)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    for module in (health, projects, models, experiments, versions, registry):
        app.include_router(module.router)
    return app


def install_registry_errors(app: FastAPI) -> None:
    """The repository's and the store's exceptions, in the envelope (SPEC 0.6)."""

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    async def invalid_reference(request: Request, exc: Exception) -> JSONResponse:
        return error_response(
            422, "invalid_input", str(exc), details=[{"loc": ["body"], "msg": str(exc)}]
        )

    async def invalid_filename(request: Request, exc: Exception) -> JSONResponse:
        details = [{"loc": ["path", "filename"], "msg": str(exc)}]
        return error_response(422, "invalid_input", str(exc), details=details)

    async def too_large(request: Request, exc: Exception) -> JSONResponse:
        # The body was not read to its end: close the connection rather than drain it.
        return error_response(413, "payload_too_large", str(exc), headers={"Connection": "close"})

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError)
        timeout_s = app_settings(request).db_timeout_s
        logger.warning("database error", exc_info=exc, extra={"timeout_s": timeout_s})
        message = f"database unavailable: {describe_database_error(exc)}"
        return error_response(
            503, "dependency_unavailable", message, headers={"Retry-After": RETRY_AFTER_S}
        )

    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(InvalidReference, invalid_reference)
    app.add_exception_handler(InvalidFilename, invalid_filename)
    app.add_exception_handler(PayloadTooLarge, too_large)
    for database_error in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(database_error, database_unavailable)
