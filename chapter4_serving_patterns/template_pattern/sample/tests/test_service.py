"""T-oracles 1-3 of SPEC 0.3 on the generated service, against onnxruntime."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import DATA_SAMPLE, FEATURE_NAMES, MAX_ROWS, Oracle, Service

JSON = {"Content-Type": "application/json"}
WIDTH = len(FEATURE_NAMES)


def prediction(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["prediction"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["error"]
    return body


def test_the_service_is_alive_ready_and_measured(service: Service) -> None:
    assert service.client.get("/health").json() == {"health": "ok"}
    assert service.client.get("/ready").status_code == 200
    assert service.client.get("/metrics").status_code == 200


# --- T-oracle 1: every iris row, one prediction each, equal to onnxruntime ----------------


def test_150_rows_equal_onnxruntime(
    service: Service, oracle: Oracle, iris_rows: list[list[float]]
) -> None:
    got = np.asarray(prediction(service.post("/predict", {"data": iris_rows})))
    expected = oracle.probabilities(iris_rows)
    assert got.shape == expected.shape == (150, len(oracle.labels))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_labels_are_the_argmax_through_label_json(
    service: Service, oracle: Oracle, iris_rows: list[list[float]]
) -> None:
    got = prediction(service.post("/predict/label", {"data": iris_rows}))
    assert got == oracle.label_names(iris_rows)


def test_the_variables_data_sample_is_predicted_as_onnxruntime_does(
    service: Service, oracle: Oracle
) -> None:
    got = np.asarray(prediction(service.post("/predict", {"data": DATA_SAMPLE})))
    np.testing.assert_allclose(got, oracle.probabilities(DATA_SAMPLE), rtol=0, atol=1e-6)


# --- T-oracle 2: the test endpoints are the sample row, predicted now ---------------------


def test_predict_test_equals_predict_on_the_sample_row(service: Service, oracle: Oracle) -> None:
    sample = oracle.metadata["data_sample"]
    expected = prediction(service.post("/predict", {"data": sample}))
    assert prediction(service.client.get("/predict/test")) == expected
    labels = prediction(service.client.get("/predict/test/label"))
    assert labels == oracle.label_names(sample)
    assert labels == ["setosa"]
    virginica = service.post("/predict/label", {"data": [[6.7, 3.0, 5.2, 2.3]]})
    assert prediction(virginica) == ["virginica"]


def test_metadata_and_label_describe_the_copied_model(service: Service, oracle: Oracle) -> None:
    metadata = service.client.get("/metadata").json()
    assert metadata["model"]["version"] == oracle.metadata["version"]
    assert service.client.get("/label").json() == oracle.labels


# --- T-oracle 3: each input rule, its exact status and error code, never a 5xx ------------


@pytest.mark.parametrize(
    "body",
    [{}, {"data": []}, {"data": "rows"}, {"data": [["a"] * WIDTH]}, {"data": [[None] * WIDTH]}],
    ids=["no-data", "no-rows", "not-rows", "string", "null"],
)
def test_malformed_bodies_are_422(service: Service, body: Any) -> None:
    assert_error(service.post("/predict", body), 422, "invalid_input")


@pytest.mark.parametrize("path", ["/predict", "/predict/label"])
def test_a_row_of_the_wrong_width_is_422_naming_row_and_width(service: Service, path: str) -> None:
    rows = [DATA_SAMPLE[0], DATA_SAMPLE[0][:-1]]
    error = assert_error(service.post(path, {"data": rows}), 422, "invalid_input")
    assert "row 1" in error["error"]
    assert f"expected {WIDTH}" in error["error"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_values_are_422(service: Service, value: str) -> None:
    row = ", ".join([*map(json.dumps, DATA_SAMPLE[0][:-1]), value])
    content = '{"data": [[' + row + "]]}"  # Python's json would not write these tokens
    response = service.client.post("/predict", content=content, headers=JSON)
    assert_error(response, 422, "invalid_input")


def test_integers_are_accepted(service: Service, oracle: Oracle) -> None:
    rows = [[round(value) for value in DATA_SAMPLE[0]]]
    got = np.asarray(prediction(service.post("/predict", {"data": rows})))
    np.testing.assert_allclose(got, oracle.probabilities(rows), rtol=0, atol=1e-6)


@pytest.mark.parametrize("content", [b'{"data": [[5.1', b"", b"\xff\xfe{}"])
def test_malformed_json_is_422(service: Service, content: bytes) -> None:
    response = service.client.post("/predict", content=content, headers=JSON)
    assert_error(response, 422, "invalid_input")


def test_a_body_that_is_not_json_is_415(service: Service) -> None:
    content = json.dumps({"data": DATA_SAMPLE}).encode()
    response = service.client.post(
        "/predict", content=content, headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415, "unsupported_media_type")


def test_more_than_max_rows_is_413(service: Service) -> None:
    rows = [DATA_SAMPLE[0]] * (MAX_ROWS + 1)
    error = assert_error(service.post("/predict", {"data": rows}), 413, "payload_too_large")
    assert str(MAX_ROWS) in error["error"]
