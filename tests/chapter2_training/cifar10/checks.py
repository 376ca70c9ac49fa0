"""Oracles shared by the cifar10 tests, written from SPEC 0.2, 0.4 and 1.2, not from the
trainer's code: held-out digits rendered here from scikit-learn's data as SPEC 1.2 describes
them, model directories read with onnx / hashlib, predictions from onnxruntime on the reference
preprocessing (`src.image_input`, the one preprocessing path of the repository)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from numpy.typing import NDArray
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from src.image_input import Preprocessing, preprocess
from tests.support.pattern import REPO_ROOT

PATTERN_DIR = REPO_ROOT / "chapter2_training" / "cifar10"
MODELS_DIR = PATTERN_DIR / "models"
RUNS_DIR = PATTERN_DIR / "runs"
ARTIFACTS = ("model.onnx", "label.json", "metadata.json")
DIGIT_LABELS = {str(digit): str(digit) for digit in range(10)}
V2_DATATYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "FP32"}


def held_out_digits(domain: str, size: int, seed: int = 42) -> list[tuple[Image.Image, int]]:
    """The test split of SPEC 1.2 (stratified, seeded, 25 %) rendered as SPEC 1.2 says:
    v ∈ [0, 16] → 255·(1 - v/16) on paper or 255·v/16 on a blackboard, bilinear upscale."""
    digits = load_digits()
    _, images, _, labels = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    rendered = []
    for intensities, label in zip(images, labels, strict=True):
        ink = np.asarray(intensities, dtype=np.float64) / 16.0
        gray = 255.0 * (1.0 - ink) if domain == "paper" else 255.0 * ink
        small = Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8))
        image = small.resize((size, size), Image.Resampling.BILINEAR).convert("RGB")
        rendered.append((image, int(label)))
    return rendered


def encode(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def session(model_dir: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(
        str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )


def probabilities(model_dir: Path, files: list[bytes]) -> NDArray[np.float32]:
    """onnxruntime on the reference preprocessing of each image file, one batch."""
    prep = Preprocessing.from_metadata(read_json(model_dir / "metadata.json")["preprocessing"])
    batch = np.stack([preprocess(data, prep) for data in files])
    result: NDArray[np.float32] = session(model_dir).run(["probabilities"], {"input": batch})[0]
    return result


def accuracy(
    model_dir: Path, images: list[tuple[Image.Image, int]], image_format: str = "PNG"
) -> float:
    predicted = probabilities(model_dir, [encode(image, image_format) for image, _ in images])
    labels = np.asarray([label for _, label in images])
    return float((predicted.argmax(axis=1) == labels).mean())


def tensor_spec(value: onnx.ValueInfoProto) -> dict[str, Any]:
    tensor = value.type.tensor_type
    return {
        "name": value.name,
        "datatype": V2_DATATYPES[tensor.elem_type],
        "shape": [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim],
    }


def assert_model_directory(directory: Path, class_count: int = 10) -> dict[str, Any]:
    """SPEC 0.2: the three files, and metadata that describes the graph next to it."""
    assert sorted(path.name for path in directory.iterdir()) == sorted(ARTIFACTS)
    metadata: dict[str, Any] = read_json(directory / "metadata.json")
    digest = sha256(directory / "model.onnx")
    graph = onnx.load(directory / "model.onnx")
    onnx.checker.check_model(graph)
    assert metadata["name"] == directory.name
    assert metadata["sha256"] == digest
    assert metadata["version"] == digest[:12]
    assert metadata["labels"] == read_json(directory / "label.json")
    assert len(metadata["labels"]) == class_count
    assert metadata["task"] == "image_classification"
    opsets = {entry.domain: entry.version for entry in graph.opset_import}
    assert metadata["opset"] == opsets[""] >= 17
    assert metadata["framework"] == "pytorch"
    assert metadata["inputs"] == [tensor_spec(value) for value in graph.graph.input]
    assert metadata["outputs"] == [tensor_spec(value) for value in graph.graph.output]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, class_count]}
    ]
    prep = Preprocessing.from_metadata(metadata["preprocessing"])  # complete and valid
    assert prep.resize.mode == "direct" and prep.resize.size == (32, 32)
    assert prep.to_metadata() == metadata["preprocessing"]
    training = metadata["training"]
    assert training["seed"] == 42
    assert {"dataset", "split", "parameters", "command", "run_id"} <= set(training)
    metrics = metadata["metrics"]
    assert {"total_tested", "accuracy", "per_class_accuracy", "confusion_matrix"} <= set(metrics)
    assert {"total_time", "average_duration_second"} <= set(metrics)
    assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["total_tested"]
    return metadata


def catalogue_model(name: str) -> Path:
    """A model directory written by `make models` (tests never train it)."""
    directory = MODELS_DIR / name
    if not (directory / "model.onnx").is_file():
        pytest.fail(f"{directory} is missing: run make models in chapter2_training/cifar10")
    return directory


def run_cli(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> args` in the pattern directory, as Procfile.jobs runs it; never
    registers unless `env` sets MODEL_DB_URL."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_DB_")}
    environment.update({"PYTHONPATH": str(PATTERN_DIR), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PATTERN_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
