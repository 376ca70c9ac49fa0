"""pred alone, through its real gunicorn process: SPEC 3.5 acceptance test 4, the V2
conformance oracle of SPEC 0.5 (a stock client, tritonclient.http in JSON mode, against
onnxruntime run here ≤ 1e-6), the request rules (400 / 404 / 413), and any model directory of
SPEC 0.2 served without a code change (a tabular one with an INT64 output too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import onnxruntime
import pytest
import tritonclient.http as triton
from numpy.typing import NDArray

from tests.chapter4_serving_patterns.prep_pred_pattern.harness import (
    PATTERN,
    metadata_of,
    tabular_model_directory,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import ImageOracle, LabelledImage
from tests.support.launcher import RunningPattern, launch

MAX_BATCH_SIZE = 16
BATCH = 8


@pytest.fixture(scope="module")
def running(digits_dir: Path) -> Iterator[RunningPattern]:
    env = {"MAX_BATCH_SIZE": str(MAX_BATCH_SIZE), "MODEL_DIR": str(digits_dir)}
    with launch(PATTERN, only=["pred"], env=env) as running:
        yield running


@pytest.fixture(scope="module")
def pred(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url("pred"), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def stock(running: RunningPattern) -> Iterator[Any]:
    address = urlsplit(running.url("pred")).netloc
    client = triton.InferenceServerClient(url=address, connection_timeout=10, network_timeout=10)
    yield client
    client.close()


@pytest.fixture(scope="module")
def oracle(digits_dir: Path) -> ImageOracle:
    return ImageOracle(digits_dir)


@pytest.fixture(scope="module")
def batch(oracle: ImageOracle, png_images: list[LabelledImage]) -> NDArray[np.float32]:
    """Reference tensors of held-out digits, [BATCH, 3, 32, 32]."""
    return oracle.tensors([image.data for image in png_images[:BATCH]])


def infer_body(tensor: NDArray[np.float32], **changes: Any) -> dict[str, Any]:
    base = {
        "name": "input",
        "datatype": "FP32",
        "shape": list(tensor.shape),
        "data": tensor.ravel().tolist(),
    }
    return {"inputs": [{**base, **changes}]}


def stock_infer(stock: Any, name: str, tensor: NDArray[np.float32], version: str = "") -> Any:
    tensors = triton.InferInput("input", list(tensor.shape), "FP32")
    tensors.set_data_from_numpy(tensor, binary_data=False)
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=False)]
    return stock.infer(name, [tensors], model_version=version, outputs=outputs)


def test_the_stock_client_sees_a_live_ready_server_and_its_model(
    stock: Any, oracle: ImageOracle
) -> None:
    name, version = oracle.name, oracle.version
    assert stock.is_server_live()
    assert stock.is_server_ready()
    assert stock.is_model_ready(name)
    assert stock.is_model_ready(name, version)
    metadata = stock.get_model_metadata(name)
    assert metadata == {
        "name": name,
        "versions": [version],
        "platform": "onnxruntime_onnx",
        "inputs": oracle.metadata["inputs"],
        "outputs": oracle.metadata["outputs"],
    }
    assert stock.get_model_metadata(name, version) == metadata
    assert stock.get_server_metadata()["extensions"] == []


@pytest.mark.parametrize("versioned", [False, True], ids=["latest", "versioned"])
def test_stock_client_infer_equals_onnxruntime(
    stock: Any, oracle: ImageOracle, batch: NDArray[np.float32], versioned: bool
) -> None:
    result = stock_infer(stock, oracle.name, batch, oracle.version if versioned else "")
    served = result.as_numpy("probabilities")
    assert served.shape == (BATCH, len(oracle.label_names))
    np.testing.assert_allclose(served, oracle.run(batch), rtol=0, atol=1e-6)


def test_without_requested_outputs_every_output_comes_back_as_json(
    stock: Any, oracle: ImageOracle, batch: NDArray[np.float32]
) -> None:
    """tritonclient then asks for binary outputs; pred answers JSON, which the client reads."""
    tensor = triton.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=False)
    result = stock.infer(oracle.name, [tensor])
    np.testing.assert_allclose(result.as_numpy("probabilities"), oracle.run(batch), atol=1e-6)


def test_nested_data_and_the_id_echo(
    pred: httpx.Client, oracle: ImageOracle, batch: NDArray[np.float32]
) -> None:
    body = {**infer_body(batch[:2], data=batch[:2].tolist()), "id": "my-id"}
    response = pred.post(f"/v2/models/{oracle.name}/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["id"], answer["model_name"], answer["model_version"]) == (
        "my-id",
        oracle.name,
        oracle.version,
    )
    [output] = answer["outputs"]
    assert output["shape"] == [2, len(oracle.label_names)]
    expected = oracle.run(batch[:2]).ravel()
    np.testing.assert_allclose(output["data"], expected, rtol=0, atol=1e-6)
    assert response.headers["X-Model-Version"] == oracle.version


def test_health_ready_and_metrics(pred: httpx.Client, oracle: ImageOracle) -> None:
    assert pred.get("/health").json() == {"health": "ok"}
    assert pred.get("/ready").json() == {
        "status": "ready",
        "model": oracle.name,
        "version": oracle.version,
    }
    assert pred.get("/v2/health/live").status_code == 200
    assert pred.get("/v2/health/ready").json() == {"ready": True}
    metrics = pred.get("/metrics").text
    assert f'model_inference_seconds_count{{model_name="{oracle.name}"' in metrics


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/iris_svc",
        "/v2/models/iris_svc/ready",
        "/v2/models/{name}/versions/000000000000",
        "/v2/models/{name}/versions/000000000000/ready",
    ],
)
def test_an_unknown_model_or_version_is_404(
    pred: httpx.Client, oracle: ImageOracle, path: str
) -> None:
    expect_error(pred.get(path.format(name=oracle.name)), 404, "not_found")


@pytest.mark.parametrize(
    "path", ["/v2/models/iris_svc/infer", "/v2/models/{name}/versions/000000000000/infer"]
)
def test_infer_on_an_unknown_model_or_version_is_404(
    pred: httpx.Client, oracle: ImageOracle, batch: NDArray[np.float32], path: str
) -> None:
    expect_error(
        pred.post(path.format(name=oracle.name), json=infer_body(batch[:1])), 404, "not_found"
    )


def bad_bodies(tensor: NDArray[np.float32]) -> dict[str, Any]:
    flat = tensor.ravel().tolist()
    return {
        "input-name": infer_body(tensor, name="image"),
        "fp64": infer_body(tensor, datatype="FP64"),
        "bytes": infer_body(tensor, datatype="BYTES"),
        "shape-vs-data": infer_body(tensor, shape=[2, 3, 32, 32]),
        "spatial-size": infer_body(tensor, shape=[1, 3, 16, 64]),
        "rank": infer_body(tensor, shape=[3072]),
        "no-rows": infer_body(tensor, shape=[0, 3, 32, 32], data=[]),
        "string": infer_body(tensor, data=[*flat[:-1], "0.5"]),
        "null": infer_body(tensor, data=[*flat[:-1], None]),
        "bool": infer_body(tensor, data=[*flat[:-1], True]),
        "huge-integer": infer_body(tensor, data=[*flat[:-1], 10**400]),
        "beyond-float32": infer_body(tensor, data=[*flat[:-1], 3.5e38]),
        "nested-wrongly": infer_body(tensor, data=[flat]),
        "binary-data": infer_body(tensor, parameters={"binary_data_size": 12288}),
        "unknown-output": {**infer_body(tensor), "outputs": [{"name": "logits"}]},
        "no-inputs": {"inputs": []},
        "two-inputs": {"inputs": infer_body(tensor)["inputs"] * 2},
        "missing-inputs": {"id": "x"},
        "unknown-field": {**infer_body(tensor), "input": []},
        "not-an-object": [1, 2, 3],
    }


BAD = list(bad_bodies(np.zeros((1, 3, 32, 32), np.float32)))


@pytest.mark.parametrize("case", BAD)
def test_a_bad_infer_request_is_400(
    pred: httpx.Client, oracle: ImageOracle, batch: NDArray[np.float32], case: str
) -> None:
    body = bad_bodies(batch[:1])[case]
    expect_error(pred.post(f"/v2/models/{oracle.name}/infer", json=body), 400, "invalid_input")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e999"])
def test_non_finite_tensor_data_is_400_naming_the_value(
    pred: httpx.Client, oracle: ImageOracle, value: str
) -> None:
    data = ",".join(["0.5"] * 3071 + [value])
    tensor = '"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32]'
    content = f'{{"inputs": [{{{tensor}, "data": [{data}]}}]}}'
    response = pred.post(f"/v2/models/{oracle.name}/infer", content=content)
    body = expect_error(response, 400, "invalid_input")
    assert body["details"][0]["loc"] == ["body", "inputs", 0, "data", 3071]


def test_malformed_json_is_400_and_another_media_type_415(
    pred: httpx.Client, oracle: ImageOracle
) -> None:
    path = f"/v2/models/{oracle.name}/infer"
    expect_error(pred.post(path, content=b'{"inputs": ['), 400, "invalid_input")
    headers = {"Content-Type": "text/plain"}
    expect_error(pred.post(path, content=b"{}", headers=headers), 415, "unsupported_media_type")


def test_more_rows_than_max_batch_size_is_413(
    pred: httpx.Client, oracle: ImageOracle, batch: NDArray[np.float32]
) -> None:
    rows = np.concatenate([batch, batch, batch[:1]])  # MAX_BATCH_SIZE + 1
    assert len(rows) == MAX_BATCH_SIZE + 1
    response = pred.post(f"/v2/models/{oracle.name}/infer", json=infer_body(rows))
    expect_error(response, 413, "payload_too_large")
    huge = b'{"inputs": [' + b" " * 4_000_000 + b"]}"  # more than 16 images can take
    expect_error(
        pred.post(f"/v2/models/{oracle.name}/infer", content=huge), 413, "payload_too_large"
    )


# --- any model directory of SPEC 0.2: a tabular classifier with an INT64 output -------------


def test_a_tabular_model_directory_is_served_too(tmp_path: Path) -> None:
    model_dir = tabular_model_directory(tmp_path / "tabular_test")
    rows = np.asarray([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"))
    label, probabilities = session.run(["label", "probabilities"], {"input": rows})
    with (
        launch(PATTERN, only=["pred"], env={"MODEL_DIR": str(model_dir)}) as running,
        httpx.Client(base_url=running.url("pred"), timeout=30.0) as client,
    ):
        body = {
            "inputs": [
                {"name": "input", "datatype": "FP32", "shape": [2, 4], "data": rows.tolist()}
            ]
        }
        answer = client.post("/v2/models/tabular_test/infer", json=body).json()
        outputs = {output["name"]: output for output in answer["outputs"]}
        assert outputs["label"] == {
            "name": "label",
            "datatype": "INT64",
            "shape": [2],
            "data": label.tolist(),
        }
        np.testing.assert_allclose(
            outputs["probabilities"]["data"], probabilities.ravel(), atol=1e-6
        )
        assert metadata_of(model_dir)["version"] == answer["model_version"]
