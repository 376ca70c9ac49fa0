"""Fault drills on Redis (SPEC 3.9 behaviour 4, 0.10 item 3): the cache is optional. A stopped,
hung or absent Redis gives correct answers marked BYPASS and a proxy that stays ready; when
Redis is back, the cache is used again without restarting anything."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.chapter4_serving_patterns.data_cache_pattern.harness import (
    PATTERN,
    cache_result,
    copy_items,
    predict_item,
)
from tests.support.image_checks import ImageOracle
from tests.support.launcher import launch
from tests.support.polling import poll
from tests.support.ports import free_port
from tests.support.services import RedisServer

# Short enough that a drill takes a fraction of a second per request, and the proxy retries
# Redis soon after it is back.
DRILL_ENV = {"REDIS_TIMEOUT_MS": "200", "REDIS_RETRY_MS": "200"}
ITEMS = ["0012", "0013", "0014"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_items(tmp_path_factory.mktemp("data_cache_drills") / "items")


@pytest.fixture
def redis_server(private_redis: Callable[..., RedisServer]) -> RedisServer:
    return private_redis()


@pytest.fixture
def proxy(redis_server: RedisServer, data_dir: Path, oracle: ImageOracle) -> Iterator[httpx.Client]:
    env = {**DRILL_ENV, "DATA_DIR": str(data_dir), "REDIS_URL": redis_server.url}
    with (
        launch(PATTERN, env=env) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as client,
    ):
        yield client


def check_correct(
    response: httpx.Response, oracle: ImageOracle, data_dir: Path, item_id: str
) -> None:
    image = (data_dir / f"{item_id}.png").read_bytes()
    expected = oracle.probabilities([image])[0]
    np.testing.assert_allclose(response.json()["prediction"], expected, rtol=0, atol=1e-6)


def check_bypassed_and_ready(proxy: httpx.Client, oracle: ImageOracle, data_dir: Path) -> None:
    for item_id in ITEMS:
        response = predict_item(proxy, item_id)
        assert cache_result(response) == "BYPASS"
        check_correct(response, oracle, data_dir, item_id)
    ready = proxy.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["redis"]["status"] == "degraded"


def wait_for_cache(proxy: httpx.Client, item_id: str) -> None:
    poll(
        lambda: predict_item(proxy, item_id),
        lambda response: cache_result(response) in ("HIT", "MISS"),
        what="the cache used again",
    )


def test_stopped_redis_bypasses_and_a_restarted_one_is_used_again(
    proxy: httpx.Client, redis_server: RedisServer, oracle: ImageOracle, data_dir: Path
) -> None:
    predict_item(proxy, "0012")
    assert cache_result(predict_item(proxy, "0012")) == "HIT"

    redis_server.stop()
    check_bypassed_and_ready(proxy, oracle, data_dir)

    redis_server.start()  # same port, empty (no persistence): misses, then hits
    wait_for_cache(proxy, "0013")
    assert cache_result(predict_item(proxy, "0013")) == "HIT"
    assert proxy.get("/ready").json()["redis"] == {"status": "ok"}
    bypassed = proxy.get("/metrics").text
    assert 'data_cache_requests_total{result="bypass"}' in bypassed
    assert 'data_cache_lookup_seconds_count{outcome="error"}' in bypassed


def test_hung_redis_bypasses_within_its_time_out_and_is_used_again_when_it_resumes(
    proxy: httpx.Client, redis_server: RedisServer, oracle: ImageOracle, data_dir: Path
) -> None:
    predict_item(proxy, "0014")
    assert cache_result(predict_item(proxy, "0014")) == "HIT"
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        check_bypassed_and_ready(proxy, oracle, data_dir)
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    poll(
        lambda: predict_item(proxy, "0014"),
        lambda response: cache_result(response) == "HIT",
        what="the stored tensor served again",
    )


def test_a_proxy_started_without_redis_is_ready_and_answers(
    data_dir: Path, oracle: ImageOracle
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    env = {**DRILL_ENV, "DATA_DIR": str(data_dir), "REDIS_URL": nowhere}
    with (
        launch(PATTERN, env=env) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as proxy,
    ):
        check_bypassed_and_ready(proxy, oracle, data_dir)
        assert proxy.get("/predict/test").headers["X-Data-Cache"] == "BYPASS"
