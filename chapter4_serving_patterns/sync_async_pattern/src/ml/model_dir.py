"""A model directory of SPEC 0.2, read and checked: nothing is served from one that fails here.

    <MODEL_DIR>/model.onnx  label.json  metadata.json

`read_card` reads what `prep` holds (metadata.json and label.json, no graph); `read_model_directory`
also verifies model.onnx against metadata.sha256, for `pred`. Standard library only, so that a
gunicorn master can refuse a bad directory before it forks any worker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CARD_FILES = ("label.json", "metadata.json")
MODEL_FILE = "model.onnx"
DATATYPES = frozenset({"FP32", "FP64", "INT64", "INT32", "BOOL"})


class Unservable(Exception):
    """A file a process needs before it serves anything is missing or wrong (the message names
    the path and the reason): the process refuses to start."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class ModelDirectoryError(Unservable):
    def __init__(self, directory: Path, reason: str) -> None:
        super().__init__(directory, f"model directory {directory}: {reason}")
        self.directory = directory
        self.reason = reason


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as metadata.json and V2 name it; -1 marks a dynamic axis."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelCard:
    """What a process needs to know about a checked model directory."""

    directory: Path
    name: str
    version: str  # the first 12 hex digits of sha256
    sha256: str
    task: str
    labels: dict[str, str]  # class index (as text) → label, in class order
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metadata: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_FILE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_card(directory: Path) -> ModelCard:
    """metadata.json and label.json, parsed and consistent with each other (no graph needed)."""
    if not directory.is_dir():
        raise ModelDirectoryError(directory, "does not exist (run `make models`)")
    missing = [name for name in CARD_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelDirectoryError(directory, f"missing {', '.join(missing)} (run `make models`)")
    return _card(
        directory, _read_json(directory, "metadata.json"), _read_json(directory, "label.json")
    )


def read_model_directory(directory: Path) -> ModelCard:
    """The card, once model.onnx exists and has the sha256 metadata.json names."""
    card = read_card(directory)
    if not card.model_path.is_file():
        raise ModelDirectoryError(directory, f"missing {MODEL_FILE} (run `make models`)")
    digest = sha256_of(card.model_path)
    if digest != card.sha256:
        raise ModelDirectoryError(
            directory, f"{MODEL_FILE} has sha256 {digest}, metadata.json says {card.sha256}"
        )
    return card


def _read_json(directory: Path, name: str) -> dict[str, Any]:
    try:
        value = json.loads((directory / name).read_text())
    except (OSError, ValueError) as error:
        raise ModelDirectoryError(directory, f"{name} is unreadable: {error}") from error
    if not isinstance(value, dict):
        raise ModelDirectoryError(directory, f"{name} is not a JSON object")
    return value


def _card(directory: Path, metadata: dict[str, Any], labels: dict[str, Any]) -> ModelCard:
    def refuse(reason: str) -> ModelDirectoryError:
        return ModelDirectoryError(directory, f"metadata.json: {reason}")

    digest = metadata.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        raise refuse(f"sha256 {digest!r} is not 64 hex digits")
    if metadata.get("version") != digest[:12]:
        raise refuse(f"version {metadata.get('version')!r} is not the sha256 prefix {digest[:12]}")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise refuse("name is missing")
    if metadata.get("labels") != labels:
        raise refuse("labels must equal label.json")
    try:
        inputs = tuple(_tensor(item) for item in metadata.get("inputs") or [])
        outputs = tuple(_tensor(item) for item in metadata.get("outputs") or [])
    except (KeyError, TypeError, ValueError) as error:
        raise refuse(f"inputs/outputs: {error}") from error
    if not inputs or not outputs:
        raise refuse("needs at least one input and one output")
    return ModelCard(
        directory=directory,
        name=name,
        version=digest[:12],
        sha256=digest,
        task=str(metadata.get("task")),
        labels={str(key): str(value) for key, value in labels.items()},
        inputs=inputs,
        outputs=outputs,
        metadata=metadata,
    )


def _tensor(item: Any) -> TensorSpec:
    datatype = str(item["datatype"])
    if datatype not in DATATYPES:
        raise ValueError(
            f"datatype {datatype!r} of {item['name']!r} is not one of {sorted(DATATYPES)}"
        )
    shape = tuple(int(side) for side in item["shape"])
    if not shape or any(side < -1 or side == 0 for side in shape):
        raise ValueError(f"shape {list(shape)} of {item['name']!r}: sides > 0, or -1 (dynamic)")
    return TensorSpec(name=str(item["name"]), datatype=datatype, shape=shape)
