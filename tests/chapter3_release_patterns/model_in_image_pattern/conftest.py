"""The tabular service under test: the model-in-image service, 1 worker as in each k8s pod
(the fixtures are in tests/support/tabular.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest

from tests.support import tabular
from tests.support.tabular import Service, TabularPattern, iris_rows, oracle, service

__all__ = ["iris_rows", "oracle", "service"]  # the shared fixtures, for pytest

PATTERN = TabularPattern("chapter3_release_patterns/model_in_image_pattern", {"WORKERS": "1"})


@pytest.fixture(scope="session")
def tabular_pattern() -> TabularPattern:
    return PATTERN


@contextmanager
def running_service(env: Mapping[str, str] | None = None) -> Iterator[Service]:
    with tabular.running_service(PATTERN, env) as running:
        yield running
