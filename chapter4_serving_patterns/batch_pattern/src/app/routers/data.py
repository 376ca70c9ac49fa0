"""Rows to predict (SPEC 3.4): the book's three lists, one row, counts, and new rows.

Lists are paginated by key: `limit` rows with id > `after_id`, in id order, with the view's
`X-Total-Count` and, while more follow, `Link: <…?after_id=<last id>>; rel="next"`. A row
posted or predicted meanwhile never shifts a page, so a walk sees each row once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from src.app.dependencies import CurrentModel, CurrentSettings, ReadSession, WriteSession
from src.app.schemas import Counts, Created, DataIn, ItemOut
from src.common.errors import ApiError, error_responses
from src.db import repository
from src.db.repository import View
from src.ml.validation import row_problem

router = APIRouter(prefix="/data", tags=["data"], responses=error_responses(422, 503))
MAX_ID = 2**63 - 1  # BIGINT ids
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
AfterId = Annotated[int, Query(ge=0, le=MAX_ID, description="return rows with a larger id")]


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after_id: int


def page_request(limit: Limit = DEFAULT_LIMIT, after_id: AfterId = 0) -> PageRequest:
    return PageRequest(limit, after_id)


PageParams = Annotated[PageRequest, Depends(page_request)]


def _page(
    view: View, session: ReadSession, page: PageRequest, request: Request, response: Response
) -> list[ItemOut]:
    items, total, more = repository.item_page(session, view, page.limit, page.after_id)
    response.headers["X-Total-Count"] = str(total)
    if more:
        next_url = request.url.include_query_params(limit=page.limit, after_id=items[-1].id)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return [ItemOut.model_validate(item) for item in items]


@router.get("/all")
def all_items(
    session: ReadSession, page: PageParams, request: Request, response: Response
) -> list[ItemOut]:
    """Every row, whatever its status."""
    return _page(View.ALL, session, page, request, response)


@router.get("/predicted")
def predicted_items(
    session: ReadSession, page: PageParams, request: Request, response: Response
) -> list[ItemOut]:
    """Rows a run has predicted."""
    return _page(View.PREDICTED, session, page, request, response)


@router.get("/unpredicted")
def unpredicted_items(
    session: ReadSession, page: PageParams, request: Request, response: Response
) -> list[ItemOut]:
    """Rows without a prediction: `pending` (waiting for a run) or `error` (with the reason)."""
    return _page(View.UNPREDICTED, session, page, request, response)


@router.get("/counts")
def item_counts(session: ReadSession) -> Counts:
    """Rows by status."""
    found = repository.counts(session)
    return Counts(**found, total=sum(found.values()))


@router.get("/{item_id}", responses=error_responses(404))
def one_item(item_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: ReadSession) -> ItemOut:
    return ItemOut.model_validate(repository.get_item(session, item_id))


@router.post("", status_code=201, responses=error_responses(413, 415))
def add_rows(
    body: DataIn, session: WriteSession, settings: CurrentSettings, model: CurrentModel
) -> Created:
    """Store rows as `pending`; the next batch run predicts them. 1 to MAX_ROWS rows."""
    if len(body.data) > settings.max_rows:
        raise ApiError(
            413,
            "payload_too_large",
            f"at most {settings.max_rows} rows per request, got {len(body.data)}",
        )
    problems = [
        {"loc": ["body", "data", index], "msg": problem}
        for index, row in enumerate(body.data)
        if (problem := row_problem(row, model.feature_count))
    ]
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        message = f"row {first['loc'][2]}: {first['msg']}{more}"
        raise ApiError(422, "invalid_input", message, details=problems)
    return Created(ids=repository.add_items(session, body.data))
