"""Liveness and readiness (CONVENTIONS 3): /ready asks the database for the items table."""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from src.app.dependencies import database, settings
from src.app.schemas import Health, Ready
from src.common.errors import ApiError, error_responses
from src.db.database import describe_database_error

router = APIRouter(tags=["health"])
RETRY_AFTER_S = "1"


@router.get("/health")
async def health() -> Health:
    """Constant: the process answers (liveness); it checks nothing."""
    return Health(health="ok")


@router.get("/ready", responses=error_responses(503))
async def ready(request: Request) -> Ready:
    """200 when the database answers and holds the items table (`init_db` ran), else 503."""
    timeout_s = settings(request).db_timeout_s
    try:
        # A hung server can block a driver call beyond its own time-outs: give up waiting
        # (the thread finishes on its own) rather than hang the probe.
        with anyio.fail_after(timeout_s):
            await anyio.to_thread.run_sync(database(request).ping, abandon_on_cancel=True)
    except TimeoutError:
        problem = f"no answer within {timeout_s} s"
    except SQLAlchemyError as error:
        problem = describe_database_error(error)
    else:
        return Ready(status="ready")
    raise ApiError(
        503,
        "dependency_unavailable",
        f"not ready: database: {problem}",
        details=[{"loc": ["database"], "msg": problem}],
        headers={"Retry-After": RETRY_AFTER_S},
    )
