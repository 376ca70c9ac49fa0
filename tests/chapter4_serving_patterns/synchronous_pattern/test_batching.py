"""Micro-batching (SPEC 3.2 behaviour 1-3, acceptance 3): concurrent requests get the same
probabilities batched as unbatched, each exactly its own rows; the batch size histogram shows
batches larger than one only when batching is on; invalid input never joins a batch; a model
failure fails the requests of its batch only, with a 500 that names it.

Counts come from the server's own metrics and log, never from timing."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from tests.chapter4_serving_patterns.synchronous_pattern.harness import (
    DATA_DIR,
    Pred,
    concurrently,
    image_body,
    running_pred,
    v2_image_body,
)
from tests.support.image_checks import ImageOracle, encode, labelled_images
from tests.support.image_models import OPSET, write_image_model_directory
from tests.support.ports import wait_until

CONCURRENT = 32
BATCHING_ON = {"BATCHING_ENABLED": "true", "MAX_BATCH_SIZE": "8", "MAX_QUEUE_DELAY_MS": "50"}


@pytest.fixture(scope="module")
def batching_off(oracle: ImageOracle) -> Iterator[Pred]:
    with running_pred({"BATCHING_ENABLED": "false"}) as running:
        yield running


@pytest.fixture(scope="module")
def batching_on(oracle: ImageOracle) -> Iterator[Pred]:
    with running_pred(BATCHING_ON) as running:
        yield running


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [item.data for item in labelled_images(DATA_DIR / "test_png", limit=CONCURRENT)]


def probabilities_of(responses: list[Any]) -> np.ndarray[Any, Any]:
    for response in responses:
        assert response.status_code == 200, response.text
    return np.asarray([response.json()["prediction"] for response in responses])


def images_batched(pred: Pred) -> int:
    return int(pred.samples("inference_batch_size").get("inference_batch_size_sum", 0))


def test_concurrent_requests_get_the_same_probabilities_batched_or_not(
    batching_off: Pred, batching_on: Pred, oracle: ImageOracle, images: list[bytes]
) -> None:
    requests = [("/predict", image_body(data)) for data in images]
    before_on, before_off = images_batched(batching_on), images_batched(batching_off)
    unbatched = probabilities_of(concurrently(batching_off.url, requests))
    batched = probabilities_of(concurrently(batching_on.url, requests))
    np.testing.assert_allclose(batched, unbatched, rtol=0, atol=1e-5)
    np.testing.assert_allclose(batched, oracle.probabilities(images), rtol=0, atol=1e-5)
    # every image went through exactly one onnxruntime call
    assert images_batched(batching_on) - before_on == CONCURRENT
    assert images_batched(batching_off) - before_off == CONCURRENT
    calls, single = batching_on.batches()
    assert calls > single, "batching on: no onnxruntime call took more than one image"
    calls, single = batching_off.batches()
    assert calls == single, f"batching off: {calls - single} calls took more than one image"


def test_each_request_gets_exactly_its_own_rows(
    batching_on: Pred, oracle: ImageOracle, images: list[bytes]
) -> None:
    """V2 requests of 1 to 5 images each, sent together, batched together: each answer holds
    its own images' rows, in its own order."""
    sizes = [1, 5, 2, 4, 3, 1, 5, 2]
    starts = np.cumsum([0, *sizes[:-1]]).tolist()
    groups = [images[start : start + size] for start, size in zip(starts, sizes, strict=True)]
    path = f"/v2/models/{oracle.name}/infer"
    responses = concurrently(batching_on.url, [(path, v2_image_body(group)) for group in groups])
    for group, response in zip(groups, responses, strict=True):
        assert response.status_code == 200, response.text
        outputs = {output["name"]: output for output in response.json()["outputs"]}
        got = np.asarray(outputs["probabilities"]["data"]).reshape(len(group), -1)
        np.testing.assert_allclose(got, oracle.probabilities(group), rtol=0, atol=1e-5)
        assert outputs["label"]["data"] == oracle.labels(group)


def test_every_request_records_its_queue_delay(batching_on: Pred, images: list[bytes]) -> None:
    def delays() -> int:
        values = batching_on.samples("inference_queue_delay_seconds")
        return int(values.get("inference_queue_delay_seconds_count", 0))

    before = delays()
    responses = concurrently(batching_on.url, [("/predict", image_body(d)) for d in images[:8]])
    assert all(response.status_code == 200 for response in responses)
    assert delays() - before == 8


def test_invalid_images_among_valid_ones_are_refused_alone(
    batching_on: Pred, oracle: ImageOracle, images: list[bytes]
) -> None:
    bad = {
        5: ({"image_data": encode(b"not an image")}, 415, "unsupported_media_type"),
        11: ({"image_data": "%%% not base64 %%%"}, 422, "invalid_input"),
    }
    bodies = [
        bad[index][0] if index in bad else image_body(data)
        for index, data in enumerate(images[:16])
    ]
    before = images_batched(batching_on)
    responses = concurrently(batching_on.url, [("/predict", body) for body in bodies])
    expected = oracle.labels(images[:16])
    for index, response in enumerate(responses):
        if index in bad:
            _, status, code = bad[index]
            assert response.status_code == status, response.text
            assert response.json()["code"] == code
        else:
            assert response.status_code == 200, response.text
            assert response.json()["label"] == expected[index]
    # the refused ones never reached onnxruntime
    assert images_batched(batching_on) - before == 16 - len(bad)


# --- a model that fails at run time ---------------------------------------------------------


def failing_model_directory(directory: Path) -> Path:
    """A 2-class image model that fails inside onnxruntime for any batch holding a white pixel:
    it gathers row 1 of a one-row table when an input value exceeds 0.99 (out of bounds), row 0
    otherwise. Its self-test (blank images) passes, so the server starts and serves it."""
    model_dir = write_image_model_directory(
        directory, name="fails_on_white", size=(32, 32), class_count=2, shorter_side=32,
        mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
    )  # fmt: skip
    nodes = [
        helper.make_node("ReduceMax", ["input"], ["brightest"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Greater", ["brightest", "threshold"], ["white"]),
        helper.make_node("Cast", ["white"], ["row"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "row"], ["logits"], axis=0),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "fails_on_white",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        [
            helper.make_tensor("threshold", TensorProto.FLOAT, [], [0.99]),
            helper.make_tensor("table", TensorProto.FLOAT, [1, 2], [0.0, 1.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    model_bytes = model.SerializeToString()
    (model_dir / "model.onnx").write_bytes(model_bytes)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    digest = hashlib.sha256(model_bytes).hexdigest()
    metadata.update(sha256=digest, version=digest[:12])
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    return model_dir


def solid_png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


def failed_batch_sizes(pred: Pred) -> list[int]:
    lines = [json.loads(line) for line in pred.log().splitlines() if line.startswith("{")]
    return [line["batch_size"] for line in lines if line["message"] == "inference failed"]


@pytest.mark.parametrize("batching", [False, True], ids=["batching-off", "batching-on"])
def test_a_model_failure_fails_only_the_requests_of_its_batch(
    tmp_path: Path, batching: bool
) -> None:
    model_dir = failing_model_directory(tmp_path)
    env = {"MODEL_DIR": str(model_dir), "BATCHING_ENABLED": str(batching).lower(),
           "MAX_BATCH_SIZE": "4", "MAX_QUEUE_DELAY_MS": "50"}  # fmt: skip
    bodies = [image_body(solid_png(255 if index == 0 else 0)) for index in range(16)]
    with running_pred(env) as pred:
        responses = concurrently(pred.url, [("/predict", body) for body in bodies])
        failed = [response for response in responses if response.status_code != 200]
        assert responses[0] in failed  # the white image's own request
        for response in failed:
            assert response.status_code == 500, response.text
            envelope = response.json()
            assert envelope["code"] == "model_error"
            assert "fails_on_white" in envelope["error"]
            assert "Gather" in envelope["error"] or "indices" in envelope["error"]
        # one failed onnxruntime call, and its requests are exactly the 500s
        wait_until(lambda: bool(failed_batch_sizes(pred)), timeout_s=5, what="the failure line")
        assert failed_batch_sizes(pred) == [len(failed)]
        assert len(failed) == 1 if not batching else len(failed) <= 4
        failures = pred.samples("inference_failures")["inference_failures_total"]
        assert failures == 1
        # and the server goes on serving
        assert pred.post("/predict", image_body(solid_png(0))).status_code == 200
