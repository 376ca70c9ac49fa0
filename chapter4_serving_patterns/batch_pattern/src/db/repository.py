"""Reads and writes of the batch pattern; no HTTP and no model here.

API side: pages of items by view (keyset pagination on id), one item, new rows, counts, runs.
Job side: the run record, the backlog horizon, claiming a chunk, settling it. Seed: idempotent
insertion by source_key. Write functions that end a unit of work commit it themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Text, cast, func, insert, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from src.db.models import ERROR, PENDING, PREDICTED, RUNNING, Item, Run, utc_now
from src.ml.validation import decode_stored


class NotFound(LookupError):
    pass


class View(StrEnum):
    """The book's three lists of items."""

    ALL = "all"
    PREDICTED = "predicted"
    UNPREDICTED = "unpredicted"  # no prediction: pending, or settled as error


def _view_filter(view: View) -> ColumnElement[bool]:
    if view is View.PREDICTED:
        return Item.status == PREDICTED
    if view is View.UNPREDICTED:
        return Item.status.in_((PENDING, ERROR))
    return true()


@dataclass(frozen=True)
class ItemRecord:
    id: int
    source_key: str | None
    values: Any  # as stored: four numbers for rows the API accepted
    prediction: list[float] | None
    label: str | None
    model_version: str | None
    status: str
    error: str | None
    run_id: uuid.UUID | None
    created_datetime: datetime
    updated_datetime: datetime
    predicted_datetime: datetime | None


# `values` is read as its JSON text and decoded here, so that a row another system wrote badly
# (SQLite does not check JSON) is shown as its text instead of failing the whole page.
_ITEM_COLUMNS = (
    Item.id,
    Item.source_key,
    cast(Item.values, Text).label("values_text"),
    Item.prediction,
    Item.label,
    Item.model_version,
    Item.status,
    Item.error,
    Item.run_id,
    Item.created_datetime,
    Item.updated_datetime,
    Item.predicted_datetime,
)


def _record(row: RowMapping) -> ItemRecord:
    fields = dict(row)
    text = fields.pop("values_text")
    values, problem = decode_stored(text)
    return ItemRecord(values=text if problem else values, **fields)


def item_page(
    session: Session, view: View, limit: int, after_id: int
) -> tuple[list[ItemRecord], int, bool]:
    """Up to `limit` items with id > after_id in id order, the view's total, and whether more
    follow. Keyset pagination: rows inserted meanwhile never shift a page."""
    where = _view_filter(view)
    total = session.scalar(select(func.count()).select_from(Item).where(where)) or 0
    rows = (
        session.execute(
            select(*_ITEM_COLUMNS)
            .where(where, Item.id > after_id)
            .order_by(Item.id)
            .limit(limit + 1)
        )
        .mappings()
        .all()
    )
    return [_record(row) for row in rows[:limit]], total, len(rows) > limit


def get_item(session: Session, item_id: int) -> ItemRecord:
    row = session.execute(select(*_ITEM_COLUMNS).where(Item.id == item_id)).mappings().first()
    if row is None:
        raise NotFound(f"item {item_id} not found")
    return _record(row)


def add_items(session: Session, rows: Sequence[Sequence[float]]) -> list[int]:
    """Insert pending rows in one statement; their ids in input order."""
    now = utc_now()
    values = [
        {"values": [float(v) for v in row], "status": PENDING, "created_datetime": now,
         "updated_datetime": now}
        for row in rows
    ]  # fmt: skip
    ids = session.scalars(
        insert(Item).returning(Item.id, sort_by_parameter_order=True), values
    ).all()
    session.commit()
    return list(ids)


def counts(session: Session) -> dict[str, int]:
    found = dict(session.execute(select(Item.status, func.count()).group_by(Item.status)).all())
    return {status: int(found.get(status, 0)) for status in (PENDING, PREDICTED, ERROR)}


def runs_page(session: Session, limit: int) -> tuple[list[Run], int]:
    """The most recent runs first."""
    total = session.scalar(select(func.count()).select_from(Run)) or 0
    runs = session.scalars(
        select(Run).order_by(Run.started_at.desc(), Run.run_id).limit(limit)
    ).all()
    return list(runs), total


# --- seed --------------------------------------------------------------------------------------


def seed_items(session: Session, items: Iterable[tuple[str, list[float]]]) -> int:
    """Insert rows whose source_key is new; returns how many were inserted. One statement with
    ON CONFLICT DO NOTHING, so that two seeds at once also insert each key once."""
    now = utc_now()
    values = [
        {"source_key": key, "values": row, "status": PENDING, "created_datetime": now,
         "updated_datetime": now}
        for key, row in items
    ]  # fmt: skip
    if not values:
        return 0
    dialect = session.get_bind().dialect.name
    statement = (
        postgresql.insert(Item) if dialect == "postgresql" else sqlite.insert(Item)
    ).on_conflict_do_nothing(index_elements=[Item.source_key])
    inserted = session.scalars(statement.returning(Item.id), values).all()
    session.commit()
    return len(inserted)


# --- batch runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    values_text: str | None


@dataclass(frozen=True)
class Outcome:
    """What a run decided for one claimed row."""

    id: int
    prediction: list[float] | None = None
    label: str | None = None
    error: str | None = None


def start_run(session: Session, model_version: str) -> Run:
    run = Run(
        run_id=uuid.uuid4(),
        started_at=utc_now(),
        rows=0,
        chunks=0,
        errors=0,
        status=RUNNING,
        model_version=model_version,
    )
    session.add(run)
    session.commit()
    return run


def backlog_horizon(session: Session) -> int | None:
    """The highest pending id now: a run settles the backlog it found, so that it ends even
    while new rows keep arriving (they wait for the next run)."""
    return session.scalar(select(func.max(Item.id)).where(Item.status == PENDING))


def claim_chunk(session: Session, horizon: int, size: int) -> list[ClaimedRow]:
    """Lock up to `size` pending rows (id ≤ horizon) for this transaction.

    PostgreSQL: FOR UPDATE SKIP LOCKED: rows another run holds are skipped, not waited for, so
    concurrent runs take disjoint chunks. SQLite ignores the clause; its write transaction
    (BEGIN IMMEDIATE) already excludes every other writer until the commit.
    """
    rows = session.execute(
        select(Item.id, cast(Item.values, Text))
        .where(Item.status == PENDING, Item.id <= horizon)
        .order_by(Item.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    ).all()
    return [ClaimedRow(row_id, text) for row_id, text in rows]


def settle_chunk(
    session: Session, run_id: uuid.UUID, model_version: str, outcomes: Sequence[Outcome]
) -> None:
    """Write the chunk's results and the run's counters, and commit them together: the run
    record never counts rows that were not written, nor the reverse."""
    now = utc_now()
    session.execute(
        update(Item),
        [
            {
                "id": outcome.id,
                "status": ERROR if outcome.error else PREDICTED,
                "prediction": outcome.prediction,
                "label": outcome.label,
                "error": outcome.error,
                "model_version": model_version,
                "run_id": run_id,
                "updated_datetime": now,
                "predicted_datetime": None if outcome.error else now,
            }
            for outcome in outcomes
        ],
    )
    errors = sum(1 for outcome in outcomes if outcome.error)
    session.execute(
        update(Run)
        .where(Run.run_id == run_id)
        .values(rows=Run.rows + len(outcomes), chunks=Run.chunks + 1, errors=Run.errors + errors)
    )
    session.commit()


def finish_run(session: Session, run_id: uuid.UUID, status: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    run.status, run.finished_at = status, utc_now()
    session.commit()
    return run
