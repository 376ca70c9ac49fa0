"""One registry per backend per test module: SQLite in a temp directory, and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chapter2_training.model_db.harness import (
    BACKENDS,
    Registry,
    database_url,
    start_registry,
)


@pytest.fixture(scope="module", params=BACKENDS)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp(f"model_db_{request.param}")
    with start_registry(database_url(request.param, tmp, request), tmp) as running:
        yield running
