"""Fixtures of the asynchronous_pattern tests: the model directory, its oracle, held-out images."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chapter4_serving_patterns.asynchronous_pattern.harness import DATA_DIR, require_models
from tests.support.image_checks import ImageOracle, LabelledImage, labelled_images


@pytest.fixture(scope="session")
def digits_dir() -> Path:
    """models/digits_resnet, written by `make models` (with data/)."""
    return require_models()


@pytest.fixture(scope="session")
def oracle(digits_dir: Path) -> ImageOracle:
    return ImageOracle(digits_dir)


@pytest.fixture(scope="session")
def png_images(digits_dir: Path) -> list[LabelledImage]:
    return labelled_images(DATA_DIR / "test_png")


@pytest.fixture(scope="session")
def jpeg_images(digits_dir: Path) -> list[LabelledImage]:
    return labelled_images(DATA_DIR / "test_jpeg")
