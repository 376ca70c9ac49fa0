"""The proxy's HTTP routes: the I-API (SPEC 0.4) with item ids, answered through the cache.

A prediction request names an image either by item id (`{"data": "0006"}`, a file of
DATA_DIR, SPEC 3.9 behaviour 1) or by content (`{"image_data": "<base64>"}`). Either way the
canonical input is the sha256 of the image file's bytes, so the same picture shares one cache
entry however it was sent. Input a client can send is refused (413 / 415 / 422, 404 for an
unknown item) before the cache is asked where it can be, and never cached. Every prediction
answer carries `X-Cache: HIT | MISS | COALESCED | BYPASS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Query, Request
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from src.common.errors import ApiError, error_responses
from src.ml import image_input, pipeline
from src.ml.image_input import ImageInputError
from src.ml.items import Item, ItemError
from src.proxy.cache import Cached, Computed, PredictionCache
from src.proxy.held import HeldModel
from src.proxy.pred_client import PredClient
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

CACHE_HEADER = "X-Cache"
PREDICT_ERRORS = error_responses(404, 413, 415, 422, 502, 503, 504)
NOT_READY = error_responses(503)
MAX_PAGE = 1000
# Inputs up to this size are parsed, decoded, read and hashed on the event loop (tens of
# microseconds); larger ones in a worker thread, so that one big upload never stalls the loop.
INLINE_BYTES = 64 * 1024
off_loop = anyio.to_thread.run_sync

router = APIRouter()


class PredictRequest(BaseModel):
    """One image: an item id of DATA_DIR (as in the book) or a base64 image file."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(
        default=None, description="item id, ^[A-Za-z0-9_-]{1,64}$", examples=["0000"]
    )
    image_data: str | None = Field(
        default=None, description="base64 of a PNG, JPEG, GIF, BMP or WebP file"
    )


class Probabilities(BaseModel):
    prediction: list[float]
    label: str


class Label(BaseModel):
    prediction: str


class ModelRef(BaseModel):
    name: str
    version: str


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
    metrics: dict[str, Any]


class ItemPage(BaseModel):
    ids: list[str]
    total: int
    limit: int
    offset: int


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}


@dataclass(frozen=True)
class Proxy:
    """What the routes use: the model held, the client to pred and the cache."""

    held: HeldModel
    pred: PredClient
    cache: PredictionCache


@dataclass(frozen=True)
class ImageFile:
    """An image as the client named it: the file's bytes (never modified) and their sha256."""

    data: bytes
    digest: str
    source: str  # "item" or "image_data", for the access line


def proxy_of(request: Request) -> Proxy:
    value = getattr(request.app.state, "proxy", None)
    if value is None:
        raise ApiError(
            503, "model_not_ready", "the proxy is starting", headers={"Retry-After": RETRY_AFTER_S}
        )
    assert isinstance(value, Proxy)
    return value


# --- the image a request names ----------------------------------------------------------


def named_image(body: bytes) -> tuple[str, Any]:
    """`{"data": id}` → ("item", id); `{"image_data": base64}` → ("image_data", text); 422."""
    document = parse_json(body)
    if type(document) is not dict:
        raise invalid(["body"], 'expected a JSON object {"data": "<item id>"} or {"image_data"}')
    unknown = sorted(key for key in document if key not in ("data", "image_data"))
    if unknown:
        raise invalid(["body", unknown[0]], f"unknown field: {unknown[0]}")
    if ("data" in document) == ("image_data" in document):
        raise invalid(["body"], 'give exactly one of "data" (an item id) and "image_data"')
    if "data" in document:
        return "item", document["data"]
    if type(document["image_data"]) is not str:
        raise invalid(["body", "image_data"], "image_data must be a base64 string")
    return "image_data", document["image_data"]


async def image_of_body(body: bytes, held: HeldModel) -> ImageFile:
    """The image file a request body names; 404 / 413 / 422. Parsing, decoding, reading and
    hashing run on the event loop for small inputs (a thread hop costs more than they do) and
    in a worker thread for large ones."""
    kind, value = (
        named_image(body) if len(body) <= INLINE_BYTES else await off_loop(named_image, body)
    )
    if kind == "item":
        return await image_of_item(value, held)
    if len(value) <= INLINE_BYTES:
        return decoded_image(value, held)
    return await off_loop(decoded_image, value, held)


def decoded_image(image_data: str, held: HeldModel) -> ImageFile:
    try:
        data = image_input.decode_base64(image_data, held.max_image_bytes)
    except ImageInputError as error:
        raise _image_error(error) from error
    return ImageFile(data, hashlib.sha256(data).hexdigest(), "image_data")


async def image_of_item(item_id: Any, held: HeldModel) -> ImageFile:
    """The file an item id names inside DATA_DIR, and nothing else (items.py)."""
    try:
        item = held.items.resolve(item_id)  # InvalidItemId for anything but a valid id string
        if item.size <= INLINE_BYTES:
            return read_item(item, held)
        return await off_loop(read_item, item, held)
    except ItemError as error:
        raise _item_error(error) from error


def read_item(item: Item, held: HeldModel) -> ImageFile:
    try:
        data, _ = held.items.read(item, held.max_image_bytes)
    except ItemError as error:
        raise _item_error(error) from error
    return ImageFile(data, hashlib.sha256(data).hexdigest(), "item")


def _item_error(error: ItemError) -> ApiError:
    details = [{"loc": ["body", "data"], "msg": str(error)}] if error.status == 422 else None
    return ApiError(error.status, error.code, str(error), details)


def _image_error(error: ImageInputError) -> ApiError:
    """image_input's errors carry SPEC 0.4's status and code."""
    details = [{"loc": ["body", "image_data"], "msg": str(error)}] if error.status == 422 else None
    return ApiError(error.status, error.code, str(error), details)


# --- the prediction, through the cache -------------------------------------------------------


def tensor_of(image: ImageFile, held: HeldModel) -> NDArray[np.float32]:
    try:
        return pipeline.preprocess_file(image.data, held.classifier, held.max_image_bytes)
    except ImageInputError as error:
        raise _image_error(error) from error


def predict_body(row: Any, label: str) -> str:
    return '{"prediction":' + float32_json(row) + ',"label":' + JSON_ENCODER.encode(label) + "}"


async def predict(proxy: Proxy, image: ImageFile) -> Cached:
    """The prediction for one image file: from the cache, or preprocessed and sent to pred."""
    info = await proxy.pred.model_info()

    async def compute() -> Computed:
        batch = await off_loop(tensor_of, image, proxy.held)
        inference = await proxy.pred.infer(batch)
        proxy.pred.learned_version(inference.model_version)
        [(row, label)] = pipeline.postprocess(inference.probabilities, proxy.held.classifier)
        return Computed(predict_body(row, label), inference.model_version)

    cached = await proxy.cache.answer(info.name, info.version, image.digest, compute)
    add_access_fields(
        model_name=info.name,
        model_version=cached.model_version,
        cache=cached.result.value,
        input=image.source,
        sha256=image.digest,
    )
    return cached


async def predict_request(request: Request, proxy: Proxy) -> Cached:
    check_content_type(request.headers.get("content-type"))
    body = await read_body(request, proxy.held.max_body_bytes, "MAX_IMAGE_BYTES as base64")
    return await predict(proxy, await image_of_body(body, proxy.held))


async def predict_sample(proxy: Proxy) -> Cached:
    return await predict(proxy, await image_of_item(proxy.held.sample_item_id, proxy.held))


def headers_of(proxy: Proxy, cached: Cached) -> dict[str, str]:
    return {
        CACHE_HEADER: cached.result.value,
        "X-Model-Name": proxy.pred.name,
        "X-Model-Version": cached.model_version,
    }


def probabilities_response(proxy: Proxy, cached: Cached) -> Response:
    """The cached body itself: a HIT answers byte for byte what the MISS answered."""
    return json_response(cached.body, headers_of(proxy, cached))


def label_response(proxy: Proxy, cached: Cached) -> Response:
    label = json.loads(cached.body)["label"]
    return json_response(JSON_ENCODER.encode({"prediction": label}), headers_of(proxy, cached))


# --- routes -----------------------------------------------------------------------------------

router.add_api_route("/health", health, methods=["GET"], tags=["health"])


@router.get("/ready", tags=["health"], responses=NOT_READY)
async def ready(request: Request) -> dict[str, Any]:
    """200 when pred serves the model; the cache is optional: Redis down reads "degraded"."""
    proxy = proxy_of(request)
    return {
        "status": "ready",
        "pred": await proxy.pred.readiness(),
        "redis": await proxy.cache.status(),
    }


@router.get("/metadata", tags=["predict"], responses=NOT_READY)
async def metadata(request: Request) -> Metadata:
    """What the service takes and gives (the book's fields), and the model pred serves."""
    proxy = proxy_of(request)
    classifier = proxy.held.classifier
    card = classifier.card
    info = await proxy.pred.model_info()
    return Metadata(
        data_type="str",
        data_structure="(1,1)",
        data_sample="base64 encoded image file",
        prediction_type="float32",
        prediction_structure=f"(1,{classifier.class_count})",
        model=ModelRef(name=info.name, version=info.version),
        labels=card.labels,
        preprocessing=card.metadata["preprocessing"],
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
) -> ItemPage:
    """The item ids of DATA_DIR, sorted, `limit` of them from `offset` on."""
    items = proxy_of(request).held.items
    page = await anyio.to_thread.run_sync(lambda: items.list_ids(limit=limit, offset=offset))
    return ItemPage(ids=page.ids, total=page.total, limit=page.limit, offset=page.offset)


def _test_route(respond: Callable[[Proxy, Cached], Response]) -> Any:
    async def route(request: Request) -> Response:
        proxy = proxy_of(request)
        return respond(proxy, await predict_sample(proxy))

    return route


router.add_api_route(
    "/predict/test",
    _test_route(probabilities_response),
    methods=["GET"],
    tags=["predict"],
    response_model=Probabilities,
    responses=PREDICT_ERRORS,
    summary="The sample item (SAMPLE_ITEM_ID) through the cache",
)
router.add_api_route(
    "/predict/test/label",
    _test_route(label_response),
    methods=["GET"],
    tags=["predict"],
    response_model=Label,
    responses=PREDICT_ERRORS,
    summary="The sample item's label",
)


@router.post(
    "/predict",
    tags=["predict"],
    response_model=Probabilities,
    responses=PREDICT_ERRORS,
    openapi_extra=PREDICT_BODY,
)
async def predict_route(request: Request) -> Response:
    """One image (item id or base64) → its probability per class and the most probable label."""
    proxy = proxy_of(request)
    return probabilities_response(proxy, await predict_request(request, proxy))


@router.post(
    "/predict/label",
    tags=["predict"],
    response_model=Label,
    responses=PREDICT_ERRORS,
    openapi_extra=PREDICT_BODY,
)
async def predict_label(request: Request) -> Response:
    """One image (item id or base64) → the most probable label."""
    proxy = proxy_of(request)
    return label_response(proxy, await predict_request(request, proxy))
