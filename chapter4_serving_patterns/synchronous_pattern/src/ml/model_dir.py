"""An image model directory of SPEC 0.2, read and verified: nothing is served from a directory
that fails here.

    <MODEL_DIR>/model.onnx  label.json  metadata.json

Any image classifier directory is accepted (SPEC 0.2 rule 3): the input name and shape, the
output name, the class count and the preprocessing all come from metadata.json, so serving
another model (another size, class count, normalisation) needs no code change. No onnxruntime
here, so that the gunicorn master can refuse a bad directory before it forks any worker
(gunicorn.conf.py); the worker's lifespan checks it again and loads the graph (src.ml.model).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.ml.image_input import Preprocessing

FILES = ("model.onnx", "label.json", "metadata.json")
IMAGE_TASK = "image_classification"
TENSOR_DATATYPE = "FP32"


class ModelDirectoryError(Exception):
    """The directory cannot be served; the message names the path and the reason."""

    def __init__(self, directory: Path, reason: str) -> None:
        super().__init__(f"model directory {directory}: {reason}")
        self.directory = directory
        self.reason = reason


@dataclass(frozen=True)
class ModelCard:
    """What the server needs to know about a verified image model directory."""

    directory: Path
    name: str
    version: str
    sha256: str
    labels: dict[str, str]  # class index (as text) → label, in class order
    input_name: str
    image_shape: tuple[int, ...]  # one preprocessed image: (3, H, W) or (H, W, 3)
    output_name: str  # FP32 probabilities [N, C]
    preprocessing: Preprocessing
    metadata: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.directory / "model.onnx"

    @property
    def class_count(self) -> int:
        return len(self.labels)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.values())


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

    if metadata.get("task") != IMAGE_TASK:
        raise refuse(f"task {metadata.get('task')!r} is not {IMAGE_TASK!r}")
    if metadata.get("version") != digest[:12]:
        raise refuse(f"version {metadata.get('version')!r} is not the sha256 prefix {digest[:12]}")
    class_keys = [str(index) for index in range(len(labels))]
    if not labels or metadata.get("labels") != labels or set(labels) != set(class_keys):
        raise refuse("labels must equal label.json, keyed 0 … C-1")
    try:
        preprocessing = Preprocessing.from_metadata(metadata["preprocessing"])
    except (KeyError, TypeError, ValueError) as error:
        raise refuse(f"preprocessing is not usable: {error!r}") from error
    inputs = metadata.get("inputs") or []
    image_shape = list(preprocessing.tensor_shape)
    shape_text = ", ".join(map(str, image_shape))
    if (
        len(inputs) != 1
        or inputs[0].get("datatype") != TENSOR_DATATYPE
        or list(inputs[0].get("shape") or [])[1:] != image_shape
    ):
        raise refuse(f"expected one FP32 input of shape [-1, {shape_text}] (as preprocessing)")
    outputs = metadata.get("outputs") or []
    if (
        len(outputs) != 1
        or outputs[0].get("datatype") != TENSOR_DATATYPE
        or list(outputs[0].get("shape") or [])[1:] != [len(labels)]
    ):
        raise refuse(f"expected one FP32 probability output of shape [-1, {len(labels)}]")
    return ModelCard(
        directory=directory,
        name=str(metadata.get("name")),
        version=digest[:12],
        sha256=digest,
        labels={key: str(labels[key]) for key in class_keys},
        input_name=str(inputs[0]["name"]),
        image_shape=tuple(image_shape),
        output_name=str(outputs[0]["name"]),
        preprocessing=preprocessing,
        metadata=metadata,
    )
