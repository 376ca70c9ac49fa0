"""The I-API of `pred` (SPEC 0.4): I-oracles 1 and 2 through POST /predict, the book's
endpoints, and every input rule with its exact status and code."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.chapter4_serving_patterns.synchronous_pattern.harness import (
    DATA_DIR,
    MAX_IMAGE_BYTES,
    Pred,
    image_body,
)
from tests.support.image_checks import (
    ImageOracle,
    check_accuracy,
    check_input_refusals,
    check_variants,
    rest_predictor,
    sample_label,
)
from tests.support.ports import wait_until


def sample() -> bytes:
    return (DATA_DIR / "sample.png").read_bytes()


def test_health_ready_label(pred: Pred, oracle: ImageOracle) -> None:
    assert pred.client.get("/health").json() == {"health": "ok"}
    assert pred.client.get("/ready").json() == {"status": "ready"}
    labels = json.loads((oracle.model_dir / "label.json").read_text())
    assert pred.client.get("/label").json() == labels


def test_metadata_describes_the_image_model(pred: Pred, oracle: ImageOracle) -> None:
    body = pred.client.get("/metadata").json()
    assert body["data_type"] == "str"
    assert body["data_structure"] == "(1,1)"
    assert body["data_sample"] == "base64 encoded image file"
    assert body["prediction_type"] == "float32"
    assert body["prediction_structure"] == f"(1,{len(oracle.label_names)})"
    assert body["model"] == {
        "name": oracle.name,
        "version": oracle.version,
        "sha256": oracle.metadata["sha256"],
    }
    assert body["preprocessing"] == oracle.metadata["preprocessing"]
    assert body["metrics"] == oracle.metadata["metrics"]


def test_predict_test_is_the_sample_image(pred: Pred, oracle: ImageOracle) -> None:
    body = pred.client.get("/predict/test").json()
    expected = oracle.probabilities([sample()])[0]
    np.testing.assert_allclose(body["prediction"], expected, rtol=0, atol=1e-6)
    assert body["label"] == sample_label(DATA_DIR)
    assert pred.client.get("/predict/test/label").json() == {"prediction": body["label"]}


def test_i_oracle_1_png_exact_agreement(pred: Pred, oracle: ImageOracle) -> None:
    predict = rest_predictor(pred.client)
    report = check_accuracy(predict, oracle, DATA_DIR / "test_png", minimum=0.95, exact=True)
    assert report.count >= 200


def test_i_oracle_1_jpeg(pred: Pred, oracle: ImageOracle) -> None:
    predict = rest_predictor(pred.client)
    report = check_accuracy(predict, oracle, DATA_DIR / "test_jpeg", minimum=0.95)
    assert report.count >= 200


def test_i_oracle_2_variants_predict_the_same_label(pred: Pred) -> None:
    check_variants(rest_predictor(pred.client), DATA_DIR / "sample.png")


def test_i_oracle_2_refusals(pred: Pred) -> None:
    check_input_refusals(pred.client, max_image_bytes=MAX_IMAGE_BYTES)


def test_predict_answers_probabilities_and_label(pred: Pred, oracle: ImageOracle) -> None:
    response = pred.post("/predict", image_body(sample()))
    assert response.status_code == 200, response.text
    assert response.headers["X-Model-Name"] == oracle.name
    assert response.headers["X-Model-Version"] == oracle.version
    assert response.headers["X-Request-ID"]
    body = response.json()
    assert set(body) == {"prediction", "label"}
    assert len(body["prediction"]) == len(oracle.label_names)
    label = pred.post("/predict/label", image_body(sample())).json()
    assert label == {"prediction": body["label"]}


def reencoded(data: bytes, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB").save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("image_format", "options"),
    [("GIF", {}), ("BMP", {}), ("WEBP", {"lossless": True})],
)
def test_other_formats_are_accepted(
    pred: Pred, oracle: ImageOracle, image_format: str, options: dict[str, Any]
) -> None:
    data = reencoded(sample(), image_format, **options)
    response = pred.post("/predict", image_body(data))
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        response.json()["prediction"], oracle.probabilities([data])[0], rtol=0, atol=1e-6
    )


def test_url_safe_base64_without_padding_is_the_same_image(pred: Pred) -> None:
    plain = pred.post("/predict", image_body(sample())).json()
    text = base64.urlsafe_b64encode(sample()).decode().rstrip("=")
    assert pred.post("/predict", {"image_data": text}).json() == plain


def pixel_bomb() -> bytes:
    """A small PNG file whose pixel count is beyond Pillow's limit (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated_png() -> bytes:
    return sample()[: len(sample()) // 2]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        ("SIGNATURE", None, 415, "unsupported_media_type"),
        ("TRUNCATED", None, 415, "unsupported_media_type"),
        ("BOMB", None, 413, "payload_too_large"),
        (json.dumps(image_body(b"GIF89a" + b"\0" * 20)), None, 415, "unsupported_media_type"),
        ('{"image_data": 42}', None, 422, "invalid_input"),
        ('{"image_data": ""}', None, 422, "invalid_input"),
        ('{"image": "abc"}', None, 422, "invalid_input"),
        ('{"image_data": "abc", "extra": 1}', None, 422, "invalid_input"),
        ('["image_data"]', None, 422, "invalid_input"),
        ('{"image_data": ', None, 422, "invalid_input"),
        ("", None, 422, "invalid_input"),
        ("SAMPLE", "text/plain", 415, "unsupported_media_type"),
        ("SAMPLE", "image/png", 415, "unsupported_media_type"),
    ],
    ids=[
        "png-signature-only", "truncated-png", "pixel-bomb", "gif-header-only", "not-a-string",
        "empty-string", "missing-field", "unknown-field", "not-an-object", "malformed-json",
        "empty-body", "text-plain", "raw-image-upload",
    ],
)  # fmt: skip
def test_bad_input_gets_its_exact_status(
    pred: Pred, content: str, content_type: str | None, status: int, code: str
) -> None:
    bodies = {
        "TRUNCATED": json.dumps(image_body(truncated_png())),
        "BOMB": json.dumps(image_body(pixel_bomb())),
        "SAMPLE": json.dumps(image_body(sample())),
        "SIGNATURE": json.dumps(image_body(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)),
    }
    headers = {"Content-Type": content_type or "application/json"}
    response = pred.client.post("/predict", content=bodies.get(content, content), headers=headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_a_body_beyond_the_image_limit_is_refused_before_it_is_read(pred: Pred) -> None:
    huge = b"A" * (MAX_IMAGE_BYTES * 2)
    content = b'{"image_data": "' + huge + b'"}'
    headers = {"Content-Type": "application/json"}
    response = pred.client.post("/predict", content=content, headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"


def test_the_access_line_names_the_prediction(pred: Pred, oracle: ImageOracle) -> None:
    response = pred.post("/predict", image_body(sample()), headers={"X-Request-ID": "sync-line-1"})
    assert response.status_code == 200

    def access_lines() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in pred.log().splitlines() if "sync-line-1" in line]
        return [line for line in lines if line["logger"] == "access"]

    # written once the response has gone out: poll for it
    wait_until(lambda: bool(access_lines()), timeout_s=5, what="the access line")
    access = access_lines()
    assert len(access) == 1, access
    assert access[0]["model_name"] == oracle.name
    assert access[0]["model_version"] == oracle.version
    assert access[0]["images"] == 1
    assert access[0]["batch_size"] == 1
    assert access[0]["inference_ms"] > 0


def test_metrics_count_each_prediction_by_model_and_version(
    pred: Pred, oracle: ImageOracle
) -> None:
    def counts() -> tuple[float, float]:
        images = pred.samples("predictions")["predictions_total"]
        calls = pred.samples("model_inference_seconds")["model_inference_seconds_count"]
        return images, calls

    before = counts()
    assert pred.post("/predict", image_body(sample())).status_code == 200
    assert counts() == (before[0] + 1, before[1] + 1)
    text = pred.client.get("/metrics").text
    labels = f'model_name="{oracle.name}",model_version="{oracle.version}"'
    for name in ("model_inference_seconds_count", "inference_queue_delay_seconds_count",
                 "inference_batch_size_count", "predictions_total"):  # fmt: skip
        assert f"{name}{{{labels}}}" in text, name


def test_the_openapi_document_describes_both_apis(pred: Pred) -> None:
    paths = pred.client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict/label", "/metadata", "/v2/models/{name}/infer",
                 "/v2/models/{name}/versions/{version}/infer"):  # fmt: skip
        assert path in paths, path
    assert pred.client.get("/docs").status_code == 200
