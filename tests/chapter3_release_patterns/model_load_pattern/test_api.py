"""The pattern as `make dev` runs it: chapter 2's model DB and the API, real processes, an empty
registry at first (SPEC 2.2 acceptance tests 1, 2, 3 and 5; T-oracles 1-5 on the model it
fetched). The tests follow one story and run in file order: nothing published → publish →
promote version 2 → a tampered version → other sources → the model DB stopped.

Oracles: onnxruntime on the published model directories (harness.py), the model DB's HTTP API.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from sklearn.datasets import load_iris

from tests.chapter3_release_patterns.model_load_pattern.harness import (
    EXIT_MISMATCH,
    FAST_FETCH,
    PATTERN,
    ModelVersion,
    holds,
    http_directory,
    run_loader,
    tampered,
    v1,
    v2,
)
from tests.support.launcher import RunningPattern, launch
from tests.support.ports import free_port, wait_until

POLL_S = 0.5  # MODEL_POLL_INTERVAL_S of this module's API
DEADLINE_S = 20.0  # generous: a deadline to give up, not a duration asserted
SOURCE = "modeldb://iris/iris_svc@production"
MAX_ROWS = 150
SAMPLE, VIRGINICA = [[5.1, 3.5, 1.4, 0.2]], [[6.7, 3.0, 5.2, 2.3]]
IRIS_ROWS: list[list[float]] = load_iris().data.tolist()


@dataclass
class Stack:
    running: RunningPattern
    client: httpx.Client
    artifact_root: Path
    model_dir: Path

    @property
    def model_db_url(self) -> str:
        return self.running.url("model_db")

    def job(self, name: str, **env: str) -> str:
        return self.running.run_job(name, env=env)

    def served_version(self) -> str:
        response = self.client.get("/predict/test")
        assert response.status_code == 200, response.text
        return response.headers["X-Model-Version"]

    def failures(self, reason: str) -> float:
        text = self.client.get("/metrics").text
        found = re.search(rf'^model_reload_failures_total{{reason="{reason}"}} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    v1(), v2()  # fail early with "run make models"
    tmp = tmp_path_factory.mktemp("model_load")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp}/registry.sqlite3",
        "ARTIFACT_ROOT": str(tmp / "artifacts"),
        "MODEL_DIR": str(tmp / "model"),
        "MODEL_SOURCE": SOURCE,
        "MODEL_POLL_INTERVAL_S": str(POLL_S),
        "MAX_ROWS": str(MAX_ROWS),
        **FAST_FETCH,
    }
    with (
        launch(PATTERN, env=env) as running,
        httpx.Client(base_url=running.url(), timeout=10.0) as client,
    ):
        yield Stack(running, client, tmp / "artifacts", tmp / "model")


def probabilities(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["prediction"], dtype=np.float64)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def wait_for_version(stack: Stack, version: ModelVersion) -> None:
    wait_until(
        lambda: stack.served_version() == version.version,
        timeout_s=DEADLINE_S,
        what=f"the API serving {version.version}",
    )


# --- acceptance test 1: nothing published yet ------------------------------------------------


def test_an_empty_registry_leaves_the_api_unready_naming_the_alias(stack: Stack) -> None:
    def reason() -> str:
        body: dict[str, str] = stack.client.get("/ready").json()
        return body.get("error", "")

    wait_until(lambda: "alias production not found" in reason(), timeout_s=DEADLINE_S,
               what="/ready naming the missing alias")  # fmt: skip
    ready = assert_error(stack.client.get("/ready"), 503, "model_not_ready")
    assert "iris/iris_svc" in ready["error"]
    assert stack.client.get("/ready").headers["Retry-After"]
    for response in (
        stack.client.post("/predict", json={"data": SAMPLE}),
        stack.client.get("/predict/test"),
        stack.client.get("/metadata"),
        stack.client.get("/v2/health/ready"),
    ):
        assert_error(response, 503, "model_not_ready")
    assert stack.client.get("/health").json() == {"health": "ok"}
    assert stack.failures("not_found") >= 1


@pytest.fixture(scope="module")
def published(stack: Stack) -> ModelVersion:
    """`publish`, then nothing else: the API notices the alias by itself."""
    stack.job("publish")
    wait_until(lambda: stack.client.get("/ready").status_code == 200, timeout_s=DEADLINE_S,
               what="the API ready after publish")  # fmt: skip
    return v1()


def test_after_publish_the_api_serves_version_1_by_itself(
    stack: Stack, published: ModelVersion
) -> None:
    metadata = stack.client.get("/metadata").json()
    assert metadata["model"] == {
        "name": "iris_svc",
        "version": published.version,
        "sha256": published.sha256,
    }
    source = metadata["source"]
    assert (source["uri"], source["version"], source["sha256"]) == (SOURCE, 1, published.sha256)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", source["fetched_at"])
    assert holds(stack.model_dir, published)  # kept in MODEL_DIR for the next start


# --- T-oracles 1-5 on the fetched model --------------------------------------------------------


def test_150_rows_equal_onnxruntime_and_labels_are_the_argmax(
    stack: Stack, published: ModelVersion
) -> None:
    got = probabilities(stack.client.post("/predict", json={"data": IRIS_ROWS}))
    expected = published.probabilities(IRIS_ROWS)
    assert got.shape == (150, 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    labels = published.metadata["labels"]
    names = [labels[str(index)] for index in expected.argmax(axis=1)]
    response = stack.client.post("/predict/label", json={"data": IRIS_ROWS})
    assert response.json() == {"prediction": names}


def test_the_test_endpoints_and_two_known_rows(stack: Stack, published: ModelVersion) -> None:
    tested = stack.client.get("/predict/test")
    assert tested.json() == stack.client.post("/predict", json={"data": SAMPLE}).json()
    np.testing.assert_allclose(
        probabilities(tested), published.probabilities(SAMPLE), rtol=0, atol=1e-6
    )
    assert stack.client.get("/predict/test/label").json() == {"prediction": ["setosa"]}
    both = stack.client.post("/predict/label", json={"data": [*SAMPLE, *VIRGINICA]})
    assert both.json() == {"prediction": ["setosa", "virginica"]}


JSON = "application/json"
TOO_MANY_ROWS = b'{"data": [' + b"[1, 2, 3, 4]," * MAX_ROWS + b"[1, 2, 3, 4]]}"
INPUT_RULES = {  # id: (body, Content-Type, status, code)
    "empty": (b"{}", JSON, 422, "invalid_input"),
    "width": (b'{"data": [[5.1, 3.5, 1.4]]}', JSON, 422, "invalid_input"),
    "nan": (b'{"data": [[5.1, 3.5, 1.4, NaN]]}', JSON, 422, "invalid_input"),
    "infinity": (b'{"data": [[5.1, 3.5, 1.4, Infinity]]}', JSON, 422, "invalid_input"),
    "malformed": (b'{"data": [[5.1, 3.5', JSON, 422, "invalid_input"),
    "not-json": (b'{"data": [[5.1, 3.5, 1.4, 0.2]]}', "text/plain", 415, "unsupported_media_type"),
    "too-many-rows": (TOO_MANY_ROWS, JSON, 413, "payload_too_large"),
}


@pytest.mark.parametrize("rule", list(INPUT_RULES))
def test_each_input_rule_has_its_status_and_code(
    stack: Stack, published: ModelVersion, rule: str
) -> None:
    content, content_type, status, code = INPUT_RULES[rule]
    response = stack.client.post(
        "/predict", content=content, headers={"Content-Type": content_type}
    )
    body = assert_error(response, status, code)
    if rule == "width":
        assert "row 0" in body["error"]
        assert "expected 4" in body["error"]


def test_responses_name_the_model_version_and_echo_the_request_id(
    stack: Stack, published: ModelVersion
) -> None:
    headers = {"X-Request-ID": "load-42"}
    for response in (
        stack.client.post("/predict", json={"data": SAMPLE}, headers=headers),
        stack.client.post("/predict/label", json={"data": SAMPLE}, headers=headers),
        stack.client.get("/predict/test", headers=headers),
    ):
        assert response.headers["X-Model-Name"] == "iris_svc"
        assert response.headers["X-Model-Version"] == published.metadata["version"]
        assert response.headers["X-Request-ID"] == "load-42"


def test_v2_infer_equals_predict_and_the_stock_client_sees_the_model(
    stack: Stack, published: ModelVersion
) -> None:
    rows = [*SAMPLE, *VIRGINICA]
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4],
                        "data": [value for row in rows for value in row]}]}  # fmt: skip
    answer = stack.client.post("/v2/models/iris_svc/infer", json=body)
    outputs = {output["name"]: output for output in answer.json()["outputs"]}
    predicted = stack.client.post("/predict", json={"data": rows}).json()["prediction"]
    assert outputs["probabilities"]["data"] == [value for row in predicted for value in row]
    client = triton.InferenceServerClient(url=urlsplit(stack.running.url()).netloc)
    try:
        assert client.is_server_ready()
        assert client.is_model_ready("iris_svc", published.version)
        tensor = triton.InferInput("input", [150, 4], "FP32")
        tensor.set_data_from_numpy(np.asarray(IRIS_ROWS, dtype=np.float32), binary_data=False)
        wanted = [triton.InferRequestedOutput("probabilities", binary_data=False)]
        result = client.infer("iris_svc", [tensor], outputs=wanted)
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), published.probabilities(IRIS_ROWS), atol=1e-6
        )
    finally:
        client.close()


# --- acceptance test 2: promote version 2 --------------------------------------------------


def test_promote_moves_the_served_version_without_a_failed_request(
    stack: Stack, published: ModelVersion
) -> None:
    candidate = v2()
    stack.job("publish_retrained")
    answers: list[httpx.Response] = []
    stop = threading.Event()

    def traffic() -> None:  # requests in flight across the swap
        with httpx.Client(base_url=stack.running.url(), timeout=10.0) as client:
            while not stop.is_set():
                answers.append(client.post("/predict", json={"data": IRIS_ROWS}))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        stack.job("promote", VERSION="2")
        wait_for_version(stack, candidate)
    finally:
        stop.set()
        sender.join()
    oracles = {version.version: version for version in (published, candidate)}
    for answer in answers:  # each answer is entirely the one version its header names
        expected = oracles[answer.headers["X-Model-Version"]].probabilities(IRIS_ROWS)
        np.testing.assert_allclose(probabilities(answer), expected, rtol=0, atol=1e-6)
    got = probabilities(stack.client.post("/predict", json={"data": IRIS_ROWS}))
    np.testing.assert_allclose(got, candidate.probabilities(IRIS_ROWS), rtol=0, atol=1e-6)
    assert stack.client.get("/metadata").json()["source"]["version"] == 2
    assert holds(stack.model_dir, candidate)


# --- acceptance test 3: a tampered version --------------------------------------------------


def test_a_tampered_version_is_refused_and_the_served_one_stays(
    stack: Stack, published: ModelVersion, tmp_path: Path
) -> None:
    served = v2()
    before = stack.failures("verification")
    metadata = stack.client.get("/metadata").json()
    with tampered(stack.artifact_root, stack.model_db_url, version=1):
        stack.job("promote", VERSION="1")
        loader = run_loader(SOURCE, tmp_path / "model", {"MODEL_DB_URL": stack.model_db_url})
        assert loader.returncode == EXIT_MISMATCH, loader.stdout + loader.stderr
        wait_until(lambda: stack.failures("verification") >= before + 2, timeout_s=DEADLINE_S,
                   what="polls counting verification failures")  # fmt: skip
        assert stack.client.get("/metadata").json() == metadata
        assert stack.served_version() == served.version
        assert stack.client.get("/ready").status_code == 200
        refused = assert_error(stack.client.post("/admin/reload"), 422, "verification_failed")
        assert "sha256" in refused["error"]
        stack.job("promote", VERSION="2")
    assert holds(stack.model_dir, served)  # nothing of the tampered version was installed
    again = stack.client.post("/admin/reload")
    assert again.json() == {**again.json(), "changed": False, "version": served.version}


# --- other sources through /admin/reload ---------------------------------------------------


def test_reload_from_an_http_source_and_back(stack: Stack, tmp_path: Path) -> None:
    shutil.copytree(v1().directory, tmp_path / "served" / "iris")
    with http_directory(tmp_path / "served") as base:
        url = f"{base}/iris/model.onnx"
        answer = stack.client.post("/admin/reload", json={"source": url})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["changed"], answer.json()["version"]) == (True, v1().version)
        source = stack.client.get("/metadata").json()["source"]
        assert (source["uri"], source["version"], source["sha256"]) == (url, None, v1().sha256)
        assert stack.served_version() == v1().version
    back = stack.client.post("/admin/reload", json={"source": SOURCE})
    assert (back.json()["changed"], back.json()["version"]) == (True, v2().version)


def test_reload_failures_keep_the_model_and_say_why(stack: Stack, tmp_path: Path) -> None:
    served = stack.served_version()
    closed = f"http://127.0.0.1:{free_port()}/iris/model.onnx"
    unreachable = stack.client.post("/admin/reload", json={"source": closed})
    assert_error(unreachable, 503, "dependency_unavailable")
    assert unreachable.headers["Retry-After"]
    missing = stack.client.post("/admin/reload", json={"source": "modeldb://iris/iris_svc@canary"})
    assert "alias canary not found" in assert_error(missing, 404, "not_found")["error"]
    bogus = stack.client.post("/admin/reload", json={"source": "s3://bucket/model.onnx"})
    assert_error(bogus, 422, "invalid_input")
    # checksums right, but label.json has two classes for a three-class graph
    broken = tmp_path / "two_labels"
    shutil.copytree(v1().directory, broken)
    labels = '{"0": "setosa", "1": "versicolor"}'
    (broken / "label.json").write_text(labels)
    metadata = (broken / "metadata.json").read_text()
    start = metadata.index('"labels"')
    end = metadata.index("}", start) + 1
    (broken / "metadata.json").write_text(metadata[:start] + f'"labels": {labels}' + metadata[end:])
    self_test = stack.client.post("/admin/reload", json={"source": f"file://{broken}"})
    assert_error(self_test, 422, "self_test_failed")
    assert stack.served_version() == served
    assert stack.failures("self_test") >= 1
    assert stack.client.get("/metadata").json()["source"]["uri"] == SOURCE


# --- acceptance test 5: the model DB stopped ------------------------------------------------


def test_with_the_model_in_model_dir_the_api_starts_ready_without_the_model_db(
    stack: Stack,
) -> None:
    served = v2()
    stack.running.processes["model_db"].stop()
    stack.running.restart_process("api")
    assert stack.client.get("/ready").json() == {"status": "ready"}
    source = stack.client.get("/metadata").json()["source"]
    assert (source["uri"], source["version"], source["sha256"]) == (SOURCE, 2, served.sha256)
    wait_until(lambda: stack.failures("unreachable") >= 1, timeout_s=DEADLINE_S,
               what="a poll failing on the stopped model DB")  # fmt: skip
    assert stack.client.get("/ready").status_code == 200
    assert stack.served_version() == served.version
