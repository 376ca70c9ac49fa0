"""Fault drills on the real processes (SPEC 3.5 acceptance test 3, SPEC 0.10 rule 3): pred hung
(SIGSTOP) → 504 within PRED_TIMEOUT_MS; pred killed (SIGKILL) → 503 with Retry-After; pred
restarted → answers again, prep never restarted; pred serving another version of the model →
prep unready and refusing to predict with it.

Each drill leaves the processes as it found them, so the drills may run in any order.
PRED_TIMEOUT_MS is short here so that a hung pred costs little time; no assertion on a
duration has a margin under one second."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.chapter4_serving_patterns.prep_pred_pattern.harness import (
    DATA_DIR,
    PATTERN,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import ImageOracle, encode
from tests.support.image_models import write_image_model_directory
from tests.support.launcher import RunningPattern, launch
from tests.support.polling import poll

TIMEOUT_MS = 500
MARGIN_S = 1.0


@pytest.fixture(scope="module")
def running(digits_dir: Path) -> Iterator[RunningPattern]:
    with launch(PATTERN, env={"PRED_TIMEOUT_MS": str(TIMEOUT_MS)}) as running:
        yield running


@pytest.fixture(scope="module")
def prep(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def image() -> bytes:
    return (DATA_DIR / "test_png" / "0001.png").read_bytes()


def predict(prep: httpx.Client, image: bytes) -> httpx.Response:
    return prep.post("/predict", json={"image_data": encode(image)})


def correct(response: httpx.Response, oracle: ImageOracle, image: bytes) -> bool:
    if response.status_code != 200:
        return False
    expected = oracle.probabilities([image])[0]
    return bool(np.allclose(response.json()["prediction"], expected, rtol=0, atol=1e-6))


@pytest.fixture(scope="module")
def oracle(digits_dir: Path) -> ImageOracle:
    return ImageOracle(digits_dir)


def test_a_hung_pred_is_a_504_within_the_time_out(
    running: RunningPattern, prep: httpx.Client, oracle: ImageOracle, image: bytes
) -> None:
    pred = running.processes["pred"]
    pred.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = predict(prep, image)
        elapsed_s = time.monotonic() - started
        body = expect_error(response, 504, "upstream_timeout")
        assert str(TIMEOUT_MS) in body["error"]
        assert elapsed_s < TIMEOUT_MS / 1000 + MARGIN_S
        expect_error(prep.get("/predict/test"), 504, "upstream_timeout")
        expect_error(prep.get("/ready"), 503, "dependency_unavailable")
        assert prep.get("/health").status_code == 200  # liveness checks nothing
    finally:
        pred.signal(signal.SIGCONT)
    poll(lambda: predict(prep, image), lambda r: correct(r, oracle, image), what="after SIGCONT")
    metrics = prep.get("/metrics").text
    assert 'pred_calls_total{method="POST",outcome="timeout"}' in metrics


def test_a_killed_pred_is_a_503_until_restarted_without_restarting_prep(
    running: RunningPattern, prep: httpx.Client, oracle: ImageOracle, image: bytes
) -> None:
    prep_pid = running.processes["prep"].pid
    running.processes["pred"].signal(signal.SIGKILL)
    try:
        response = poll(
            lambda: predict(prep, image), lambda r: r.status_code == 503, what="503 once killed"
        )
        body = expect_error(response, 503, "dependency_unavailable")
        assert response.headers["Retry-After"] == "1"
        assert "unreachable" in body["error"]
        ready = prep.get("/ready")
        expect_error(ready, 503, "dependency_unavailable")
        assert ready.headers["Retry-After"] == "1"
    finally:
        running.restart_process("pred")
    poll(lambda: predict(prep, image), lambda r: correct(r, oracle, image), what="after restart")
    assert prep.get("/ready").status_code == 200
    assert running.processes["prep"].pid == prep_pid and running.processes["prep"].alive()


def test_pred_serving_another_version_makes_prep_unready_and_refuse(
    running: RunningPattern,
    prep: httpx.Client,
    oracle: ImageOracle,
    image: bytes,
    tmp_path: Path,
) -> None:
    """Another digits_resnet (same name, same input, other weights: another sha256): prep's
    /ready says so, and prep never presents that model's output as the one it describes."""
    other = write_image_model_directory(
        tmp_path, name=oracle.name, size=(32, 32), class_count=10, shorter_side=32, seed=5
    )
    pred = running.processes["pred"]
    pred.env["MODEL_DIR"] = str(other)
    try:
        running.restart_process("pred")
        body = expect_error(prep.get("/ready"), 503, "dependency_unavailable")
        other_version = ImageOracle(other).version
        assert oracle.version in body["error"] and other_version in body["error"]
        refused = expect_error(predict(prep, image), 503, "dependency_unavailable")
        assert oracle.version in refused["error"]
    finally:
        pred.env["MODEL_DIR"] = str(oracle.model_dir)
        running.restart_process("pred")
    assert prep.get("/ready").status_code == 200
    assert correct(predict(prep, image), oracle, image)
