"""I-oracle 3 (SPEC 0.4): another image classifier (48x48 input, 3 classes, shorter side then
centre crop, its own mean/std, random weights) needs only another MODEL_DIR, and its outputs
equal onnxruntime on the reference preprocessing (≤ 1e-5), through /predict and V2 BYTES."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chapter4_serving_patterns.synchronous_pattern.harness import (
    DATA_DIR,
    Pred,
    running_pred,
    v2_predictor,
)
from tests.support.image_checks import (
    ImageOracle,
    check_against_oracle,
    labelled_images,
    rest_predictor,
)
from tests.support.image_models import write_image_model_directory


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> ImageOracle:
    return ImageOracle(write_image_model_directory(tmp_path_factory.mktemp("other_model")))


@pytest.fixture(scope="module")
def pred(other: ImageOracle) -> Iterator[Pred]:
    env = {"MODEL_DIR": str(other.model_dir), "BATCHING_ENABLED": "true"}
    with running_pred(env) as running:
        yield running


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    png = labelled_images(DATA_DIR / "test_png", limit=12)
    jpeg = labelled_images(DATA_DIR / "test_jpeg", limit=12)
    return [item.data for item in png + jpeg] + [(DATA_DIR / "sample.png").read_bytes()]


def test_predict_equals_onnxruntime(pred: Pred, other: ImageOracle, images: list[bytes]) -> None:
    check_against_oracle(rest_predictor(pred.client), other, images, atol=1e-5)


def test_v2_bytes_three_per_request_equals_onnxruntime(
    pred: Pred, other: ImageOracle, images: list[bytes]
) -> None:
    check_against_oracle(v2_predictor(pred.client, other.name, 3), other, images, atol=1e-5)


def test_the_model_describes_itself(pred: Pred, other: ImageOracle) -> None:
    metadata = pred.client.get("/metadata").json()
    assert metadata["model"]["name"] == other.name == "random_shapes"
    assert metadata["prediction_structure"] == "(1,3)"
    assert metadata["preprocessing"] == other.metadata["preprocessing"]
    assert pred.client.get("/label").json() == {"0": "shape_0", "1": "shape_1", "2": "shape_2"}
    v2 = pred.client.get(f"/v2/models/{other.name}").json()
    assert v2["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 3, 48, 48]}
    assert v2["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}


def test_the_sample_image_goes_through_the_other_preprocessing(
    pred: Pred, other: ImageOracle
) -> None:
    body = pred.client.get("/predict/test").json()
    sample = (DATA_DIR / "sample.png").read_bytes()
    expected = other.probabilities([sample])[0].tolist()
    assert body["prediction"] == pytest.approx(expected, abs=1e-5)
    assert body["label"] == other.labels([sample])[0]
