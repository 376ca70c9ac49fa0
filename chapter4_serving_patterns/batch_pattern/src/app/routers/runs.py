"""Batch runs, most recent first (SPEC 3.4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from src.app.dependencies import ReadSession
from src.app.schemas import RunOut
from src.common.errors import error_responses
from src.db import repository

router = APIRouter(tags=["runs"], responses=error_responses(422, 503))
MAX_RUNS = 500


@router.get("/runs")
def list_runs(
    session: ReadSession,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS)] = 20,
) -> list[RunOut]:
    """`X-Total-Count`: every run recorded."""
    runs, total = repository.runs_page(session, limit)
    response.headers["X-Total-Count"] = str(total)
    return [RunOut.model_validate(run) for run in runs]
