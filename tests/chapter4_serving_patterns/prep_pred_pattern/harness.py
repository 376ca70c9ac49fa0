"""What the prep_pred_pattern tests share: where the pattern, its model and its data are, and
the few checks every module makes.

Oracles come from tests/support/image_checks.py: onnxruntime in the test process on the same
model.onnx, fed by the canonical preprocessing (chapter2_training/cifar10/src/image_input.py,
loaded by file path), never from the pattern's own code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.support.pattern import REPO_ROOT

PATTERN = "chapter4_serving_patterns/prep_pred_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
MODEL_DIR = PATTERN_DIR / "models" / "digits_resnet"
DATA_DIR = PATTERN_DIR / "data"
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # the settings default, which the tests do not change
Json = dict[str, Any]


def require_models() -> Path:
    """digits_resnet and the held-out images, or a failure that says how to get them."""
    needed = [MODEL_DIR / "model.onnx", DATA_DIR / "sample.png", DATA_DIR / "test_png"]
    missing = [path for path in needed if not path.exists()]
    if missing:
        pytest.fail(f"{missing[0]} is missing: run `make models` in {PATTERN}")
    return MODEL_DIR


def metadata_of(model_dir: Path) -> Json:
    loaded: Json = json.loads((model_dir / "metadata.json").read_text())
    return loaded


def tabular_model_directory(directory: Path) -> Path:
    """input FP32 [N,4] → label INT64 [N] (argmax), probabilities FP32 [N,3] (softmax)."""
    generator = np.random.default_rng(7)
    weights = generator.normal(size=(3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["input", "w"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tabular",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
        ],
        [helper.make_tensor("w", TensorProto.FLOAT, [3, 4], weights.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(data)
    labels = {"0": "setosa", "1": "versicolor", "2": "virginica"}
    (directory / "label.json").write_text(json.dumps(labels))
    digest = hashlib.sha256(data).hexdigest()
    metadata = {
        "name": "tabular_test",
        "version": digest[:12],
        "sha256": digest,
        "task": "tabular_classification",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
        "labels": labels,
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory
