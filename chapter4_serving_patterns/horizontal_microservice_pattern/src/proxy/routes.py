"""The composition proxy's API (SPEC 3.6): every prediction goes to every backend at once.

    POST /predict        → {"services": {"setosa": {"status": "ok", "prediction": [...],
                            "latency_ms": 2.1}, "virginica": {"status": "timeout", ...}},
                            "partial": true}
    POST /predict/label  → {"prediction": [{"label": "setosa", "proba": 0.98}], "partial": ...}

The proxy checks the T-API input rules itself (422 / 413 / 415 without calling a backend). A
backend that refuses the input anyway (4xx) decides the answer: the client gets that 4xx. When
no backend answers, 503 `no_healthy_upstream` lists what happened to each.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, Field

from src.common.errors import ApiError, code_for_status, error_responses
from src.common.metrics import counter
from src.common.request_id import current_request_id
from src.configurations import ProxySettings
from src.proxy.fanout import Fanout, Outcome, expect_predictions
from src.schemas import SAMPLE, PredictRequest, check_rows

router = APIRouter()
RETRY_AFTER_S = "1"
PREDICTION_ERRORS = error_responses(413, 415, 422, 503)


class ServiceAnswer(BaseModel):
    status: Literal["ok", "timeout", "unavailable", "error"]
    prediction: list[list[float]] | None = Field(default=None, examples=[[[0.98, 0.02]]])
    error: str | None = None
    latency_ms: float


class FanOutAnswer(BaseModel):
    services: dict[str, ServiceAnswer]
    partial: bool = Field(description="true when some service did not answer")


class BestLabel(BaseModel):
    label: str = Field(description="the service whose class 0 is the most probable")
    proba: float = Field(description="that service's probability of its class 0")


class LabelAnswer(BaseModel):
    prediction: list[BestLabel]
    partial: bool
    services: dict[str, ServiceAnswer] = Field(description="statuses only, no predictions")


def settings(request: Request) -> ProxySettings:
    value = request.app.state.settings
    assert isinstance(value, ProxySettings)
    return value


def fanout(request: Request) -> Fanout:
    value = request.app.state.fanout
    assert isinstance(value, Fanout), "the lifespan opens the backends' client"
    return value


Settings = Annotated[ProxySettings, Depends(settings)]
Backends = Annotated[Fanout, Depends(fanout)]


@router.get("/health", tags=["health"])
async def health() -> dict[str, str]:
    """Constant: the process answers (liveness); it checks nothing."""
    return {"health": "ok"}


@router.get("/ready", tags=["health"], responses=error_responses(503))
async def ready(backends: Backends) -> dict[str, Any]:
    """200 while at least one backend is ready (the proxy can give an answer), else 503."""
    outcomes = await backends.call_all("GET", "/ready")
    if not any(outcome.status == "ok" for outcome in outcomes):
        raise ApiError(
            503,
            "no_healthy_upstream",
            "no backend is ready",
            details=status_details(outcomes),
            headers={"Retry-After": RETRY_AFTER_S},
        )
    return {"status": "ready", "services": health_report(outcomes)}


@router.get("/health/all", tags=["health"])
async def health_all(backends: Backends) -> dict[str, dict[str, str]]:
    """Each backend's readiness, as in the book: {"setosa": {"status": "ok"}, ...}."""
    return health_report(await backends.call_all("GET", "/ready"))


@router.get("/metadata")
async def metadata(backends: Backends, settings: Settings) -> dict[str, Any]:
    """What the proxy takes and gives, and which model each backend serves."""
    outcomes = await backends.call_all("GET", "/metadata")
    services: dict[str, Any] = {}
    for outcome, url in zip(outcomes, backends.backends.values(), strict=True):
        if outcome.status == "ok":
            body = outcome.body
            services[outcome.service] = {
                "status": "ok",
                "url": url,
                "model": body.get("model"),
                "labels": body.get("labels"),
            }
        else:
            error = outcome.error
            services[outcome.service] = {"status": outcome.status, "url": url, "error": error}
    return {
        "data_type": "float32",
        "data_structure": f"(1,{settings.feature_count})",
        "data_sample": SAMPLE,
        "prediction_type": "float32",
        "prediction_structure": "(1,2) per service: [P(its species), P(other)]",
        "backend_timeout_ms": settings.backend_timeout_ms,
        "services": services,
    }


@router.get("/predict/get/test", response_model=FanOutAnswer, responses=error_responses(503))
async def predict_get_test(backends: Backends) -> JSONResponse:
    """Each backend's own `GET /predict/test`, as in the book."""
    outcomes = await backends.call_all("GET", "/predict/test")
    return fan_out_answer(expect_predictions(outcomes, len(SAMPLE)))


@router.get("/predict/post/test", response_model=FanOutAnswer, responses=error_responses(503))
async def predict_post_test(backends: Backends) -> JSONResponse:
    """The sample row POSTed to each backend's `/predict`, as in the book."""
    content = json.dumps({"data": SAMPLE}).encode()
    outcomes = await backends.call_all("POST", "/predict", content)
    return fan_out_answer(expect_predictions(outcomes, len(SAMPLE)))


@router.post("/predict", response_model=FanOutAnswer, responses=PREDICTION_ERRORS)
async def predict(
    body: PredictRequest, request: Request, backends: Backends, settings: Settings
) -> JSONResponse:
    """Every backend's probabilities for every row; `partial` when some did not answer."""
    outcomes = await predict_everywhere(body, request, backends, settings)
    return fan_out_answer(outcomes)


@router.post("/predict/label", response_model=LabelAnswer, responses=PREDICTION_ERRORS)
async def predict_label(
    body: PredictRequest, request: Request, backends: Backends, settings: Settings
) -> JSONResponse:
    """Per row, the service with the highest probability of its class 0 among those that
    answered (a heuristic: the binary models were trained separately)."""
    outcomes = await predict_everywhere(body, request, backends, settings)
    answered = usable(outcomes)
    best = [
        max(answered, key=lambda outcome: outcome.prediction[row][0])
        for row in range(len(body.data))
    ]
    statuses = {outcome.service: status_only(outcome) for outcome in outcomes}
    return JSONResponse(
        {
            "prediction": [
                {"label": outcome.service, "proba": outcome.prediction[row][0]}
                for row, outcome in enumerate(best)
            ],
            "partial": len(answered) < len(outcomes),
            "services": statuses,
        }
    )


async def predict_everywhere(
    body: PredictRequest, request: Request, backends: Fanout, settings: ProxySettings
) -> list[Outcome]:
    check_rows(body.data, settings.feature_count, settings.max_rows)
    # The body is valid as sent: forward its bytes rather than encode the rows again.
    outcomes = await backends.call_all("POST", "/predict", await request.body())
    return expect_predictions(outcomes, len(body.data))


def usable(outcomes: list[Outcome]) -> list[Outcome]:
    """The backends that answered; a 4xx or no answer at all ends the request here."""
    refusal = next((outcome for outcome in outcomes if outcome.refused_input), None)
    if refusal is not None:
        raise passed_on(refusal)
    answered = [outcome for outcome in outcomes if outcome.status == "ok"]
    if not answered:
        raise NoBackendAnswered(outcomes)
    answers().labels("full" if len(answered) == len(outcomes) else "partial").inc()
    return answered


def fan_out_answer(outcomes: list[Outcome]) -> JSONResponse:
    answered = usable(outcomes)
    return JSONResponse(
        {
            "services": {outcome.service: outcome.report() for outcome in outcomes},
            "partial": len(answered) < len(outcomes),
        }
    )


def passed_on(refusal: Outcome) -> ApiError:
    """The backend's 4xx, in the envelope, naming the backend."""
    assert refusal.http_status is not None
    body = refusal.body if isinstance(refusal.body, dict) else {}
    code = body.get("code") or code_for_status(refusal.http_status)
    message = f"service {refusal.service}: {body.get('error') or refusal.error}"
    details = body.get("details") if isinstance(body.get("details"), list) else None
    return ApiError(refusal.http_status, str(code), message, details=details)


class NoBackendAnswered(Exception):
    def __init__(self, outcomes: list[Outcome]) -> None:
        super().__init__("no backend answered")
        self.outcomes = outcomes


async def no_backend_answered(request: Request, exc: Exception) -> JSONResponse:
    """503 in the envelope, with each service's status as in a partial answer."""
    assert isinstance(exc, NoBackendAnswered)
    answers().labels("failed").inc()
    request_id = current_request_id() or ""
    body = {
        "error": "no backend answered",
        "code": "no_healthy_upstream",
        "request_id": request_id,
        "details": status_details(exc.outcomes),
        "services": {outcome.service: outcome.report() for outcome in exc.outcomes},
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_S})


def status_details(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [{"loc": ["services", o.service], "msg": f"{o.status}: {o.error}"} for o in outcomes]


def health_report(outcomes: list[Outcome]) -> dict[str, dict[str, str]]:
    return {
        outcome.service: {"status": "ok"}
        if outcome.status == "ok"
        else {"status": "ng", "reason": f"{outcome.status}: {outcome.error}"}
        for outcome in outcomes
    }


def status_only(outcome: Outcome) -> dict[str, Any]:
    report = outcome.report()
    report.pop("prediction", None)
    return report


def answers() -> Counter:
    return counter("proxy_answers_total", "Prediction answers by completeness", ("outcome",))
