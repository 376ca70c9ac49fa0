"""SPEC 2.1 acceptance 2: the process never serves without its model. Started on an empty
MODEL_DIR, or on a copy whose model.onnx was tampered with, it exits non-zero at start with one
JSON log line naming the path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.chapter3_release_patterns.model_in_image_pattern.conftest import running_service
from tests.support.tabular import Oracle


def refusal(model_dir: Path) -> dict[str, Any]:
    """Start the service on `model_dir`, expect the process to exit at once; its log line."""
    with pytest.raises(RuntimeError) as raised, running_service({"MODEL_DIR": str(model_dir)}):
        pass
    # the launcher gives up as soon as the process exits, with the exit status and the log
    reason = str(raised.value)
    assert "api exited with 1" in reason, reason
    errors: list[dict[str, Any]] = [
        json.loads(line)
        for line in reason.splitlines()
        if line.startswith("{") and json.loads(line)["level"] == "ERROR"
    ]
    assert len(errors) == 1, reason
    assert errors[0]["model_dir"] == str(model_dir)
    assert str(model_dir) in errors[0]["message"]
    return errors[0]


def test_an_empty_model_dir_stops_the_service(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "missing model.onnx" in refusal(tmp_path / "empty")["message"]


def test_a_tampered_model_stops_the_service(oracle: Oracle, tmp_path: Path) -> None:
    directory = tmp_path / "iris_svc"
    shutil.copytree(oracle.directory, directory)
    with (directory / "model.onnx").open("ab") as model:
        model.write(b"\x00")
    line = refusal(directory)
    assert oracle.metadata["sha256"] in line["message"]
