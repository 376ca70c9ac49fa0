"""What the proxy holds: the model's metadata.json and label.json (never model.onnx: pred runs
the graph) and the item directory, read and checked once at start.

The item of `GET /predict/test` (SAMPLE_ITEM_ID) must resolve and preprocess, a self-test of
the preprocessing the metadata describes: a missing DATA_DIR or an unusable `preprocessing`
object stops the proxy before it serves anything rather than at the first request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from src.configurations import ProxySettings
from src.ml import pipeline
from src.ml.image_input import ImageInputError
from src.ml.items import ItemDirectory, ItemError
from src.ml.model_dir import Unservable, read_card
from src.ml.pipeline import ImageClassifier

# The body of POST /predict is the image as base64 (4 characters per 3 bytes) in a small JSON
# object: room for the largest image MAX_IMAGE_BYTES allows, and its envelope.
ENVELOPE_BYTES = 64 * 1024


class DataDirectoryError(Unservable):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, f"data directory {path}: {reason}")


@dataclass(frozen=True)
class HeldModel:
    classifier: ImageClassifier
    items: ItemDirectory
    sample_item_id: str
    max_image_bytes: int

    @property
    def max_body_bytes(self) -> int:
        return (self.max_image_bytes + 2) // 3 * 4 + ENVELOPE_BYTES


def read_held_model(settings: ProxySettings) -> HeldModel:
    """The classifier of MODEL_DIR's metadata and the item directory; Unservable when either
    is missing or unusable."""
    classifier = ImageClassifier.from_card(read_card(settings.model_dir))
    directory = settings.data_dir
    if not directory.is_dir():
        raise DataDirectoryError(directory, "is not a directory (run `make models`)")
    items = ItemDirectory(directory)
    try:
        sample, _ = items.read(items.resolve(settings.sample_item_id), settings.max_image_bytes)
    except ItemError as error:
        raise DataDirectoryError(directory, f"sample item: {error}") from error
    try:
        pipeline.preprocess_file(sample, classifier, settings.max_image_bytes)
    except ImageInputError as error:
        reason = f"sample item {settings.sample_item_id!r} is not a usable image: {error}"
        raise DataDirectoryError(directory, reason) from error
    return HeldModel(classifier, items, settings.sample_item_id, settings.max_image_bytes)
