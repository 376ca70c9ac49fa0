"""A model directory of SPEC 0.2, read and verified: nothing is served from a directory that
fails here.

    <MODEL_DIR>/model.onnx  label.json  metadata.json

Standard library only, so that the gunicorn master can refuse a bad directory before it forks
any worker (gunicorn.conf.py) and the worker's lifespan can check it again before loading it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILES = ("model.onnx", "label.json", "metadata.json")
TABULAR_TASK = "tabular_classification"
LABEL_DATATYPE = "INT64"
FEATURE_DATATYPE = "FP32"


class ModelDirectoryError(Exception):
    """The directory cannot be served; the message names the path and the reason."""

    def __init__(self, directory: Path, reason: str) -> None:
        super().__init__(f"model directory {directory}: {reason}")
        self.directory = directory
        self.reason = reason


@dataclass(frozen=True)
class ModelCard:
    """What the service needs to know about a verified model directory."""

    directory: Path
    name: str
    version: str
    sha256: str
    labels: dict[str, str]  # class index (as text) → label, in class order
    input_name: str
    feature_count: int
    label_output: str  # the INT64 label output of the graph
    probability_output: str  # probabilities: a FP32 tensor, or a ZipMap sequence of maps
    data_sample: list[list[float]]
    metadata: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.directory / "model.onnx"

    @property
    def class_count(self) -> int:
        return len(self.labels)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_model_directory(directory: Path) -> ModelCard:
    """The directory's card, once its files exist, parse and match (sha256 included)."""
    if not directory.is_dir():
        raise ModelDirectoryError(directory, "does not exist (run `make models`)")
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise ModelDirectoryError(directory, f"missing {', '.join(missing)} (run `make models`)")
    metadata = _read_json(directory, "metadata.json")
    labels = _read_json(directory, "label.json")
    digest = sha256_of(directory / "model.onnx")
    expected = metadata.get("sha256")
    if digest != expected:
        raise ModelDirectoryError(
            directory, f"model.onnx has sha256 {digest}, metadata.json says {expected}"
        )
    return _card(directory, metadata, labels, digest)


def _read_json(directory: Path, name: str) -> dict[str, Any]:
    try:
        value = json.loads((directory / name).read_text())
    except (OSError, ValueError) as error:
        raise ModelDirectoryError(directory, f"{name} is unreadable: {error}") from error
    if not isinstance(value, dict):
        raise ModelDirectoryError(directory, f"{name} is not a JSON object")
    return value


def _card(
    directory: Path, metadata: dict[str, Any], labels: dict[str, Any], digest: str
) -> ModelCard:
    def refuse(reason: str) -> ModelDirectoryError:
        return ModelDirectoryError(directory, f"metadata.json: {reason}")

    if metadata.get("task") != TABULAR_TASK:
        raise refuse(f"task {metadata.get('task')!r} is not {TABULAR_TASK!r}")
    if metadata.get("version") != digest[:12]:
        raise refuse(f"version {metadata.get('version')!r} is not the sha256 prefix {digest[:12]}")
    class_keys = [str(index) for index in range(len(labels))]
    if metadata.get("labels") != labels or set(labels) != set(class_keys):
        raise refuse("labels must equal label.json, keyed 0 … C-1")
    inputs = metadata.get("inputs") or []
    if len(inputs) != 1 or inputs[0].get("datatype") != FEATURE_DATATYPE:
        raise refuse("expected one FP32 input")
    shape = inputs[0].get("shape") or []
    if len(shape) != 2 or not isinstance(shape[1], int) or shape[1] < 1:
        raise refuse(f"input shape {shape} is not [-1, features]")
    sample = metadata.get("data_sample")
    if not (
        isinstance(sample, list)
        and sample
        and all(isinstance(row, list) and len(row) == shape[1] for row in sample)
    ):
        raise refuse(f"data_sample must be rows of {shape[1]} numbers")
    outputs = {item.get("name"): item.get("datatype") for item in metadata.get("outputs") or []}
    label_outputs = [name for name, datatype in outputs.items() if datatype == LABEL_DATATYPE]
    others = [name for name in outputs if name not in label_outputs]
    if len(label_outputs) != 1 or len(others) != 1:
        raise refuse(f"expected an INT64 label output and a probability output, got {outputs}")
    return ModelCard(
        directory=directory,
        name=str(metadata.get("name")),
        version=digest[:12],
        sha256=digest,
        labels={key: str(labels[key]) for key in class_keys},
        input_name=str(inputs[0]["name"]),
        feature_count=shape[1],
        label_output=str(label_outputs[0]),
        probability_output=str(others[0]),
        data_sample=sample,
        metadata=metadata,
    )
