"""The loaded graph: one onnxruntime session per worker, FP32 tensors in, named tensors out.

Nothing here knows about images: `pred` serves any model directory whose inputs are FP32
(digits_resnet, the random 48x48 classifier the tests build, iris_svc alike). The graph must
agree with metadata.json (input names, output names and datatypes), and a self-test on zeros of
every input's shape (dynamic axes as 1) must give outputs of the declared shapes; otherwise the
directory is refused before anything is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from numpy.typing import NDArray

from src.ml.model_dir import ModelCard, ModelDirectoryError, TensorSpec, read_model_directory

# ONNX tensor types → V2 datatypes; anything else (a ZipMap sequence of maps) is refused.
V2_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(bool)": "BOOL",
}
INPUT_DATATYPE = "FP32"
Tensor = NDArray[Any]


def fits(shape: Sequence[int], spec: Sequence[int]) -> bool:
    """A concrete shape matches a declared one, -1 standing for any size."""
    return len(shape) == len(spec) and all(
        want in (-1, side) for side, want in zip(shape, spec, strict=True)
    )


class Model:
    """A verified model directory with its session (created once; `run` is thread-safe)."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        try:
            self.session = _session(card.model_path)
        except Exception as error:  # onnxruntime's own exception types: any means unusable
            raise ModelDirectoryError(
                card.directory, f"model.onnx does not load: {error}"
            ) from error
        self._check_graph()
        self._self_test()

    @classmethod
    def load(cls, directory: Path) -> Model:
        return cls(read_model_directory(directory))

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.card.outputs]

    def run(self, inputs: Mapping[str, Tensor], outputs: Sequence[str]) -> dict[str, Tensor]:
        """inputs: float32 arrays of the declared shapes, checked by the caller."""
        values = self.session.run(list(outputs), dict(inputs))
        return dict(zip(outputs, values, strict=True))

    def _check_graph(self) -> None:
        card, problems = self.card, []
        graph_inputs = {item.name: item.type for item in self.session.get_inputs()}
        graph_outputs = {item.name: item.type for item in self.session.get_outputs()}
        declared = [spec.name for spec in card.inputs]
        if sorted(declared) != sorted(graph_inputs):
            problems.append(f"graph inputs {sorted(graph_inputs)} != metadata {sorted(declared)}")
        for spec in card.inputs:
            if spec.datatype != INPUT_DATATYPE:
                problems.append(f"input {spec.name!r} is {spec.datatype}: pred takes FP32 only")
            elif graph_inputs.get(spec.name, "tensor(float)") != "tensor(float)":
                problems.append(f"graph input {spec.name!r} is {graph_inputs[spec.name]}")
        for spec in card.outputs:
            actual = V2_DATATYPES.get(
                graph_outputs.get(spec.name, ""), graph_outputs.get(spec.name)
            )
            if actual != spec.datatype:
                problems.append(
                    f"output {spec.name!r} is {actual} in the graph, {spec.datatype} in metadata"
                )
        if problems:
            raise ModelDirectoryError(card.directory, "model.onnx: " + "; ".join(problems))

    def _self_test(self) -> None:
        """Zeros of every input's shape (dynamic axes as 1) give outputs of the declared shapes."""
        zeros = {
            spec.name: np.zeros([1 if side == -1 else side for side in spec.shape], np.float32)
            for spec in self.card.inputs
        }
        try:
            results = self.run(zeros, self.output_names)
        except Exception as error:  # e.g. a shape the graph does not take
            message = f"model.onnx fails on zeros of the declared input shapes: {error!r}"
            raise ModelDirectoryError(self.card.directory, message) from error
        wrong = [
            f"{spec.name} {list(results[spec.name].shape)} is not {list(spec.shape)}"
            for spec in self.card.outputs
            if not fits(results[spec.name].shape, spec.shape)
        ]
        if wrong:
            raise ModelDirectoryError(
                self.card.directory, "model.onnx outputs: " + "; ".join(wrong)
            )


def input_spec(card: ModelCard, name: str) -> TensorSpec | None:
    return next((spec for spec in card.inputs if spec.name == name), None)


def _session(path: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    # One thread per session: one worker per process by default and two processes on two
    # cores; k8s scales pred by replicas, not by threads that would contend for the same cores.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
