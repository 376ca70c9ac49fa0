"""What proxy and worker hold of the model: metadata.json and label.json (never model.onnx),
read and checked once at start, and for proxy the sample image of `GET /predict/test`.

The sample is preprocessed once at start, a self-test of the preprocessing the metadata
describes: a corrupt sample or an unusable `preprocessing` object stops the process before it
serves anything rather than at the first job.
"""

from __future__ import annotations

from pathlib import Path

from src.configurations import ProxySettings, QueueSettings
from src.ml import pipeline
from src.ml.image_input import ImageInputError
from src.ml.model_dir import Unservable, read_card
from src.ml.pipeline import ImageClassifier


class SampleImageError(Unservable):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, f"sample image {path}: {reason}")


def read_classifier(settings: QueueSettings) -> ImageClassifier:
    """The classifier MODEL_DIR's metadata.json and label.json describe, or Unservable."""
    return ImageClassifier.from_card(read_card(settings.model_dir))


def read_sample(settings: ProxySettings, classifier: ImageClassifier) -> bytes:
    path = settings.sample_image_path
    try:
        sample = path.read_bytes()
    except OSError as error:
        raise SampleImageError(path, f"unreadable ({error.strerror}; run `make models`)") from error
    try:
        pipeline.preprocess_file(sample, classifier, settings.max_image_bytes)
    except ImageInputError as error:
        raise SampleImageError(path, f"not a usable image: {error}") from error
    return sample
