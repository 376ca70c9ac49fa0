"""The proxy's API through the real processes (SPEC 3.3 acceptance tests 1, 5, 6 and 7): images
in, job ids out, results polled and compared with onnxruntime; idempotency; job ids; input
refused before it reaches the queue; the model, health and metrics routes.

One launch for the module, on the run's shared Redis under a queue prefix of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.chapter4_serving_patterns.asynchronous_pattern.harness import (
    DATA_DIR,
    MAX_IMAGE_BYTES,
    PATTERN,
    QueueKeys,
    accepted,
    job,
    labels_of,
    metric,
    queue_predictor,
    stopped,
    submit,
    unique_prefix,
    wait_all,
    wait_status,
    worker_metric,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import (
    ImageOracle,
    LabelledImage,
    check_variants,
    encode,
    refusal_bodies,
    sample_label,
)
from tests.support.launcher import RunningPattern, launch

SUCCEEDED_TOTAL = 'worker_jobs_total{outcome="succeeded"}'


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def running(digits_dir: Path, redis_url: str, prefix: str) -> Iterator[RunningPattern]:
    with launch(PATTERN, env={"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix}) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def keys(redis_url: str, prefix: str) -> QueueKeys:
    return QueueKeys(redis_url, prefix)


def test_forty_held_out_digits_all_succeed_as_onnxruntime_says(
    proxy: httpx.Client,
    keys: QueueKeys,
    oracle: ImageOracle,
    png_images: list[LabelledImage],
    jpeg_images: list[LabelledImage],
) -> None:
    """Acceptance test 1: PNG and JPEG digits, submitted all at once, then polled."""
    items = png_images[:20] + jpeg_images[20:40]
    job_ids = [accepted(submit(proxy, item.data)) for item in items]
    settled = wait_all(proxy, job_ids)
    assert [s["status"] for s in settled] == ["succeeded"] * len(items), settled
    expected = oracle.probabilities([item.data for item in items])
    served = np.asarray([s["result"]["prediction"] for s in settled], dtype=np.float64)
    np.testing.assert_allclose(served, expected.astype(np.float64), rtol=0, atol=1e-5)
    labels = [s["result"]["label"] for s in settled]
    assert labels == oracle.labels([item.data for item in items])
    accuracy = sum(label == item.label for label, item in zip(labels, items, strict=True))
    assert accuracy / len(items) >= 0.93, f"accuracy {accuracy}/{len(items)}"
    for settled_job in settled:
        assert settled_job["result"]["model"] == {"name": oracle.name, "version": oracle.version}
        assert settled_job["attempts"] == 1 and settled_job["error"] is None
        # input bytes deleted on success; the record expires after RESULT_TTL_S
        assert not keys.client.exists(keys.input_key(settled_job["job_id"]))
        assert 0 < keys.record_ttl(settled_job["job_id"]) <= 3600
    assert keys.stream_length() == 0 and keys.pending() == 0


def test_variants_of_one_image_predict_its_label(proxy: httpx.Client) -> None:
    """I-oracle 2 through the queue: RGBA, grayscale, palette, EXIF-rotated."""
    check_variants(queue_predictor(proxy), DATA_DIR / "sample.png")


def test_the_job_record_and_the_result_routes(proxy: httpx.Client, oracle: ImageOracle) -> None:
    image = (DATA_DIR / "test_png" / "0003.png").read_bytes()
    job_id = accepted(submit(proxy, image))
    done = wait_status(proxy, job_id, ["succeeded"])
    assert set(done) == {
        "job_id", "status", "attempts", "result", "error", "created_at", "updated_at"
    }  # fmt: skip
    assert done["created_at"] <= done["updated_at"]
    result = proxy.get(f"/job/{job_id}/result")
    assert result.status_code == 200, result.text
    assert result.json() == {"job_id": job_id, **done["result"]}
    assert done["result"]["label"] == oracle.labels([image])[0]


def test_a_pending_job_answers_202_with_retry_after(
    running: RunningPattern, proxy: httpx.Client
) -> None:
    with stopped(running, "worker"):
        job_id = accepted(proxy.get("/predict/test"))
        pending = proxy.get(f"/job/{job_id}/result")
        assert pending.status_code == 202, pending.text
        assert pending.headers["Retry-After"] == "1"
        assert pending.json() == {"job_id": job_id, "status": "queued", "attempts": 0}
        assert job(proxy, job_id)["result"] is None
    done = wait_status(proxy, job_id, ["succeeded"])
    assert done["result"]["label"] == sample_label(DATA_DIR)


def test_idempotency_key_same_body_same_job_other_body_409(
    running: RunningPattern, proxy: httpx.Client
) -> None:
    """Acceptance test 5, with concurrent submissions of one key: one job is executed."""
    image = (DATA_DIR / "test_png" / "0004.png").read_bytes()
    other = (DATA_DIR / "test_png" / "0005.png").read_bytes()
    before = worker_metric(running, SUCCEEDED_TOTAL)
    key = f"order-{uuid.uuid4()}"
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: submit(proxy, image, key), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202], [a.text for a in answers]
    job_ids = {a.json()["job_id"] for a in answers}
    assert len(job_ids) == 1
    (job_id,) = job_ids
    wait_status(proxy, job_id, ["succeeded"])
    again = submit(proxy, image, key)
    assert again.status_code == 200 and again.json() == {"job_id": job_id, "status": "succeeded"}
    assert again.headers["Location"] == f"/job/{job_id}"
    body = expect_error(submit(proxy, other, key), 409, "conflict")
    assert job_id in body["error"]
    assert worker_metric(running, SUCCEEDED_TOTAL) - before == 1


def test_malformed_ids_are_422_and_unknown_ids_404(proxy: httpx.Client) -> None:
    """Acceptance test 6 (the TTL half is a drill)."""
    for path in ("/job/{}", "/job/{}/result"):
        for malformed in ("not-a-uuid", "12345", str(uuid.uuid1())):
            expect_error(proxy.get(path.format(malformed)), 422, "invalid_input")
        expect_error(proxy.get(path.format(uuid.uuid4())), 404, "not_found")
    expect_error(proxy.post("/dead-letter/nope/retry"), 422, "invalid_input")
    expect_error(proxy.post(f"/dead-letter/{uuid.uuid4()}/retry"), 404, "not_found")


def test_bad_inputs_are_refused_and_never_reach_the_queue(
    proxy: httpx.Client, keys: QueueKeys
) -> None:
    """Acceptance test 7: SPEC 0.4's codes, and not one stored job or stream entry more."""
    records, stream = keys.job_records(), keys.stream_length()
    for name, (body, status, code) in refusal_bodies(MAX_IMAGE_BYTES).items():
        response = proxy.post("/predict", json=body)
        assert response.status_code == status, f"{name}: {response.text}"
        expect_error(response, status, code)
    image = encode((DATA_DIR / "sample.png").read_bytes())
    refusals = [
        (proxy.post("/predict", json={"image_data": image, "extra": 1}), 422, "invalid_input"),
        (proxy.post("/predict", json={"image": image}), 422, "invalid_input"),
        (proxy.post("/predict", json=[image]), 422, "invalid_input"),
        (proxy.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"}), 422, "invalid_input"),  # noqa: E501
        (proxy.post("/predict", content=image, headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"),  # noqa: E501
        (proxy.post("/predict", json={"image_data": image}, headers={"Idempotency-Key": "k" * 300}), 422, "invalid_input"),  # noqa: E501
    ]  # fmt: skip
    for response, status, code in refusals:
        expect_error(response, status, code)
    assert keys.job_records() == records and keys.stream_length() == stream


def test_predict_test_queues_the_sample(proxy: httpx.Client) -> None:
    job_id = accepted(proxy.get("/predict/test"))
    done = wait_status(proxy, job_id, ["succeeded"])
    assert done["result"]["label"] == sample_label(DATA_DIR)


def test_model_routes_come_with_pred(
    proxy: httpx.Client, oracle: ImageOracle, digits_dir: Path
) -> None:
    assert proxy.get("/label").json() == labels_of(digits_dir)
    metadata = proxy.get("/metadata").json()
    assert metadata["data_type"] == "str" and metadata["data_structure"] == "(1,1)"
    assert metadata["prediction_structure"] == "(1,10)"
    assert metadata["model"]["version"] == oracle.version
    assert metadata["preprocessing"] == oracle.metadata["preprocessing"]
    assert oracle.version in metadata["pred"]["versions"]


def test_health_ready_and_metrics(running: RunningPattern, proxy: httpx.Client) -> None:
    assert proxy.get("/health").json() == {"health": "ok"}
    assert proxy.get("/ready").status_code == 200
    assert proxy.get("/health/all").json() == {
        "redis": "ok", "pred": "ok", "workers": "ok", "worker_count": 1
    }  # fmt: skip
    text = proxy.get("/metrics").text
    assert metric(text, "queue_depth") == 0.0
    assert "dead_letters " in text
    worker = httpx.get(running.url("worker") + "/health", timeout=5)
    assert worker.status_code == 200 and worker.json() == {"health": "ok"}
    worker_text = httpx.get(running.url("worker") + "/metrics", timeout=5).text
    for name in ("worker_jobs_total", "worker_attempts_total", "worker_job_seconds",
                 "worker_queue_wait_seconds", "queue_depth", "dead_letters"):  # fmt: skip
        assert f"# TYPE {name} " in worker_text, name
    missing = httpx.get(running.url("worker") + "/nope", timeout=5)
    assert missing.status_code == 404 and json.loads(missing.text)["code"] == "not_found"


def test_the_client_submits_polls_and_prints_the_label(running: RunningPattern) -> None:
    """`make request_sample` (Procfile.jobs): python -m src.client against this launch."""
    output = running.run_job("request_sample")
    assert f"sample.png: label '{sample_label(DATA_DIR)}'" in output, output
    assert "-> succeeded (attempts 1)" in output and "queue_depth " in output
