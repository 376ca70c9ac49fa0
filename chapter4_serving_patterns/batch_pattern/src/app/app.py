"""The batch API: `gunicorn ... 'src.app.app:create_app()'` (nothing at import time).

It never predicts: it stores rows as `pending` for the next batch run and serves what the runs
wrote. The lifespan checks the model directory (sha256, feature count: POST /data refuses rows
of another width) and opens the database; tables belong to the `init_db` migration.
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

from src.app.routers import data, health, runs
from src.app.routers.health import RETRY_AFTER_S
from src.common.errors import error_response, install_error_handlers
from src.common.logging import setup_logging
from src.common.metrics import install_metrics
from src.common.request_id import RequestIdMiddleware
from src.configurations import Settings
from src.db.database import Database, describe_database_error
from src.db.repository import NotFound
from src.ml.model import ModelDirectory, ModelError

VERSION = "0.1.0"
logger = logging.getLogger("batch_api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    current: Settings = app.state.settings
    try:
        model = ModelDirectory.load(current.model_dir)
    except ModelError as error:
        logger.error("refusing to start: %s", error)
        raise
    db = Database(current.database_url, current.db_timeout_s)
    app.state.model, app.state.db = model, db
    logger.info(
        "batch api started",
        extra={
            "model_name": model.name,
            "model_version": model.version,
            "database": db.engine.url.render_as_string(hide_password=True),
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
        title="batch_pattern",
        summary="Rows wait in a table; a scheduled job predicts them in chunks; this API "
        "takes new rows and serves the results",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_database_errors(app)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost middleware
    for module in (health, data, runs):
        app.include_router(module.router)
    return app


def install_database_errors(app: FastAPI) -> None:
    """Repository exceptions in the envelope (SPEC 0.6)."""

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError)
        logger.warning("database error", exc_info=exc)
        message = f"database unavailable: {describe_database_error(exc)}"
        return error_response(
            503, "dependency_unavailable", message, headers={"Retry-After": RETRY_AFTER_S}
        )

    app.add_exception_handler(NotFound, not_found)
    for database_error in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(database_error, database_unavailable)
