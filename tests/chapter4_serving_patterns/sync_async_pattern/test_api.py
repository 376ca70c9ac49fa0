"""The proxy's API through the real processes (SPEC 3.7 acceptance tests 1 and 2): the quick
answer equals onnxruntime on the small model, the job's result onnxruntime on the large one, the
bytes queued are the bytes uploaded; idempotency, refusals before either path, the job, model,
health and metrics routes.

One launch for the module, on the run's shared Redis under a queue prefix of its own."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.chapter4_serving_patterns.sync_async_pattern.harness import (
    DATA_DIR,
    MAX_IMAGE_BYTES,
    PATTERN,
    QueueKeys,
    answered,
    job,
    metric,
    post,
    process_metric,
    stopped,
    unique_prefix,
    wait_all,
    wait_status,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import (
    ImageOracle,
    LabelledImage,
    encode,
    refusal_bodies,
    sample_label,
)
from tests.support.launcher import RunningPattern, launch

SUCCEEDED_TOTAL = 'worker_jobs_total{outcome="succeeded"}'
INFER_REQUESTS = "http_requests_total"


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def running(models: None, redis_url: str, prefix: str) -> Iterator[RunningPattern]:
    with launch(PATTERN, env={"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def keys(redis_url: str, prefix: str) -> QueueKeys:
    return QueueKeys(redis_url, prefix)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_thirty_digits_quick_answer_small_model_job_result_large_model(
    *,
    proxy: httpx.Client,
    keys: QueueKeys,
    quick_oracle: ImageOracle,
    heavy_oracle: ImageOracle,
    png_images: list[LabelledImage],
    jpeg_images: list[LabelledImage],
) -> None:
    """Acceptance test 1: 15 PNG and 15 JPEG digits; each answer's quick half equals onnxruntime
    on digits_resnet_small, each job's result onnxruntime on digits_resnet_large."""
    items = png_images[:15] + jpeg_images[15:30]
    images = [item.data for item in items]
    bodies = [answered(post(proxy, data)) for data in images]

    quick = np.asarray([b["sync"]["prediction"] for b in bodies], dtype=np.float64)
    expected_quick = quick_oracle.probabilities(images).astype(np.float64)
    np.testing.assert_allclose(quick, expected_quick, rtol=0, atol=1e-5)
    assert [b["sync"]["label"] for b in bodies] == quick_oracle.labels(images)
    for body in bodies:
        assert (body["sync"]["model"], body["sync"]["version"]) == (
            quick_oracle.name, quick_oracle.version
        )  # fmt: skip
        assert body["async"] == {
            "model": heavy_oracle.name, "version": heavy_oracle.version, "status": "queued"
        }  # fmt: skip

    settled = wait_all(proxy, [b["job_id"] for b in bodies])
    assert [s["status"] for s in settled] == ["succeeded"] * len(items), settled
    heavy = np.asarray([s["result"]["prediction"] for s in settled], dtype=np.float64)
    expected_heavy = heavy_oracle.probabilities(images).astype(np.float64)
    np.testing.assert_allclose(heavy, expected_heavy, rtol=0, atol=1e-5)
    labels = [s["result"]["label"] for s in settled]
    assert labels == heavy_oracle.labels(images)
    accuracy = sum(label == item.label for label, item in zip(labels, items, strict=True))
    assert accuracy / len(items) >= 0.93, f"accuracy {accuracy}/{len(items)}"
    for settled_job, data in zip(settled, images, strict=True):
        assert settled_job["result"]["model"] == {
            "name": heavy_oracle.name, "version": heavy_oracle.version
        }  # fmt: skip
        assert settled_job["attempts"] == 1 and settled_job["error"] is None
        assert keys.recorded_sha256(settled_job["job_id"]) == sha256(data)
        assert keys.stored_input(settled_job["job_id"]) is None  # deleted on success
    assert keys.stream_length() == 0 and keys.pending() == 0


def test_the_bytes_queued_are_the_bytes_uploaded(
    *,
    running: RunningPattern,
    proxy: httpx.Client,
    keys: QueueKeys,
    heavy_oracle: ImageOracle,
    png_images: list[LabelledImage],
    jpeg_images: list[LabelledImage],
) -> None:
    """Acceptance test 2: with the worker held, the input each job holds in Redis has the
    sha256 of the uploaded file (PNG and JPEG, and a URL-safe base64 upload)."""
    images = [png_images[30].data, jpeg_images[31].data, png_images[32].data]
    with stopped(running, "worker"):
        bodies = [answered(post(proxy, data)) for data in images[:2]]
        urlsafe = {"image_data": encode(images[2]).replace("+", "-").replace("/", "_").rstrip("=")}
        bodies.append(answered(proxy.post("/predict", json=urlsafe)))
        for body, data in zip(bodies, images, strict=True):
            stored = keys.stored_input(body["job_id"])
            assert stored is not None and sha256(stored) == sha256(data)
            assert keys.recorded_sha256(body["job_id"]) == sha256(data)
    settled = wait_all(proxy, [b["job_id"] for b in bodies])
    assert [s["result"]["label"] for s in settled] == heavy_oracle.labels(images)


def test_idempotency_key_same_body_same_job_other_body_409(
    running: RunningPattern, proxy: httpx.Client, quick_oracle: ImageOracle
) -> None:
    """QUEUE rule 7 through POST /predict: the repeat gets the quick answer again and the same
    job (its current status); another image under the key → 409; one job executed."""
    image = (DATA_DIR / "test_png" / "0040.png").read_bytes()
    other = (DATA_DIR / "test_png" / "0041.png").read_bytes()
    before = process_metric(running, "worker", SUCCEEDED_TOTAL)
    key = f"order-{uuid.uuid4()}"
    first = answered(post(proxy, image, key))
    wait_status(proxy, first["job_id"], ["succeeded"])
    again = post(proxy, image, key)
    assert again.status_code == 200, again.text
    repeat = again.json()
    assert repeat["job_id"] == first["job_id"] and repeat["async"]["status"] == "succeeded"
    assert repeat["sync"]["label"] == quick_oracle.labels([image])[0]
    body = expect_error(post(proxy, other, key), 409, "conflict")
    assert first["job_id"] in body["error"]
    assert process_metric(running, "worker", SUCCEEDED_TOTAL) - before == 1


def test_bad_inputs_reach_neither_model_server_nor_the_queue(
    running: RunningPattern, proxy: httpx.Client, keys: QueueKeys
) -> None:
    """Behaviour 1: input validated once, before anything: SPEC 0.4's codes, no job stored, no
    call to pred_sync (its request counter unchanged)."""
    counted = answered(proxy.get("/predict/test"))  # one call counted, at least
    wait_status(proxy, counted["job_id"], ["succeeded"])  # the stream as it stays
    records, stream = keys.job_records(), keys.stream_length()
    infer_before = infer_calls(running)
    assert infer_before >= 1
    for name, (body, status, code) in refusal_bodies(MAX_IMAGE_BYTES).items():
        response = proxy.post("/predict", json=body)
        assert response.status_code == status, f"{name}: {response.text}"
        expect_error(response, status, code)
    image = encode((DATA_DIR / "sample.png").read_bytes())
    refusals = [
        (proxy.post("/predict", json={"image_data": image, "extra": 1}), 422, "invalid_input"),
        (proxy.post("/predict", json=[image]), 422, "invalid_input"),
        (proxy.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"}), 422, "invalid_input"),  # noqa: E501
        (proxy.post("/predict", content=image, headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"),  # noqa: E501
        (proxy.post("/predict", json={"image_data": image}, headers={"Idempotency-Key": "k" * 300}), 422, "invalid_input"),  # noqa: E501
    ]  # fmt: skip
    for response, status, code in refusals:
        expect_error(response, status, code)
    assert keys.job_records() == records and keys.stream_length() == stream
    assert infer_calls(running) == infer_before


def infer_calls(running: RunningPattern) -> float:
    """POSTs pred_sync has answered on its infer route, from its own request counter."""
    text = httpx.get(running.url("pred_sync") + "/metrics", timeout=5).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(INFER_REQUESTS + "{") and 'method="POST"' in line
    )


def test_predict_test_answers_for_the_sample(proxy: httpx.Client) -> None:
    body = answered(proxy.get("/predict/test"))
    label = sample_label(DATA_DIR)
    assert body["sync"]["label"] == label
    assert wait_status(proxy, body["job_id"], ["succeeded"])["result"]["label"] == label


def test_job_routes(running: RunningPattern, proxy: httpx.Client) -> None:
    """As in SPEC 3.3: 202 + Retry-After while pending, 200 with the heavy result, 422, 404."""
    with stopped(running, "worker"):
        job_id = answered(proxy.get("/predict/test"))["job_id"]
        pending = proxy.get(f"/job/{job_id}/result")
        assert pending.status_code == 202, pending.text
        assert pending.headers["Retry-After"] == "1"
        assert pending.json() == {"job_id": job_id, "status": "queued", "attempts": 0}
    done = wait_status(proxy, job_id, ["succeeded"])
    assert set(done) == {
        "job_id", "status", "attempts", "result", "error", "created_at", "updated_at"
    }  # fmt: skip
    result = proxy.get(f"/job/{job_id}/result")
    assert result.status_code == 200 and result.json() == {"job_id": job_id, **done["result"]}
    for path in ("/job/{}", "/job/{}/result"):
        for malformed in ("not-a-uuid", str(uuid.uuid1())):
            expect_error(proxy.get(path.format(malformed)), 422, "invalid_input")
        expect_error(proxy.get(path.format(uuid.uuid4())), 404, "not_found")
    assert job(proxy, job_id)["status"] == "succeeded"


def test_metadata_names_both_models(
    proxy: httpx.Client, quick_oracle: ImageOracle, heavy_oracle: ImageOracle
) -> None:
    metadata = proxy.get("/metadata").json()
    assert metadata["data_type"] == "str" and metadata["data_structure"] == "(1,1)"
    assert metadata["prediction_structure"] == "(1,10)"
    for side, oracle in (("sync", quick_oracle), ("async", heavy_oracle)):
        assert metadata[side]["model"]["name"] == oracle.name
        assert metadata[side]["model"]["version"] == oracle.version
        assert metadata[side]["preprocessing"] == oracle.metadata["preprocessing"]
        assert metadata[side]["served"] is True


def test_health_ready_and_metrics(running: RunningPattern, proxy: httpx.Client) -> None:
    assert proxy.get("/health").json() == {"health": "ok"}
    assert proxy.get("/ready").status_code == 200
    assert proxy.get("/health/all").json() == {
        "pred_sync": "ok", "pred_async": "ok", "redis": "ok", "workers": "ok", "worker_count": 1
    }  # fmt: skip
    text = proxy.get("/metrics").text
    assert metric(text, "queue_depth") == 0.0
    assert metric(text, 'proxy_sync_answers_total{outcome="ok"}') >= 1
    assert metric(text, 'proxy_jobs_queued_total{outcome="queued"}') >= 1
    worker = httpx.get(running.url("worker") + "/health", timeout=5)
    assert worker.status_code == 200 and worker.json() == {"health": "ok"}


def test_the_client_prints_both_answers(running: RunningPattern) -> None:
    """`make request_sample` (Procfile.jobs): python -m src.client against this launch."""
    output = running.run_job("request_sample")
    label = sample_label(DATA_DIR)
    assert f"quick label '{label}' (digits_resnet_small)" in output, output
    assert "-> succeeded (attempts 1)" in output
    assert "digits_resnet_large" in output and "quick and heavy answers" in output
