"""Fault drills on the real processes (SPEC 3.6 acceptance tests 2 and 3, SPEC 0.10 rule 3):
a backend killed, hung (SIGSTOP) and restored, a backend's 4xx passed on, all backends down.

Each drill leaves the processes as it found them, so the drills may run in any order.
BACKEND_TIMEOUT_MS is short here so that a hung backend costs little time; no assertion on a
duration has a margin under one second."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.chapter4_serving_patterns.horizontal_microservice_pattern.harness import (
    PATTERN,
    SPECIES,
    Json,
    iris_rows,
    metric_value,
    model_dir,
    onnx_probabilities,
)
from tests.support.envelope import expect_error
from tests.support.launcher import RunningPattern, launch
from tests.support.polling import poll

TIMEOUT_MS = 300
MARGIN_S = 1.0
ROWS = iris_rows()[::10]  # 15 rows, each species among them


@pytest.fixture(scope="module")
def running() -> Iterator[RunningPattern]:
    for species in SPECIES:
        model_dir(species)
    with launch(PATTERN, env={"BACKEND_TIMEOUT_MS": str(TIMEOUT_MS)}) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


def predict(proxy: httpx.Client) -> httpx.Response:
    return proxy.post("/predict", json={"data": ROWS})


def statuses(response: httpx.Response) -> dict[str, str]:
    return {name: part["status"] for name, part in response.json()["services"].items()}


def full(response: httpx.Response) -> bool:
    return response.status_code == 200 and set(statuses(response).values()) == {"ok"}


def assert_correct(answer: Json, species: str) -> None:
    np.testing.assert_allclose(
        answer["services"][species]["prediction"],
        onnx_probabilities(species, ROWS),
        rtol=0,
        atol=1e-6,
    )


def test_a_killed_backend_gives_a_partial_answer_until_restarted(
    running: RunningPattern, proxy: httpx.Client
) -> None:
    running.processes["service_virginica"].signal(signal.SIGKILL)
    try:
        response = poll(
            lambda: predict(proxy),
            lambda r: r.status_code == 200 and statuses(r)["virginica"] == "unavailable",
            what="virginica unavailable",
        )
        answer = response.json()
        assert answer["partial"] is True
        assert statuses(response) == {
            "setosa": "ok",
            "versicolor": "ok",
            "virginica": "unavailable",
        }
        assert answer["services"]["virginica"]["error"]
        assert_correct(answer, "setosa")
        assert_correct(answer, "versicolor")
        # /predict/label chooses among the services that answered
        labels = proxy.post("/predict/label", json={"data": ROWS}).json()
        assert labels["partial"] is True
        assert {row["label"] for row in labels["prediction"]} <= {"setosa", "versicolor"}
        assert proxy.get("/health/all").json()["virginica"]["status"] == "ng"
        assert proxy.get("/ready").status_code == 200  # two backends still answer
    finally:
        running.restart_process("service_virginica")
    restored = poll(lambda: predict(proxy), full, what="full answers after the restart")
    assert restored.json()["partial"] is False
    for species in SPECIES:
        assert_correct(restored.json(), species)


def test_a_hung_backend_times_out_within_the_time_out(
    running: RunningPattern, proxy: httpx.Client
) -> None:
    virginica = running.processes["service_virginica"]
    virginica.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = predict(proxy)
        elapsed_s = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert statuses(response) == {"setosa": "ok", "versicolor": "ok", "virginica": "timeout"}
        assert response.json()["partial"] is True
        assert elapsed_s < TIMEOUT_MS / 1000 + MARGIN_S
        for species in ("setosa", "versicolor"):
            assert_correct(response.json(), species)
    finally:
        virginica.signal(signal.SIGCONT)
    restored = poll(lambda: predict(proxy), full, what="full answers after SIGCONT")
    for species in SPECIES:
        assert_correct(restored.json(), species)
    calls = proxy.get("/metrics").text
    assert metric_value(calls, "proxy_backend_calls_total", service="virginica", status="timeout")


def test_a_backend_refusing_the_input_is_passed_on_as_its_4xx(
    running: RunningPattern, proxy: httpx.Client
) -> None:
    """The proxy accepts 15 rows; a virginica allowing 2 per request answers 413, and so does
    the proxy, naming it (never a 5xx, never a partial answer)."""
    virginica = running.processes["service_virginica"]
    virginica.env["MAX_ROWS"] = "2"
    try:
        running.restart_process("service_virginica")
        body = expect_error(predict(proxy), 413, "payload_too_large")
        assert "virginica" in body["error"]
        expect_error(proxy.post("/predict/label", json={"data": ROWS}), 413, "payload_too_large")
        assert full(proxy.post("/predict", json={"data": ROWS[:2]}))
    finally:
        del virginica.env["MAX_ROWS"]
        running.restart_process("service_virginica")
    assert full(predict(proxy))


def test_all_backends_down_is_a_503_naming_each(
    running: RunningPattern, proxy: httpx.Client
) -> None:
    services = [f"service_{species}" for species in SPECIES]
    for name in services:
        running.processes[name].stop()
    try:
        response = predict(proxy)
        body = expect_error(response, 503, "no_healthy_upstream")
        assert response.headers["Retry-After"] == "1"
        assert {name: part["status"] for name, part in body["services"].items()} == dict.fromkeys(
            SPECIES, "unavailable"
        )
        assert [item["loc"] for item in body["details"]] == [["services", s] for s in SPECIES]
        expect_error(proxy.post("/predict/label", json={"data": ROWS}), 503, "no_healthy_upstream")
        expect_error(proxy.get("/predict/get/test"), 503, "no_healthy_upstream")
        expect_error(proxy.get("/ready"), 503, "no_healthy_upstream")
        assert proxy.get("/health").status_code == 200  # liveness checks nothing
        # the input rules are the proxy's own: bad input is still a 422, not a 503
        expect_error(proxy.post("/predict", json={"data": [[1.0, 2.0]]}), 422, "invalid_input")
    finally:
        for name in services:
            running.start_process(name)
    assert full(poll(lambda: predict(proxy), full, what="full answers after the restarts"))
