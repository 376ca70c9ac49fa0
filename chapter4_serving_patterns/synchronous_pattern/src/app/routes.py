"""Liveness, readiness and the book's image endpoints (SPEC 0.4, I-API): one image per request.

`add_routes` puts them on the app itself, the hot ones first: Starlette tries routes in order,
and an APIRouter added with `include_router` costs a second matching pass per request (FastAPI
0.165). `/health`, `/predict` and `/predict/label` are LeanRoutes (src/app/lean.py).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from starlette.responses import Response

from src.app.dependencies import served_model
from src.app.inputs import check_content_type, parse_image_data, read_body
from src.app.lean import LeanRoute
from src.app.schemas import (
    Health,
    LabelPrediction,
    Metadata,
    ModelRef,
    Prediction,
    PredictRequest,
    Ready,
    json_body,
)
from src.app.serving import JSON_ENCODER, ServedModel, float32_json
from src.common.errors import ApiError, error_responses
from src.ml.batcher import Batched

HEALTH_BODY = b'{"health":"ok"}'
IMAGE_DATA: list[str | int] = ["body", "image_data"]
PREDICT_BODY = json_body(PredictRequest)
PREDICT_ERRORS = error_responses(413, 415, 422, 500, 503)
NOT_READY = error_responses(503)

Answer = Callable[[ServedModel, Batched], str]  # the prediction → the JSON text of the answer


def probabilities_answer(served: ServedModel, batched: Batched) -> str:
    row = batched.probabilities[0]
    label = JSON_ENCODER.encode(served.top_label(row))
    return '{"prediction":' + float32_json(row) + ',"label":' + label + "}"


def label_answer(served: ServedModel, batched: Batched) -> str:
    return JSON_ENCODER.encode({"prediction": served.top_label(batched.probabilities[0])})


async def health(request: Request) -> Response:
    """Constant (liveness; it checks nothing): a pre-encoded JSON body."""
    return Response(HEALTH_BODY, media_type="application/json")


async def answer_upload(request: Request, answer: Answer) -> Response:
    served = served_model(request)
    with served.batcher.arriving():
        check_content_type(request.headers.get("content-type"))
        body = await read_body(request, served.predict_body_limit, "MAX_IMAGE_BYTES")
        data = served.decode(parse_image_data(body), IMAGE_DATA)
        batched = await served.classify_files([data], [IMAGE_DATA])
    return served.json_response(answer(served, batched))


async def predict(request: Request) -> Response:
    """The image's probabilities, one per class, and its most probable label."""
    return await answer_upload(request, probabilities_answer)


async def predict_label(request: Request) -> Response:
    """The image's most probable label, named through label.json."""
    return await answer_upload(request, label_answer)


async def answer_sample(request: Request, answer: Answer) -> Response:
    served = served_model(request)
    if served.sample_image is None:
        raise ApiError(
            404, "not_found", "no sample image: set SAMPLE_IMAGE_PATH or run `make models`"
        )
    where: list[str | int] = ["sample_image"]
    with served.batcher.arriving():
        batched = await served.classify_files([served.sample_image], [where])
    return served.json_response(answer(served, batched))


async def predict_test(request: Request) -> Response:
    """The sample image (data/sample.png), predicted now."""
    return await answer_sample(request, probabilities_answer)


async def predict_test_label(request: Request) -> Response:
    """The sample image's label, predicted now."""
    return await answer_sample(request, label_answer)


async def ready(request: Request) -> Ready:
    """200 once this worker has loaded and self-tested its model, else 503 model_not_ready."""
    served_model(request)
    return Ready(status="ready")


async def metadata(request: Request) -> Metadata:
    """The book's description of the model's input and output, plus the model served, its
    preprocessing and its test metrics."""
    card = served_model(request).card
    return Metadata(
        data_type="str",
        data_structure="(1,1)",
        data_sample="base64 encoded image file",
        prediction_type="float32",
        prediction_structure=f"(1,{card.class_count})",
        model=ModelRef(name=card.name, version=card.version, sha256=card.sha256),
        labels=card.labels,
        preprocessing=card.preprocessing.to_metadata(),
        metrics=card.metadata.get("metrics") or {},
    )


async def label(request: Request) -> dict[str, str]:
    """Class index → label (label.json)."""
    return served_model(request).card.labels


def add_routes(app: FastAPI) -> None:
    add = app.router.add_api_route
    add(
        "/health",
        health,
        methods=["GET"],
        response_model=Health,
        tags=["health"],
        route_class_override=LeanRoute,
    )
    for path, endpoint, answer_model in (
        ("/predict", predict, Prediction),
        ("/predict/label", predict_label, LabelPrediction),
    ):
        add(
            path,
            endpoint,
            methods=["POST"],
            response_model=answer_model,
            responses=PREDICT_ERRORS,
            openapi_extra=PREDICT_BODY,
            tags=["predict"],
            route_class_override=LeanRoute,
        )
    add("/ready", ready, methods=["GET"], responses=NOT_READY, tags=["health"])
    add("/metadata", metadata, methods=["GET"], responses=NOT_READY, tags=["predict"])
    add("/label", label, methods=["GET"], responses=NOT_READY, tags=["predict"])
    for path, endpoint, answer_model in (
        ("/predict/test", predict_test, Prediction),
        ("/predict/test/label", predict_test_label, LabelPrediction),
    ):
        add(
            path,
            endpoint,
            methods=["GET"],
            response_model=answer_model,
            responses=error_responses(404, 500, 503),
            tags=["predict"],
            route_class_override=LeanRoute,
        )
