"""The composition proxy in front of the three real model services: SPEC 3.6 acceptance test 1
(each service's part of the 150-row answer equals onnxruntime; /predict/label is the argmax of
the class-0 probabilities), the book's routes, the T-API input rules answered by the proxy
itself (acceptance test 3), and the request id reaching every backend (behaviour 3)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial

import httpx
import numpy as np
import pytest

from tests.chapter4_serving_patterns.horizontal_microservice_pattern.harness import (
    PATTERN,
    SAMPLE,
    SPECIES,
    iris_rows,
    metadata,
    metric_value,
    model_dir,
    onnx_probabilities,
)
from tests.support.envelope import expect_error
from tests.support.launcher import RunningPattern, RunningProcess, launch
from tests.support.polling import log_records
from tests.support.ports import wait_until

MAX_ROWS = 200


@pytest.fixture(scope="module")
def running() -> Iterator[RunningPattern]:
    for species in SPECIES:
        model_dir(species)
    with launch(PATTERN, env={"MAX_ROWS": str(MAX_ROWS)}) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


def test_each_service_part_equals_onnxruntime_on_150_rows(proxy: httpx.Client) -> None:
    rows = iris_rows()
    response = proxy.post("/predict", json={"data": rows})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["partial"] is False
    assert list(answer["services"]) == list(SPECIES)
    for species in SPECIES:
        part = answer["services"][species]
        assert part["status"] == "ok"
        assert isinstance(part["latency_ms"], float) and part["latency_ms"] > 0
        np.testing.assert_allclose(
            part["prediction"], onnx_probabilities(species, rows), rtol=0, atol=1e-6
        )


def test_label_is_the_argmax_of_class_0_probabilities(proxy: httpx.Client) -> None:
    rows = iris_rows()
    response = proxy.post("/predict/label", json={"data": rows})
    assert response.status_code == 200, response.text
    answer = response.json()
    class_0 = np.stack([onnx_probabilities(s, rows)[:, 0] for s in SPECIES], axis=1)
    winners = np.argmax(class_0, axis=1)
    assert [row["label"] for row in answer["prediction"]] == [SPECIES[i] for i in winners]
    np.testing.assert_allclose(
        [row["proba"] for row in answer["prediction"]],
        class_0[np.arange(len(rows)), winners],
        rtol=0,
        atol=1e-6,
    )
    assert answer["partial"] is False
    assert {s: part["status"] for s, part in answer["services"].items()} == dict.fromkeys(
        SPECIES, "ok"
    )
    assert len(set(winners.tolist())) == 3  # every service wins some rows


def test_demo_row_label(proxy: httpx.Client) -> None:
    rows = [[1.0, 2.0, 3.0, 4.0]]
    class_0 = [float(onnx_probabilities(s, rows)[0, 0]) for s in SPECIES]
    best = int(np.argmax(class_0))
    answer = proxy.post("/predict/label", json={"data": rows}).json()
    assert answer["prediction"][0]["label"] == SPECIES[best]
    assert answer["prediction"][0]["proba"] == pytest.approx(class_0[best], abs=1e-6)


@pytest.mark.parametrize("path", ["/predict/get/test", "/predict/post/test"])
def test_the_books_test_routes(proxy: httpx.Client, path: str) -> None:
    response = proxy.get(path)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["partial"] is False
    for species in SPECIES:
        np.testing.assert_allclose(
            answer["services"][species]["prediction"],
            onnx_probabilities(species, SAMPLE),
            rtol=0,
            atol=1e-6,
        )
    # the demo's claim: setosa's own service is sure of the sample, about [0.98, 0.02]
    assert answer["services"]["setosa"]["prediction"][0][0] > 0.9


def test_health_all_ready_and_health(proxy: httpx.Client) -> None:
    assert proxy.get("/health/all").json() == {s: {"status": "ok"} for s in SPECIES}
    assert proxy.get("/ready").status_code == 200
    assert proxy.get("/health").json() == {"health": "ok"}


def test_metadata_names_each_backend_model(proxy: httpx.Client) -> None:
    described = proxy.get("/metadata").json()
    assert described["data_sample"] == SAMPLE
    for species in SPECIES:
        service = described["services"][species]
        assert service["status"] == "ok"
        assert service["model"]["version"] == metadata(species)["version"]
        assert service["labels"] == {"0": species, "1": "other"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({}, 422, id="no data"),
        pytest.param({"data": []}, 422, id="no rows"),
        pytest.param({"data": [[5.1, 3.5, 1.4]]}, 422, id="three features"),
        pytest.param({"data": [[5.1, "x", 1.4, 0.2]]}, 422, id="a string"),
        pytest.param({"data": [[5.1, 1e39, 1.4, 0.2]]}, 422, id="beyond float32"),
        pytest.param({"data": [SAMPLE[0]] * (MAX_ROWS + 1)}, 413, id="too many rows"),
    ],
)
def test_input_rules_are_the_proxys_own(
    running: RunningPattern, proxy: httpx.Client, body: object, status: int
) -> None:
    """Refused by the proxy: no backend receives the request."""
    code = "payload_too_large" if status == 413 else "invalid_input"
    request_id = f"refused-{uuid.uuid4().hex[:12]}"
    for path in ("/predict", "/predict/label"):
        response = proxy.post(path, json=body, headers={"X-Request-ID": request_id})
        expect_error(response, status, code)
    assert proxy.get("/health").status_code == 200  # every access line before it is written
    for species in SPECIES:
        assert request_id not in running.processes[f"service_{species}"].log_text()


def test_the_wrong_width_names_the_row(proxy: httpx.Client) -> None:
    body = expect_error(
        proxy.post("/predict", json={"data": [SAMPLE[0], [1.0]]}), 422, "invalid_input"
    )
    assert "row 1" in body["error"] and "expected 4" in body["error"]


def test_malformed_json_nan_and_other_media_types(proxy: httpx.Client) -> None:
    json_type = {"Content-Type": "application/json"}
    malformed = proxy.post("/predict", content='{"data": [[', headers=json_type)
    expect_error(malformed, 422, "invalid_input")
    nan = proxy.post("/predict", content='{"data": [[NaN, 1, 2, 3]]}', headers=json_type)
    expect_error(nan, 422, "invalid_input")
    plain = proxy.post("/predict", content="1,2,3,4", headers={"Content-Type": "text/plain"})
    expect_error(plain, 415, "unsupported_media_type")


def test_the_request_id_reaches_every_backend(running: RunningPattern, proxy: httpx.Client) -> None:
    request_id = f"fan-out-{uuid.uuid4().hex[:12]}"
    response = proxy.post("/predict", json={"data": SAMPLE}, headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id
    for species in SPECIES:
        process = running.processes[f"service_{species}"]
        wait_until(
            partial(access_logged, process, request_id, "/predict"),
            timeout_s=10,
            what=f"{request_id} in the access log of {process.name}",
        )


def access_logged(process: RunningProcess, request_id: str, path: str) -> bool:
    return any(
        record.get("request_id") == request_id and record.get("path") == path
        for record in log_records(process.log_text())
    )


def test_metrics_count_backend_calls(proxy: httpx.Client) -> None:
    name = "proxy_backend_calls_total"
    before = {
        s: metric_value(proxy.get("/metrics").text, name, service=s, status="ok") for s in SPECIES
    }
    assert proxy.post("/predict", json={"data": SAMPLE}).status_code == 200
    text = proxy.get("/metrics").text
    assert {s: metric_value(text, name, service=s, status="ok") - before[s] for s in SPECIES} == (
        dict.fromkeys(SPECIES, 1.0)
    )
