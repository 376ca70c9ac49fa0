"""Shared checks of a tabular service: T-API (SPEC 0.3) through the real gunicorn processes:
T-oracles 1-4 and 6, the input rules with their exact status codes and error codes, and the
book's endpoints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.tabular import MAX_ROWS, Oracle, Service

SAMPLE = [[5.1, 3.5, 1.4, 0.2]]
VIRGINICA = [[6.7, 3.0, 5.2, 2.3]]
JSON = {"Content-Type": "application/json"}


def probabilities(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["prediction"], dtype=np.float64)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["error"]
    return body


# --- T-oracle 1: every iris row, one prediction each, equal to onnxruntime ----------------


def test_150_rows_give_150_predictions_equal_to_onnxruntime(
    service: Service, oracle: Oracle, iris_rows: list[list[float]]
) -> None:
    got = probabilities(service.post("/predict", {"data": iris_rows}))
    _, expected = oracle.run(iris_rows)
    assert got.shape == (150, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_labels_are_the_argmax_through_label_json(
    service: Service, oracle: Oracle, iris_rows: list[list[float]]
) -> None:
    response = service.post("/predict/label", {"data": iris_rows})
    assert response.status_code == 200, response.text
    assert response.json() == {"prediction": oracle.label_names(iris_rows)}


def test_rows_keep_their_order_and_integers_are_accepted(service: Service, oracle: Oracle) -> None:
    rows = [[6, 3, 5, 2], *VIRGINICA, *SAMPLE]
    got = probabilities(service.post("/predict", {"data": rows}))
    np.testing.assert_allclose(got, oracle.run(rows)[1], rtol=0, atol=1e-6)


# --- T-oracle 2: the test endpoints and two known rows --------------------------------------


def test_predict_test_equals_predict_on_the_sample(service: Service, oracle: Oracle) -> None:
    sample = oracle.metadata["data_sample"]
    tested = service.client.get("/predict/test")
    assert tested.json() == service.post("/predict", {"data": sample}).json()
    np.testing.assert_allclose(probabilities(tested), oracle.run(sample)[1], rtol=0, atol=1e-6)
    assert service.client.get("/predict/test/label").json() == {"prediction": ["setosa"]}


def test_the_sample_is_setosa_and_the_other_row_virginica(service: Service) -> None:
    response = service.post("/predict/label", {"data": [*SAMPLE, *VIRGINICA]})
    assert response.json() == {"prediction": ["setosa", "virginica"]}


def test_metadata_describes_the_loaded_model(service: Service, oracle: Oracle) -> None:
    metadata = service.client.get("/metadata").json()
    card = oracle.metadata
    assert metadata["model"] == {
        "name": card["name"],
        "version": card["version"],
        "sha256": card["sha256"],
    }
    assert metadata["data_sample"] == card["data_sample"]
    assert metadata["data_structure"] == "(1,4)"
    assert metadata["prediction_structure"] == "(1,3)"
    np.testing.assert_allclose(
        metadata["prediction_sample"], oracle.run(card["data_sample"])[1], rtol=0, atol=1e-6
    )
    assert metadata["labels"] == oracle.labels
    assert metadata["metrics"] == card["metrics"]
    assert service.client.get("/label").json() == oracle.labels


# --- T-oracle 4: headers --------------------------------------------------------------------


def test_prediction_responses_name_the_model_and_echo_the_request_id(
    service: Service, oracle: Oracle
) -> None:
    for response in (
        service.post("/predict", {"data": SAMPLE}, headers={"X-Request-ID": "req-42"}),
        service.post("/predict/label", {"data": SAMPLE}, headers={"X-Request-ID": "req-42"}),
        service.client.get("/predict/test", headers={"X-Request-ID": "req-42"}),
        service.client.get("/predict/test/label", headers={"X-Request-ID": "req-42"}),
    ):
        assert response.status_code == 200
        assert response.headers["X-Model-Name"] == oracle.metadata["name"]
        assert response.headers["X-Model-Version"] == oracle.metadata["version"]
        assert response.headers["X-Request-ID"] == "req-42"
    generated = service.client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32


def test_health_is_constant_and_ready_says_ready(service: Service) -> None:
    assert service.client.get("/health").json() == {"health": "ok"}
    assert service.client.get("/ready").json() == {"status": "ready"}


# --- T-oracle 3: input rules, exact status and code, never a 5xx ---------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "data"]),
        ({"data": []}, ["body", "data"]),
        ({"data": "1,2,3,4"}, ["body", "data"]),
        ({"data": [[5.1, 3.5, 1.4, 0.2]], "extra": 1}, ["body", "extra"]),
        ([[5.1, 3.5, 1.4, 0.2]], ["body"]),
        ({"data": [[5.1, 3.5, 1.4, "0.2"]]}, ["body", "data", 0, 3]),
        ({"data": [[5.1, 3.5, 1.4, True]]}, ["body", "data", 0, 3]),
        ({"data": [[5.1, 3.5, None, 0.2]]}, ["body", "data", 0, 2]),
        ({"data": [[5.1, 3.5, 1.4, [0.2]]]}, ["body", "data", 0, 3]),
        ({"data": [[5.1, 3.5, 1.4, 0.2], 7]}, ["body", "data", 1]),
    ],
    ids=[
        "empty",
        "no-rows",
        "not-rows",
        "unknown-field",
        "bare-list",
        "string",
        "bool",
        "null",
        "nested",
        "row-not-a-list",
    ],
)
def test_malformed_bodies_are_422(service: Service, body: Any, loc: list[Any]) -> None:
    error = assert_error(service.post("/predict", body), 422, "invalid_input")
    assert error["details"][0]["loc"] == loc


@pytest.mark.parametrize("path", ["/predict", "/predict/label"])
def test_a_row_of_the_wrong_width_is_422_naming_row_and_width(service: Service, path: str) -> None:
    rows = [*SAMPLE, *SAMPLE, [5.1, 3.5, 1.4]]
    error = assert_error(service.post(path, {"data": rows}), 422, "invalid_input")
    assert error["details"][0]["loc"] == ["body", "data", 2]
    assert "row 2" in error["error"]
    assert "expected 4" in error["error"]


@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e39", "-3.5e38", "1" + "0" * 400],
)
def test_non_finite_or_out_of_float32_values_are_422(service: Service, value: str) -> None:
    # Python's json reads NaN/Infinity tokens and turns 1e999 into inf: sent as raw text.
    content = f'{{"data": [[5.1, 3.5, 1.4, {value}]]}}'
    response = service.client.post("/predict", content=content, headers=JSON)
    error = assert_error(response, 422, "invalid_input")
    assert error["details"][0]["loc"] == ["body", "data", 0, 3]


@pytest.mark.parametrize(
    "content",
    [b'{"data": [[5.1, 3.5', b"", b"\xff\xfe{}", b"[" * 100_000, b'{"data": [[1,2,3,4]]} x'],
    ids=["truncated", "empty", "not-utf8", "deeply-nested", "trailing"],
)
def test_malformed_json_is_422(service: Service, content: bytes) -> None:
    response = service.client.post("/predict", content=content, headers=JSON)
    assert_error(response, 422, "invalid_input")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_is_415(service: Service, content_type: str) -> None:
    response = service.client.post(
        "/predict",
        content=b'{"data": [[5.1, 3.5, 1.4, 0.2]]}',
        headers={"Content-Type": content_type},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_json_media_types_with_parameters_are_accepted(service: Service) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = service.client.post(
            "/predict",
            content=b'{"data": [[5.1, 3.5, 1.4, 0.2]]}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 200, response.text


def test_more_than_max_rows_is_413(service: Service) -> None:
    error = assert_error(
        service.post("/predict", {"data": SAMPLE * (MAX_ROWS + 1)}), 413, "payload_too_large"
    )
    assert str(MAX_ROWS) in error["error"]
    assert probabilities(service.post("/predict", {"data": SAMPLE * MAX_ROWS})).shape == (150, 3)


def test_a_body_larger_than_max_rows_can_take_is_413_before_parsing(service: Service) -> None:
    content = b'{"data": [[5.1, 3.5, 1.4, 0.2]]' + b" " * 4_000_000 + b"}"
    response = service.client.post("/predict", content=content, headers=JSON)
    assert_error(response, 413, "payload_too_large")


def test_unknown_routes_and_methods_answer_in_the_envelope(service: Service) -> None:
    assert_error(service.client.get("/nowhere"), 404, "not_found")
    assert_error(service.client.get("/predict"), 405, "method_not_allowed")


# --- T-oracle 6: the OpenAPI document holds ---------------------------------------------------

SCHEMATHESIS_CONFIG = """
# 413 is how the T-API refuses too many rows (SPEC 0.3); schemathesis does not expect it.
[checks.negative_data_rejection]
expected-statuses = ["400", "404", "405", "413", "415", "422"]

# A V2 body can match the schema and still be a 400: that its shape and data length agree,
# and that they fit the model, is not something JSON Schema can say (SPEC 0.5 rule 3).
[[operations]]
include-path-regex = "/infer$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "413"]

# The served model's own name and version, so that V2 calls reach the model.
[parameters]
"path.name" = "{name}"
"path.version" = "{version}"
"""


def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    service: Service, oracle: Oracle, tmp_path: Path
) -> None:
    """Every check schemathesis has, ≤ 50 examples per operation, fixed seed."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        SCHEMATHESIS_CONFIG.format(name=oracle.metadata["name"], version=oracle.metadata["version"])
    )
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        f"--config-file={config}",
        "run",
        f"{service.url}/openapi.json",
        "--checks=all",
        "--phases=examples,coverage,fuzzing",
        "--max-examples=50",
        "--seed=20261126",
        "--generation-database=none",
        "--request-timeout=10",
        "--no-color",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
