"""What `pred` accepts as MODEL_DIR (SPEC 0.2 rule 2): an empty directory, a tampered
model.onnx, a tabular model or a model without a dynamic batch axis stops the process at start,
status 1, with one JSON log line naming the path."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import onnx
import pytest

from tests.chapter4_serving_patterns.synchronous_pattern.harness import running_pred
from tests.support.image_checks import ImageOracle
from tests.support.image_models import write_image_model_directory


def refusal(model_dir: Path) -> dict[str, Any]:
    """Start pred on `model_dir`, expect the process to exit at once; its one error line."""
    with pytest.raises(RuntimeError) as raised, running_pred({"MODEL_DIR": str(model_dir)}):
        pass
    reason = str(raised.value)  # the launcher gives up when the process exits, with its log
    assert "pred exited with 1" in reason, reason
    errors: list[dict[str, Any]] = [
        line
        for line in (json.loads(text) for text in reason.splitlines() if text.startswith("{"))
        if line["level"] == "ERROR"
    ]
    assert len(errors) == 1, reason
    assert errors[0]["model_dir"] == str(model_dir)
    assert str(model_dir) in errors[0]["message"]
    return errors[0]


def test_an_empty_model_dir_stops_pred(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "missing model.onnx" in refusal(tmp_path / "empty")["message"]


def test_a_tampered_model_stops_pred(oracle: ImageOracle, tmp_path: Path) -> None:
    directory = tmp_path / "digits_resnet"
    shutil.copytree(oracle.model_dir, directory)
    with (directory / "model.onnx").open("ab") as model:
        model.write(b"\x00")
    assert oracle.metadata["sha256"] in refusal(directory)["message"]


def test_a_tabular_model_stops_pred(oracle: ImageOracle, tmp_path: Path) -> None:
    directory = write_image_model_directory(tmp_path)
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["task"] = "tabular_classification"
    (directory / "metadata.json").write_text(json.dumps(metadata))
    assert "task 'tabular_classification'" in refusal(directory)["message"]


def test_a_fixed_batch_axis_stops_pred(tmp_path: Path) -> None:
    """Micro-batching stacks requests on the batch axis: a graph fixed to one image fails the
    self-test on two, at start rather than on the first batch."""
    directory = write_image_model_directory(tmp_path)
    model = onnx.load(directory / "model.onnx")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    (directory / "model.onnx").write_bytes(model.SerializeToString())
    metadata = json.loads((directory / "metadata.json").read_text())
    digest = hashlib.sha256((directory / "model.onnx").read_bytes()).hexdigest()
    metadata.update(sha256=digest, version=digest[:12])
    (directory / "metadata.json").write_text(json.dumps(metadata))
    assert "self-test failed" in refusal(directory)["message"]
