"""Initial schema: projects, models, experiments, model_versions, aliases, artifacts.

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


def _created() -> sa.Column[object]:
    return sa.Column("created_datetime", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("project_name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("project_id", name="pk_projects"),
        sa.UniqueConstraint("project_name", name="uq_projects_project_name"),
    )
    op.create_table(
        "models",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("last_version", sa.Integer(), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.project_id"], name="fk_models_project_id_projects"
        ),
        sa.PrimaryKeyConstraint("model_id", name="pk_models"),
        sa.UniqueConstraint("project_id", "model_name", name="uq_models_project_id_model_name"),
    )
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("model_version_id", sa.String(length=128), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("training_dataset", sa.Text(), nullable=True),
        sa.Column("validation_dataset", sa.Text(), nullable=True),
        sa.Column("test_dataset", sa.Text(), nullable=True),
        sa.Column("evaluations", sa.JSON(), nullable=False),
        sa.Column("artifact_file_paths", sa.JSON(), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.model_id"], name="fk_experiments_model_id_models"
        ),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
    )
    op.create_index("ix_experiments_model_id", "experiments", ["model_id"])
    op.create_index("ix_experiments_model_version_id", "experiments", ["model_version_id"])
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_model_versions_experiment_id_experiments",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.model_id"], name="fk_model_versions_model_id_models"
        ),
        sa.PrimaryKeyConstraint("model_id", "version", name="pk_model_versions"),
    )
    op.create_index("ix_model_versions_experiment_id", "model_versions", ["experiment_id"])
    op.create_table(
        "aliases",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("alias", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_datetime", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            name="fk_aliases_model_id_version_model_versions",
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_aliases"),
    )
    op.create_table(
        "artifacts",
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_path", sa.String(length=512), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            name="fk_artifacts_model_id_version_model_versions",
        ),
        sa.PrimaryKeyConstraint("model_id", "version", "filename", name="pk_artifacts"),
    )


def downgrade() -> None:
    op.drop_table("artifacts")
    op.drop_table("aliases")
    op.drop_index("ix_model_versions_experiment_id", table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_index("ix_experiments_model_version_id", table_name="experiments")
    op.drop_index("ix_experiments_model_id", table_name="experiments")
    op.drop_table("experiments")
    op.drop_table("models")
    op.drop_table("projects")
