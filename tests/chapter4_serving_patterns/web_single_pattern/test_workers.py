"""SPEC 3.1 acceptance: with 2 workers, 40 sequential requests all succeed with identical
answers, and /metrics (collected across the workers) counts exactly 40 predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from src.app.serving import INLINE_BODY_BYTES
from tests.support.ports import wait_until
from tests.support.tabular import MAX_ROWS, Oracle, Service

REQUESTS = 40


def metric(service: Service, name: str, labels: dict[str, str]) -> float:
    """One sample of /metrics (0 before the first observation)."""
    text = service.client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def worker_pids(service: Service) -> list[int]:
    master = service.running.processes["api"].pid
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def test_40_sequential_requests_on_2_workers_are_identical_and_counted(
    service: Service, oracle: Oracle
) -> None:
    assert len(worker_pids(service)) == 2
    model = {"model_name": oracle.metadata["name"], "model_version": oracle.metadata["version"]}
    before = metric(service, "predictions_total", model)
    inferences_before = metric(service, "model_inference_seconds_count", model)
    answers = []
    for _ in range(REQUESTS):
        # a new connection each time, so that both workers take requests
        response = httpx.post(
            f"{service.url}/predict",
            json={"data": [[5.1, 3.5, 1.4, 0.2]]},
            headers={"Connection": "close"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert all(answer == answers[0] for answer in answers)
    assert metric(service, "predictions_total", model) - before == REQUESTS
    assert metric(service, "model_inference_seconds_count", model) - inferences_before == REQUESTS
    requests = {"method": "POST", "route": "/predict", "status": "200"}
    assert metric(service, "http_requests_total", requests) >= REQUESTS


def access_line(service: Service, request_id: str) -> dict[str, Any]:
    """The one access line of a request (written once its response has gone out)."""
    process = service.running.processes["api"]

    def lines() -> list[str]:
        return [line for line in process.log_text().splitlines() if f'"{request_id}"' in line]

    wait_until(lambda: bool(lines()), timeout_s=5, what=f"the access line of {request_id}")
    assert len(lines()) == 1, lines()
    record: dict[str, Any] = json.loads(lines()[0])
    return record


def test_the_access_line_of_a_prediction_names_the_model(service: Service, oracle: Oracle) -> None:
    """One JSON line per request; a prediction's carries model, version, rows and timings."""
    response = service.client.post(
        "/predict", json={"data": [[5.1, 3.5, 1.4, 0.2]] * 3}, headers={"X-Request-ID": "log-me"}
    )
    assert response.status_code == 200
    record = access_line(service, "log-me")
    assert record["logger"] == "access"
    assert record["model_name"] == oracle.metadata["name"]
    assert record["model_version"] == oracle.metadata["version"]
    assert record["rows"] == 3
    assert record["status"] == 200
    assert record["latency_ms"] >= record["inference_ms"] > 0


def test_a_large_body_is_answered_from_a_worker_thread_alike(
    service: Service, oracle: Oracle
) -> None:
    """Bodies over INLINE_BODY_BYTES are handled in the thread pool: same answers, same log."""
    rows = np.random.default_rng(7).uniform(0.1, 8.0, size=(MAX_ROWS, 4)).tolist()
    content = json.dumps({"data": rows}).encode()
    assert len(content) > INLINE_BODY_BYTES
    response = service.client.post(
        "/predict",
        content=content,
        headers={"Content-Type": "application/json", "X-Request-ID": "large-body"},
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["prediction"], oracle.run(rows)[1], atol=1e-6)
    record = access_line(service, "large-body")
    assert record["rows"] == MAX_ROWS
    assert record["model_version"] == oracle.metadata["version"]
