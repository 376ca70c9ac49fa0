"""The loaded classifier: one onnxruntime session per worker, N rows in, N predictions out.

The graph's probability output is either a FP32 tensor [N, C] (our trainers, SPEC 0.2 rule 1)
or, for a classifier exported with skl2onnx's defaults, a ZipMap: a sequence of N maps
{class index: probability}. Either way `predict` returns probabilities as float32 [N, C] in
class order (SPEC 0.2 rule 3), so nothing above this module knows which kind it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from numpy.typing import NDArray

from src.ml.model_dir import ModelCard, ModelDirectoryError, read_model_directory

Features = NDArray[np.float32]
PROBABILITY_TENSOR = "tensor(float)"
LABEL_TENSOR = "tensor(int64)"
ZIPMAP = "seq(map(int64,tensor(float)))"


@dataclass(frozen=True)
class Prediction:
    labels: NDArray[np.int64]  # [N], the graph's label output
    probabilities: NDArray[np.float32]  # [N, C], class order


class Model:
    """A verified model directory with its session (created once; `predict` is thread-safe)."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        try:
            self.session = _session(card.model_path)
        except Exception as error:  # onnxruntime's own exception types: any means unusable
            raise ModelDirectoryError(
                card.directory, f"model.onnx does not load: {error}"
            ) from error
        types = {output.name: output.type for output in self.session.get_outputs()}
        self._zipmap = _check_graph(card, types, self.session.get_inputs())
        self._outputs = [card.label_output, card.probability_output]
        self.sample = np.asarray(card.data_sample, dtype=np.float32)
        # A self-test before serving: the sample row gives one probability per class.
        try:
            self.sample_prediction = self.predict(self.sample)
        except Exception as error:  # e.g. a ZipMap keyed by other classes than label.json's
            message = f"model.onnx fails on the data sample: {error!r}"
            raise ModelDirectoryError(card.directory, message) from error
        shape = self.sample_prediction.probabilities.shape
        if shape != (len(self.sample), card.class_count):
            raise ModelDirectoryError(
                card.directory,
                f"model.onnx gives probabilities of shape {shape} for the data sample, "
                f"label.json has {card.class_count} classes",
            )

    @classmethod
    def load(cls, directory: Path) -> Model:
        return cls(read_model_directory(directory))

    def predict(self, features: Features) -> Prediction:
        """features: float32 [N, feature_count], finite (the caller has checked)."""
        labels, probabilities = self.session.run(self._outputs, {self.card.input_name: features})
        if self._zipmap:
            probabilities = _unzip(probabilities, self.card.class_count)
        return Prediction(labels=labels, probabilities=probabilities)


def _session(path: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    # One thread per session: gunicorn runs one worker per core, and a tabular model takes
    # microseconds, so more threads would only contend with the other workers.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _check_graph(card: ModelCard, types: dict[str, str], inputs: list[Any]) -> bool:
    """Whether the probabilities come as a ZipMap; refuses a graph the metadata misdescribes."""
    problems = []
    if [item.name for item in inputs] != [card.input_name]:
        problems.append(f"graph inputs {[item.name for item in inputs]} != [{card.input_name!r}]")
    if types.get(card.label_output) != LABEL_TENSOR:
        problems.append(f"output {card.label_output!r} is {types.get(card.label_output)}")
    probability_type = types.get(card.probability_output)
    if probability_type not in (PROBABILITY_TENSOR, ZIPMAP):
        problems.append(f"output {card.probability_output!r} is {probability_type}")
    if problems:
        raise ModelDirectoryError(card.directory, "model.onnx: " + "; ".join(problems))
    return probability_type == ZIPMAP


def _unzip(maps: list[dict[int, float]], class_count: int) -> NDArray[np.float32]:
    """ZipMap's [{0: p0, 1: p1, ...}, ...] as float32 [N, C] in class order."""
    return np.array(
        [[row[index] for index in range(class_count)] for row in maps], dtype=np.float32
    ).reshape(len(maps), class_count)
