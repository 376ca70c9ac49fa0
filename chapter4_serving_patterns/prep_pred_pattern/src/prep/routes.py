"""prep's I-API (SPEC 0.4): the book's image endpoints, liveness and readiness.

A prediction is three stages, each timed in `prep_stage_seconds{stage}` and on the access line:
preprocess (body → base64 → image → tensor, in a worker thread: decoding is CPU work), predict
(the call to pred) and postprocess (probabilities → top-1 label). Input a client can send ends
as 413 / 415 / 422 before pred is called; pred's failures end as 502 / 503 / 504.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Request
from numpy.typing import NDArray
from prometheus_client import Histogram
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from src.common.errors import ApiError, error_responses
from src.common.metrics import histogram
from src.ml import pipeline
from src.ml.image_input import ImageInputError
from src.prep.held import HeldModel
from src.prep.predictors import Predictor
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

STAGES = ("preprocess", "predict", "postprocess")
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5)
PREDICT_ERRORS = error_responses(413, 415, 422, 502, 503, 504)
NOT_READY = error_responses(503)

router = APIRouter()


class ImageRequest(BaseModel):
    """The book's image body: one image file, base64 (standard or URL-safe, padding optional)."""

    model_config = ConfigDict(extra="forbid")

    image_data: str = Field(description="base64 of a PNG, JPEG, GIF, BMP or WebP file")


class Probabilities(BaseModel):
    prediction: list[float]
    label: str


class Label(BaseModel):
    prediction: str


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
    metrics: dict[str, Any]


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ImageRequest.model_json_schema()}},
    }
}


@dataclass(frozen=True)
class Prep:
    """What the routes use: the model prep holds and where probabilities come from."""

    held: HeldModel
    predictor: Predictor

    @property
    def headers(self) -> dict[str, str]:
        card = self.held.classifier.card
        return {"X-Model-Name": card.name, "X-Model-Version": card.version}


def prep_of(request: Request) -> Prep:
    value = getattr(request.app.state, "prep", None)
    if value is None:
        raise ApiError(
            503, "model_not_ready", "prep is starting", headers={"Retry-After": RETRY_AFTER_S}
        )
    assert isinstance(value, Prep)
    return value


def stage_seconds() -> Histogram:
    return histogram(
        "prep_stage_seconds", "Time per prediction stage", ("stage",), buckets=STAGE_BUCKETS
    )


def tensor_of_body(body: bytes, held: HeldModel) -> NDArray[np.float32]:
    """`{"image_data": "<base64>"}` → float32 [1, 3, H, W]; 413 / 415 / 422 for bad input."""
    document = parse_json(body)
    if type(document) is not dict:
        raise invalid(["body"], 'expected a JSON object {"image_data": "<base64>"}')
    unknown = sorted(key for key in document if key != "image_data")
    if unknown:
        raise invalid(["body", unknown[0]], f"unknown field: {unknown[0]}")
    image_data = document.get("image_data")
    if type(image_data) is not str:
        raise invalid(["body", "image_data"], "image_data must be a base64 string")
    return _image_errors(pipeline.preprocess, image_data, held)


def tensor_of_file(data: bytes, held: HeldModel) -> NDArray[np.float32]:
    return _image_errors(pipeline.preprocess_file, data, held)


def _image_errors(
    preprocess: Callable[[Any, pipeline.ImageClassifier, int], NDArray[np.float32]],
    data: str | bytes,
    held: HeldModel,
) -> NDArray[np.float32]:
    try:
        return preprocess(data, held.classifier, held.max_image_bytes)
    except ImageInputError as error:  # carries SPEC 0.4's status and code
        loc: list[str | int] = ["body", "image_data"]
        details = [{"loc": loc, "msg": str(error)}] if error.status == 422 else None
        raise ApiError(error.status, error.code, str(error), details) from error


async def classify(prep: Prep, preprocess: Callable[[], NDArray[np.float32]]) -> tuple[Any, str]:
    """The three stages: (probabilities [C], top-1 label) of one image."""
    stages = stage_seconds()
    started = time.perf_counter()
    batch = await anyio.to_thread.run_sync(preprocess)
    preprocessed = time.perf_counter()
    probabilities = await prep.predictor.predict(batch)
    predicted = time.perf_counter()
    [(row, label)] = pipeline.postprocess(probabilities, prep.held.classifier)
    done = time.perf_counter()
    timings = zip(
        STAGES, (started, preprocessed, predicted), (preprocessed, predicted, done), strict=True
    )
    card = prep.held.classifier.card
    fields: dict[str, Any] = {"model_name": card.name, "model_version": card.version}
    for stage, begin, end in timings:
        stages.labels(stage).observe(end - begin)
        fields[f"{stage}_ms"] = round((end - begin) * 1000, 3)
    add_access_fields(**fields)
    return row, label


async def classify_request(request: Request, prep: Prep) -> tuple[Any, str]:
    check_content_type(request.headers.get("content-type"))
    body = await read_body(request, prep.held.max_body_bytes, "MAX_IMAGE_BYTES as base64")
    return await classify(prep, lambda: tensor_of_body(body, prep.held))


async def classify_sample(prep: Prep) -> tuple[Any, str]:
    return await classify(prep, lambda: tensor_of_file(prep.held.sample, prep.held))


def probabilities_json(prep: Prep, row: Any, label: str) -> Response:
    content = '{"prediction":' + float32_json(row) + ',"label":' + JSON_ENCODER.encode(label) + "}"
    return json_response(content, prep.headers)


def label_json(prep: Prep, label: str) -> Response:
    return json_response(JSON_ENCODER.encode({"prediction": label}), prep.headers)


router.add_api_route("/health", health, methods=["GET"], tags=["health"])


@router.get("/ready", tags=["health"], responses=NOT_READY)
async def ready(request: Request) -> dict[str, Any]:
    """200 when pred serves the model version prep holds, else 503 dependency_unavailable."""
    prep = prep_of(request)
    return {"status": "ready", "pred": await prep.predictor.readiness()}


@router.get("/metadata", tags=["predict"], responses=NOT_READY)
async def metadata(request: Request) -> Metadata:
    """What the service takes and gives (the book's fields), and the model behind it."""
    classifier = prep_of(request).held.classifier
    card = classifier.card
    return Metadata(
        data_type="str",
        data_structure="(1,1)",
        data_sample="base64 encoded image file",
        prediction_type="float32",
        prediction_structure=f"(1,{classifier.class_count})",
        model=ModelRef(name=card.name, version=card.version, sha256=card.sha256),
        labels=card.labels,
        preprocessing=card.metadata["preprocessing"],
        metrics=card.metadata.get("metrics") or {},
    )


@router.get("/label", tags=["predict"], responses=NOT_READY)
async def label(request: Request) -> dict[str, str]:
    """Class index → label (label.json)."""
    return prep_of(request).held.classifier.card.labels


@router.get(
    "/predict/test", tags=["predict"], response_model=Probabilities, responses=PREDICT_ERRORS
)
async def predict_test(request: Request) -> Response:
    """The sample image (SAMPLE_IMAGE_PATH) through all three stages, now."""
    prep = prep_of(request)
    return probabilities_json(prep, *await classify_sample(prep))


@router.get("/predict/test/label", tags=["predict"], response_model=Label, responses=PREDICT_ERRORS)
async def predict_test_label(request: Request) -> Response:
    """The sample image's label."""
    prep = prep_of(request)
    _, top = await classify_sample(prep)
    return label_json(prep, top)


@router.post(
    "/predict",
    tags=["predict"],
    response_model=Probabilities,
    responses=PREDICT_ERRORS,
    openapi_extra=IMAGE_BODY,
)
async def predict(request: Request) -> Response:
    """One image → its probability per class and the most probable label."""
    prep = prep_of(request)
    return probabilities_json(prep, *await classify_request(request, prep))


@router.post(
    "/predict/label",
    tags=["predict"],
    response_model=Label,
    responses=PREDICT_ERRORS,
    openapi_extra=IMAGE_BODY,
)
async def predict_label(request: Request) -> Response:
    """One image → the most probable label."""
    prep = prep_of(request)
    _, top = await classify_request(request, prep)
    return label_json(prep, top)
