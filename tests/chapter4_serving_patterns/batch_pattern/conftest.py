"""Fixtures of the batch pattern's tests: the oracle, and empty migrated PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.chapter4_serving_patterns.batch_pattern.harness import (
    Oracle,
    Table,
    job,
    require_models,
    settings,
)


@pytest.fixture(scope="session", autouse=True)
def models_present() -> None:
    require_models()


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    return Oracle()


@pytest.fixture
def migrated(postgres_database: Callable[[], str]) -> Iterator[Table]:
    """A fresh PostgreSQL database after `init_db` (tables, no rows)."""
    url = postgres_database()
    job("init_db", settings(url))
    table = Table(url)
    yield table
    table.close()
