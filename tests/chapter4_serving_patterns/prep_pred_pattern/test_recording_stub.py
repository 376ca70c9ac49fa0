"""prep against a recording V2 stub in place of pred (SPEC 3.5 acceptance test 2 and behaviour
1-2): the tensor prep sends is the reference preprocessing of the image (≤ 1e-6), on the
versioned V2 route with FP32 JSON data; prep answers what pred answered, named through
label.json; each kind of answer pred may give ends as its exact status; /ready follows pred's
model metadata; input a client can get wrong never reaches pred.

Run for digits_resnet and for a random 48x48 classifier with centre-crop preprocessing, so
that nothing here holds only for one preprocessing object."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from tests.chapter4_serving_patterns.prep_pred_pattern.harness import (
    DATA_DIR,
    PATTERN,
    metadata_of,
)
from tests.chapter4_serving_patterns.prep_pred_pattern.stub import (
    RecordingPred,
    probabilities_answer,
    recording_pred,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import ImageOracle, LabelledImage, encode, labelled_images
from tests.support.launcher import launch

IMAGES = 4  # per format: the check is per tensor value, a few images are plenty


@dataclass
class Setup:
    stub: RecordingPred
    client: httpx.Client
    oracle: ImageOracle
    probabilities: NDArray[np.float32]  # what the stub answers, [1, C]


def stub_probabilities(class_count: int) -> NDArray[np.float32]:
    """A probability vector whose top class is 1: not the first, not the last."""
    values = np.roll(np.arange(1, class_count + 1, dtype=np.float64), 2)
    probabilities: NDArray[np.float32] = (values / values.sum()).astype(np.float32)
    return probabilities[np.newaxis]


@pytest.fixture(scope="module", params=["digits_resnet", "other_model"])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    model_dir: Path = request.getfixturevalue(
        "digits_dir" if request.param == "digits_resnet" else "other_model_dir"
    )
    oracle = ImageOracle(model_dir)
    probabilities = stub_probabilities(len(oracle.label_names))
    answer = probabilities_answer(probabilities.tolist())
    with (
        recording_pred(model_dir, answer) as stub,
        launch(
            PATTERN, only=["prep"], env={"PRED_URL": stub.url, "MODEL_DIR": str(model_dir)}
        ) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as client,
    ):
        yield Setup(stub, client, oracle, probabilities)


@pytest.fixture(scope="module")
def images(setup: Setup) -> list[LabelledImage]:
    png = labelled_images(DATA_DIR / "test_png", IMAGES)
    return png + labelled_images(DATA_DIR / "test_jpeg", IMAGES)


def sent_tensor(setup: Setup, response: httpx.Response) -> NDArray[np.float32]:
    """The tensor of the infer request prep sent for this response, checked for form."""
    assert response.status_code == 200, response.text
    sent = setup.stub.infer_requests()[-1]
    metadata = setup.oracle.metadata
    assert sent.path == f"/v2/models/{metadata['name']}/versions/{metadata['version']}/infer"
    assert sent.headers["X-Request-ID"] == response.headers["X-Request-ID"]
    assert sent.body["id"] == response.headers["X-Request-ID"]
    assert sent.body["outputs"] == [{"name": metadata["outputs"][0]["name"]}]
    [tensor] = sent.body["inputs"]
    expected_shape = [1, *setup.oracle.preprocessing.tensor_shape]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == (
        metadata["inputs"][0]["name"],
        "FP32",
        expected_shape,
    )
    assert all(type(value) in (int, float) for value in tensor["data"])
    return np.asarray(tensor["data"], dtype=np.float32).reshape(expected_shape)


def test_the_tensor_prep_sends_is_the_reference_preprocessing(
    setup: Setup, images: list[LabelledImage]
) -> None:
    for image in images:
        response = setup.client.post("/predict", json={"image_data": encode(image.data)})
        reference = setup.oracle.tensors([image.data])
        np.testing.assert_allclose(sent_tensor(setup, response), reference, rtol=0, atol=1e-6)


def test_the_sample_of_predict_test_is_sent_as_its_reference_tensor(setup: Setup) -> None:
    for path in ("/predict/test", "/predict/test/label"):
        response = setup.client.get(path)
        reference = setup.oracle.tensors([(DATA_DIR / "sample.png").read_bytes()])
        np.testing.assert_allclose(sent_tensor(setup, response), reference, rtol=0, atol=1e-6)


def test_url_safe_base64_without_padding_sends_the_same_tensor(
    setup: Setup, images: list[LabelledImage]
) -> None:
    data = next(image.data for image in images if len(image.data) % 3)  # one that needs padding
    url_safe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    response = setup.client.post("/predict", json={"image_data": url_safe})
    reference = setup.oracle.tensors([data])
    np.testing.assert_allclose(sent_tensor(setup, response), reference, rtol=0, atol=1e-6)


def test_prep_answers_what_pred_answered_named_by_label_json(
    setup: Setup, images: list[LabelledImage]
) -> None:
    body = {"image_data": encode(images[0].data)}
    answer = setup.client.post("/predict", json=body).json()
    np.testing.assert_array_equal(np.float32(answer["prediction"]), setup.probabilities[0])
    expected = setup.oracle.label_names[int(setup.probabilities[0].argmax())]
    assert answer["label"] == expected
    assert setup.client.post("/predict/label", json=body).json() == {"prediction": expected}


@dataclass(frozen=True)
class PredAnswer:
    status: int  # what pred answers
    body: dict[str, object]
    expected_status: int  # what prep answers then
    code: str
    retry_after: bool


PRED_ANSWERS = {
    "400": PredAnswer(400, {"error": "shape is wrong"}, 502, "bad_gateway", False),
    "404-other-version": PredAnswer(
        404, {"error": "unknown model"}, 503, "dependency_unavailable", False
    ),
    "500": PredAnswer(500, {"error": "internal server error"}, 502, "bad_gateway", False),
    "503-not-ready": PredAnswer(
        503, {"error": "the model is not loaded"}, 503, "dependency_unavailable", True
    ),
    "no-output": PredAnswer(200, {"outputs": []}, 502, "bad_gateway", False),
    "wrong-size": PredAnswer(
        200,
        {"outputs": [{"name": "probabilities", "datatype": "FP32", "data": [0.5]}]},
        502,
        "bad_gateway",
        False,
    ),
}


@pytest.mark.parametrize("case", list(PRED_ANSWERS))
def test_each_answer_of_pred_ends_as_its_status(
    setup: Setup, images: list[LabelledImage], case: str
) -> None:
    """pred's failures are never the client's: no 4xx passed on; a 503 carries Retry-After,
    a version pred does not serve does not (waiting will not change it). No retry either:
    one request, one call."""
    given = PRED_ANSWERS[case]
    default = setup.stub.answer
    setup.stub.answer = lambda request: (given.status, given.body)
    try:
        calls = len(setup.stub.infer_requests())
        response = setup.client.post("/predict", json={"image_data": encode(images[0].data)})
        error = expect_error(response, given.expected_status, given.code)
        assert ("Retry-After" in response.headers) is given.retry_after
        assert len(setup.stub.infer_requests()) == calls + 1
        if given.status != 200:
            assert f"pred answered {given.status}" in error["error"]
    finally:
        setup.stub.answer = default


def test_ready_fails_while_pred_reports_another_version(setup: Setup) -> None:
    assert setup.client.get("/ready").status_code == 200
    setup.stub.versions = ["000000000000"]
    try:
        body = expect_error(setup.client.get("/ready"), 503, "dependency_unavailable")
        assert setup.oracle.version in body["error"] and "000000000000" in body["error"]
    finally:
        setup.stub.versions = []
    assert setup.client.get("/ready").status_code == 200


def test_ready_fails_while_pred_takes_another_input(setup: Setup) -> None:
    metadata = setup.stub.metadata
    original = metadata["inputs"]
    metadata["inputs"] = [{**original[0], "shape": [-1, 3, 224, 224]}]
    try:
        expect_error(setup.client.get("/ready"), 503, "dependency_unavailable")
    finally:
        metadata["inputs"] = original
    assert setup.client.get("/ready").status_code == 200


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"", {}, 422, "invalid_input"),
        (b'{"image_data": "bm90IGFuIGltYWdl"}', {"Content-Type": "text/plain"}, 415,
         "unsupported_media_type"),
        (b'{"image_data": "@@@@"}', {}, 422, "invalid_input"),
        (b'{"image_data": "dGhpcyBpcyBub3QgYW4gaW1hZ2U="}', {}, 415, "unsupported_media_type"),
    ],
    ids=["empty-body", "not-json", "bad-base64", "not-an-image"],
)  # fmt: skip
def test_input_a_client_gets_wrong_never_reaches_pred(
    setup: Setup, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    calls = len(setup.stub.infer_requests())
    response = setup.client.post("/predict", content=content, headers=headers)
    expect_error(response, status, code)
    assert len(setup.stub.infer_requests()) == calls


def test_prep_holds_only_the_metadata_it_was_given(setup: Setup) -> None:
    metadata = setup.oracle.metadata
    answer = setup.client.get("/metadata").json()
    assert answer["model"] == {
        "name": metadata["name"],
        "version": metadata["version"],
        "sha256": metadata["sha256"],
    }
    assert answer["preprocessing"] == metadata["preprocessing"]
    assert setup.client.get("/label").json() == metadata_of(setup.oracle.model_dir)["labels"]
