"""Open Inference Protocol (KServe V2) REST subset (SPEC 0.5), JSON tensors only.

The routes Triton, MLServer and KServe answer the same way, so that any of them can replace
`pred` without a change to `prep` (SPEC 0.5 rule 4; docker-compose.triton.yml does it). An
unknown model or version is a 404; a request that is wrong in any way a 400 with the error
envelope; more rows than MAX_BATCH_SIZE a 413.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from src.common.errors import ApiError, error_responses
from src.common.metrics import counter, histogram
from src.common.request_id import current_request_id
from src.ml.model import Model
from src.pred.tensors import output_json, parse_infer_request
from src.web import (
    JSON_ENCODER,
    RETRY_AFTER_S,
    add_access_fields,
    check_content_type,
    json_response,
    read_body,
)

SERVER_NAME = "prep_pred_pattern-pred"
PLATFORM = "onnxruntime_onnx"
MODEL_ERRORS = error_responses(404, 503)
INFER_ERRORS = error_responses(400, 404, 413, 415, 503)
MODEL_LABELS = ("model_name", "model_version")
# digits_resnet takes about a millisecond per image on one thread: buckets from 0.25 ms up.
INFERENCE_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BYTES_PER_VALUE = 32  # generous room for one JSON number and its separator
BYTES_PER_REQUEST = 64 * 1024  # the envelope around the tensors

router = APIRouter(prefix="/v2", tags=["v2"])


class V2Server(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    live: bool


class V2Ready(BaseModel):
    ready: bool


class V2ModelReady(BaseModel):
    name: str
    ready: bool


class V2TensorSpec(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorSpec]
    outputs: list[V2TensorSpec]


class V2InferRequest(BaseModel):
    """The body, for the OpenAPI document only: `parse_infer_request` reads it (400s)."""

    id: str | None = None
    inputs: list[dict[str, Any]] = Field(
        examples=[[{"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": []}]]
    )
    outputs: list[dict[str, Any]] | None = None


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[dict[str, Any]]


INFER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": V2InferRequest.model_json_schema()}},
    }
}


class Served:
    """The loaded model and the request limits that follow from it."""

    def __init__(self, model: Model, max_batch_size: int) -> None:
        self.model = model
        self.card = model.card
        self.max_batch_size = max_batch_size
        values = sum(abs(_row_size(spec.shape)) for spec in self.card.inputs)
        self.max_body_bytes = max_batch_size * values * BYTES_PER_VALUE + BYTES_PER_REQUEST
        self.headers = {"X-Model-Name": self.card.name, "X-Model-Version": self.card.version}
        labels = (self.card.name, self.card.version)
        self.rows = counter("predictions_total", "Rows predicted", MODEL_LABELS).labels(*labels)
        self.inference = histogram(
            "model_inference_seconds",
            "Time in onnxruntime per request (all its rows)",
            MODEL_LABELS,
            buckets=INFERENCE_BUCKETS,
        ).labels(*labels)


def _row_size(shape: tuple[int, ...]) -> int:
    size = 1
    for side in shape[1:]:
        size *= max(side, 1)
    return size


def served(request: Request) -> Served:
    value = getattr(request.app.state, "served", None)
    if value is None:
        raise ApiError(
            503,
            "model_not_ready",
            "the model is not loaded",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    assert isinstance(value, Served)
    return value


def model_named(request: Request, name: str, version: str | None = None) -> Served:
    """The served model when `name` (and `version`, if given) are its own, else 404."""
    current = served(request)
    card = current.card
    if name != card.name:
        raise ApiError(
            404, "not_found", f"unknown model {name!r}: this server serves {card.name!r}"
        )
    if version is not None and version != card.version:
        message = f"model {name!r} has no version {version!r}; it has {card.version!r}"
        raise ApiError(404, "not_found", message)
    return current


@router.get("")
async def server_metadata(request: Request) -> V2Server:
    return V2Server(name=SERVER_NAME, version=request.app.version, extensions=[])


@router.get("/health/live")
async def live() -> V2Live:
    return V2Live(live=True)


@router.get("/health/ready", responses=error_responses(503))
async def ready(request: Request) -> V2Ready:
    served(request)
    return V2Ready(ready=True)


@router.get("/models/{name}", responses=MODEL_ERRORS)
async def model_metadata(request: Request, name: str) -> V2ModelMetadata:
    return _metadata(model_named(request, name))


@router.get("/models/{name}/versions/{version}", responses=MODEL_ERRORS)
async def model_version_metadata(request: Request, name: str, version: str) -> V2ModelMetadata:
    return _metadata(model_named(request, name, version))


def _metadata(current: Served) -> V2ModelMetadata:
    card = current.card
    return V2ModelMetadata(
        name=card.name,
        versions=[card.version],
        platform=PLATFORM,
        inputs=[V2TensorSpec(**spec.to_json()) for spec in card.inputs],
        outputs=[V2TensorSpec(**spec.to_json()) for spec in card.outputs],
    )


@router.get("/models/{name}/ready", responses=MODEL_ERRORS)
async def model_ready(request: Request, name: str) -> V2ModelReady:
    return V2ModelReady(name=model_named(request, name).card.name, ready=True)


@router.get("/models/{name}/versions/{version}/ready", responses=MODEL_ERRORS)
async def model_version_ready(request: Request, name: str, version: str) -> V2ModelReady:
    return V2ModelReady(name=model_named(request, name, version).card.name, ready=True)


@router.post(
    "/models/{name}/infer",
    response_model=V2InferResponse,
    responses=INFER_ERRORS,
    openapi_extra=INFER_BODY,
)
async def infer(request: Request, name: str) -> Response:
    return await _infer(request, model_named(request, name))


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=V2InferResponse,
    responses=INFER_ERRORS,
    openapi_extra=INFER_BODY,
)
async def infer_version(request: Request, name: str, version: str) -> Response:
    return await _infer(request, model_named(request, name, version))


async def _infer(request: Request, current: Served) -> Response:
    check_content_type(request.headers.get("content-type"))
    body = await read_body(request, current.max_body_bytes, "more than MAX_BATCH_SIZE rows take")
    add_access_fields(model_name=current.card.name, model_version=current.card.version)
    # Parsing thousands of numbers and running the graph are CPU work: in a worker thread, so
    # that the event loop keeps reading the next requests meanwhile.
    content = await anyio.to_thread.run_sync(answer, body, current, current_request_id())
    return json_response(content, current.headers)


def answer(body: bytes, current: Served, request_id: str | None) -> str:
    """Parse, check against the model, run, encode: the JSON text of the infer answer."""
    request = parse_infer_request(body, current.card, current.max_batch_size)
    started = time.perf_counter()
    results = current.model.run(request.inputs, request.outputs)
    current.inference.observe(time.perf_counter() - started)
    current.rows.inc(next(iter(request.inputs.values())).shape[0])
    specs = {spec.name: spec for spec in current.card.outputs}
    head = JSON_ENCODER.encode(
        {
            "model_name": current.card.name,
            "model_version": current.card.version,
            "id": request.id if request.id is not None else request_id or "",
        }
    )
    outputs = ",".join(output_json(specs[name], results[name]) for name in request.outputs)
    return head[:-1] + ',"outputs":[' + outputs + "]}"
