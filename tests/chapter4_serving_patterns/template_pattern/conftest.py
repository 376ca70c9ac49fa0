"""The generator run as its users run it: `python -m builder ...` in a subprocess, from the
template pattern's directory (SPEC 3.10)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.pattern import REPO_ROOT

TEMPLATE_DIR = REPO_ROOT / "chapter4_serving_patterns" / "template_pattern"
VARS_FILE = TEMPLATE_DIR / "vars.yaml"
USAGE_ERROR = 2

Generate = Callable[..., subprocess.CompletedProcess[str]]


NOT_RENDERED = {"models", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def rendered_files(directory: Path) -> dict[str, bytes]:
    """Relative path → content of what the builder wrote (not models/ or tool caches)."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not NOT_RENDERED & set(path.relative_to(directory).parts)
    }


def sample_variables() -> dict[str, Any]:
    variables: dict[str, Any] = yaml.safe_load(VARS_FILE.read_text())
    return variables


def clean_env() -> dict[str, str]:
    """The environment without the test runner's PYTHONPATH: the builder and the generated
    pattern find their own code from their working directory."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def run_builder(
    variable_file: Path, output_dir: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "builder",
        "--variable-file", str(variable_file), "--output-dir", str(output_dir), *extra,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=TEMPLATE_DIR, env=clean_env(), capture_output=True, text=True, check=False
    )


@pytest.fixture
def generate(tmp_path: Path) -> Generate:
    """generate(variables, output_dir=None, *extra args) → the finished CLI process."""

    def run(
        variables: dict[str, Any], output_dir: Path | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        variable_file = tmp_path / "vars.yaml"
        variable_file.write_text(yaml.safe_dump(variables))
        return run_builder(variable_file, output_dir or tmp_path / "out", *extra)

    return run


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """vars.yaml generated under another --name into a temporary directory, with the model
    its `make models` copies in."""
    output = tmp_path_factory.mktemp("generated") / "iris_generated"
    result = run_builder(VARS_FILE, output, "--name", "iris_generated_check")
    assert result.returncode == 0, result.stderr
    models = subprocess.run(
        ["make", "--no-print-directory", "models"],
        cwd=output, env=clean_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert models.returncode == 0, models.stdout + models.stderr
    yield output
