"""A model directory (SPEC 0.2): model.onnx, label.json, metadata.json, checked before use.

`ModelDirectory.load()` refuses a directory whose model.onnx does not hash to
`metadata.sha256`, or whose metadata lacks what a tabular classifier needs. No onnxruntime here:
the API only needs the feature count and the version; the job adds src.ml.predictor.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FILE, LABEL_FILE, METADATA_FILE = "model.onnx", "label.json", "metadata.json"
TABULAR_TASK = "tabular_classification"


class ModelError(RuntimeError):
    """The model directory cannot be used; the message says why and what to run."""


@dataclass(frozen=True)
class ModelDirectory:
    path: Path
    name: str
    version: str
    sha256: str
    input_name: str
    feature_count: int
    labels: dict[str, str]  # class index (as text) → label
    output_names: tuple[str, ...]

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @classmethod
    def load(cls, path: Path) -> ModelDirectory:
        metadata = _read_json(path / METADATA_FILE)
        labels = _read_json(path / LABEL_FILE)
        _verify_sha256(path / MODEL_FILE, str(metadata.get("sha256", "")))
        if metadata.get("task") != TABULAR_TASK:
            raise ModelError(f"{path}: task {metadata.get('task')!r} is not {TABULAR_TASK}")
        try:
            model_input = metadata["inputs"][0]
            feature_count = int(model_input["shape"][-1])
            outputs = tuple(str(output["name"]) for output in metadata["outputs"])
            return cls(
                path=path,
                name=str(metadata["name"]),
                version=str(metadata["version"]),
                sha256=str(metadata["sha256"]),
                input_name=str(model_input["name"]),
                feature_count=feature_count,
                labels={str(key): str(value) for key, value in labels.items()},
                output_names=outputs,
            )
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ModelError(f"{path / METADATA_FILE}: incomplete metadata ({error!r})") from error


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ModelError(f"{path} is missing: run `make models` in the pattern") from error
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"{path}: cannot read it ({error})") from error
    if not isinstance(value, dict):
        raise ModelError(f"{path}: not a JSON object")
    return value


def _verify_sha256(model_file: Path, expected: str) -> None:
    try:
        actual = hashlib.sha256(model_file.read_bytes()).hexdigest()
    except FileNotFoundError as error:
        raise ModelError(f"{model_file} is missing: run `make models` in the pattern") from error
    if actual != expected:
        raise ModelError(
            f"{model_file}: sha256 {actual} does not match metadata.sha256 {expected or '(none)'}"
            ": refusing to serve a model other than the one described"
        )
