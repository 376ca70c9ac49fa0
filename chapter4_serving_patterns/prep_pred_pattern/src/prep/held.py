"""What prep holds of the model: metadata.json and label.json (never model.onnx), and the
sample image of `GET /predict/test`, read and checked once at start.

The sample is preprocessed once at start, a self-test of the preprocessing the metadata
describes, so that a corrupt sample or an unusable `preprocessing` object stops prep before it
serves anything rather than at the first request.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from src.configurations import PrepSettings
from src.ml import pipeline
from src.ml.image_input import ImageInputError
from src.ml.model_dir import Unservable, read_card
from src.ml.pipeline import ImageClassifier

# The body of POST /predict is the image as base64 (4 characters per 3 bytes) in a small JSON
# object: room for the largest image MAX_IMAGE_BYTES allows, and its envelope.
ENVELOPE_BYTES = 64 * 1024


class SampleImageError(Unservable):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, f"sample image {path}: {reason}")


@dataclass(frozen=True)
class HeldModel:
    classifier: ImageClassifier
    sample: bytes  # the file of SAMPLE_IMAGE_PATH, as it is
    max_image_bytes: int

    @property
    def max_body_bytes(self) -> int:
        return (self.max_image_bytes + 2) // 3 * 4 + ENVELOPE_BYTES

    @property
    def sample_base64(self) -> str:
        return base64.b64encode(self.sample).decode()


def read_held_model(settings: PrepSettings) -> HeldModel:
    """The classifier of MODEL_DIR's metadata and the sample image; Unservable when either is
    missing or unusable."""
    classifier = ImageClassifier.from_card(read_card(settings.model_dir))
    path = settings.sample_image_path
    try:
        sample = path.read_bytes()
    except OSError as error:
        raise SampleImageError(path, f"unreadable ({error.strerror}; run `make models`)") from error
    try:
        pipeline.preprocess_file(sample, classifier, settings.max_image_bytes)
    except ImageInputError as error:
        raise SampleImageError(path, f"not a usable image: {error}") from error
    return HeldModel(classifier, sample, settings.max_image_bytes)
