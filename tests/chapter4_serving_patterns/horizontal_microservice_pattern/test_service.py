"""One model service, service_setosa, through its real gunicorn process: SPEC 3.6 acceptance
test 4 (the T-oracles 1-5 of SPEC 0.3, the three services run this same code), the V2
conformance oracle of SPEC 0.5, and the refusal of a model.onnx that is not the one its
metadata names (SPEC 0.2 rule 2). Another tabular model directory, with a ZipMap output,
is served by the same code (SPEC 0.2 rule 3)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from onnx import TensorProto, helper

from tests.chapter4_serving_patterns.horizontal_microservice_pattern.harness import (
    PATTERN,
    PATTERN_DIR,
    SAMPLE,
    iris_rows,
    labels,
    metadata,
    metric_value,
    model_dir,
    onnx_outputs,
    onnx_probabilities,
)
from tests.support.envelope import expect_error
from tests.support.launcher import base_environment, job_environment, launch
from tests.support.pattern import Pattern
from tests.support.ports import free_port

SERVICE = "service_setosa"
SPECIES = "setosa"
MAX_ROWS = 200  # above the 150 iris rows, low enough to send one request over it


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    model_dir(SPECIES)
    with (
        launch(PATTERN, env={"MAX_ROWS": str(MAX_ROWS)}, only=[SERVICE]) as running,
        httpx.Client(base_url=running.url(SERVICE), timeout=30.0) as client,
    ):
        yield client


def predict(
    client: httpx.Client, rows: list[list[float]], path: str = "/predict"
) -> httpx.Response:
    return client.post(path, json={"data": rows})


# --- T-oracle 1: the 150 iris rows equal onnxruntime; /predict/label is argmax → label.json ---


def test_150_rows_equal_onnxruntime(client: httpx.Client) -> None:
    rows = iris_rows()
    response = predict(client, rows)
    assert response.status_code == 200, response.text
    prediction = np.asarray(response.json()["prediction"])
    assert prediction.shape == (150, 2)
    np.testing.assert_allclose(prediction, onnx_probabilities(SPECIES, rows), rtol=0, atol=1e-6)


def test_label_is_the_argmax_mapped_through_label_json(client: httpx.Client) -> None:
    rows = iris_rows()
    response = predict(client, rows, "/predict/label")
    assert response.status_code == 200, response.text
    names = labels(SPECIES)
    expected = [names[str(i)] for i in np.argmax(onnx_probabilities(SPECIES, rows), axis=1)]
    assert response.json() == {"prediction": expected}
    assert set(expected) == {"setosa", "other"}  # both classes occur: the mapping is exercised


def test_metrics_count_the_rows_predicted(client: httpx.Client) -> None:
    name = "model_predicted_rows_total"
    model = {"model": metadata(SPECIES)["name"], "version": metadata(SPECIES)["version"]}
    before = metric_value(client.get("/metrics").text, name, **model)
    assert predict(client, iris_rows()).status_code == 200
    after = metric_value(client.get("/metrics").text, name, **model)
    assert after - before == 150


# --- T-oracle 2: /predict/test is the sample row; labels of two known rows --------------------


def test_predict_test_equals_post_predict_of_the_sample(client: httpx.Client) -> None:
    tested = client.get("/predict/test")
    posted = predict(client, SAMPLE)
    assert tested.status_code == posted.status_code == 200
    assert tested.json() == posted.json()
    np.testing.assert_allclose(
        tested.json()["prediction"], onnx_probabilities(SPECIES, SAMPLE), rtol=0, atol=1e-6
    )


def test_sample_is_setosa_and_a_virginica_row_is_other(client: httpx.Client) -> None:
    assert client.get("/predict/test/label").json() == {"prediction": ["setosa"]}
    virginica_row = [[6.7, 3.0, 5.2, 2.3]]
    assert predict(client, virginica_row, "/predict/label").json() == {"prediction": ["other"]}


def test_metadata_and_label_describe_the_loaded_model(client: httpx.Client) -> None:
    described = client.get("/metadata").json()
    expected = metadata(SPECIES)
    assert described["model"] == {
        "name": expected["name"],
        "version": expected["version"],
        "sha256": expected["sha256"],
    }
    assert described["data_sample"] == SAMPLE
    np.testing.assert_allclose(
        described["prediction_sample"], onnx_probabilities(SPECIES, SAMPLE), rtol=0, atol=1e-6
    )
    assert described["labels"] == labels(SPECIES) == {"0": "setosa", "1": "other"}
    assert client.get("/label").json() == labels(SPECIES)
    assert client.get("/health").json() == {"health": "ok"}
    assert client.get("/ready").status_code == 200


# --- T-oracle 3: each input rule, its exact status and code, never a 5xx ---------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({}, 422, id="no data"),
        pytest.param({"data": []}, 422, id="no rows"),
        pytest.param({"data": [[5.1, 3.5, 1.4]]}, 422, id="three features"),
        pytest.param({"data": [[5.1, 3.5, 1.4, 0.2, 1.0]]}, 422, id="five features"),
        pytest.param({"data": [[5.1, "3.5", 1.4, 0.2]]}, 422, id="a string"),
        pytest.param({"data": [[5.1, True, 1.4, 0.2]]}, 422, id="a boolean"),
        pytest.param({"data": [[5.1, None, 1.4, 0.2]]}, 422, id="null"),
        pytest.param({"data": [5.1, 3.5, 1.4, 0.2]}, 422, id="not nested"),
        pytest.param({"data": [[5.1, 1e39, 1.4, 0.2]]}, 422, id="beyond float32"),
        pytest.param({"data": [SAMPLE[0]] * (MAX_ROWS + 1)}, 413, id="too many rows"),
    ],
)
def test_input_rules(client: httpx.Client, body: object, status: int) -> None:
    code = "payload_too_large" if status == 413 else "invalid_input"
    for path in ("/predict", "/predict/label"):
        expect_error(client.post(path, json=body), status, code)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client: httpx.Client, literal: str) -> None:
    content = '{"data": [[5.1, LITERAL, 1.4, 0.2]]}'.replace("LITERAL", literal)
    response = client.post(
        "/predict", content=content, headers={"Content-Type": "application/json"}
    )
    expect_error(response, 422, "invalid_input")


def test_the_wrong_width_names_the_row_and_the_width(client: httpx.Client) -> None:
    body = expect_error(predict(client, [SAMPLE[0], [1.0, 2.0, 3.0]]), 422, "invalid_input")
    assert "row 1" in body["error"] and "expected 4" in body["error"]
    assert body["details"][0]["loc"] == ["body", "data", 1]


def test_malformed_json_and_other_media_types(client: httpx.Client) -> None:
    json_type = {"Content-Type": "application/json"}
    expect_error(
        client.post("/predict", content='{"data": [[', headers=json_type), 422, "invalid_input"
    )
    plain = client.post(
        "/predict", content="5.1,3.5,1.4,0.2", headers={"Content-Type": "text/plain"}
    )
    expect_error(plain, 415, "unsupported_media_type")


def test_integers_are_numbers(client: httpx.Client) -> None:
    assert predict(client, [[5, 3, 1, 0]]).json() == predict(client, [[5.0, 3.0, 1.0, 0.0]]).json()


# --- T-oracle 4: model headers, request id ---------------------------------------------------


def test_prediction_responses_name_the_model_and_echo_the_request_id(client: httpx.Client) -> None:
    expected = metadata(SPECIES)
    request_id = f"service-test-{uuid.uuid4().hex[:8]}"
    for response in (
        client.post("/predict", json={"data": SAMPLE}, headers={"X-Request-ID": request_id}),
        client.post("/predict/label", json={"data": SAMPLE}, headers={"X-Request-ID": request_id}),
        client.get("/predict/test", headers={"X-Request-ID": request_id}),
        client.get("/predict/test/label", headers={"X-Request-ID": request_id}),
    ):
        assert response.status_code == 200
        assert response.headers["X-Model-Name"] == expected["name"]
        assert response.headers["X-Model-Version"] == expected["version"]
        assert response.headers["X-Request-ID"] == request_id


# --- T-oracle 5 and the V2 conformance oracle -------------------------------------------------


def v2_body(rows: list[list[float]], **extra: object) -> dict[str, object]:
    flat = [value for row in rows for value in row]
    tensor = {"name": "input", "datatype": "FP32", "shape": [len(rows), 4], "data": flat}
    return {"inputs": [tensor], **extra}


def test_v2_infer_equals_post_predict_exactly(client: httpx.Client) -> None:
    rows = iris_rows()
    name = metadata(SPECIES)["name"]
    response = client.post(f"/v2/models/{name}/infer", json=v2_body(rows, id="iris-150"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "iris-150" and answer["model_name"] == name
    outputs = {output["name"]: output for output in answer["outputs"]}
    probabilities = outputs["probabilities"]
    assert (probabilities["datatype"], probabilities["shape"]) == ("FP32", [150, 2])
    by_row = np.asarray(probabilities["data"]).reshape(150, 2).tolist()
    assert by_row == predict(client, rows).json()["prediction"]
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["data"] == onnx_outputs(SPECIES, rows)["label"].tolist()


def test_v2_with_a_stock_client(client: httpx.Client) -> None:
    """tritonclient.http in JSON mode: liveness, readiness, metadata and an FP32 inference."""
    rows = iris_rows()
    expected = metadata(SPECIES)
    server = triton.InferenceServerClient(url=str(client.base_url).removeprefix("http://"))
    try:
        assert server.is_server_live() and server.is_server_ready()
        assert server.is_model_ready(expected["name"])
        assert server.is_model_ready(expected["name"], model_version=expected["version"])
        described = server.get_model_metadata(expected["name"])
        assert described["versions"] == [expected["version"]]
        assert described["inputs"] == expected["inputs"]
        assert described["outputs"] == expected["outputs"]
        tensor = triton.InferInput("input", [150, 4], "FP32")
        tensor.set_data_from_numpy(np.asarray(rows, dtype=np.float32), binary_data=False)
        wanted = [triton.InferRequestedOutput("probabilities", binary_data=False)]
        result = server.infer(expected["name"], [tensor], outputs=wanted)
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), onnx_probabilities(SPECIES, rows), rtol=0, atol=1e-6
        )
        assert result.as_numpy("label") is None  # only what was asked for
    finally:
        server.close()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param({"name": "features"}, 400, id="unknown input name"),
        pytest.param({"datatype": "FP64"}, 400, id="wrong datatype"),
        pytest.param({"shape": [2, 4]}, 400, id="shape and data disagree"),
        pytest.param({"shape": [1, 3], "data": [5.1, 3.5, 1.4]}, 400, id="wrong feature count"),
        pytest.param({"data": ["5.1", "3.5", "1.4", "0.2"]}, 400, id="strings"),
    ],
)
def test_v2_tensor_errors(client: httpx.Client, change: dict[str, object], status: int) -> None:
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": SAMPLE[0], **change}
    name = metadata(SPECIES)["name"]
    response = client.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
    body = expect_error(response, status, "invalid_input")
    assert body["error"]  # the `error` field V2 clients read


def test_v2_unknown_model_or_version_is_404(client: httpx.Client) -> None:
    name, version = metadata(SPECIES)["name"], metadata(SPECIES)["version"]
    expect_error(client.get("/v2/models/iris_svc"), 404, "not_found")
    expect_error(client.get(f"/v2/models/{name}/versions/0"), 404, "not_found")
    expect_error(client.post("/v2/models/iris_svc/infer", json=v2_body(SAMPLE)), 404, "not_found")
    versioned = client.post(f"/v2/models/{name}/versions/{version}/infer", json=v2_body(SAMPLE))
    assert versioned.status_code == 200, versioned.text
    assert client.get("/v2").json()["extensions"] == []


# --- SPEC 0.2 rules 2 and 3 -------------------------------------------------------------------


def test_a_model_that_does_not_match_its_sha256_stops_the_service(tmp_path: Path) -> None:
    """The process exits non-zero at start, with one log line naming the file."""
    broken = tmp_path / "iris_binary_setosa"
    shutil.copytree(model_dir(SPECIES), broken)
    with (broken / "model.onnx").open("ab") as model_file:
        model_file.write(b"\0")
    pattern = Pattern.load(PATTERN_DIR)
    command = pattern.processes[SERVICE]
    env = {"MODEL_DIR": str(broken), "SERVICE_SETOSA_PORT": str(free_port()), "HOST": "127.0.0.1"}
    result = subprocess.run(
        command.argv,
        cwd=pattern.directory,
        env={**job_environment(command, base_environment(pattern)), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    refusals = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if str(broken / "model.onnx") in line and "sha256" in line
    ]
    assert len(refusals) == 1, result.stdout + result.stderr
    assert json.loads(refusals[0])["level"] == "CRITICAL"


def zipmap_model(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """A softmax classifier written as skl2onnx writes one by default: probabilities as a
    sequence of {class: probability} maps (ZipMap). Returns its weights and bias."""
    weights = np.array([[0.5, -0.5], [1.0, -1.0], [-1.5, 1.5], [-2.0, 2.0]], dtype=np.float32)
    bias = np.array([0.1, -0.1], dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["input", "weights"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["output_label"], axis=1, keepdims=0),
        helper.make_node(
            "ZipMap",
            ["probabilities"],
            ["output_probability"],
            domain="ai.onnx.ml",
            classlabels_int64s=[0, 1],
        ),
    ]
    maps = helper.make_sequence_type_proto(
        helper.make_map_type_proto(
            TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])
        )
    )
    graph = helper.make_graph(
        nodes,
        "zipmap_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
        [
            helper.make_tensor_value_info("output_label", TensorProto.INT64, [None]),
            helper.make_value_info("output_probability", maps),
        ],
        initializer=[
            helper.make_tensor("weights", TensorProto.FLOAT, [4, 2], weights.ravel().tolist()),
            helper.make_tensor("bias", TensorProto.FLOAT, [2], bias.tolist()),
        ],
    )
    opsets = [helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)]
    model_bytes = helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()
    directory.mkdir()
    (directory / "model.onnx").write_bytes(model_bytes)
    sha256 = hashlib.sha256(model_bytes).hexdigest()
    names = {"0": "small", "1": "large"}
    (directory / "label.json").write_text(json.dumps(names))
    described = {
        "name": "zipmap_classifier",
        "version": sha256[:12],
        "sha256": sha256,
        "task": "tabular_classification",
        "labels": names,
        "data_sample": SAMPLE,
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "output_label", "datatype": "INT64", "shape": [-1]},
            {"name": "output_probability", "datatype": "FP32", "shape": [-1, 2]},
        ],
    }
    (directory / "metadata.json").write_text(json.dumps(described))
    return weights, bias


def test_a_zipmap_classifier_is_served_without_code_change(tmp_path: Path) -> None:
    weights, bias = zipmap_model(tmp_path / "zipmap_classifier")
    rows = iris_rows()
    logits = np.asarray(rows, dtype=np.float64) @ weights + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    env = {"MODEL_DIR": str(tmp_path / "zipmap_classifier")}
    with launch(PATTERN, env=env, only=[SERVICE]) as running:
        url = running.url(SERVICE)
        response = httpx.post(f"{url}/predict", json={"data": rows}, timeout=30)
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(response.json()["prediction"], expected, rtol=0, atol=1e-6)
        names = httpx.post(f"{url}/predict/label", json={"data": rows}, timeout=30).json()
        assert names["prediction"] == [["small", "large"][i] for i in expected.argmax(axis=1)]
        answer = httpx.post(
            f"{url}/v2/models/zipmap_classifier/infer", json=v2_body(rows), timeout=30
        ).json()
        outputs = {output["name"]: output for output in answer["outputs"]}
        assert outputs["output_probability"]["shape"] == [150, 2]
        by_row = np.asarray(outputs["output_probability"]["data"]).reshape(150, 2)
        assert by_row.tolist() == response.json()["prediction"]
