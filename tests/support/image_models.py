"""Small random-weight ONNX image classifiers as model directories, built by tests (I-oracle 3).

An image service must serve any image classifier of SPEC 0.2 without code change. The tests
prove it with a model unlike digits_resnet: another input size, class count, resize mode and
normalisation, and random weights (nothing to download, nothing to train). The graph is
Conv → Relu → GlobalAveragePool → Flatten → Gemm → Softmax with a dynamic batch axis.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
CHANNELS = 4


def random_image_classifier(
    size: tuple[int, int] = (48, 48), class_count: int = 3, seed: int = 0
) -> onnx.ModelProto:
    """input FP32 [N,3,H,W] → probabilities FP32 [N,class_count] (softmax in the graph)."""
    generator = np.random.default_rng(seed)
    height, width = size
    weights = {
        "conv_w": generator.normal(0, 0.5, (CHANNELS, 3, 3, 3)).astype(np.float32),
        "conv_b": generator.normal(0, 0.1, (CHANNELS,)).astype(np.float32),
        "fc_w": generator.normal(0, 1.0, (class_count, CHANNELS)).astype(np.float32),
        "fc_b": generator.normal(0, 0.1, (class_count,)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "random_image_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", class_count])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime of the last years
    onnx.checker.check_model(model)
    return model


def write_image_model_directory(
    directory: Path,
    *,
    name: str = "random_shapes",
    size: tuple[int, int] = (48, 48),
    class_count: int = 3,
    shorter_side: int = 56,
    mean: tuple[float, float, float] = (0.2, 0.4, 0.6),
    std: tuple[float, float, float] = (0.3, 0.2, 0.1),
    seed: int = 0,
) -> Path:
    """A complete model directory (model.onnx, label.json, metadata.json) under `directory`
    with `shorter_side_then_center_crop` preprocessing; returns its path."""
    model_dir = directory / name
    model_dir.mkdir(parents=True, exist_ok=True)
    model_bytes = random_image_classifier(size, class_count, seed).SerializeToString()
    (model_dir / "model.onnx").write_bytes(model_bytes)
    labels = {str(index): f"shape_{index}" for index in range(class_count)}
    (model_dir / "label.json").write_text(json.dumps(labels, indent=2))
    digest = hashlib.sha256(model_bytes).hexdigest()
    metadata: dict[str, Any] = {
        "name": name,
        "version": digest[:12],
        "sha256": digest,
        "framework": "onnx",
        "opset": OPSET,
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, *size]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, class_count]}],
        "labels": labels,
        "task": "image_classification",
        "preprocessing": {
            "color_mode": "RGB",
            "background": [255, 255, 255],
            "resize": {
                "mode": "shorter_side_then_center_crop",
                "size": list(size),
                "shorter_side": shorter_side,
                "interpolation": "bilinear",
            },
            "scale": 1 / 255,
            "mean": list(mean),
            "std": list(std),
            "layout": "NCHW",
            "dtype": "float32",
        },
        "training": {"data_set": "none (random weights, built by a test)", "seed": seed},
        "metrics": {},
    }
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return model_dir
