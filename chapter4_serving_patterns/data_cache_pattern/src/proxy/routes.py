"""The proxy's I-API with item ids (SPEC 3.9): the book's image endpoints, `GET /data`,
liveness and readiness.

A prediction of an item is a read-through of the tensor cache, then the model, always:

    item id → DATA_DIR file (src/ml/items.py: 422 malformed, 404 unknown or outside)
            → key data_cache:{preprocessing}:{id}:{size}:{mtime_ns} (src/ml/cached_tensor.py)
            → Redis GET: HIT → the stored float32 tensor, no file read, no decoding
                         MISS → read the file, preprocess, Redis SET with CACHE_TTL_S
                         BYPASS → Redis failed: read and preprocess, no cache
            → pred (V2, the current model) → top-1 label

`X-Data-Cache: HIT | MISS | BYPASS` says which; an image sent inline (`image_data`, base64) has
no item to cache and is always BYPASS. Each stage is timed in `proxy_stage_seconds{stage}`
(load: cache lookup and, on a miss, file and preprocessing; predict; postprocess) and on the
access line with the cache result and the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Query, Request
from numpy.typing import NDArray
from prometheus_client import Histogram
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from src.common.errors import ApiError, error_responses
from src.common.metrics import histogram
from src.ml import cached_tensor, pipeline
from src.ml.image_input import ImageInputError
from src.ml.items import Item, ItemError
from src.proxy.cache import BYPASS, HIT, MISS, TensorCache, cache_requests
from src.proxy.held import HeldModel
from src.proxy.predictors import Predictor
from src.web import (
    JSON_ENCODER,
    RETRY_AFTER_S,
    add_access_fields,
    check_content_type,
    float32_json,
    health,
    invalid,
    json_response,
    parse_json,
    read_body,
)

CACHE_HEADER = "X-Data-Cache"
STAGES = ("load", "predict", "postprocess")
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5)
PREDICT_ERRORS = error_responses(404, 413, 415, 422, 502, 503, 504)
NOT_READY = error_responses(503)
MAX_PAGE = 1000

router = APIRouter()
Tensor = NDArray[np.float32]


class PredictRequest(BaseModel):
    """An item id (as in the book) or an image file as base64: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(
        default=None, description="item id: DATA_DIR/<id>.<ext>", pattern=r"^[A-Za-z0-9_-]{1,64}$"
    )
    image_data: str | None = Field(
        default=None, description="base64 of a PNG, JPEG, GIF, BMP or WebP file"
    )


class Probabilities(BaseModel):
    prediction: list[float]
    label: str


class Label(BaseModel):
    prediction: str


class ItemIds(BaseModel):
    ids: list[str]
    total: int
    limit: int
    offset: int


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str


class Metadata(BaseModel):
    """The book's `/metadata` fields for an image model, plus the model and its evaluation."""

    model_config = ConfigDict(protected_namespaces=())

    data_type: str
    data_structure: str
    data_sample: str
    prediction_type: str
    prediction_structure: str
    model: ModelRef
    labels: dict[str, str]
    preprocessing: dict[str, Any]
    preprocessing_sha256: str
    metrics: dict[str, Any]


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}


@dataclass(frozen=True)
class Proxy:
    """What the routes use: the model the proxy holds, the cache and where probabilities
    come from."""

    held: HeldModel
    cache: TensorCache
    predictor: Predictor

    def headers(self, cache_result: str) -> dict[str, str]:
        card = self.held.classifier.card
        return {
            "X-Model-Name": card.name,
            "X-Model-Version": card.version,
            CACHE_HEADER: cache_result,
        }


@dataclass(frozen=True)
class Prediction:
    row: Any  # float32 [C]
    label: str
    cache_result: str


def proxy_of(request: Request) -> Proxy:
    value = getattr(request.app.state, "proxy", None)
    if value is None:
        raise ApiError(
            503, "model_not_ready", "proxy is starting", headers={"Retry-After": RETRY_AFTER_S}
        )
    assert isinstance(value, Proxy)
    return value


def stage_seconds() -> Histogram:
    return histogram(
        "proxy_stage_seconds", "Time per prediction stage", ("stage",), buckets=STAGE_BUCKETS
    )


# --- input: item ids and inline images ---------------------------------------------------


def item_error(error: ItemError) -> ApiError:
    """items.py's refusal as the envelope (its status and code: 422, 404 or 413)."""
    details = [{"loc": ["body", "data"], "msg": str(error)}] if error.status == 422 else None
    return ApiError(error.status, error.code, str(error), details)


def image_error(error: ImageInputError, field: str) -> ApiError:
    details = [{"loc": ["body", field], "msg": str(error)}] if error.status == 422 else None
    return ApiError(error.status, error.code, str(error), details)


def parse_predict_body(body: bytes) -> tuple[str, str]:
    """("data", item id) or ("image_data", base64 text); 422 for anything else."""
    document = parse_json(body)
    if type(document) is not dict:
        raise invalid(["body"], 'expected a JSON object {"data": "<item id>"}')
    unknown = sorted(key for key in document if key not in ("data", "image_data"))
    if unknown:
        raise invalid(["body", unknown[0]], f"unknown field: {unknown[0]}")
    given = [key for key in ("data", "image_data") if key in document]
    if len(given) != 1:
        raise invalid(["body"], 'give exactly one of "data" (an item id) and "image_data"')
    [field] = given
    value = document[field]
    if type(value) is not str:
        raise invalid(["body", field], f"{field} must be a string")
    return field, value


def load_item(held: HeldModel, item: Item) -> tuple[Tensor, Item]:
    """The file's preprocessed tensor [3, H, W] and the stat of what was read (worker thread:
    file I/O and decoding)."""
    try:
        content, read = held.items.read(item, held.max_image_bytes)
    except ItemError as error:
        raise item_error(error) from error
    try:
        tensor = pipeline.preprocess_file(content, held.classifier, held.max_image_bytes)[0]
    except ImageInputError as error:
        # The file is in DATA_DIR but is no image the model can take: the client named it.
        raise image_error(error, "data") from error
    return tensor, read


async def item_tensor(proxy: Proxy, item_id: str) -> tuple[Tensor, str]:
    """The item's tensor through the cache, and HIT, MISS or BYPASS."""
    held = proxy.held
    try:
        item = held.items.resolve(item_id)
    except ItemError as error:
        raise item_error(error) from error
    key = cached_tensor.cache_key(held.preprocessing_digest, item)
    value, answered = await proxy.cache.get(key)
    if value is not None:
        cached = cached_tensor.decode(value, held.tensor_shape)
        if cached is not None:
            return cached, HIT
    tensor, read = await anyio.to_thread.run_sync(load_item, held, item)
    if not answered:
        return tensor, BYPASS
    # Keyed on the stat of the bytes actually read: a file changed since `resolve` is stored
    # under its new identity, never under the old one.
    read_key = cached_tensor.cache_key(held.preprocessing_digest, read)
    stored = await proxy.cache.set(read_key, cached_tensor.encode(tensor))
    return tensor, MISS if stored else BYPASS


def inline_tensor(held: HeldModel, image_data: str) -> Tensor:
    try:
        batch = pipeline.preprocess(image_data, held.classifier, held.max_image_bytes)
    except ImageInputError as error:
        raise image_error(error, "image_data") from error
    tensor: Tensor = batch[0]
    return tensor


# --- the three stages ----------------------------------------------------------------------


async def classify(proxy: Proxy, field: str, value: str) -> Prediction:
    stages = stage_seconds()
    started = time.perf_counter()
    if field == "data":
        tensor, result = await item_tensor(proxy, value)
    else:
        tensor = await anyio.to_thread.run_sync(inline_tensor, proxy.held, value)
        result = BYPASS
    cache_requests().labels(result.lower()).inc()
    loaded = time.perf_counter()
    probabilities = await proxy.predictor.predict(tensor[np.newaxis])
    predicted = time.perf_counter()
    [(row, label)] = pipeline.postprocess(probabilities, proxy.held.classifier)
    done = time.perf_counter()
    card = proxy.held.classifier.card
    fields: dict[str, Any] = {
        "model_name": card.name,
        "model_version": card.version,
        "data_cache": result,
    }
    if field == "data":
        fields["item_id"] = value
    for stage, begin, end in zip(
        STAGES, (started, loaded, predicted), (loaded, predicted, done), strict=True
    ):
        stages.labels(stage).observe(end - begin)
        fields[f"{stage}_ms"] = round((end - begin) * 1000, 3)
    add_access_fields(**fields)
    return Prediction(row, label, result)


async def classify_request(request: Request, proxy: Proxy) -> Prediction:
    check_content_type(request.headers.get("content-type"))
    body = await read_body(request, proxy.held.max_body_bytes, "MAX_IMAGE_BYTES as base64")
    return await classify(proxy, *parse_predict_body(body))


async def classify_sample(proxy: Proxy) -> Prediction:
    return await classify(proxy, "data", proxy.held.sample_item_id)


def probabilities_json(proxy: Proxy, prediction: Prediction) -> Response:
    content = (
        '{"prediction":'
        + float32_json(prediction.row)
        + ',"label":'
        + JSON_ENCODER.encode(prediction.label)
        + "}"
    )
    return json_response(content, proxy.headers(prediction.cache_result))


def label_json(proxy: Proxy, prediction: Prediction) -> Response:
    content = JSON_ENCODER.encode({"prediction": prediction.label})
    return json_response(content, proxy.headers(prediction.cache_result))


# --- routes ------------------------------------------------------------------------------

router.add_api_route("/health", health, methods=["GET"], tags=["health"])


@router.get("/ready", tags=["health"], responses=NOT_READY)
async def ready(request: Request) -> dict[str, Any]:
    """200 when pred serves the model version the proxy holds, else 503 dependency_unavailable.
    Redis is reported (`ok` or `degraded`) but never makes the proxy unready: without it the
    proxy still answers, only without the cache."""
    proxy = proxy_of(request)
    return {
        "status": "ready",
        "pred": await proxy.predictor.readiness(),
        "redis": await proxy.cache.status(),
    }


@router.get("/metadata", tags=["predict"], responses=NOT_READY)
async def metadata(request: Request) -> Metadata:
    """What the service takes and gives (the book's fields), and the model behind it."""
    held = proxy_of(request).held
    classifier = held.classifier
    card = classifier.card
    return Metadata(
        data_type="str",
        data_structure="(1,1)",
        data_sample="item id in DATA_DIR, or base64 encoded image file",
        prediction_type="float32",
        prediction_structure=f"(1,{classifier.class_count})",
        model=ModelRef(name=card.name, version=card.version, sha256=card.sha256),
        labels=card.labels,
        preprocessing=card.metadata["preprocessing"],
        preprocessing_sha256=held.preprocessing_digest,
        metrics=card.metadata.get("metrics") or {},
    )


@router.get("/label", tags=["predict"], responses=NOT_READY)
async def label(request: Request) -> dict[str, str]:
    """Class index → label (label.json)."""
    return proxy_of(request).held.classifier.card.labels


@router.get("/data", tags=["data"], responses=error_responses(422, 503))
async def data(
    request: Request,
    limit: Annotated[int, Query(ge=0, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ItemIds:
    """The item ids of DATA_DIR, sorted, `limit` of them from `offset` on, and their total."""
    items = proxy_of(request).held.items
    page = await anyio.to_thread.run_sync(lambda: items.list_ids(limit, offset))
    return ItemIds(ids=page.ids, total=page.total, limit=page.limit, offset=page.offset)


@router.get(
    "/predict/test", tags=["predict"], response_model=Probabilities, responses=PREDICT_ERRORS
)
async def predict_test(request: Request) -> Response:
    """The sample item (SAMPLE_ITEM_ID, 0000) through the cache and the model."""
    proxy = proxy_of(request)
    return probabilities_json(proxy, await classify_sample(proxy))


@router.get("/predict/test/label", tags=["predict"], response_model=Label, responses=PREDICT_ERRORS)
async def predict_test_label(request: Request) -> Response:
    """The sample item's label."""
    proxy = proxy_of(request)
    return label_json(proxy, await classify_sample(proxy))


@router.post(
    "/predict",
    tags=["predict"],
    response_model=Probabilities,
    responses=PREDICT_ERRORS,
    openapi_extra=PREDICT_BODY,
)
async def predict(request: Request) -> Response:
    """An item (or an inline image) → its probability per class and the most probable label."""
    proxy = proxy_of(request)
    return probabilities_json(proxy, await classify_request(request, proxy))


@router.post(
    "/predict/label",
    tags=["predict"],
    response_model=Label,
    responses=PREDICT_ERRORS,
    openapi_extra=PREDICT_BODY,
)
async def predict_label(request: Request) -> Response:
    """An item (or an inline image) → the most probable label."""
    proxy = proxy_of(request)
    return label_json(proxy, await classify_request(request, proxy))
