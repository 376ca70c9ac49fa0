"""What the horizontal_microservice_pattern tests share: the pattern, its three model
directories, the oracles and the few checks every module makes.

Oracles come from onnxruntime run here on the same model directories the services load, and
from scikit-learn's copy of the iris data; never from the pattern's own code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_iris

from tests.support.pattern import REPO_ROOT

PATTERN = "chapter4_serving_patterns/horizontal_microservice_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
SPECIES = ("setosa", "versicolor", "virginica")
SAMPLE = [[5.1, 3.5, 1.4, 0.2]]
Json = dict[str, Any]


def model_dir(species: str) -> Path:
    directory = PATTERN_DIR / "models" / f"iris_binary_{species}"
    if not (directory / "model.onnx").is_file():
        pytest.fail(f"{directory} is missing: run `make models` in {PATTERN}")
    return directory


def metadata(species: str) -> Json:
    loaded: Json = json.loads((model_dir(species) / "metadata.json").read_text())
    return loaded


def labels(species: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((model_dir(species) / "label.json").read_text())
    return loaded


def iris_rows() -> list[list[float]]:
    """The 150 iris rows, as JSON numbers."""
    features: NDArray[np.float64] = load_iris().data
    return [[float(value) for value in row] for row in features]


def onnx_outputs(species: str, rows: list[list[float]]) -> dict[str, NDArray[Any]]:
    """Every output of the species' model.onnx, run directly with onnxruntime."""
    session = onnxruntime.InferenceSession(
        str(model_dir(species) / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    values = session.run(names, {"input": np.asarray(rows, dtype=np.float32)})
    return dict(zip(names, values, strict=True))


def onnx_probabilities(species: str, rows: list[list[float]]) -> NDArray[np.float32]:
    probabilities: NDArray[np.float32] = onnx_outputs(species, rows)["probabilities"]
    return probabilities


def metric_value(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus exposition (0 when absent: a counter not yet incremented)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        selector, _, value = line.rpartition(" ")
        found = dict(
            pair.split("=", 1) for pair in selector[len(name) + 1 : -1].split(",") if "=" in pair
        )
        if all(found.get(key) == f'"{expected}"' for key, expected in labels.items()):
            return float(value)
    return 0.0
