"""Liveness, readiness (SPEC 1.3 behaviour 7) and the book's `/v0.1/health`."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from src.app.dependencies import artifact_store, database, settings
from src.app.schemas import Health, Ready
from src.common.errors import ApiError, error_responses
from src.db.database import describe_database_error

router = APIRouter(tags=["health"])
RETRY_AFTER_S = "1"


@router.get("/health")
async def health() -> Health:
    """Constant: the process answers (liveness); it checks nothing."""
    return Health(health="ok")


@router.get("/v0.1/health")
async def health_v01() -> Health:
    """The book's health route."""
    return Health(health="ok")


@router.get("/ready", responses=error_responses(503))
async def ready(request: Request) -> Ready:
    """200 when the database answers `SELECT 1` and ARTIFACT_ROOT is writable, else 503
    naming each dependency that is not."""
    problems: list[dict[str, Any]] = []
    database_problem = await _database_problem(request)
    if database_problem is not None:
        problems.append({"loc": ["database"], "msg": database_problem})
    store = artifact_store(request)
    if not store.writable():
        problems.append(
            {"loc": ["artifact_root"], "msg": f"{store.root} is not a writable directory"}
        )
    if problems:
        reasons = "; ".join(f"{item['loc'][0]}: {item['msg']}" for item in problems)
        raise ApiError(
            503,
            "dependency_unavailable",
            f"not ready: {reasons}",
            details=problems,
            headers={"Retry-After": RETRY_AFTER_S},
        )
    return Ready(status="ready")


async def _database_problem(request: Request) -> str | None:
    timeout_s = settings(request).db_timeout_s
    try:
        # A hung server can block a driver call beyond its own time-outs: give up waiting
        # (the thread finishes on its own) rather than hang the probe.
        with anyio.fail_after(timeout_s):
            await anyio.to_thread.run_sync(database(request).ping, abandon_on_cancel=True)
    except TimeoutError:
        return f"no answer within {timeout_s} s"
    except SQLAlchemyError as error:
        return describe_database_error(error)
    return None
