"""What the proxy holds and checks once at start: the model's metadata.json and label.json
(never model.onnx: pred runs the graph), the digest of its preprocessing (the cache key's first
part) and the item directory.

A MODEL_DIR whose metadata does not describe an image classifier, or a DATA_DIR that is not a
directory, stops the proxy before it serves anything (the gunicorn master refuses to fork).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from src.configurations import ProxySettings
from src.ml.cached_tensor import preprocessing_hash
from src.ml.items import ItemDirectory
from src.ml.model_dir import Unservable, read_card
from src.ml.pipeline import ImageClassifier

# The body of POST /predict is an item id or an image as base64 (4 characters per 3 bytes) in a
# small JSON object: room for the largest image MAX_IMAGE_BYTES allows, and its envelope.
ENVELOPE_BYTES = 64 * 1024


class DataDirectoryError(Unservable):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(path, f"data directory {path}: {reason}")


@dataclass(frozen=True)
class HeldModel:
    classifier: ImageClassifier
    preprocessing_digest: str  # sha256 of the canonical JSON of metadata.preprocessing
    items: ItemDirectory
    sample_item_id: str
    max_image_bytes: int

    @property
    def max_body_bytes(self) -> int:
        return (self.max_image_bytes + 2) // 3 * 4 + ENVELOPE_BYTES

    @property
    def tensor_shape(self) -> tuple[int, ...]:
        return tuple(self.classifier.preprocessing.tensor_shape)


def read_held_model(settings: ProxySettings) -> HeldModel:
    """The classifier of MODEL_DIR's metadata and the item directory; Unservable when either
    is missing or unusable."""
    classifier = ImageClassifier.from_card(read_card(settings.model_dir))
    if not settings.data_dir.is_dir():
        raise DataDirectoryError(settings.data_dir, "not a directory (run `make models`)")
    return HeldModel(
        classifier=classifier,
        preprocessing_digest=preprocessing_hash(classifier.card.metadata["preprocessing"]),
        items=ItemDirectory(settings.data_dir),
        sample_item_id=settings.sample_item_id,
        max_image_bytes=settings.max_image_bytes,
    )
