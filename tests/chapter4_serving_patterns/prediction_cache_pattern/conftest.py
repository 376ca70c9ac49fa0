"""Fixtures of the prediction_cache_pattern tests: the models, the images, a Redis database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.chapter4_serving_patterns.prediction_cache_pattern.harness import (
    MODEL_DIR,
    SMALL_MODEL_DIR,
    require_models,
)
from tests.support.image_checks import ImageOracle

# A database of the shared Redis of our own: the keys these tests count are theirs only.
REDIS_DB = 5
DRILL_REDIS_DB = 6


@pytest.fixture(scope="session")
def digits_dir() -> Path:
    """models/digits_resnet, written by `make models` (with digits_resnet_small and data/)."""
    return require_models()


@pytest.fixture(scope="session")
def oracle(digits_dir: Path) -> ImageOracle:
    return ImageOracle(MODEL_DIR)


@pytest.fixture(scope="session")
def small_oracle(digits_dir: Path) -> ImageOracle:
    return ImageOracle(SMALL_MODEL_DIR)


@pytest.fixture(scope="session")
def cache_redis_url(redis_url: str) -> str:
    url = redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture(scope="session")
def cache_redis(cache_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(cache_redis_url)
    yield client
    client.close()


@pytest.fixture
def drill_redis_url(redis_url: str) -> str:
    """A database of the shared Redis, emptied for each drill: its first request is a MISS
    whatever the other tests cached."""
    url = redis_url.rsplit("/", 1)[0] + f"/{DRILL_REDIS_DB}"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url
