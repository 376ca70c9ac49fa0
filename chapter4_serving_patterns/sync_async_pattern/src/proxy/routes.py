"""The proxy's API (SPEC 3.7): one POST answers at once with the quick model and queues the image
for the heavy one; the job routes serve the heavy model's result (as SPEC 3.3).

Input a client can send wrong is refused once, before either path starts (413 / 415 / 422 by
the rules of SPEC 0.4, with the preprocessing the worker runs), so a bad image reaches neither
model server nor the queue. What each path does is src/proxy/both.py. The job routes answer 503
`dependency_unavailable` with Retry-After while Redis is away (src/proxy/app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge
from pydantic import UUID4, BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from starlette.responses import Response

from src.common.errors import ApiError, error_responses
from src.common.metrics import counter, gauge, metrics_endpoint
from src.common.request_id import current_request_id
from src.jobs.store import DEAD, SUCCEEDED, Job, NotDead
from src.ml import image_input
from src.ml.image_input import ImageInputError
from src.pred_client import PredClient, PredUnavailable
from src.proxy.both import Both, Failure, Proxy, answer, run_both, validate
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


class QuickAnswer(BaseModel):
    model: str
    version: str
    label: str
    prediction: list[float]


class HeavyJob(BaseModel):
    model: str
    version: str
    status: str = Field(description='"queued" (or the status of an earlier idempotent '
                        'submission), "unavailable" when the job could not be queued')  # fmt: skip
    error: dict[str, str] | None = None
    retry_after: int | None = None


class Prediction(BaseModel):
    job_id: str | None
    sync: QuickAnswer | None
    sync_error: dict[str, str] | None
    async_: HeavyJob = Field(alias="async")


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


class Accepted(BaseModel):
    job_id: str
    status: str


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ImageRequest.model_json_schema()}},
    }
}


class Outcomes:
    """How often each path answered, by outcome (Prometheus)."""

    def __init__(self) -> None:
        self.sync: Counter = counter(
            "proxy_sync_answers_total",
            "Quick answers by outcome (ok or the error code)",
            ["outcome"],
        )
        self.queued: Counter = counter(
            "proxy_jobs_queued_total", "Enqueues by outcome (queued, repeated or the error code)",
            ["outcome"],
        )  # fmt: skip

    def count(self, both: Both) -> None:
        self.sync.labels(both.sync.code if isinstance(both.sync, Failure) else "ok").inc()
        queued = both.queued
        if isinstance(queued, Failure):
            self.queued.labels(queued.code).inc()
        else:
            self.queued.labels("queued" if queued.created else "repeated").inc()


def proxy_of(request: Request) -> Proxy:
    value = request.app.state.proxy
    assert isinstance(value, Proxy)
    return value


# --- prediction ------------------------------------------------------------------------------


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
    try:
        data = image_input.decode_base64(image_data, proxy.settings.max_image_bytes)
    except ImageInputError as error:
        details = (
            [{"loc": ["body", "image_data"], "msg": str(error)}] if error.status == 422 else None
        )
        raise ApiError(error.status, error.code, str(error), details) from error
    validate(data, proxy)
    return data


def idempotency_key_of(value: str | None) -> str | None:
    if value is not None and not 0 < len(value) <= MAX_IDEMPOTENCY_KEY:
        message = f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        raise invalid(["header", "Idempotency-Key"], message)
    return value


async def predict_both(request: Request, data: bytes, key: str | None) -> Response:
    proxy = proxy_of(request)
    both = await run_both(proxy, data, key, current_request_id() or "")
    request.app.state.outcomes.count(both)
    status, body, headers = answer(proxy, both)
    return JSONResponse(body, status_code=status, headers=headers)


PREDICTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Prediction, "description": "at least one path answered"},
    **SUBMIT_ERRORS,
}


@router.post("/predict", tags=["predict"], responses=PREDICTION_RESPONSES,
             openapi_extra=IMAGE_BODY)  # fmt: skip
async def predict(request: Request, idempotency_key: str | None = Header(default=None)) -> Response:
    """The quick model's answer now and a job id for the heavy model's (poll /job/{id})."""
    proxy = proxy_of(request)
    key = idempotency_key_of(idempotency_key)
    check_content_type(request.headers.get("content-type"))
    limit = (proxy.settings.max_image_bytes + 2) // 3 * 4 + ENVELOPE_BYTES
    body = await read_body(request, limit, "MAX_IMAGE_BYTES as base64")
    data = await anyio.to_thread.run_sync(image_of_body, body, proxy)  # decoding is CPU work
    return await predict_both(request, data, key)


@router.get("/predict/test", tags=["predict"], responses=PREDICTION_RESPONSES)
async def predict_test(request: Request) -> Response:
    """The same for the sample image (SAMPLE_IMAGE_PATH)."""
    return await predict_both(request, proxy_of(request).sample, None)


# --- jobs: the heavy model's results -----------------------------------------------------------


async def job_or_404(proxy: Proxy, job_id: UUID4) -> Job:
    job = await proxy.store.job(str(job_id))
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id} (unknown, or expired)")
    return job


@router.get("/job/{job_id}", tags=["jobs"], response_model=JobView, responses=JOB_ERRORS)
async def job_status(request: Request, job_id: UUID4) -> dict[str, Any]:
    """The job's state, attempts, the heavy model's result or the error."""
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


# --- health, models, metrics -------------------------------------------------------------------

router.add_api_route("/health", health, methods=["GET"], tags=["health"])


@router.get("/ready", tags=["health"], responses=NOT_READY)
async def ready(request: Request) -> dict[str, str]:
    """200 while Redis answers (jobs can be accepted), else 503 dependency_unavailable. The
    model servers do not make the proxy unready: either path alone still answers."""
    await proxy_of(request).store.ping()
    return {"status": "ready", "redis": "ok"}


async def probe(proxy: Proxy, pred: PredClient) -> dict[str, Any] | None:
    """The server's V2 model metadata, once it serves the version held here; None otherwise."""
    try:
        return await pred.model_metadata(proxy.settings.pred_probe_timeout_s)
    except PredUnavailable:
        return None


async def probe_both(proxy: Proxy) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both model servers at once: a hung one costs PRED_PROBE_TIMEOUT_MS once, not twice."""
    sync, heavy = await asyncio.gather(
        probe(proxy, proxy.sync_pred), probe(proxy, proxy.async_pred)
    )
    return sync, heavy


@router.get("/health/all", tags=["health"])
async def health_all(request: Request) -> dict[str, Any]:
    """Each dependency ok/ng: both model servers (serving the versions held here), Redis,
    workers (a heartbeat within HEARTBEAT_TTL_S)."""
    proxy = proxy_of(request)
    workers = None
    try:
        workers = await proxy.store.workers_alive()
        redis = "ok"
    except RedisError:
        redis = "ng"
    sync_served, async_served = await probe_both(proxy)
    return {
        "pred_sync": "ok" if sync_served else "ng",
        "pred_async": "ok" if async_served else "ng",
        "redis": redis,
        "workers": "ok" if workers else "ng",
        "worker_count": workers or 0,
    }


def model_card(pred: PredClient, served: dict[str, Any] | None) -> dict[str, Any]:
    card = pred.classifier.card
    return {
        "model": {"name": card.name, "version": card.version, "sha256": card.sha256},
        "preprocessing": card.metadata["preprocessing"],
        "metrics": card.metadata.get("metrics") or {},
        "server": pred.base_url,
        "served": served is not None,
    }


@router.get("/metadata", tags=["model"])
async def metadata(request: Request) -> dict[str, Any]:
    """What the service takes and gives (the book's fields) and both models: the quick one
    (`sync`) and the heavy one (`async`), each with whether its server serves it now."""
    proxy = proxy_of(request)
    heavy = proxy.classifier
    sync_served, async_served = await probe_both(proxy)
    return {
        "data_type": "str",
        "data_structure": "(1,1)",
        "data_sample": "base64 encoded image file",
        "prediction_type": "float32",
        "prediction_structure": f"(1,{heavy.class_count})",
        "labels": heavy.card.labels,
        "sync": model_card(proxy.sync_pred, sync_served),
        "async": model_card(proxy.async_pred, async_served),
    }


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
