"""iris_binary: SPEC 1.1 acceptance test 6, against a real model DB (SQLite, temp dir)."""

from __future__ import annotations

from pathlib import Path

from tests.chapter2_training import iris_checks as checks

PATTERN = "chapter2_training/iris_binary"
NAMES = [f"iris_binary_{species}" for species in ("setosa", "versicolor", "virginica")]


def test_train_registers_once_and_sets_the_alias(model_db: str, tmp_path: Path) -> None:
    checks.assert_registers_once(PATTERN, NAMES, model_db, tmp_path)


def test_unreachable_registry_fails_after_writing_the_models(tmp_path: Path) -> None:
    checks.assert_unreachable_registry_fails(PATTERN, NAMES, "tabular_classification", tmp_path)
