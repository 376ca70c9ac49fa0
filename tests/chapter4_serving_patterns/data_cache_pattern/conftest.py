"""Fixtures of the data_cache_pattern tests: the models, the items and their oracles."""

from __future__ import annotations

import pytest

from tests.chapter4_serving_patterns.data_cache_pattern.harness import (
    MODEL_DIR,
    SMALL_MODEL_DIR,
    require_models,
)
from tests.support.image_checks import ImageOracle


@pytest.fixture(scope="session")
def oracle() -> ImageOracle:
    """onnxruntime on models/digits_resnet, fed by the reference preprocessing."""
    require_models()
    return ImageOracle(MODEL_DIR)


@pytest.fixture(scope="session")
def small_oracle() -> ImageOracle:
    require_models()
    return ImageOracle(SMALL_MODEL_DIR)
