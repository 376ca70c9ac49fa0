"""SPEC 1.3 acceptance test 7 and behaviour 1 on SQLite and PostgreSQL: the Procfile.jobs
`migrate` line on an empty database, `alembic check` (no drift between models and migrations),
downgrade to base and upgrade again; foreign keys enforced by the service's engine."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.exc import IntegrityError

from tests.chapter2_training.model_db.harness import BACKENDS, PATTERN, database_url
from tests.support.launcher import base_environment, run_job
from tests.support.pattern import REPO_ROOT, Pattern

# The tables SPEC 1.3 behaviour 1 names, plus Alembic's own bookkeeping table.
SCHEMA = {"projects", "models", "experiments", "model_versions", "artifacts", "aliases"}
BOOKKEEPING = {"alembic_version"}


@pytest.fixture(scope="module")
def pattern() -> Pattern:
    return Pattern.load(REPO_ROOT / PATTERN)


def alembic(pattern: Pattern, url: str, *args: str) -> str:
    """`alembic ...` as the migrate job runs it: from the pattern directory, DATABASE_URL set."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=pattern.directory,
        env=base_environment(pattern, {"DATABASE_URL": url}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def tables(url: str) -> set[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_check_downgrade_upgrade(
    backend: str, pattern: Pattern, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = database_url(backend, tmp_path, request)
    assert tables(url) == set()

    run_job(pattern, "migrate", {"DATABASE_URL": url})  # the Procfile.jobs line itself
    assert tables(url) == SCHEMA | BOOKKEEPING
    assert "No new upgrade operations detected" in alembic(pattern, url, "check")

    alembic(pattern, url, "downgrade", "base")
    assert tables(url) == BOOKKEEPING

    run_job(pattern, "migrate", {"DATABASE_URL": url})
    assert tables(url) == SCHEMA | BOOKKEEPING
    assert "No new upgrade operations detected" in alembic(pattern, url, "check")


@pytest.mark.parametrize("backend", BACKENDS)
def test_foreign_keys_are_enforced(
    backend: str, pattern: Pattern, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from src.db.database import create_db_engine
    from src.db.models import Model

    url = database_url(backend, tmp_path, request)
    run_job(pattern, "migrate", {"DATABASE_URL": url})
    orphan = {
        "model_id": uuid.uuid4(),
        "project_id": uuid.uuid4(),  # no such project
        "model_name": "orphan",
        "last_version": 0,
        "created_datetime": datetime.now(UTC),
    }
    engine = create_db_engine(url, timeout_s=5)
    try:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(sqlalchemy.insert(Model).values(orphan))
    finally:
        engine.dispose()
