"""Where the proxy gets probabilities from: `pred` over HTTP (as prep_pred_pattern's prep does).

`RemotePredictor` calls pred with the process's one `httpx.AsyncClient` (connection reuse), the
versioned V2 route of the model the proxy holds, FP32 JSON tensors only, and PRED_TIMEOUT_MS from
connect to the last byte. No retry: a 4xx will not change on a second try, and a client that
gets a 503 has `Retry-After` to decide for itself. What a call comes to:

    200 with the output tensor        → the probabilities [N, C]
    no answer within PRED_TIMEOUT_MS  → 504 upstream_timeout
    nothing listens / connection lost → 503 dependency_unavailable, Retry-After: 1
    pred says 503 (not ready)         → 503 dependency_unavailable, Retry-After: 1
    pred says 404 (another model or version)  → 503 dependency_unavailable
    any other answer                  → 502 bad_gateway (proxy and pred disagree: never the
                                         client's fault, so never a 4xx)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray
from prometheus_client import Counter, Histogram

from src.common.errors import ApiError
from src.common.metrics import counter, histogram
from src.common.request_id import REQUEST_ID_HEADER, current_request_id
from src.configurations import ProxySettings
from src.ml.pipeline import ImageClassifier, Probabilities
from src.web import JSON_ENCODER, RETRY_AFTER_S, float32_json

JSON_HEADERS = {"Content-Type": "application/json"}
# Connections to pred: enough for the bench's concurrency; more requests wait their turn.
PRED_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=32)
RETRY = {"Retry-After": RETRY_AFTER_S}


class Predictor(Protocol):
    async def predict(self, batch: NDArray[np.float32]) -> Probabilities:
        """float32 [N, 3, H, W] → float32 [N, C]; raises ApiError (502/503/504)."""

    async def readiness(self) -> dict[str, Any]:
        """What proxy's /ready reports; raises ApiError 503 when proxy cannot predict."""


@asynccontextmanager
async def remote_predictor(
    settings: ProxySettings, classifier: ImageClassifier
) -> AsyncIterator[RemotePredictor]:
    """The process's one client to pred, closed at shutdown. trust_env=False: pred is the
    URL configured, never reached through an HTTP(S)_PROXY the environment happens to name."""
    transport = httpx.AsyncHTTPTransport(limits=PRED_LIMITS, trust_env=False)
    timeout = httpx.Timeout(settings.pred_timeout_s)
    async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
        yield RemotePredictor(client, settings, classifier)


class RemotePredictor:
    def __init__(
        self, client: httpx.AsyncClient, settings: ProxySettings, classifier: ImageClassifier
    ) -> None:
        self.client = client
        self.classifier = classifier
        self.timeout_s = settings.pred_timeout_s
        self.name = classifier.card.name
        self.version = settings.pred_model_version or classifier.card.version
        self.base_url = settings.pred_url
        model = f"{settings.pred_url}/v2/models/{self.name}"
        self.metadata_url = model
        # The versioned route: a pred serving another version answers 404, never its output.
        self.infer_url = f"{model}/versions/{self.version}/infer"
        tensor = classifier.input
        self._input_head = JSON_ENCODER.encode({"name": tensor.name, "datatype": "FP32"})[:-1]
        self._outputs = JSON_ENCODER.encode([{"name": classifier.output.name}])

    async def predict(self, batch: NDArray[np.float32]) -> Probabilities:
        response = await self._call("POST", self.infer_url, self._infer_body(batch))
        if response.status_code != 200:
            raise self._refusal(response)
        return self._probabilities(response, len(batch))

    async def readiness(self) -> dict[str, Any]:
        """Ready when pred's V2 model metadata reports the version proxy holds and the input
        tensor proxy sends (as prep_pred_pattern's prep)."""
        try:
            response = await self._call("GET", self.metadata_url)
        except ApiError as error:
            raise ApiError(503, "dependency_unavailable", error.message, headers=RETRY) from error
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise ApiError(
                503,
                "dependency_unavailable",
                f"pred does not serve {self.name!r}: HTTP {response.status_code} {_message(body)}",
                headers=RETRY,
            )
        versions = body.get("versions") or []
        if self.version not in versions:
            message = f"pred serves {self.name!r} versions {versions}, proxy holds {self.version!r}"
            raise ApiError(503, "dependency_unavailable", message)
        expected = self.classifier.input.to_json()
        if expected not in (body.get("inputs") or []):
            message = f"pred's {self.name!r} takes {body.get('inputs')}, proxy sends {expected}"
            raise ApiError(503, "dependency_unavailable", message)
        return {"url": self.base_url, "model": self.name, "version": self.version}

    def _infer_body(self, batch: NDArray[np.float32]) -> bytes:
        """The V2 request, written directly: the tensor as exact float32 JSON numbers (the
        request id as V2 `id`, echoed by pred)."""
        head = f'{{"id":{JSON_ENCODER.encode(current_request_id() or "")},"inputs":['
        tensor = f'{self._input_head},"shape":{list(batch.shape)},"data":{float32_json(batch)}}}'
        return (head + tensor + f'],"outputs":{self._outputs}}}').encode()

    async def _call(self, method: str, url: str, content: bytes | None = None) -> httpx.Response:
        headers = dict(JSON_HEADERS) if content is not None else {}
        request_id = current_request_id()
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id  # one id across proxy and pred
        started = time.perf_counter()
        outcome = "error"
        try:
            # httpx bounds each phase (connect, each read); this bounds the whole call.
            async with asyncio.timeout(self.timeout_s):
                response = await self.client.request(method, url, content=content, headers=headers)
            outcome = str(response.status_code)
            return response
        except (TimeoutError, httpx.TimeoutException) as error:
            outcome = "timeout"
            message = f"pred gave no answer within {self.timeout_s * 1000:.0f} ms (PRED_TIMEOUT_MS)"
            raise ApiError(504, "upstream_timeout", message) from error
        except httpx.TransportError as error:
            outcome = "unavailable"
            message = f"pred at {self.base_url} is unreachable: {_describe(error)}"
            raise ApiError(503, "dependency_unavailable", message, headers=RETRY) from error
        finally:
            pred_calls().labels(method, outcome).inc()
            pred_call_seconds().labels(method, outcome).observe(time.perf_counter() - started)

    def _refusal(self, response: httpx.Response) -> ApiError:
        status, body = response.status_code, _json(response)
        said = f"pred answered {status}: {_message(body)}"
        if status == 503:
            return ApiError(503, "dependency_unavailable", said, headers=RETRY)
        if status == 404:
            wanted = f"{self.name!r} version {self.version!r}"
            return ApiError(503, "dependency_unavailable", f"pred does not serve {wanted}; {said}")
        return ApiError(502, "bad_gateway", said)

    def _probabilities(self, response: httpx.Response, rows: int) -> Probabilities:
        """The output tensor proxy asked for, as float32 [rows, C], or a 502."""
        body = _json(response)
        name, classes = self.classifier.output.name, self.classifier.class_count
        outputs = body.get("outputs") if isinstance(body, dict) else None
        tensor = next(
            (item for item in outputs or [] if isinstance(item, dict) and item.get("name") == name),
            None,
        )
        problem = _tensor_problem(tensor, name)
        if problem is None:
            assert tensor is not None
            try:
                return np.asarray(tensor["data"], dtype=np.float32).reshape(rows, classes)
            except (TypeError, ValueError) as error:
                problem = str(error)
        message = f"pred's answer holds no FP32 {name!r} of shape [{rows}, {classes}]: {problem}"
        raise ApiError(502, "bad_gateway", message)


def _tensor_problem(tensor: Any, name: str) -> str | None:
    if tensor is None:
        return f"no output {name!r}"
    if tensor.get("datatype") != "FP32":
        return f"datatype {tensor.get('datatype')!r}"
    if not isinstance(tensor.get("data"), list):
        return "no data list (binary output?)"
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(body: Any) -> str:
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else "?"


def _describe(failure: Exception) -> str:
    text = str(failure)
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__


def pred_calls() -> Counter:
    return counter("pred_calls_total", "Calls from proxy to pred by outcome", ("method", "outcome"))


def pred_call_seconds() -> Histogram:
    return histogram(
        "pred_call_seconds", "Latency of proxy's calls to pred by outcome", ("method", "outcome")
    )
