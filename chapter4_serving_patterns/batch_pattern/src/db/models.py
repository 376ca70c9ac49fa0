"""Tables of the batch pattern (SPEC 3.4), created by Alembic migrations, never by the app.

items: one row to predict. `status` moves pending → predicted, or pending → error (values that
cannot be predicted, with the reason in `error`); `run_id` names the run that settled it.
runs: one batch run, its counters updated in the same transaction as each chunk it commits.

Other systems may insert rows with only `values`: status and timestamps have server defaults.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

PENDING, PREDICTED, ERROR = "pending", "predicted", "error"
ROW_STATUSES = (PENDING, PREDICTED, ERROR)
RUNNING, SUCCEEDED, STOPPED, FAILED = "running", "succeeded", "stopped", "failed"
RUN_STATUSES = (RUNNING, SUCCEEDED, STOPPED, FAILED)
SOURCE_KEY_LENGTH = 128
LABEL_LENGTH = 128
VERSION_LENGTH = 64
# SQLite only makes an INTEGER PRIMARY KEY auto-increment (a BIGINT one stays NULL).
ItemId = BigInteger().with_variant(Integer(), "sqlite")

# Stable constraint names, so that migrations can drop what they created on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend: SQLite stores no zone, so UTC is written naive
    there and marked UTC again when read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        datetime: UtcDateTime,
        uuid.UUID: Uuid,
    }


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),)

    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    rows: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[str] = mapped_column(String(VERSION_LENGTH))


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint(f"status IN {ROW_STATUSES}", name="status"),
        # What a run asks for: the oldest pending rows, in id order.
        Index("ix_items_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(ItemId, primary_key=True, autoincrement=True)
    # The seed's idempotency key; rows posted through the API have none.
    source_key: Mapped[str | None] = mapped_column(String(SOURCE_KEY_LENGTH), unique=True)
    # As written, JSON: whatever another system stored is read back and judged by the job.
    values: Mapped[Any] = mapped_column(JSON)
    # none_as_null: no prediction is SQL NULL, not the JSON value null
    prediction: Mapped[list[float] | None] = mapped_column(JSON(none_as_null=True))
    label: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    model_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH))
    status: Mapped[str] = mapped_column(String(16), server_default=text(f"'{PENDING}'"))
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.run_id"))
    created_datetime: Mapped[datetime] = mapped_column(server_default=text("CURRENT_TIMESTAMP"))
    updated_datetime: Mapped[datetime] = mapped_column(server_default=text("CURRENT_TIMESTAMP"))
    predicted_datetime: Mapped[datetime | None]
