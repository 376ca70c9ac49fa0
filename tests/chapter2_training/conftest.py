"""Fixtures of the chapter-2 trainers' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chapter2_training import iris_checks as checks


@pytest.fixture(scope="module")
def model_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real model DB (SQLite in a temp dir) the trainers register into."""
    with checks.model_db(tmp_path_factory.mktemp("model_db")) as base_url:
        yield base_url
