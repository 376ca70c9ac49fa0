"""Shared checks of a tabular service, V2 (SPEC 0.5): conformance with the stock client
(tritonclient.http, JSON mode), T-oracle 5 (infer equals POST /predict exactly), the version
forms, 404 and 400 answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import tritonclient.http as triton

from tests.support.tabular import Oracle, Service, TabularPattern

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[Any]:
    address = urlsplit(service.url).netloc
    client = triton.InferenceServerClient(url=address, connection_timeout=10, network_timeout=10)
    yield client
    client.close()


def infer(client: Any, model: str, rows: Any, version: str = "") -> Any:
    tensor = triton.InferInput("input", list(np.shape(rows)), "FP32")
    tensor.set_data_from_numpy(np.asarray(rows, dtype=np.float32), binary_data=False)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=False) for name in ("label", "probabilities")
    ]
    return client.infer(model, [tensor], model_version=version, outputs=outputs)


def v2_body(**tensor: Any) -> dict[str, Any]:
    base = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}
    return {"inputs": [{**base, **tensor}]}


def test_stock_client_sees_a_live_ready_server_and_model(client: Any, oracle: Oracle) -> None:
    name, version = oracle.metadata["name"], oracle.metadata["version"]
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(name)
    assert client.is_model_ready(name, version)
    metadata = client.get_model_metadata(name)
    assert metadata["name"] == name
    assert metadata["versions"] == [version]
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]
    assert client.get_model_metadata(name, version) == metadata


@pytest.mark.parametrize("versioned", [False, True], ids=["latest", "versioned"])
def test_stock_client_infer_equals_onnxruntime(
    client: Any, oracle: Oracle, iris_rows: list[list[float]], versioned: bool
) -> None:
    version = oracle.metadata["version"] if versioned else ""
    result = infer(client, oracle.metadata["name"], iris_rows, version)
    label, probabilities = oracle.run(iris_rows)
    np.testing.assert_array_equal(result.as_numpy("label"), label)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=0, atol=1e-6)
    assert result.as_numpy("probabilities").shape == (150, 3)


def test_infer_equals_predict_exactly(service: Service, oracle: Oracle) -> None:
    """T-oracle 5: the same rows through V2 and through the T-API give the same numbers."""
    body = v2_body(shape=[3, 4], data=[value for row in ROWS for value in row])
    answer = service.post(f"/v2/models/{oracle.metadata['name']}/infer", body)
    assert answer.status_code == 200, answer.text
    outputs = {output["name"]: output for output in answer.json()["outputs"]}
    assert outputs["probabilities"]["shape"] == [3, 3]
    predicted = service.post("/predict", {"data": ROWS}).json()["prediction"]
    flat = [value for row in predicted for value in row]
    assert outputs["probabilities"]["data"] == flat
    assert outputs["label"] == {
        "name": "label",
        "datatype": "INT64",
        "shape": [3],
        "data": oracle.run(ROWS)[0].tolist(),
    }
    assert answer.headers["X-Model-Version"] == oracle.metadata["version"]


def test_nested_data_requested_outputs_and_the_id_echo(service: Service, oracle: Oracle) -> None:
    body = {**v2_body(shape=[2, 4], data=ROWS[:2]), "id": "my-id", "outputs": [{"name": "label"}]}
    answer = service.post(f"/v2/models/{oracle.metadata['name']}/infer", body).json()
    assert answer["id"] == "my-id"
    assert answer["model_name"] == oracle.metadata["name"]
    assert answer["model_version"] == oracle.metadata["version"]
    assert [output["name"] for output in answer["outputs"]] == ["label"]


def test_server_metadata(service: Service, tabular_pattern: TabularPattern) -> None:
    body = service.client.get("/v2").json()
    assert body["name"] == tabular_pattern.name
    assert body["extensions"] == []
    assert service.client.get("/v2/health/live").status_code == 200
    assert service.client.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/iris_rf",
        "/v2/models/iris_rf/ready",
        "/v2/models/iris_svc/versions/000000000000",
        "/v2/models/iris_svc/versions/000000000000/ready",
    ],
)
def test_unknown_model_or_version_is_404(service: Service, path: str) -> None:
    response = service.client.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/v2/models/iris_rf/infer", "/v2/models/iris_svc/versions/000000000000/infer"]
)
def test_infer_on_an_unknown_model_or_version_is_404(service: Service, path: str) -> None:
    response = service.post(path, v2_body())
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    "body",
    [
        v2_body(name="features"),
        v2_body(datatype="FP64"),
        v2_body(datatype="INT64", data=[5, 3, 1, 0]),
        v2_body(shape=[2, 4]),
        v2_body(shape=[1, 3], data=[5.1, 3.5, 1.4]),
        v2_body(shape=[4]),
        v2_body(shape=[0, 4], data=[]),
        v2_body(data=[5.1, 3.5, 1.4, "0.2"]),
        v2_body(data=[5.1, 3.5, 1.4, None]),
        v2_body(data=[[[5.1, 3.5, 1.4, 0.2]]]),
        {**v2_body(), "outputs": [{"name": "scores"}]},
        {"inputs": []},
        {"inputs": [v2_body()["inputs"][0], v2_body()["inputs"][0]]},
        {"id": "no inputs"},
        [1, 2, 3],
    ],
    ids=[
        "input-name",
        "fp64",
        "int64",
        "shape-vs-data",
        "feature-count",
        "rank-1",
        "no-rows",
        "string",
        "null",
        "nested-too-deep",
        "unknown-output",
        "no-inputs",
        "two-inputs",
        "missing-inputs",
        "not-an-object",
    ],
)
def test_a_bad_infer_request_is_400(service: Service, body: Any) -> None:
    response = service.post("/v2/models/iris_svc/infer", body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e999"])
def test_non_finite_tensor_data_is_400(service: Service, value: str) -> None:
    content = (
        '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], '
        f'"data": [5.1, 3.5, 1.4, {value}]}}]}}'
    )
    response = service.client.post("/v2/models/iris_svc/infer", content=content)
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["loc"] == ["body", "inputs", 0, "data", 3]


def test_malformed_json_is_400(service: Service) -> None:
    response = service.client.post("/v2/models/iris_svc/infer", content=b'{"inputs": [')
    assert response.status_code == 400, response.text
