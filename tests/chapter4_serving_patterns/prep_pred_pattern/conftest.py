"""Fixtures of the prep_pred_pattern tests: the model directories and the held-out images."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chapter4_serving_patterns.prep_pred_pattern.harness import DATA_DIR, require_models
from tests.support.image_checks import LabelledImage, labelled_images
from tests.support.image_models import write_image_model_directory


@pytest.fixture(scope="session")
def digits_dir() -> Path:
    """models/digits_resnet, written by `make models` (with data/)."""
    return require_models()


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 48x48, 3-class classifier with centre-crop preprocessing and its own
    mean/std (I-oracle 3): unlike digits_resnet in every way prep reads from metadata."""
    return write_image_model_directory(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def png_images(digits_dir: Path) -> list[LabelledImage]:
    return labelled_images(DATA_DIR / "test_png")


@pytest.fixture(scope="session")
def jpeg_images(digits_dir: Path) -> list[LabelledImage]:
    return labelled_images(DATA_DIR / "test_jpeg")
