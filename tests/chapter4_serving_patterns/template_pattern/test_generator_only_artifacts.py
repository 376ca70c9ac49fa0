"""tests/support/artifacts.py accepts a generator-only pattern (no process, no job, no
Dockerfile: nothing to compose or deploy) without a compose file or manifests, and demands them
again as soon as the pattern has an image or a process (negative tests)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chapter4_serving_patterns.template_pattern.conftest import TEMPLATE_DIR
from tests.support import artifacts
from tests.support.artifacts import Problems

DEPLOYMENT_CHECKS: dict[str, Callable[[Path], Problems]] = {
    "compose schema": artifacts.check_compose_schema,
    "compose processes": artifacts.check_compose_processes,
    "compose references": artifacts.check_compose_references,
    "manifest schemas": artifacts.check_manifest_schemas,
    "manifest processes": artifacts.check_manifest_processes,
    "pod hardening": artifacts.check_pod_hardening,
}
checks = pytest.mark.parametrize("check", DEPLOYMENT_CHECKS.values(), ids=DEPLOYMENT_CHECKS.keys())


@pytest.fixture
def generator_only(tmp_path: Path) -> Path:
    directory = tmp_path / "generator_only"
    directory.mkdir()
    shutil.copy(TEMPLATE_DIR / "pattern.toml", directory / "pattern.toml")
    return directory


@checks
def test_a_generator_only_pattern_needs_no_compose_or_manifests(
    generator_only: Path, check: Callable[[Path], Problems]
) -> None:
    assert check(generator_only) == []
    assert check(TEMPLATE_DIR) == []


@checks
def test_a_dockerfile_makes_compose_and_manifests_required_again(
    generator_only: Path, check: Callable[[Path], Problems]
) -> None:
    (generator_only / "Dockerfile").write_text('FROM python:3.11.14-slim-bookworm\nCMD ["true"]\n')
    assert any("missing" in problem for problem in check(generator_only))


@checks
def test_a_process_makes_compose_and_manifests_required_again(
    generator_only: Path, check: Callable[[Path], Problems]
) -> None:
    (generator_only / "Procfile").write_text("api: python -m http.server\n")
    assert check(generator_only), "a pattern with a process and no deployment files passed"
