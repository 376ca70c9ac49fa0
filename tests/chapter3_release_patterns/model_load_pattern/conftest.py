"""A real model DB (chapter 2, SQLite in a temp directory) holding the two published versions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.chapter3_release_patterns.model_load_pattern.harness import job, v1, v2
from tests.support.launcher import launch


@dataclass(frozen=True)
class Registry:
    url: str
    artifact_root: Path


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Version 1 (alias production) and version 2 (alias staging) of iris/iris_svc, registered
    by the pattern's `publish` and `publish_retrained` jobs (chapter 2's register code)."""
    v1(), v2()  # fail early with "run make models"
    tmp = tmp_path_factory.mktemp("registry")
    env = {"DATABASE_URL": f"sqlite:///{tmp}/registry.sqlite3", "ARTIFACT_ROOT": str(tmp / "a")}
    with launch("chapter2_training/model_db", env=env) as running:
        registry_env = {"MODEL_DB_URL": running.url()}
        job("publish", registry_env)
        job("publish_retrained", registry_env)
        yield Registry(running.url(), tmp / "a")
