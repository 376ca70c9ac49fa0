"""The tabular service under test: the web single service, 2 gunicorn workers (the fixtures
are in tests/support/tabular.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

from tests.support import tabular
from tests.support.tabular import Service, TabularPattern, iris_rows, oracle, service

__all__ = ["iris_rows", "oracle", "service"]  # the shared fixtures, for pytest

PATTERN = TabularPattern("chapter4_serving_patterns/web_single_pattern", {"WORKERS": "2"})


@pytest.fixture(scope="session")
def tabular_pattern() -> TabularPattern:
    return PATTERN


@contextmanager
def running_service(env: Mapping[str, str] | None = None) -> Iterator[Service]:
    with tabular.running_service(PATTERN, env) as running:
        yield running
