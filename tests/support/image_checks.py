"""Shared image oracles (SPEC 0.4, I-oracles 1-3) for any service that speaks the I-API.

Expected values never come from the service under test: they come from onnxruntime run in the
test process on the same `model.onnx`, fed by the reference preprocessing (the canonical
chapter2_training/cifar10/src/image_input.py, loaded by file path, so that it is never the
pattern's own copy that is trusted).

The data directory is the one a pattern's `make models` fills (SPEC 1.2 item 11):

    data/sample.png  data/labels.json                        the first held-out digit
    data/test_png/{0000.png, 0001.png, ..., labels.json}    held-out digits, 64x64
    data/test_jpeg/{0000.jpeg, ..., labels.json}             the same, JPEG quality 90

How a pattern's test uses it (`client` is an httpx.Client whose base_url is the I-API service):

    from tests.support.image_checks import (
        ImageOracle, check_accuracy, check_input_refusals, check_variants,
        check_against_oracle, labelled_images, rest_predictor, sample_label,
    )

    oracle = ImageOracle(MODEL_DIR)                      # onnxruntime on model.onnx
    predict = rest_predictor(client)                     # POST /predict, one image per call
    check_accuracy(predict, oracle, DATA_DIR / "test_png", minimum=0.95, exact=True)   # I-1
    check_accuracy(predict, oracle, DATA_DIR / "test_jpeg", minimum=0.93)              # I-1
    check_variants(predict, DATA_DIR / "sample.png")                                   # I-2
    check_input_refusals(client, max_image_bytes=5 * 1024 * 1024)                      # I-2
    # I-3: start the service with MODEL_DIR = tests/support/image_models.py's directory, then
    check_against_oracle(predict, ImageOracle(other_dir), images, atol=1e-5)

A *predictor* is any callable taking a list of image files (bytes) and returning one
`Answer(probabilities, label)` per image, in order: `rest_predictor` sends them one by one
through `POST /predict`; a pattern may pass its own (e.g. V2 BYTES infer, several images per
request). Every check raises AssertionError with a message that says what differed.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import onnxruntime
from numpy.typing import NDArray
from PIL import Image

from tests.support.pattern import REPO_ROOT

REFERENCE_IMAGE_INPUT = REPO_ROOT / "chapter2_training" / "cifar10" / "src" / "image_input.py"
IMAGE_SUFFIXES = (".png", ".jpeg", ".jpg", ".gif", ".bmp", ".webp")
EXIF_ORIENTATION = 0x0112
ROTATE_90_CW_ON_DISPLAY = 6  # EXIF orientation: the stored pixels are turned 90° counter-clockwise


@dataclass(frozen=True)
class Answer:
    """What a service said about one image: its probability vector and top-1 label."""

    probabilities: list[float]
    label: str


@dataclass(frozen=True)
class LabelledImage:
    item_id: str
    path: Path
    data: bytes  # the file's bytes, as sent
    label: str  # the true label (labels.json)


Predictor = Callable[[Sequence[bytes]], list[Answer]]


@cache
def reference_image_input() -> ModuleType:
    """The canonical preprocessing module, loaded from its file under its own module name."""
    spec = importlib.util.spec_from_file_location("reference_image_input", REFERENCE_IMAGE_INPUT)
    assert spec is not None and spec.loader is not None, REFERENCE_IMAGE_INPUT
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class ImageOracle:
    """onnxruntime on a model directory's model.onnx, fed by the reference preprocessing."""

    def __init__(self, model_dir: Path) -> None:
        if not (model_dir / "model.onnx").is_file():
            raise FileNotFoundError(f"{model_dir}/model.onnx is missing: run `make models`")
        self.model_dir = model_dir
        self.metadata: dict[str, Any] = json.loads((model_dir / "metadata.json").read_text())
        labels = json.loads((model_dir / "label.json").read_text())
        self.label_names = [str(labels[str(index)]) for index in range(len(labels))]
        module = reference_image_input()
        self.preprocessing = module.Preprocessing.from_metadata(self.metadata["preprocessing"])
        self.session = onnxruntime.InferenceSession(
            str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.metadata["outputs"][0]["name"]

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def tensors(self, images: Sequence[bytes]) -> NDArray[np.float32]:
        """The reference preprocessing of each file, stacked: [N, 3, H, W] (or NHWC)."""
        module = reference_image_input()
        return np.stack([module.preprocess(data, self.preprocessing) for data in images])

    def run(self, tensors: NDArray[np.float32]) -> NDArray[np.float32]:
        """onnxruntime on a stacked batch of input tensors → probabilities [N, C]."""
        (probabilities,) = self.session.run([self.output_name], {self.input_name: tensors})
        return np.asarray(probabilities, dtype=np.float32)

    def probabilities(self, images: Sequence[bytes]) -> NDArray[np.float32]:
        # One image per call, as an unbatched server would: no batch-size numerics involved.
        return np.concatenate([self.run(self.tensors([data])) for data in images])

    def labels(self, images: Sequence[bytes]) -> list[str]:
        return [self.label_names[index] for index in self.probabilities(images).argmax(1)]


# --- data ---------------------------------------------------------------------------------


def labelled_images(directory: Path, limit: int | None = None) -> list[LabelledImage]:
    """The images of a directory written by cifar10's sample writer, with their true labels
    (labels.json maps an item id, the file name without suffix, to the label), in id order."""
    labels_path = directory / "labels.json"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path} is missing: run `make models` in the pattern")
    labels = json.loads(labels_path.read_text())
    files = {
        path.stem: path
        for path in directory.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem != "sample"
    }
    items = []
    for key in sorted(labels):
        stem = Path(key).stem
        if stem in files:
            path = files[stem]
            items.append(LabelledImage(stem, path, path.read_bytes(), str(labels[key])))
    if not items:
        raise FileNotFoundError(f"{directory}: no image named in labels.json")
    return items[:limit]


def sample_label(data_dir: Path) -> str:
    """The true label of `data_dir/sample.png`: the sample writer saves the first held-out digit
    as sample.png, and `make models` writes its labels.json beside it (the first id)."""
    labels = json.loads((data_dir / "labels.json").read_text())
    return str(labels[min(labels)])


def encode(data: bytes) -> str:
    """Standard base64 text of a file, as `image_data` carries it."""
    return base64.b64encode(data).decode("ascii")


# --- predictors ---------------------------------------------------------------------------


def rest_predictor(client: httpx.Client, path: str = "/predict") -> Predictor:
    """POST /predict `{"image_data": base64}` per image → Answer (I-API, SPEC 0.4)."""

    def predict(images: Sequence[bytes]) -> list[Answer]:
        answers = []
        for data in images:
            response = client.post(path, json={"image_data": encode(data)})
            assert response.status_code == 200, (
                f"POST {path}: {response.status_code} {response.text}"
            )
            body = response.json()
            answers.append(Answer([float(p) for p in body["prediction"]], str(body["label"])))
        return answers

    return predict


# --- I-oracle 1: accuracy, exact agreement with onnxruntime --------------------------------


@dataclass(frozen=True)
class AccuracyReport:
    directory: Path
    count: int
    accuracy: float  # served labels against the true labels
    agreement: float  # served labels against onnxruntime on the reference preprocessing


def check_accuracy(
    predict: Predictor,
    oracle: ImageOracle,
    directory: Path,
    *,
    minimum: float,
    exact: bool = False,
    limit: int | None = None,
) -> AccuracyReport:
    """I-oracle 1 on one directory (≥ 200 images): accuracy ≥ `minimum`; with `exact` (PNG),
    every served label equals the oracle's label for the same file."""
    items = labelled_images(directory, limit)
    answers = predict([item.data for item in items])
    assert len(answers) == len(items), f"{len(answers)} answers for {len(items)} images"
    served = [answer.label for answer in answers]
    expected = oracle.labels([item.data for item in items])
    correct = sum(label == item.label for label, item in zip(served, items, strict=True))
    agree = sum(a == b for a, b in zip(served, expected, strict=True))
    report = AccuracyReport(directory, len(items), correct / len(items), agree / len(items))
    assert report.accuracy >= minimum, f"{directory.name}: accuracy {report} < {minimum}"
    if exact:
        differing = [
            (item.item_id, label, reference)
            for item, label, reference in zip(items, served, expected, strict=True)
            if label != reference
        ]
        assert not differing, f"{directory.name}: served != onnxruntime for {differing[:10]}"
    return report


# --- I-oracle 2: variants of one image, refused input ---------------------------------------


def variants(data: bytes) -> dict[str, bytes]:
    """RGB, RGBA, grayscale, palette and EXIF-rotated PNG files of the same picture."""
    with Image.open(io.BytesIO(data)) as opened:
        rgb = opened.convert("RGB")

    def png(image: Image.Image, **options: Any) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", **options)
        return buffer.getvalue()

    rgba = rgb.convert("RGBA")
    rgba.putalpha(255)  # opaque: composited onto any background it is the RGB picture
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW_ON_DISPLAY
    # Stored turned a quarter counter-clockwise; the EXIF tag turns it back on decoding.
    rotated = rgb.transpose(Image.Transpose.ROTATE_90)
    return {
        "rgb": png(rgb),
        "rgba": png(rgba),
        "grayscale": png(rgb.convert("L")),
        "palette": png(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)),
        "exif_rotated": png(rotated, exif=exif.tobytes()),
    }


def check_variants(predict: Predictor, image_path: Path) -> dict[str, Answer]:
    """I-oracle 2: every variant of the image predicts the label of the plain RGB file."""
    files = variants(image_path.read_bytes())
    answers = dict(zip(files, predict(list(files.values())), strict=True))
    plain = answers["rgb"].label
    wrong = {name: answer.label for name, answer in answers.items() if answer.label != plain}
    assert not wrong, f"variants of {image_path.name} predicted {wrong}, the RGB file {plain!r}"
    return answers


def refusal_bodies(max_image_bytes: int) -> dict[str, tuple[dict[str, Any], int, str]]:
    """name → (JSON body of POST /predict, status, code) for the input rules of SPEC 0.4."""
    oversized = b"\x89PNG\r\n\x1a\n" + b"\0" * max_image_bytes  # over the limit
    not_an_image = encode(b"this is not an image file")
    return {
        "non_image": ({"image_data": not_an_image}, 415, "unsupported_media_type"),
        "bad_base64": ({"image_data": "not base64 at all!"}, 422, "invalid_input"),
        "oversized": ({"image_data": encode(oversized)}, 413, "payload_too_large"),
    }


def check_input_refusals(
    client: httpx.Client, *, max_image_bytes: int = 5 * 1024 * 1024, path: str = "/predict"
) -> None:
    """I-oracle 2: non-image bytes → 415, bad base64 → 422, oversized → 413, each with the error
    envelope of SPEC 0.6 and its code. `max_image_bytes` is the service's MAX_IMAGE_BYTES."""
    for name, (body, status, code) in refusal_bodies(max_image_bytes).items():
        response = client.post(path, json=body)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        envelope = response.json()
        assert envelope["code"] == code, f"{name}: {envelope}"
        assert envelope["error"] and envelope["request_id"], f"{name}: {envelope}"


# --- I-oracle 3: another model directory ----------------------------------------------------


def check_against_oracle(
    predict: Predictor, oracle: ImageOracle, images: Sequence[bytes], *, atol: float = 1e-5
) -> list[Answer]:
    """I-oracle 3 (and any exactness check): the served probabilities equal onnxruntime on the
    reference preprocessing within `atol`, and the labels are the argmax named by label.json."""
    answers = predict(images)
    served = np.asarray([answer.probabilities for answer in answers], dtype=np.float64)
    expected = oracle.probabilities(images).astype(np.float64)
    assert served.shape == expected.shape, f"served {served.shape}, onnxruntime {expected.shape}"
    np.testing.assert_allclose(served, expected, rtol=0, atol=atol)
    assert [answer.label for answer in answers] == oracle.labels(images)
    return answers
