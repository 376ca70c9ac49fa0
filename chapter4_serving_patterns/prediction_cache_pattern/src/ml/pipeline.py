"""The two halves of a prediction around `pred`, as plain functions (nothing pickled, SPEC 3.5
behaviour 3), for the process that faces the client (prep, a proxy) or works for it (a worker).

    preprocess:  base64 text → image file bytes → float32 [1, 3, H, W]   (image_input.py)
    postprocess: probabilities float32 [N, C] → (probabilities, top-1 label) per image

Everything comes from the model's metadata.json and label.json (`ImageClassifier.from_card`):
the preprocessing object, the input and output tensor names and the label names. No FastAPI
here, and no model.onnx: `pred` runs the graph. Every image pattern whose model runs in `pred`
holds a byte-identical copy of prep_pred_pattern's module (tests/test_artifacts.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from src.ml import image_input
from src.ml.image_input import Preprocessing
from src.ml.model_dir import ModelCard, ModelDirectoryError, TensorSpec

IMAGE_TASK = "image_classification"
Probabilities = NDArray[np.float32]


@dataclass(frozen=True)
class ImageClassifier:
    """An image classifier as metadata.json describes it: what its caller needs, not the graph."""

    card: ModelCard
    preprocessing: Preprocessing
    input: TensorSpec  # FP32 [-1, 3, H, W] (or NHWC), as the preprocessing produces
    output: TensorSpec  # FP32 [-1, C], C = the number of labels
    label_names: tuple[str, ...]  # class index → label

    @classmethod
    def from_card(cls, card: ModelCard) -> ImageClassifier:
        def refuse(reason: str) -> ModelDirectoryError:
            return ModelDirectoryError(card.directory, f"metadata.json: {reason}")

        if card.task != IMAGE_TASK:
            raise refuse(f"task {card.task!r} is not {IMAGE_TASK!r}")
        try:
            preprocessing = Preprocessing.from_metadata(card.metadata["preprocessing"])
        except (KeyError, TypeError, ValueError) as error:
            raise refuse(f"preprocessing: {error!r}") from error
        class_count = len(card.labels)
        keys = [str(index) for index in range(class_count)]
        if sorted(card.labels) != sorted(keys):
            raise refuse("labels must be keyed 0 … C-1")
        if len(card.inputs) != 1:
            raise refuse(f"an image classifier has one input, not {len(card.inputs)}")
        tensor = card.inputs[0]
        expected = (-1, *preprocessing.tensor_shape)
        if tensor.datatype != "FP32" or tensor.shape != expected:
            message = f"input {tensor.to_json()} is not FP32 {list(expected)} (preprocessing)"
            raise refuse(message)
        outputs = [
            spec
            for spec in card.outputs
            if spec.datatype == "FP32" and spec.shape == (-1, class_count)
        ]
        if len(outputs) != 1:
            raise refuse(f"expected one FP32 output [-1, {class_count}] (the probabilities)")
        return cls(
            card=card,
            preprocessing=preprocessing,
            input=tensor,
            output=outputs[0],
            label_names=tuple(card.labels[key] for key in keys),
        )

    @property
    def class_count(self) -> int:
        return len(self.label_names)


def preprocess(
    image_data: str | bytes, classifier: ImageClassifier, max_bytes: int
) -> NDArray[np.float32]:
    """Base64 text (standard or URL-safe) → float32 [1, 3, H, W]: the batch of one image pred
    takes. Raises image_input.ImageInputError (422 / 413 / 415) for what the client sent."""
    data = image_input.decode_base64(image_data, max_bytes)
    return preprocess_file(data, classifier, max_bytes)


def preprocess_file(
    data: bytes, classifier: ImageClassifier, max_bytes: int
) -> NDArray[np.float32]:
    """Image file bytes → float32 [1, 3, H, W] (the bytes are never modified)."""
    return image_input.preprocess(data, classifier.preprocessing, max_bytes)[np.newaxis]


def postprocess(
    probabilities: Probabilities, classifier: ImageClassifier
) -> list[tuple[Probabilities, str]]:
    """Per image: its probability vector and the most probable class, named by label.json."""
    names = classifier.label_names
    return [(row, names[int(row.argmax())]) for row in probabilities]
