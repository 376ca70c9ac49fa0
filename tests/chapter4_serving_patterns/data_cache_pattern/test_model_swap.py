"""SPEC 3.9 acceptance test 2 and behaviour 3: the cache holds model input, so a new model with
the same preprocessing reuses it, and a new preprocessing spec does not.

pred and the proxy are restarted with another MODEL_DIR (the proxy holds metadata.json and
label.json and checks that pred serves the version it holds, so a model change is a rollout of
both); Redis, and so the cache, lives on across the restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from tests.chapter4_serving_patterns.data_cache_pattern.harness import (
    PATTERN,
    SMALL_MODEL_DIR,
    cache_result,
    copy_items,
    expected_key,
    predict_item,
    preprocessing_sha256,
    redis_db_url,
    touch,
)
from tests.support.image_checks import ImageOracle
from tests.support.image_models import write_image_model_directory
from tests.support.launcher import RunningPattern, launch

REDIS_DB = 8


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_items(tmp_path_factory.mktemp("data_cache_swap") / "items")


@pytest.fixture(scope="module")
def cache_url(redis_url: str) -> str:
    url = redis_db_url(redis_url, REDIS_DB)
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture(scope="module")
def running(oracle: ImageOracle, data_dir: Path, cache_url: str) -> Iterator[RunningPattern]:
    with launch(PATTERN, env={"DATA_DIR": str(data_dir), "REDIS_URL": cache_url}) as running:
        yield running


def serve_model(running: RunningPattern, model_dir: Path) -> None:
    """Roll both processes over to another model directory; Redis keeps running."""
    for process in running.processes.values():
        process.env["MODEL_DIR"] = str(model_dir)
    running.processes["proxy"].stop()
    running.restart_process("pred")
    running.start_process("proxy")


def answer(running: RunningPattern, item_id: str) -> httpx.Response:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        return predict_item(client, item_id)


def test_a_new_model_with_the_same_preprocessing_hits_and_answers_for_itself(
    running: RunningPattern,
    oracle: ImageOracle,
    small_oracle: ImageOracle,
    data_dir: Path,
    cache_url: str,
) -> None:
    assert preprocessing_sha256(SMALL_MODEL_DIR) == preprocessing_sha256(oracle.model_dir)
    image = (data_dir / "0011.png").read_bytes()
    assert cache_result(answer(running, "0011")) == "MISS"
    before = answer(running, "0011")
    assert cache_result(before) == "HIT"
    np.testing.assert_allclose(
        before.json()["prediction"], oracle.probabilities([image])[0], rtol=0, atol=1e-6
    )

    serve_model(running, SMALL_MODEL_DIR)
    after = answer(running, "0011")
    assert cache_result(after) == "HIT"
    assert after.headers["X-Model-Name"] == small_oracle.name
    assert after.headers["X-Model-Version"] == small_oracle.version
    np.testing.assert_allclose(
        after.json()["prediction"], small_oracle.probabilities([image])[0], rtol=0, atol=1e-6
    )
    assert not np.allclose(after.json()["prediction"], before.json()["prediction"], atol=1e-6)

    # A changed file is another key, whichever model serves it.
    touch(data_dir / "0011.png")
    assert cache_result(answer(running, "0011")) == "MISS"
    assert cache_result(answer(running, "0011")) == "HIT"
    with redis.Redis.from_url(cache_url) as store:
        assert store.exists(expected_key(SMALL_MODEL_DIR, data_dir / "0011.png"))


def test_another_preprocessing_spec_misses_and_answers_for_its_model(
    running: RunningPattern, data_dir: Path, tmp_path: Path
) -> None:
    """48x48, centre crop, its own mean/std: another key; the answer is that model's on its
    own preprocessing (I-oracle 3)."""
    image = (data_dir / "0011.png").read_bytes()
    assert cache_result(answer(running, "0011")) == "HIT"  # still the small model's entry
    other_dir = write_image_model_directory(tmp_path / "models")
    other = ImageOracle(other_dir)
    serve_model(running, other_dir)
    first = answer(running, "0011")
    assert cache_result(first) == "MISS"
    assert cache_result(answer(running, "0011")) == "HIT"
    np.testing.assert_allclose(
        first.json()["prediction"], other.probabilities([image])[0], rtol=0, atol=1e-5
    )
    assert first.json()["label"] == other.labels([image])[0]
