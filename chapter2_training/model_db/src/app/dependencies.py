"""What routes receive: sessions, the artifact store, pagination (SPEC 1.3 API)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Response
from sqlalchemy import Select
from sqlalchemy.orm import Session

from src.configurations import Settings
from src.db.database import Database
from src.db.repository import MAX_INT4, paginate
from src.storage import ArtifactStore

RowT = TypeVar("RowT")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def database(request: Request) -> Database:
    db = request.app.state.db
    assert isinstance(db, Database), "the lifespan opens the database"
    return db


def artifact_store(request: Request) -> ArtifactStore:
    store = request.app.state.store
    assert isinstance(store, ArtifactStore), "the lifespan prepares the artifact store"
    return store


def settings(request: Request) -> Settings:
    value = request.app.state.settings
    assert isinstance(value, Settings)
    return value


def read_session(request: Request) -> Iterator[Session]:
    with database(request).read_session() as session:
        yield session


def write_session(request: Request) -> Iterator[Session]:
    with database(request).write_session() as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]


@dataclass(frozen=True)
class PageRequest:
    limit: int
    offset: int


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_INT4)] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


PageParams = Annotated[PageRequest, Depends(page_request)]


def one_page(
    session: Session,
    statement: Select[RowT],
    page: PageRequest,
    request: Request,
    response: Response,
) -> list[RowT]:
    """The page's rows; `X-Total-Count`, and `Link: <next>; rel="next"` when more exist."""
    items, total = paginate(session, statement, page.limit, page.offset)
    response.headers["X-Total-Count"] = str(total)
    next_offset = page.offset + len(items)
    if items and next_offset < total:
        next_url = request.url.include_query_params(limit=page.limit, offset=next_offset)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return items
