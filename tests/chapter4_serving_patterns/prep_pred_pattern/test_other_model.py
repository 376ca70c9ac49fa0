"""I-oracle 3 through prep (SPEC 0.4, 3.5 acceptance test 1): another image classifier, a
random-weight 48x48 model with 3 classes, centre-crop preprocessing and its own mean/std, is
served by both processes with nothing changed but MODEL_DIR, and prep's answers equal
onnxruntime on the reference preprocessing (≤ 1e-5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chapter4_serving_patterns.prep_pred_pattern.harness import (
    DATA_DIR,
    PATTERN,
    metadata_of,
)
from tests.support.image_checks import (
    ImageOracle,
    check_against_oracle,
    labelled_images,
    rest_predictor,
)
from tests.support.launcher import launch

IMAGES = 20  # per format


@pytest.fixture(scope="module")
def prep(other_model_dir: Path) -> Iterator[httpx.Client]:
    with (
        launch(PATTERN, env={"MODEL_DIR": str(other_model_dir)}) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as client,
    ):
        yield client


def test_answers_equal_onnxruntime_on_the_reference_preprocessing(
    prep: httpx.Client, other_model_dir: Path
) -> None:
    images = [
        item.data
        for directory in ("test_png", "test_jpeg")
        for item in labelled_images(DATA_DIR / directory, IMAGES)
    ]
    images.append((DATA_DIR / "sample.png").read_bytes())
    check_against_oracle(rest_predictor(prep), ImageOracle(other_model_dir), images, atol=1e-5)


def test_metadata_label_and_sample_follow_the_model_directory(
    prep: httpx.Client, other_model_dir: Path
) -> None:
    metadata = metadata_of(other_model_dir)
    answer = prep.get("/metadata").json()
    assert answer["model"]["version"] == metadata["version"]
    assert answer["prediction_structure"] == "(1,3)"
    assert answer["preprocessing"] == metadata["preprocessing"]
    assert prep.get("/label").json() == metadata["labels"]
    oracle = ImageOracle(other_model_dir)
    [label] = oracle.labels([(DATA_DIR / "sample.png").read_bytes()])
    assert prep.get("/predict/test/label").json() == {"prediction": label}
