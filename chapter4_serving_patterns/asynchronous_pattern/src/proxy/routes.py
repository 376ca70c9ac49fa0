"""The proxy's API (SPEC 3.3): submit an image, poll its job, read its result, handle dead letters.

Input a client can send wrong is refused before anything is stored (413 / 415 / 422 by the
rules of SPEC 0.4, the same preprocessing the worker runs), so a bad image never reaches the
queue. Redis away → 503 `dependency_unavailable` with Retry-After (src/proxy/app.py maps every
Redis error); queue full → 503 `overflow` with Retry-After.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import Gauge
from pydantic import UUID4, BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from starlette.responses import Response

from src.common.errors import ApiError, error_responses
from src.common.metrics import gauge, metrics_endpoint
from src.configurations import ProxySettings
from src.jobs.store import DEAD, SUCCEEDED, IdempotencyConflict, Job, JobStore, NotDead, QueueFull
from src.ml import image_input, pipeline
from src.ml.image_input import ImageInputError
from src.ml.pipeline import ImageClassifier
from src.pred_client import PredClient, PredUnavailable
from src.web import check_content_type, health, invalid, parse_json, read_body

# The body of POST /predict is the image as base64 (4 characters per 3 bytes) in a small JSON
# object: room for the largest image MAX_IMAGE_BYTES allows, and its envelope.
ENVELOPE_BYTES = 64 * 1024
MAX_IDEMPOTENCY_KEY = 256
SUBMIT_ERRORS = error_responses(409, 413, 415, 422, 503)
JOB_ERRORS = error_responses(404, 422, 503)
NOT_READY = error_responses(503)

router = APIRouter()


class ImageRequest(BaseModel):
    """The book's image body: one image file, base64 (standard or URL-safe, padding optional)."""

    model_config = ConfigDict(extra="forbid")

    image_data: str = Field(description="base64 of a PNG, JPEG, GIF, BMP or WebP file")


class Accepted(BaseModel):
    job_id: str
    status: str


class JobView(BaseModel):
    job_id: str
    status: str
    attempts: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: str
    updated_at: str


class DeadLetters(BaseModel):
    total: int
    limit: int
    offset: int
    jobs: list[JobView]


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ImageRequest.model_json_schema()}},
    }
}


@dataclass(frozen=True)
class Proxy:
    settings: ProxySettings
    store: JobStore
    pred: PredClient
    classifier: ImageClassifier
    sample: bytes

    @property
    def max_body_bytes(self) -> int:
        return (self.settings.max_image_bytes + 2) // 3 * 4 + ENVELOPE_BYTES

    @property
    def retry_after(self) -> dict[str, str]:
        return {"Retry-After": str(self.settings.poll_after_s)}


def proxy_of(request: Request) -> Proxy:
    value = request.app.state.proxy
    assert isinstance(value, Proxy)
    return value


# --- submission ------------------------------------------------------------------------------


def image_of_body(body: bytes, proxy: Proxy) -> bytes:
    """`{"image_data": "<base64>"}` → the image file's bytes, once they preprocess as the worker
    will preprocess them; 413 / 415 / 422 otherwise."""
    document = parse_json(body)
    if type(document) is not dict:
        raise invalid(["body"], 'expected a JSON object {"image_data": "<base64>"}')
    unknown = sorted(key for key in document if key != "image_data")
    if unknown:
        raise invalid(["body", unknown[0]], f"unknown field: {unknown[0]}")
    image_data = document.get("image_data")
    if type(image_data) is not str:
        raise invalid(["body", "image_data"], "image_data must be a base64 string")
    limit = proxy.settings.max_image_bytes
    try:
        data = image_input.decode_base64(image_data, limit)
        pipeline.preprocess_file(data, proxy.classifier, limit)
    except ImageInputError as error:  # carries SPEC 0.4's status and code
        loc: list[str | int] = ["body", "image_data"]
        details = [{"loc": loc, "msg": str(error)}] if error.status == 422 else None
        raise ApiError(error.status, error.code, str(error), details) from error
    return data


def idempotency_key_of(value: str | None) -> str | None:
    if value is not None and not 0 < len(value) <= MAX_IDEMPOTENCY_KEY:
        message = f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        raise invalid(["header", "Idempotency-Key"], message)
    return value


async def submit(proxy: Proxy, data: bytes, key: str | None) -> Response:
    try:
        submission = await proxy.store.submit(data, key)
    except QueueFull as error:
        raise ApiError(503, "overflow", str(error), headers=proxy.retry_after) from error
    except IdempotencyConflict as error:
        raise ApiError(409, "conflict", str(error)) from error
    location = {"Location": f"/job/{submission.job_id}"}
    if submission.created:
        body = {"job_id": submission.job_id, "status": "queued"}
        return JSONResponse(body, status_code=202, headers=location)
    job = await proxy.store.job(submission.job_id)
    status = job.status if job is not None else "expired"
    return JSONResponse({"job_id": submission.job_id, "status": status}, headers=location)


@router.post(
    "/predict",
    tags=["jobs"],
    status_code=202,
    response_model=Accepted,
    responses={
        200: {"model": Accepted, "description": "an earlier idempotent submission"},
        **SUBMIT_ERRORS,
    },
    openapi_extra=IMAGE_BODY,
)
async def predict(request: Request, idempotency_key: str | None = Header(default=None)) -> Response:
    """Store the image and queue a job: 202 with its id (Location: /job/{id}); poll it."""
    proxy = proxy_of(request)
    key = idempotency_key_of(idempotency_key)
    check_content_type(request.headers.get("content-type"))
    body = await read_body(request, proxy.max_body_bytes, "MAX_IMAGE_BYTES as base64")
    data = await anyio.to_thread.run_sync(image_of_body, body, proxy)  # decoding is CPU work
    return await submit(proxy, data, key)


@router.get("/predict/test", tags=["jobs"], status_code=202, response_model=Accepted,
            responses=SUBMIT_ERRORS)  # fmt: skip
async def predict_test(request: Request) -> Response:
    """Queue a job for the sample image (SAMPLE_IMAGE_PATH)."""
    proxy = proxy_of(request)
    return await submit(proxy, proxy.sample, None)


# --- jobs -------------------------------------------------------------------------------------


async def job_or_404(proxy: Proxy, job_id: UUID4) -> Job:
    job = await proxy.store.job(str(job_id))
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id} (unknown, or expired)")
    return job


@router.get("/job/{job_id}", tags=["jobs"], response_model=JobView, responses=JOB_ERRORS)
async def job_status(request: Request, job_id: UUID4) -> dict[str, Any]:
    """The job's state, attempts, result or error."""
    return (await job_or_404(proxy_of(request), job_id)).to_json()


@router.get("/job/{job_id}/result", tags=["jobs"], responses={**JOB_ERRORS, **error_responses(409)})
async def job_result(request: Request, job_id: UUID4) -> Response:
    """200 with the result once succeeded; 202 + Retry-After while pending; 409 when dead."""
    proxy = proxy_of(request)
    job = await job_or_404(proxy, job_id)
    if job.status == SUCCEEDED:
        return JSONResponse({"job_id": job.job_id, **(job.result or {})})
    if job.status == DEAD:
        error = job.error or {}
        message = f"job {job.job_id} is dead: {error.get('code')}: {error.get('message')}"
        details = [{"loc": ["job", "error"], "msg": str(error.get("message"))}]
        raise ApiError(409, "conflict", message, details)
    body = {"job_id": job.job_id, "status": job.status, "attempts": job.attempts}
    return JSONResponse(body, status_code=202, headers=proxy.retry_after)


@router.get("/dead-letter", tags=["jobs"], response_model=DeadLetters, responses=NOT_READY)
async def dead_letters(
    request: Request,
    limit: int = Query(default=50, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    """Dead jobs with their errors, newest first."""
    jobs, total = await proxy_of(request).store.dead_letters(limit, offset)
    return {"total": total, "limit": limit, "offset": offset,
            "jobs": [job.to_json() for job in jobs]}  # fmt: skip


@router.post(
    "/dead-letter/{job_id}/retry",
    tags=["jobs"],
    status_code=202,
    response_model=Accepted,
    responses={**JOB_ERRORS, **error_responses(409)},
)
async def retry_dead_letter(request: Request, job_id: UUID4) -> Response:
    """Queue a dead job again, its attempts reset."""
    proxy = proxy_of(request)
    try:
        found = await proxy.store.retry_dead(str(job_id))
    except NotDead as error:
        raise ApiError(409, "conflict", str(error)) from error
    if not found:
        raise ApiError(404, "not_found", f"no job {job_id} (unknown, or expired)")
    location = {"Location": f"/job/{job_id}"}
    return JSONResponse({"job_id": str(job_id), "status": "queued"}, 202, headers=location)


# --- health, model, metrics ----------------------------------------------------------------------

router.add_api_route("/health", health, methods=["GET"], tags=["health"])


@router.get("/ready", tags=["health"], responses=NOT_READY)
async def ready(request: Request) -> dict[str, str]:
    """200 while Redis answers (jobs can be accepted), else 503 dependency_unavailable."""
    await proxy_of(request).store.ping()
    return {"status": "ready", "redis": "ok"}


@router.get("/health/all", tags=["health"])
async def health_all(request: Request) -> dict[str, Any]:
    """Each dependency ok/ng: Redis, pred (serving the model version held here), workers
    (a heartbeat within HEARTBEAT_TTL_S)."""
    proxy = proxy_of(request)
    workers = None
    try:
        workers = await proxy.store.workers_alive()
        redis = "ok"
    except RedisError:
        redis = "ng"
    try:
        await proxy.pred.model_metadata(proxy.settings.pred_probe_timeout_s)
        pred = "ok"
    except PredUnavailable:
        pred = "ng"
    return {"redis": redis, "pred": pred, "workers": "ok" if workers else "ng",
            "worker_count": workers or 0}  # fmt: skip


async def served_model(proxy: Proxy) -> dict[str, Any]:
    try:
        return await proxy.pred.model_metadata(proxy.settings.pred_probe_timeout_s)
    except PredUnavailable as error:
        raise ApiError(
            503, "dependency_unavailable", str(error), headers=proxy.retry_after
        ) from error


@router.get("/metadata", tags=["model"], responses=NOT_READY)
async def metadata(request: Request) -> dict[str, Any]:
    """What the service takes and gives (the book's fields) and the model pred serves."""
    proxy = proxy_of(request)
    served = await served_model(proxy)
    card = proxy.classifier.card
    return {
        "data_type": "str",
        "data_structure": "(1,1)",
        "data_sample": "base64 encoded image file",
        "prediction_type": "float32",
        "prediction_structure": f"(1,{proxy.classifier.class_count})",
        "model": {"name": card.name, "version": card.version, "sha256": card.sha256},
        "labels": card.labels,
        "preprocessing": card.metadata["preprocessing"],
        "metrics": card.metadata.get("metrics") or {},
        "pred": served,
    }


@router.get("/label", tags=["model"], responses=NOT_READY)
async def label(request: Request) -> dict[str, str]:
    """Class index → label (label.json), while pred serves the model it names."""
    proxy = proxy_of(request)
    await served_model(proxy)
    return proxy.classifier.card.labels


def queue_gauges() -> tuple[Gauge, Gauge]:
    mode = "mostrecent"  # the value the last scrape read from Redis, whichever worker served it
    return (
        gauge("queue_depth", "Jobs waiting, running or backing off", multiprocess_mode=mode),
        gauge("dead_letters", "Entries of the dead-letter stream", multiprocess_mode=mode),
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics, the queue depth and dead letters read from Redis at scrape time."""
    depth, dead = queue_gauges()
    with contextlib.suppress(RedisError):  # a scrape still answers while Redis is away
        store = proxy_of(request).store
        depth.set(await store.depth())
        dead.set(await store.dead_count())
    return await anyio.to_thread.run_sync(metrics_endpoint)
