"""Tables of the registry (SPEC 1.3 behaviour 1), created by Alembic migrations, never by the app.

projects ─< models ─< experiments
                 └─< model_versions ─< artifacts
                          └─< aliases       (unique (model, alias) → one version of that model)

Versions, artifacts and aliases reference a version by (model_id, version), so an alias can only
name a version of its own model: the schema says it, not only the code.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAME_LENGTH = 128
ALIAS_LENGTH = 32
FILENAME_LENGTH = 128

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
        dict[str, Any]: JSON,
    }


class Project(Base):
    __tablename__ = "projects"

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    project_name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_datetime: Mapped[datetime] = mapped_column(default=utc_now)


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("project_id", "model_name"),)

    model_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.project_id"))
    model_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)
    # The last version number handed out: incremented in one UPDATE, which serialises
    # concurrent version creation on the model's row (SPEC 1.3 behaviour 1).
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_datetime: Mapped[datetime] = mapped_column(default=utc_now)


class Experiment(Base):
    __tablename__ = "experiments"

    experiment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.model_id"), index=True)
    # The book's free-form label of the model version the run produced.
    model_version_id: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training_dataset: Mapped[str | None] = mapped_column(Text)
    validation_dataset: Mapped[str | None] = mapped_column(Text)
    test_dataset: Mapped[str | None] = mapped_column(Text)
    evaluations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifact_file_paths: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_datetime: Mapped[datetime] = mapped_column(default=utc_now)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.model_id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experiments.experiment_id"), index=True
    )
    description: Mapped[str | None] = mapped_column(Text)
    # `metadata` is taken on declarative classes; the column keeps the API's name.
    version_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_datetime: Mapped[datetime] = mapped_column(default=utc_now)

    artifacts: Mapped[list[Artifact]] = relationship(
        order_by="Artifact.filename", lazy="selectin", viewonly=True
    )
    aliases: Mapped[list[Alias]] = relationship(
        order_by="Alias.alias", lazy="selectin", viewonly=True
    )


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"], ["model_versions.model_id", "model_versions.version"]
        ),
    )

    model_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(FILENAME_LENGTH), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Relative to ARTIFACT_ROOT, so that the root may move.
    storage_path: Mapped[str] = mapped_column(String(512))
    created_datetime: Mapped[datetime] = mapped_column(default=utc_now)


class Alias(Base):
    __tablename__ = "aliases"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"], ["model_versions.model_id", "model_versions.version"]
        ),
    )

    model_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    alias: Mapped[str] = mapped_column(String(ALIAS_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_datetime: Mapped[datetime] = mapped_column(default=utc_now)
