"""Drills on real processes, each with a launch of its own: SPEC 3.8 acceptance tests 4 (TTL
expiry; pred and proxy restarted with another model) and 5 (Redis stopped and restarted), and
a pred rolled to another version of the same model while the proxy keeps running."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from tests.chapter4_serving_patterns.prediction_cache_pattern.harness import (
    ITEMS_DIR,
    PATTERN,
    SMALL_MODEL_DIR,
    cache_key,
    inferences,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import ImageOracle
from tests.support.launcher import launch
from tests.support.polling import poll
from tests.support.services import RedisServer


def post_item(client: httpx.Client, item_id: str) -> httpx.Response:
    response = client.post("/predict", json={"data": item_id})
    assert response.status_code == 200, response.text
    return response


def assert_answer_of(response: httpx.Response, oracle: ImageOracle, item_id: str) -> None:
    image = (ITEMS_DIR / f"{item_id}.png").read_bytes()
    expected = oracle.probabilities([image])[0]
    np.testing.assert_allclose(response.json()["prediction"], expected, rtol=0, atol=1e-6)
    assert response.headers["X-Model-Version"] == oracle.version


def test_an_expired_entry_is_a_miss_again(drill_redis_url: str, oracle: ImageOracle) -> None:
    env = {"REDIS_URL": drill_redis_url, "CACHE_TTL_S": "1"}
    with launch(PATTERN, env=env) as running, httpx.Client(base_url=running.url()) as proxy:
        first = post_item(proxy, "0020")
        assert first.headers["X-Cache"] == "MISS"
        key = cache_key(oracle.name, oracle.version, (ITEMS_DIR / "0020.png").read_bytes())
        with redis.Redis.from_url(drill_redis_url) as client:
            assert 0 < client.pttl(key) <= 1000
        # HIT while the entry lives, then MISS once Redis has expired it (polled: no timing
        # is asserted).
        seen: list[str] = []

        def expired(response: httpx.Response) -> bool:
            seen.append(response.headers["X-Cache"])
            return seen[-1] == "MISS"

        again = poll(
            lambda: post_item(proxy, "0020"), expired, timeout_s=10, what="MISS after the TTL"
        )
        assert seen[-1] == "MISS", seen
        assert again.content == first.content


def test_pred_and_proxy_restarted_with_another_model_miss_and_answer_with_it(
    drill_redis_url: str, oracle: ImageOracle, small_oracle: ImageOracle
) -> None:
    with launch(PATTERN, env={"REDIS_URL": drill_redis_url}) as running:
        with httpx.Client(base_url=running.url(), timeout=30.0) as proxy:
            post_item(proxy, "0021")
            cached = post_item(proxy, "0021")
            assert cached.headers["X-Cache"] == "HIT"
            assert_answer_of(cached, oracle, "0021")
        for name in ("pred", "proxy"):
            running.processes[name].env["MODEL_DIR"] = str(SMALL_MODEL_DIR)
            running.restart_process(name)
        with httpx.Client(base_url=running.url(), timeout=30.0) as proxy:
            first = post_item(proxy, "0021")
            assert first.headers["X-Cache"] == "MISS"
            assert_answer_of(first, small_oracle, "0021")
            assert post_item(proxy, "0021").headers["X-Cache"] == "HIT"


@pytest.fixture
def same_name_new_version(tmp_path: Path) -> Path:
    """digits_resnet_small's graph published as `digits_resnet`: the same model name, another
    version (the sha256 of another model.onnx), as a retrained model would be."""
    directory = tmp_path / "digits_resnet"
    shutil.copytree(SMALL_MODEL_DIR, directory)
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["sha256"] == hashlib.sha256((directory / "model.onnx").read_bytes()).hexdigest()
    metadata["name"] = "digits_resnet"
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


def test_a_new_version_in_pred_is_never_answered_from_the_old_versions_entries(
    drill_redis_url: str,
    oracle: ImageOracle,
    small_oracle: ImageOracle,
    same_name_new_version: Path,
) -> None:
    """pred restarted alone with a new version: within MODEL_INFO_TTL_S the proxy asks pred
    again, and from then on every answer is the new version's, first computed (MISS)."""
    env = {"REDIS_URL": drill_redis_url, "MODEL_INFO_TTL_S": "0.5"}
    with launch(PATTERN, env=env) as running, httpx.Client(base_url=running.url()) as proxy:
        post_item(proxy, "0022")
        assert post_item(proxy, "0022").headers["X-Cache"] == "HIT"
        running.processes["pred"].env["MODEL_DIR"] = str(same_name_new_version)
        running.restart_process("pred")
        new = poll(
            lambda: post_item(proxy, "0022"),
            lambda response: response.headers["X-Model-Version"] == small_oracle.version,
            timeout_s=10,
            what="the new version's answer",
        )
        assert new.headers["X-Cache"] == "MISS"
        assert_answer_of(new, small_oracle, "0022")
        for _ in range(3):  # never the old version again
            response = post_item(proxy, "0022")
            assert response.headers["X-Model-Version"] == small_oracle.version
            assert response.headers["X-Cache"] == "HIT"
        assert proxy.get("/metadata").json()["model"]["version"] == small_oracle.version
        assert small_oracle.version != oracle.version


def test_without_redis_answers_bypass_and_come_back_with_it(
    private_redis: Callable[..., RedisServer], oracle: ImageOracle
) -> None:
    server = private_redis()
    with launch(PATTERN, env={"REDIS_URL": server.url, "REDIS_TIMEOUT_MS": "200"}) as running:
        pred_url = running.url("pred")
        with httpx.Client(base_url=running.url(), timeout=30.0) as proxy:
            assert post_item(proxy, "0030").headers["X-Cache"] == "MISS"
            server.stop()
            before = inferences(pred_url)
            for path in ("/predict", "/predict/label"):
                response = proxy.post(path, json={"data": "0030"})
                assert response.status_code == 200, response.text
                assert response.headers["X-Cache"] == "BYPASS"
            assert_answer_of(post_item(proxy, "0030"), oracle, "0030")
            assert inferences(pred_url) - before == 3  # no cache: every request runs the model
            ready = proxy.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["redis"] == "degraded"
            expect_error(proxy.post("/predict", json={"data": "../x"}), 422, "invalid_input")
            server.start()  # the same port, empty (no persistence)
            back = poll(
                lambda: post_item(proxy, "0030"),
                lambda response: response.headers["X-Cache"] != "BYPASS",
                timeout_s=10,
                what="the cache back with Redis",
            )
            assert back.headers["X-Cache"] == "MISS"
            assert post_item(proxy, "0030").headers["X-Cache"] == "HIT"
            assert proxy.get("/ready").json()["redis"] == "ok"


def test_with_pred_gone_hits_are_still_answered_and_misses_are_503(drill_redis_url: str) -> None:
    env = {"REDIS_URL": drill_redis_url, "MODEL_INFO_TTL_S": "0.2"}
    with launch(PATTERN, env=env) as running, httpx.Client(base_url=running.url()) as proxy:
        first = post_item(proxy, "0040")
        running.processes["pred"].stop()
        # Past MODEL_INFO_TTL_S the proxy asks pred again, fails, and keeps the last version.
        hits = [post_item(proxy, "0040") for _ in range(5)]
        assert {hit.headers["X-Cache"] for hit in hits} == {"HIT"}
        assert {hit.content for hit in hits} == {first.content}
        response = proxy.post("/predict", json={"data": "0041"})
        expect_error(response, 503, "dependency_unavailable")
        assert response.headers["Retry-After"] == "1"
        expect_error(proxy.get("/ready"), 503, "dependency_unavailable")


def test_a_hung_redis_costs_a_request_its_time_out_then_bypass(
    private_redis: Callable[..., RedisServer], oracle: ImageOracle
) -> None:
    """Redis stopped with SIGSTOP (accepts connections, never answers): each Redis call gives
    up after REDIS_TIMEOUT_MS and the answer is the model's, BYPASS; SIGCONT brings the cache
    back."""
    server = private_redis()
    env = {"REDIS_URL": server.url, "REDIS_TIMEOUT_MS": "200"}
    with launch(PATTERN, env=env) as running, httpx.Client(base_url=running.url()) as proxy:
        assert post_item(proxy, "0050").headers["X-Cache"] == "MISS"
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)
        try:
            hung = post_item(proxy, "0050")
            assert hung.headers["X-Cache"] == "BYPASS"
            assert_answer_of(hung, oracle, "0050")
            assert proxy.get("/ready").json()["redis"] == "degraded"
        finally:
            server.process.send_signal(signal.SIGCONT)
        back = poll(
            lambda: post_item(proxy, "0050"),
            lambda response: response.headers["X-Cache"] == "HIT",
            timeout_s=10,
            what="the cache back after SIGCONT",
        )
        assert back.content == hung.content
