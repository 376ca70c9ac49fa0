"""Fixtures of the sync_async_pattern tests: the two models' oracles and the held-out images."""

from __future__ import annotations

import pytest

from tests.chapter4_serving_patterns.sync_async_pattern.harness import (
    ASYNC_MODEL_DIR,
    DATA_DIR,
    SYNC_MODEL_DIR,
    require_models,
)
from tests.support.image_checks import ImageOracle, LabelledImage, labelled_images


@pytest.fixture(scope="session")
def models() -> None:
    """digits_resnet_small, digits_resnet_large and data/, written by `make models`."""
    require_models()


@pytest.fixture(scope="session")
def quick_oracle(models: None) -> ImageOracle:
    """onnxruntime on the quick model pred_sync serves."""
    return ImageOracle(SYNC_MODEL_DIR)


@pytest.fixture(scope="session")
def heavy_oracle(models: None) -> ImageOracle:
    """onnxruntime on the heavy model pred_async serves."""
    return ImageOracle(ASYNC_MODEL_DIR)


@pytest.fixture(scope="session")
def png_images(models: None) -> list[LabelledImage]:
    return labelled_images(DATA_DIR / "test_png")


@pytest.fixture(scope="session")
def jpeg_images(models: None) -> list[LabelledImage]:
    return labelled_images(DATA_DIR / "test_jpeg")
