"""The pattern end to end, prep in front of pred, both real processes, digits_resnet: SPEC 3.5
acceptance test 1 (I-oracles 1 and 2 through prep), the I-API routes against onnxruntime, and
the exact 4xx of every kind of bad input (SPEC 0.4), none of which reaches pred."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.chapter4_serving_patterns.prep_pred_pattern.harness import (
    DATA_DIR,
    MAX_IMAGE_BYTES,
    PATTERN,
    Json,
    metadata_of,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import (
    ImageOracle,
    LabelledImage,
    check_accuracy,
    check_input_refusals,
    check_variants,
    encode,
    rest_predictor,
)
from tests.support.launcher import RunningPattern, launch
from tests.support.polling import log_records
from tests.support.ports import wait_until

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def running(digits_dir: Path) -> Iterator[RunningPattern]:
    with launch(PATTERN) as running:
        yield running


@pytest.fixture(scope="module")
def prep(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def oracle(digits_dir: Path) -> ImageOracle:
    return ImageOracle(digits_dir)


def pred_infer_calls(prep: httpx.Client) -> float:
    """Infer calls prep has made to pred, whatever their outcome (counted before prep answers)."""
    total = 0.0
    for line in prep.get("/metrics").text.splitlines():
        if line.startswith('pred_calls_total{method="POST"'):
            total += float(line.rpartition(" ")[2])
    return total


def access_line(running: RunningPattern, process: str, request_id: str) -> Json:
    """The process's access line of that request (written just after the answer is sent)."""
    found: list[Json] = []

    def written() -> bool:
        records = log_records(running.processes[process].log_text())
        found[:] = [r for r in records if r["logger"] == "access" and r["request_id"] == request_id]
        return bool(found)

    wait_until(written, timeout_s=10, what=f"{process}'s access line of {request_id}")
    assert len(found) == 1, found
    return found[0]


# --- I-oracle 1 and 2 ------------------------------------------------------------------------


def test_png_accuracy_and_exact_agreement_with_onnxruntime(
    prep: httpx.Client, oracle: ImageOracle, png_images: list[LabelledImage]
) -> None:
    report = check_accuracy(
        rest_predictor(prep), oracle, DATA_DIR / "test_png", minimum=0.95, exact=True
    )
    assert report.count >= 200


def test_jpeg_accuracy(
    prep: httpx.Client, oracle: ImageOracle, jpeg_images: list[LabelledImage]
) -> None:
    report = check_accuracy(rest_predictor(prep), oracle, DATA_DIR / "test_jpeg", minimum=0.95)
    assert report.count >= 200


def test_rgba_grayscale_palette_and_exif_variants_predict_the_same_label(
    prep: httpx.Client,
) -> None:
    check_variants(rest_predictor(prep), DATA_DIR / "sample.png")


def test_non_image_bad_base64_and_oversized_are_refused(prep: httpx.Client) -> None:
    check_input_refusals(prep, max_image_bytes=MAX_IMAGE_BYTES)


# --- the I-API routes -------------------------------------------------------------------------


def test_predict_test_is_the_sample_image_through_onnxruntime(
    prep: httpx.Client, oracle: ImageOracle
) -> None:
    sample = (DATA_DIR / "sample.png").read_bytes()
    expected = oracle.probabilities([sample])[0]
    [label] = oracle.labels([sample])
    answer = prep.get("/predict/test").json()
    np.testing.assert_allclose(answer["prediction"], expected, rtol=0, atol=1e-6)
    assert answer["label"] == label
    assert prep.get("/predict/test/label").json() == {"prediction": label}
    # data/sample.png is the first held-out image (labels.json's first item): the model gets it
    labels: dict[str, str] = json.loads((DATA_DIR / "labels.json").read_text())
    assert label == labels[min(labels)]


def test_predict_and_predict_label_agree_and_name_the_model(
    prep: httpx.Client, oracle: ImageOracle, png_images: list[LabelledImage]
) -> None:
    body = {"image_data": encode(png_images[3].data)}
    answer = prep.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Model-Name"] == oracle.name
    assert answer.headers["X-Model-Version"] == oracle.version
    np.testing.assert_allclose(
        answer.json()["prediction"], oracle.probabilities([png_images[3].data])[0], atol=1e-6
    )
    label = prep.post("/predict/label", json=body).json()
    assert label == {"prediction": answer.json()["label"]}


def test_metadata_and_label_describe_the_model_pred_serves(
    prep: httpx.Client, oracle: ImageOracle
) -> None:
    metadata = metadata_of(oracle.model_dir)
    answer = prep.get("/metadata").json()
    assert answer == {
        "data_type": "str",
        "data_structure": "(1,1)",
        "data_sample": "base64 encoded image file",
        "prediction_type": "float32",
        "prediction_structure": f"(1,{len(metadata['labels'])})",
        "model": {
            "name": metadata["name"],
            "version": metadata["version"],
            "sha256": metadata["sha256"],
        },
        "labels": metadata["labels"],
        "preprocessing": metadata["preprocessing"],
        "metrics": metadata["metrics"],
    }
    assert prep.get("/label").json() == metadata["labels"]


def test_ready_reports_the_pred_it_checked(prep: httpx.Client, oracle: ImageOracle) -> None:
    answer = prep.get("/ready").json()
    assert answer["status"] == "ready"
    assert (answer["pred"]["model"], answer["pred"]["version"]) == (oracle.name, oracle.version)
    assert prep.get("/health").json() == {"health": "ok"}


def test_one_request_id_across_prep_and_pred(
    prep: httpx.Client,
    running: RunningPattern,
    oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    request_id = "prep-pred-readme-0001"
    headers = {"X-Request-ID": request_id}
    body = {"image_data": encode(png_images[0].data)}
    assert prep.post("/predict", json=body, headers=headers).status_code == 200
    for process in ("prep", "pred"):
        assert access_line(running, process, request_id)["model_version"] == oracle.version
    prep_line = access_line(running, "prep", request_id)
    assert {"preprocess_ms", "predict_ms", "postprocess_ms"} <= set(prep_line)


def test_stage_and_call_metrics(prep: httpx.Client) -> None:
    assert prep.get("/predict/test").status_code == 200
    metrics = prep.get("/metrics").text
    for stage in ("preprocess", "predict", "postprocess"):
        assert f'prep_stage_seconds_count{{stage="{stage}"}}' in metrics
    assert 'pred_calls_total{method="POST",outcome="200"}' in metrics


# --- exact 4xx for bad input; none reaches pred ------------------------------------------------


def corrupt_png() -> bytes:
    """A real PNG cut in the middle of its pixel data."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="PNG")
    data = buffer.getvalue()
    return data[: len(data) // 2]


def pixel_bomb() -> bytes:
    """A small PNG file of more pixels than Pillow's decompression-bomb limit allows."""
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_INPUT: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "empty-body": (b"", JSON, 422, "invalid_input"),
    "not-json": (b"image_data=abc", JSON, 422, "invalid_input"),
    "form-media-type": (b"image_data=abc", {"Content-Type": "application/x-www-form-urlencoded"},
                        415, "unsupported_media_type"),
    "json-list": (b'["abc"]', JSON, 422, "invalid_input"),
    "missing-field": (b"{}", JSON, 422, "invalid_input"),
    "wrong-type": (b'{"image_data": 12345}', JSON, 422, "invalid_input"),
    "null": (b'{"image_data": null}', JSON, 422, "invalid_input"),
    "unknown-field": (b'{"image_data": "", "data": [[1, 2]]}', JSON, 422, "invalid_input"),
    "empty-image": (b'{"image_data": ""}', JSON, 422, "invalid_input"),
    "bad-base64": (b'{"image_data": "a*b*c*d*"}', JSON, 422, "invalid_input"),
    "gif-text": (b'{"image_data": "R0lGODlhAQABAAAAACw="}', JSON, 415, "unsupported_media_type"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_bodies_are_their_exact_4xx(prep: httpx.Client, case: str) -> None:
    content, headers, status, code = BAD_INPUT[case]
    before = pred_infer_calls(prep)
    expect_error(prep.post("/predict", content=content, headers=headers), status, code)
    expect_error(prep.post("/predict/label", content=content, headers=headers), status, code)
    assert pred_infer_calls(prep) == before


@pytest.mark.parametrize(
    ("image", "status", "code"),
    [
        (corrupt_png(), 415, "unsupported_media_type"),
        (b"%PDF-1.7 not an image", 415, "unsupported_media_type"),
        (pixel_bomb(), 413, "payload_too_large"),
    ],
    ids=["truncated-png", "pdf", "pixel-bomb"],
)
def test_corrupt_foreign_and_bomb_images_are_refused(
    prep: httpx.Client, image: bytes, status: int, code: str
) -> None:
    before = pred_infer_calls(prep)
    expect_error(prep.post("/predict", json={"image_data": encode(image)}), status, code)
    assert pred_infer_calls(prep) == before


def test_a_body_larger_than_max_image_bytes_can_take_is_413_before_it_is_read(
    prep: httpx.Client,
) -> None:
    content = b'{"image_data": "' + b"A" * (MAX_IMAGE_BYTES * 4 // 3 + 200_000) + b'"}'
    expect_error(prep.post("/predict", content=content, headers=JSON), 413, "payload_too_large")
    assert prep.get("/predict/test").status_code == 200  # prep is fine afterwards


def test_unknown_routes_and_methods_answer_in_the_envelope(prep: httpx.Client) -> None:
    expect_error(prep.get("/nowhere"), 404, "not_found")
    expect_error(prep.get("/predict"), 405, "method_not_allowed")
