"""The T-API (SPEC 0.3): the book's routes, readiness and the model's metadata.

Prediction routes are plain functions: FastAPI runs them in its thread pool, so inference never
blocks the event loop. Every prediction response names the model (X-Model-Name,
X-Model-Version).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from src.app.dependencies import Model, Settings
from src.app.inference import observed
from src.common.errors import error_responses
from src.ml.model import Matrix, TabularModel
from src.schemas import Labels, PredictRequest, Probabilities, check_rows

router = APIRouter(tags=["T-API"])
PREDICTION_ERRORS = error_responses(413, 415, 422)


@router.get("/health")
async def health() -> dict[str, str]:
    """Constant: the process answers (liveness); it checks nothing."""
    return {"health": "ok"}


@router.get("/ready", responses=error_responses(503))
async def ready(model: Model) -> dict[str, str]:
    """200 once the model is loaded, 503 `model_not_ready` before."""
    return {"status": "ready", "model": model.name}


@router.get("/metadata")
def metadata(model: Model, settings: Settings) -> dict[str, Any]:
    """As in the book, plus the model's identity, labels, test metrics and V2 tensors."""
    sample = model.data_sample
    # Not predict_rows: a description is no prediction to count or log.
    sample_prediction = model.predict_proba(np.asarray(sample, dtype=np.float32)).tolist()
    return {
        "data_type": "float32",
        "data_structure": f"(1,{model.feature_count})",
        "data_sample": sample,
        "prediction_type": "float32",
        "prediction_structure": f"(1,{len(sample_prediction[0])})",
        "prediction_sample": sample_prediction,
        "model": {
            "name": model.name,
            "version": model.version,
            "sha256": model.metadata["sha256"],
        },
        "labels": model.labels,
        "metrics": model.metadata.get("metrics", {}),
        "inputs": model.metadata.get("inputs", []),
        "outputs": model.metadata.get("outputs", []),
        "service": settings.service_name,
    }


@router.get("/label")
async def label(model: Model) -> dict[str, str]:
    return model.labels


@router.get("/predict/test", response_model=Probabilities)
def predict_test(model: Model) -> JSONResponse:
    """The metadata's sample row ([[5.1, 3.5, 1.4, 0.2]] for the iris models)."""
    return answer(model, predict_rows(model, model.data_sample).tolist())


@router.get("/predict/test/label", response_model=Labels)
def predict_test_label(model: Model) -> JSONResponse:
    return answer(model, model.label_of(predict_rows(model, model.data_sample)))


@router.post("/predict", response_model=Probabilities, responses=PREDICTION_ERRORS)
def predict(body: PredictRequest, model: Model, settings: Settings) -> JSONResponse:
    """Class probabilities of every row, in input order."""
    check_rows(body.data, model.feature_count, settings.max_rows)
    return answer(model, predict_rows(model, body.data).tolist())


@router.post("/predict/label", response_model=Labels, responses=PREDICTION_ERRORS)
def predict_label(body: PredictRequest, model: Model, settings: Settings) -> JSONResponse:
    """The label (label.json) of each row's most probable class."""
    check_rows(body.data, model.feature_count, settings.max_rows)
    return answer(model, model.label_of(predict_rows(model, body.data)))


def predict_rows(model: TabularModel, rows: list[list[float]]) -> Matrix:
    with observed(model, len(rows)):
        return model.predict_proba(np.asarray(rows, dtype=np.float32))


def answer(model: TabularModel, prediction: list[Any]) -> JSONResponse:
    # A ready-made response: FastAPI would otherwise validate the list again, row by row.
    headers = {"X-Model-Name": model.name, "X-Model-Version": model.version}
    return JSONResponse({"prediction": prediction}, headers=headers)
