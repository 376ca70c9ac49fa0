"""SPEC 3.10 acceptance 1-2: a generated pattern passes its own tests, ruff and mypy, and the
static checks every pattern of the repository passes (tests/support/artifacts.py)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.chapter4_serving_patterns.template_pattern.conftest import (
    TEMPLATE_DIR,
    clean_env,
    rendered_files,
)
from tests.support import artifacts
from tests.support.artifacts import Problems, ToolMissing
from tests.support.pattern import REPO_ROOT

CONFIG = str(REPO_ROOT / "pyproject.toml")
BIN = Path(sys.executable).parent


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, check=False
    )


def test_the_generated_pattern_passes_its_own_tests(generated: Path) -> None:
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"], generated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    assert "failed" not in result.stdout and "skipped" not in result.stdout


def test_ruff_passes_on_the_generated_code(generated: Path) -> None:
    lint = run([str(BIN / "ruff"), "check", "--config", CONFIG, "--no-cache", "."], generated)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    form = run([str(BIN / "ruff"), "format", "--config", CONFIG, "--check", "."], generated)
    assert form.returncode == 0, form.stdout + form.stderr


def test_mypy_strict_passes_on_the_generated_code(generated: Path) -> None:
    # the template pattern's own cache: the generated code is mostly the same modules each run
    cache = TEMPLATE_DIR / ".mypy_cache"
    command = [sys.executable, "-m", "mypy", "--config-file", CONFIG, "--cache-dir", str(cache)]
    result = run([*command, "src", "tests"], generated)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_name_override_is_used_everywhere(generated: Path) -> None:
    pattern = tomllib.loads((generated / "pattern.toml").read_text())
    assert pattern["pattern"]["name"] == "iris_generated_check"
    compose = yaml.safe_load((generated / "docker-compose.yml").read_text())
    assert compose["name"] == "iris_generated_check"
    image = compose["services"]["api"]["image"]
    assert image == "ml-system-in-actions/iris_generated_check-api:0.1.0"
    namespace = yaml.safe_load((generated / "manifests" / "namespace.yml").read_text())
    assert namespace["metadata"]["name"] == "iris-generated-check"  # kebab form of the name
    for name, content in rendered_files(generated).items():
        assert b"iris_template_sample" not in content, name


CHECKS: dict[str, Callable[[Path], Problems]] = {
    "compose schema": artifacts.check_compose_schema,
    "manifest schemas": artifacts.check_manifest_schemas,
    "dockerfile lint": lambda directory: artifacts.check_dockerfile(directory, "Dockerfile"),
    "dockerfile commands": artifacts.check_dockerfile_commands,
    "copy sources": artifacts.check_copy_sources,
    "pattern.toml": artifacts.check_pattern_toml,
    "compose processes": artifacts.check_compose_processes,
    "compose references": artifacts.check_compose_references,
    "image tags": artifacts.check_image_tags,
    "manifest processes": artifacts.check_manifest_processes,
    "manifest services": artifacts.check_manifest_services,
    "manifest references": artifacts.check_manifest_references,
    "pod hardening": artifacts.check_pod_hardening,
    "common modules": lambda directory: artifacts.check_common(
        directory, artifacts.canonical_common()
    ),
    "requirements": lambda directory: artifacts.check_requirements(directory, "serving.txt"),
}


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_the_generated_artifacts_pass_the_repository_checks(
    generated: Path, check: Callable[[Path], Problems]
) -> None:
    try:
        problems = check(generated)
    except ToolMissing as missing:
        pytest.skip(str(missing))
    assert not problems, "\n".join(problems)


def test_the_canonical_common_modules_are_the_skeletons() -> None:
    assert artifacts.canonical_common() == TEMPLATE_DIR / "skeleton" / "src" / "common"
