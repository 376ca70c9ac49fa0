"""The two paths of one prediction (SPEC 3.7 behaviour): the quick answer from pred_sync and the
job for the heavy model, run side by side once the upload is validated.

    validate (once):  base64 → image file bytes, preprocessed as the worker will (413 / 415 / 422)
    sync path:        its own decode of the bytes (immutable: neither path can alter what the
                      other reads) → pred_sync's V2 infer, within SYNC_TIMEOUT_MS
    async path:       the bytes exactly as received → Redis (QUEUE 1-9, src/jobs/store.py)

Neither path fails the other: pred_sync down or slow → `sync: null` with `sync_error`, the job
still queued (200); Redis down or the queue full → the sync answer with `async: {"status":
"unavailable", ...}` (200); both down → 503. An Idempotency-Key reused with another image is the
client's mistake: 409 whatever the paths did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from redis.exceptions import RedisError

from src.common.errors import ApiError
from src.configurations import ProxySettings
from src.jobs.store import IdempotencyConflict, JobStore, QueueFull, Submission
from src.ml import pipeline
from src.ml.image_input import ImageInputError
from src.ml.pipeline import ImageClassifier
from src.pred_client import PredClient, PredRefused, PredUnavailable


@dataclass(frozen=True)
class Proxy:
    """What the routes use: settings, the queue, a client of each model server, both models'
    metadata and the sample image."""

    settings: ProxySettings
    store: JobStore
    sync_pred: PredClient  # pred_sync, the quick model, SYNC_TIMEOUT_MS
    async_pred: PredClient  # pred_async, the heavy model (probed only: the worker calls it)
    sync_classifier: ImageClassifier
    classifier: ImageClassifier  # the heavy model: what the worker preprocesses with
    sample: bytes

    @property
    def retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(self.settings.poll_after_s)}


@dataclass(frozen=True)
class Failure:
    """Why one path gave no answer, as the response body shows it."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Both:
    """The outcome of both paths for one upload."""

    sync: dict[str, Any] | Failure
    queued: Submission | Failure
    job_status: str | None  # an earlier idempotent submission's current status


def validate(data: bytes, proxy: Proxy) -> None:
    """The upload preprocesses as the worker will preprocess it (413 / 415 / 422 otherwise)."""
    try:
        pipeline.preprocess_file(data, proxy.classifier, proxy.settings.max_image_bytes)
    except ImageInputError as error:  # carries SPEC 0.4's status and code
        loc: list[str | int] = ["body", "image_data"]
        details = [{"loc": loc, "msg": str(error)}] if error.status == 422 else None
        raise ApiError(error.status, error.code, str(error), details) from error


async def predict_sync(proxy: Proxy, data: bytes, request_id: str) -> dict[str, Any] | Failure:
    """pred_sync's answer on the upload, decoded here with the quick model's preprocessing, or
    why there is none."""
    classifier, limit = proxy.sync_classifier, proxy.settings.max_image_bytes
    try:
        batch = await asyncio.to_thread(pipeline.preprocess_file, data, classifier, limit)
        probabilities = await proxy.sync_pred.infer(batch, request_id)
    except ImageInputError as error:  # the quick model preprocesses differently and refuses it
        return Failure(error.code, f"the quick model cannot read this image: {error}")
    except PredUnavailable as error:
        timed_out = isinstance(error.__cause__, TimeoutError | httpx.TimeoutException)
        return Failure("upstream_timeout" if timed_out else "dependency_unavailable", str(error))
    except PredRefused as error:
        return Failure("bad_gateway", str(error))
    [(row, label)] = pipeline.postprocess(probabilities, classifier)
    card = classifier.card
    return {
        "model": card.name,
        "version": card.version,
        "label": label,
        "prediction": [float(value) for value in row],
    }


async def enqueue(proxy: Proxy, data: bytes, key: str | None) -> Submission | Failure:
    """The job for the heavy model, the bytes exactly as received, or why it was not queued."""
    try:
        return await proxy.store.submit(data, key)
    except QueueFull as error:
        return Failure("overflow", str(error))
    except RedisError as error:
        return Failure("dependency_unavailable", f"redis is unavailable: {error!r}")


async def current_status(store: JobStore, submission: Submission | Failure) -> str | None:
    """The status of an earlier submission with the same Idempotency-Key (None: a new job)."""
    if isinstance(submission, Failure) or submission.created:
        return None
    try:
        job = await store.job(submission.job_id)
    except RedisError:
        return "unknown"
    return job.status if job is not None else "expired"


async def run_both(proxy: Proxy, data: bytes, key: str | None, request_id: str) -> Both:
    """Both paths at once: the answer takes the longer of the two, not their sum."""
    sync_task = asyncio.create_task(predict_sync(proxy, data, request_id))
    try:
        queued = await enqueue(proxy, data, key)
    except IdempotencyConflict as error:
        sync_task.cancel()
        raise ApiError(409, "conflict", str(error)) from error
    sync = await sync_task
    return Both(sync, queued, await current_status(proxy.store, queued))


def answer(proxy: Proxy, both: Both) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of POST /predict; ApiError 503 when neither path answered."""
    if isinstance(both.sync, Failure) and isinstance(both.queued, Failure):
        details = [
            {"loc": ["sync"], "msg": f"{both.sync.code}: {both.sync.message}"},
            {"loc": ["async"], "msg": f"{both.queued.code}: {both.queued.message}"},
        ]
        message = "neither the quick model nor the job queue is available"
        raise ApiError(503, "dependency_unavailable", message, details, proxy.retry_after)
    card = proxy.classifier.card
    heavy: dict[str, Any] = {"model": card.name, "version": card.version}
    headers: dict[str, str] = {}
    if isinstance(both.queued, Failure):
        job_id = None
        heavy |= {"status": "unavailable", "error": both.queued.to_json(),
                  "retry_after": proxy.settings.poll_after_s}  # fmt: skip
    else:
        job_id = both.queued.job_id
        heavy["status"] = both.job_status or "queued"
        headers["Location"] = f"/job/{job_id}"
    body = {
        "job_id": job_id,
        "sync": None if isinstance(both.sync, Failure) else both.sync,
        "sync_error": both.sync.to_json() if isinstance(both.sync, Failure) else None,
        "async": heavy,
    }
    return 200, body, headers
