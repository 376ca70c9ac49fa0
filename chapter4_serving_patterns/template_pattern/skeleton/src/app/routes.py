"""Liveness, readiness and the book's endpoints (SPEC 0.3, T-API): N rows → N predictions.

`add_routes` puts them on the app itself, the two hot ones first: Starlette tries routes in
order, and an APIRouter added with `include_router` costs a second matching pass per request
(FastAPI 0.165). `/health`, `/predict` and `/predict/label` are LeanRoutes (src/app/lean.py).
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from starlette.responses import Response

from src.app.dependencies import served_model
from src.app.lean import LeanRoute
from src.app.schemas import (
    Health,
    Labels,
    Metadata,
    ModelRef,
    PredictRequest,
    Probabilities,
    Ready,
    json_body,
)
from src.app.serving import float32_json
from src.common.errors import error_responses

HEALTH_BODY = b'{"health":"ok"}'
# The body is read by src.app.inputs (the hot path); the document still describes it, and
# app.py narrows the rows to the loaded model's feature count.
PREDICT_BODY = json_body(PredictRequest)
PREDICT_ERRORS = error_responses(413, 415, 422, 503)
NOT_READY = error_responses(503)


async def health(request: Request) -> Response:
    """Constant (liveness; it checks nothing): a pre-encoded JSON body."""
    return Response(HEALTH_BODY, media_type="application/json")


async def predict(request: Request) -> Response:
    """One probability vector per row, in input order."""
    served = served_model(request)
    return await served.answer(request, served.answer_rows, served.probabilities)


async def predict_label(request: Request) -> Response:
    """One label per row: the most probable class, named through label.json."""
    served = served_model(request)
    return await served.answer(request, served.answer_rows, served.labels)


async def ready(request: Request) -> Ready:
    """200 once this worker has loaded and self-tested its model, else 503 model_not_ready."""
    served_model(request)
    return Ready(status="ready")


async def metadata(request: Request) -> Metadata:
    """The book's description of the model's input and output, with a sample prediction made
    by the loaded model at start, plus the model's name, version, labels and test metrics."""
    served = served_model(request)
    card, sample = served.card, served.model.sample_prediction
    return Metadata(
        data_type="float32",
        data_structure=f"(1,{card.feature_count})",
        data_sample=card.data_sample,
        prediction_type="float32",
        prediction_structure=f"(1,{card.class_count})",
        prediction_sample=json.loads(float32_json(sample.probabilities)),
        model=ModelRef(name=card.name, version=card.version, sha256=card.sha256),
        labels=card.labels,
        metrics=card.metadata.get("metrics") or {},
    )


async def label(request: Request) -> dict[str, str]:
    """Class index → label (label.json)."""
    return served_model(request).card.labels


async def predict_test(request: Request) -> Response:
    """Probabilities for the metadata's data sample, predicted now."""
    served = served_model(request)
    return served.answer_sample(served.probabilities)


async def predict_test_label(request: Request) -> Response:
    """The label of the metadata's data sample, predicted now."""
    served = served_model(request)
    return served.answer_sample(served.labels)


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
    for path, endpoint, answer in (
        ("/predict", predict, Probabilities),
        ("/predict/label", predict_label, Labels),
    ):
        add(
            path,
            endpoint,
            methods=["POST"],
            response_model=answer,
            responses=PREDICT_ERRORS,
            openapi_extra=PREDICT_BODY,
            tags=["predict"],
            route_class_override=LeanRoute,
        )
    add("/ready", ready, methods=["GET"], responses=NOT_READY, tags=["health"])
    add("/metadata", metadata, methods=["GET"], responses=NOT_READY, tags=["predict"])
    add("/label", label, methods=["GET"], responses=NOT_READY, tags=["predict"])
    for path, endpoint, answer in (
        ("/predict/test", predict_test, Probabilities),
        ("/predict/test/label", predict_test_label, Labels),
    ):
        add(
            path,
            endpoint,
            methods=["GET"],
            response_model=answer,
            responses=NOT_READY,
            tags=["predict"],
        )
