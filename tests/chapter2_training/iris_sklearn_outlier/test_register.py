"""iris_sklearn_outlier: SPEC 1.1 acceptance test 6, against a real model DB (SQLite, temp dir)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chapter2_training import iris_checks as checks

PATTERN = "chapter2_training/iris_sklearn_outlier"
NAMES = ["iris_ocs"]


@pytest.fixture(scope="module")
def model_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with checks.model_db(tmp_path_factory.mktemp("model_db")) as base_url:
        yield base_url


def test_train_registers_once_and_sets_the_alias(model_db: str, tmp_path: Path) -> None:
    checks.assert_registers_once(PATTERN, NAMES, model_db, tmp_path)


def test_unreachable_registry_fails_after_writing_the_model(tmp_path: Path) -> None:
    checks.assert_unreachable_registry_fails(PATTERN, NAMES, "outlier_detection", tmp_path)
