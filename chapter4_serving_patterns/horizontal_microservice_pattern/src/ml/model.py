"""A tabular classifier's model directory (SPEC 0.2), loaded and run with onnxruntime.

    models/<name>/model.onnx  label.json  metadata.json

`load_model` refuses a model.onnx whose sha256 is not `metadata.sha256` (the bytes hashed are
the bytes loaded). The probability output is either a plain [N, classes] tensor, or the
sequence of maps that skl2onnx writes by default (ZipMap), turned into the same tensor, so any
tabular classifier directory is served without code change. No FastAPI here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from numpy.typing import NDArray

TABULAR_TASKS = ("tabular_classification",)
# onnxruntime output type → V2 datatype (SPEC 0.5); a ZipMap output becomes FP32 probabilities.
V2_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(string)": "BYTES",  # string class labels of a ZipMap classifier
}
ZIPMAP_TYPE_PREFIX = "seq(map("

Matrix = NDArray[np.float32]


class ModelError(Exception):
    """The model directory cannot be served; the message names the file and the reason."""


@dataclass(frozen=True)
class OutputSpec:
    name: str
    datatype: str  # V2 datatype of what infer() returns for it
    zipmap: bool = False


@dataclass(frozen=True)
class TabularModel:
    directory: Path
    metadata: dict[str, Any]
    labels: dict[str, str]
    session: onnxruntime.InferenceSession = field(repr=False)
    input_name: str
    feature_count: int
    outputs: tuple[OutputSpec, ...]
    probabilities: OutputSpec

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def data_sample(self) -> list[list[float]]:
        return [[float(value) for value in row] for row in self.metadata["data_sample"]]

    def predict_proba(self, features: Matrix) -> Matrix:
        """[N, classes] probabilities for [N, features] float32 rows."""
        (raw,) = self.session.run([self.probabilities.name], {self.input_name: features})
        return as_probabilities(raw, self.probabilities.zipmap)

    def infer(self, features: Matrix) -> dict[str, NDArray[Any]]:
        """Every output of the graph by name, as tensors (V2 infer)."""
        names = [spec.name for spec in self.outputs]
        values = self.session.run(names, {self.input_name: features})
        return {
            spec.name: as_probabilities(value, True) if spec.zipmap else np.asarray(value)
            for spec, value in zip(self.outputs, values, strict=True)
        }

    def label_of(self, probabilities: Matrix) -> list[str]:
        """The label of each row's most probable class (label.json)."""
        return [self.labels[str(index)] for index in np.argmax(probabilities, axis=1).tolist()]


def as_probabilities(raw: Any, zipmap: bool) -> Matrix:
    if not zipmap:
        return np.asarray(raw, dtype=np.float32)
    # One {class label: probability} map per row; class labels sort as the classes were indexed.
    if not raw:
        return np.zeros((0, 0), dtype=np.float32)
    classes = sorted(raw[0])
    return np.array([[row[c] for c in classes] for row in raw], dtype=np.float32)


def verify_model_directory(directory: Path) -> tuple[dict[str, Any], bytes]:
    """metadata.json and the bytes of model.onnx, once they are known to belong together."""
    metadata = read_json(directory / "metadata.json")
    if metadata.get("task") not in TABULAR_TASKS:
        raise ModelError(f"{directory}: task {metadata.get('task')!r} is not {TABULAR_TASKS}")
    return metadata, verified_bytes(directory / "model.onnx", str(metadata.get("sha256", "")))


def load_model(directory: Path, threads: int = 1) -> TabularModel:
    metadata, model_bytes = verify_model_directory(directory)
    labels = {str(key): str(value) for key, value in read_json(directory / "label.json").items()}
    session = new_session(model_bytes, threads)
    model_path = directory / "model.onnx"
    input_name, feature_count = single_input(session, model_path)
    sample = metadata.get("data_sample")
    if not (isinstance(sample, list) and sample and all(len(r) == feature_count for r in sample)):
        message = f"data_sample is not rows of {feature_count} values"
        raise ModelError(f"{directory / 'metadata.json'}: {message}")
    outputs, probabilities = described_outputs(session, model_path)
    return TabularModel(
        directory=directory,
        metadata=metadata,
        labels=labels,
        session=session,
        input_name=input_name,
        feature_count=feature_count,
        outputs=outputs,
        probabilities=probabilities,
    )


def single_input(session: onnxruntime.InferenceSession, path: Path) -> tuple[str, int]:
    """The name and row width of the graph's one input ([N, features])."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 2 or not isinstance(inputs[0].shape[1], int):
        found = [(item.name, item.shape) for item in inputs]
        raise ModelError(f"{path}: needs one input [N, features] of fixed width, has {found}")
    return str(inputs[0].name), int(inputs[0].shape[1])


def described_outputs(
    session: onnxruntime.InferenceSession, path: Path
) -> tuple[tuple[OutputSpec, ...], OutputSpec]:
    """Every output as infer() returns it, and the one holding the class probabilities."""
    graph_outputs = session.get_outputs()
    outputs = tuple(output_spec(output.name, output.type) for output in graph_outputs)
    probabilities = [
        spec
        for spec, output in zip(outputs, graph_outputs, strict=True)
        if spec.zipmap or (spec.datatype == "FP32" and len(output.shape) == 2)
    ]
    if len(probabilities) != 1:
        found = [spec.name for spec in probabilities]
        raise ModelError(f"{path}: needs one probability output, has {found}")
    return outputs, probabilities[0]


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: {error} (run `make models`)") from error
    if not isinstance(value, dict):
        raise ModelError(f"{path}: not a JSON object")
    return value


def verified_bytes(path: Path, expected_sha256: str) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: {error} (run `make models`)") from error
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected_sha256.lower():
        raise ModelError(
            f"{path}: sha256 {actual} does not match metadata.json sha256 {expected_sha256!r}"
        )
    return content


def new_session(model_bytes: bytes, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    # Small graphs, several processes on few cores: more threads only add handoffs.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own untyped errors
        raise ModelError(f"model.onnx cannot be loaded: {error}") from error


def output_spec(name: str, onnx_type: str) -> OutputSpec:
    if onnx_type.startswith(ZIPMAP_TYPE_PREFIX):
        return OutputSpec(name, "FP32", zipmap=True)
    if onnx_type not in V2_DATATYPES:
        raise ModelError(f"model.onnx: output {name} of type {onnx_type} is not supported")
    return OutputSpec(name, V2_DATATYPES[onnx_type])
