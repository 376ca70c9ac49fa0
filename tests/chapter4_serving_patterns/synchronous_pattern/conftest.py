"""Fixtures of the synchronous pattern's tests (harness.py): the oracle on the model directory
`make models` wrote, the server as `make dev` runs it (batching off) once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chapter4_serving_patterns.synchronous_pattern.harness import (
    MODEL_DIR,
    Pred,
    running_pred,
)
from tests.support.image_checks import ImageOracle


@pytest.fixture(scope="session")
def oracle() -> ImageOracle:
    """onnxruntime on models/digits_resnet (fails with `run make models` when it is missing)."""
    return ImageOracle(MODEL_DIR)


@pytest.fixture(scope="module")
def pred(oracle: ImageOracle) -> Iterator[Pred]:
    with running_pred() as running:
        yield running
