"""onnxruntime on a checked model directory: one call per chunk of rows.

The prediction of a row is the model's class probabilities; its label is the most probable class
mapped through label.json (as `/predict/label` does in every T-API service). A classifier
exported with skl2onnx's defaults returns its probabilities as a sequence of maps (ZipMap)
rather than a tensor: both are accepted (SPEC 0.2 rule 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime

from src.ml.model import ModelDirectory, ModelError

PROBABILITIES_OUTPUT = "probabilities"
Features = npt.NDArray[np.float32]
Probabilities = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Predictions:
    probabilities: Probabilities  # [rows, classes]
    labels: list[str]


class Predictor:
    def __init__(self, model: ModelDirectory) -> None:
        self.model = model
        options = onnxruntime.SessionOptions()
        # One job process, one run at a time: a single thread keeps the other core for the
        # database and leaves figures comparable between runs.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(
                str(model.model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{model.model_file}: onnxruntime cannot load it ({error})") from error
        names = [output.name for output in self.session.get_outputs()]
        self.output = PROBABILITIES_OUTPUT if PROBABILITIES_OUTPUT in names else names[-1]
        self.class_keys = sorted(model.labels, key=int)

    def predict(self, features: Features) -> Predictions:
        """Probabilities and labels of `features` ([rows, feature_count], float32)."""
        (raw,) = self.session.run([self.output], {self.model.input_name: features})
        probabilities = self._as_matrix(raw)
        labels = [self.model.labels[self.class_keys[index]] for index in probabilities.argmax(1)]
        return Predictions(probabilities, labels)

    def _as_matrix(self, raw: Any) -> Probabilities:
        if isinstance(raw, np.ndarray):
            return raw.astype(np.float32, copy=False)
        # ZipMap: one {class: probability} per row, keyed by int or str depending on the export
        return np.asarray(
            [[row.get(int(key), row.get(key, 0.0)) for key in self.class_keys] for row in raw],
            dtype=np.float32,
        )
