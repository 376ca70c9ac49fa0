"""Fan one request out to every backend at once and gather what each answered (SPEC 3.6).

Each call is bounded by BACKEND_TIMEOUT_MS from connect to the last byte, so the whole fan-out
takes as long as the slowest backend that answers, or the time-out, whichever comes first. A
call ends as one Outcome:

    ok           200 with a JSON body
    timeout      no complete answer within the time-out (a hung or overloaded backend)
    unavailable  nothing listens, the connection broke, or the backend said 503
    error        any other answer the proxy cannot use (5xx, a body that is not JSON, ...)

and a 4xx is kept as the backend's refusal of the client's input, for the caller to pass on.
No FastAPI here: routes turn outcomes into responses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from prometheus_client import Counter, Histogram

from src.common.metrics import counter, histogram
from src.common.request_id import REQUEST_ID_HEADER, current_request_id

Status = Literal["ok", "timeout", "unavailable", "error"]
JSON_HEADERS = {"Content-Type": "application/json"}
logger = logging.getLogger("proxy.fanout")


@dataclass(frozen=True)
class Outcome:
    """What one backend call came to."""

    service: str
    status: Status
    latency_ms: float
    body: Any = None  # the backend's JSON answer (200, or the envelope of a 4xx)
    http_status: int | None = None
    error: str | None = None

    @property
    def refused_input(self) -> bool:
        """The backend answered 4xx: the client's request is at fault, not the backend."""
        return self.http_status is not None and 400 <= self.http_status < 500

    def report(self) -> dict[str, Any]:
        """This service's entry in a fan-out answer."""
        if self.status == "ok":
            return {"status": "ok", "prediction": self.prediction, "latency_ms": self.latency_ms}
        return {"status": self.status, "error": self.error, "latency_ms": self.latency_ms}

    @property
    def prediction(self) -> list[list[float]]:
        prediction: list[list[float]] = self.body["prediction"]
        return prediction


@dataclass(frozen=True)
class Fanout:
    """The backends of SERVICES and the process's one HTTP client (opened in the lifespan)."""

    client: httpx.AsyncClient
    backends: dict[str, str]  # name → base URL, in SERVICES order
    timeout_s: float

    async def call_all(self, method: str, path: str, content: bytes | None = None) -> list[Outcome]:
        """The same request to every backend, concurrently; outcomes in SERVICES order."""
        calls = (self.call(name, url, method, path, content) for name, url in self.backends.items())
        return list(await asyncio.gather(*calls))

    async def call(
        self, service: str, base_url: str, method: str, path: str, content: bytes | None
    ) -> Outcome:
        headers = dict(JSON_HEADERS) if content is not None else {}
        request_id = current_request_id()
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id  # one id across the proxy and every backend
        started = time.perf_counter()
        try:
            # httpx bounds each phase (connect, each read); this bounds the whole call.
            async with asyncio.timeout(self.timeout_s):
                response = await self.client.request(
                    method, base_url + path, content=content, headers=headers
                )
        except (TimeoutError, httpx.TimeoutException):
            message = f"no answer within {self.timeout_s * 1000:.0f} ms"
            outcome = Outcome(service, "timeout", elapsed_ms(started), error=message)
        except httpx.TransportError as failure:
            outcome = Outcome(service, "unavailable", elapsed_ms(started), error=describe(failure))
        else:
            outcome = interpret(service, response, elapsed_ms(started))
        record(outcome)
        return outcome


def expect_predictions(outcomes: list[Outcome], rows: int) -> list[Outcome]:
    """Answers of 200 that hold no prediction per row become errors: the proxy cannot use them."""
    return [
        outcome if outcome.status != "ok" or holds_predictions(outcome.body, rows) else
        Outcome(outcome.service, "error", outcome.latency_ms, outcome.body, outcome.http_status,
                f"the answer holds no prediction of {rows} rows")
        for outcome in outcomes
    ]  # fmt: skip


def holds_predictions(body: Any, rows: int) -> bool:
    prediction = body.get("prediction") if isinstance(body, dict) else None
    return (
        isinstance(prediction, list)
        and len(prediction) == rows
        and all(isinstance(row, list) and row for row in prediction)
    )


def interpret(service: str, response: httpx.Response, latency_ms: float) -> Outcome:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if status == 200 and isinstance(body, dict):
        return Outcome(service, "ok", latency_ms, body, status)
    message = body.get("error") if isinstance(body, dict) else None
    error = f"HTTP {status}: {message or response.reason_phrase}"
    if status == 503:
        return Outcome(service, "unavailable", latency_ms, body, status, error)
    return Outcome(service, "error", latency_ms, body, status, error)


def describe(failure: Exception) -> str:
    text = str(failure)
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def record(outcome: Outcome) -> None:
    backend_calls().labels(outcome.service, outcome.status).inc()
    backend_seconds().labels(outcome.service, outcome.status).observe(outcome.latency_ms / 1000)
    if outcome.status != "ok" and not outcome.refused_input:
        logger.warning(
            "backend call failed",
            extra={
                "service": outcome.service,
                "status": outcome.status,
                "error": outcome.error,
                "latency_ms": outcome.latency_ms,
            },
        )


def backend_calls() -> Counter:
    return counter("proxy_backend_calls_total", "Backend calls by outcome", ("service", "status"))


def backend_seconds() -> Histogram:
    return histogram(
        "proxy_backend_call_seconds", "Backend call latency by outcome", ("service", "status")
    )
