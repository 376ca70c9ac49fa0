"""The loaded image classifier: one onnxruntime session per worker, [N, image] in, [N, C] out.

The graph must match its card (input name, one float tensor output) and pass a self-test before
the worker serves anything: a batch of two blank images gives two probability vectors of the
label count, which also proves the batch axis is dynamic (micro-batching stacks requests on it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
from numpy.typing import NDArray

from src.ml.model_dir import ModelCard, ModelDirectoryError, read_model_directory

Tensors = NDArray[np.float32]  # [N, 3, H, W] (or NHWC), float32
Probabilities = NDArray[np.float32]  # [N, C]
FLOAT_TENSOR = "tensor(float)"
SELF_TEST_BATCH = 2


class ModelError(Exception):
    """onnxruntime failed on a batch: the model's fault, never the client's (a 500)."""


class Model:
    """A verified model directory with its session (created once; `predict` is thread-safe)."""

    def __init__(self, card: ModelCard, threads: int = 1) -> None:
        self.card = card
        try:
            self.session = _session(card.model_path, threads)
        except Exception as error:  # onnxruntime's own exception types: any means unusable
            raise ModelDirectoryError(
                card.directory, f"model.onnx does not load: {error}"
            ) from error
        self._check_graph()
        blank = np.zeros((SELF_TEST_BATCH, *card.image_shape), dtype=np.float32)
        try:
            shape = self.predict(blank).shape
        except ModelError as error:
            raise ModelDirectoryError(card.directory, f"self-test failed: {error}") from error
        if shape != (SELF_TEST_BATCH, card.class_count):
            raise ModelDirectoryError(
                card.directory,
                f"model.onnx gives probabilities of shape {shape} for {SELF_TEST_BATCH} images, "
                f"label.json has {card.class_count} classes",
            )

    @classmethod
    def load(cls, directory: Path, threads: int = 1) -> Model:
        return cls(read_model_directory(directory), threads)

    def predict(self, tensors: Tensors) -> Probabilities:
        """tensors: float32 [N, *image_shape], finite (the caller has checked)."""
        try:
            (probabilities,) = self.session.run(
                [self.card.output_name], {self.card.input_name: tensors}
            )
        except Exception as error:  # onnxruntime raises its own types (Fail, InvalidArgument, …)
            raise ModelError(f"{type(error).__name__}: {error}") from error
        return np.asarray(probabilities, dtype=np.float32)

    def _check_graph(self) -> None:
        card = self.card
        inputs = [item.name for item in self.session.get_inputs()]
        outputs = {item.name: item.type for item in self.session.get_outputs()}
        problems = []
        if inputs != [card.input_name]:
            problems.append(f"graph inputs {inputs} != [{card.input_name!r}]")
        if outputs.get(card.output_name) != FLOAT_TENSOR:
            problems.append(f"output {card.output_name!r} is {outputs.get(card.output_name)}")
        if problems:
            raise ModelDirectoryError(card.directory, "model.onnx: " + "; ".join(problems))


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    # INFERENCE_THREADS per session: gunicorn runs WORKERS sessions side by side on 2 cores.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
