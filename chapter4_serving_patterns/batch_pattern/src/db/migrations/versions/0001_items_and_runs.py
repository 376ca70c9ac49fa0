"""Items to predict and batch runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full (no import of src.db.models): a migration keeps describing the schema of
its day when the models change later. Constraint names follow the models' naming convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'stopped', 'failed')", name="ck_runs_status"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source_key", sa.String(length=128), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=True),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_datetime", sa.DateTime(timezone=True), server_default=NOW, nullable=False
        ),
        sa.Column(
            "updated_datetime", sa.DateTime(timezone=True), server_default=NOW, nullable=False
        ),
        sa.Column("predicted_datetime", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'predicted', 'error')", name="ck_items_status"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name="fk_items_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_items"),
        sa.UniqueConstraint("source_key", name="uq_items_source_key"),
    )
    op.create_index("ix_items_status_id", "items", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_items_status_id", table_name="items")
    op.drop_table("items")
    op.drop_index("ix_runs_started_at", table_name="runs")
    op.drop_table("runs")
