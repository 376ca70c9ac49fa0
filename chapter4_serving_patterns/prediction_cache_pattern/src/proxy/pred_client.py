"""The proxy's calls to `pred` (V2, SPEC 0.5): the model's identity and inference.

What the cache keys on (name and version) comes from pred, not from the proxy's own files:
`ModelInfo` holds what pred's V2 model metadata said, trusted for MODEL_INFO_TTL_S and replaced
at once when an infer answer reports another `model_version` (SPEC 3.8 behaviour 1). The proxy
calls the unversioned infer route, so a pred that was rolled to a new version answers (and
tells which version answered) instead of refusing.

One `httpx.AsyncClient` per worker (keep-alive), FP32 JSON tensors only, PRED_TIMEOUT_MS from
connect to the last byte, no retry. What a call comes to:

    200 with the output tensor        → the probabilities [N, C] and the model version
    no answer within PRED_TIMEOUT_MS  → 504 upstream_timeout
    nothing listens / connection lost → 503 dependency_unavailable, Retry-After: 1
    pred says 503 (not ready) or 404  → 503 dependency_unavailable
    any other answer                  → 502 bad_gateway (never the client's fault)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

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
PRED_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=32)
RETRY = {"Retry-After": RETRY_AFTER_S}
logger = logging.getLogger("proxy.pred")


@dataclass(frozen=True)
class ModelInfo:
    """The model pred serves, as its V2 metadata (or an infer answer) named it."""

    name: str
    version: str
    learned_at: float  # time.monotonic() of the answer that said so


@dataclass(frozen=True)
class Inference:
    probabilities: Probabilities  # float32 [N, C]
    model_version: str  # the version that answered


@asynccontextmanager
async def open_pred_client(
    settings: ProxySettings, classifier: ImageClassifier
) -> AsyncIterator[PredClient]:
    """The worker's one client to pred, closed at shutdown. trust_env=False: pred is the URL
    configured, never reached through an HTTP(S)_PROXY the environment happens to name."""
    transport = httpx.AsyncHTTPTransport(limits=PRED_LIMITS, trust_env=False)
    timeout = httpx.Timeout(settings.pred_timeout_s)
    async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
        yield PredClient(client, settings, classifier)


class PredClient:
    def __init__(
        self, client: httpx.AsyncClient, settings: ProxySettings, classifier: ImageClassifier
    ) -> None:
        self.client = client
        self.classifier = classifier
        self.timeout_s = settings.pred_timeout_s
        self.info_ttl_s = settings.model_info_ttl_s
        self.name = classifier.card.name
        self.base_url = settings.pred_url
        self.metadata_url = f"{settings.pred_url}/v2/models/{self.name}"
        self.infer_url = f"{self.metadata_url}/infer"
        self._info: ModelInfo | None = None
        self._refreshing = asyncio.Lock()  # one metadata call at a time per worker
        tensor = classifier.input
        self._input_head = JSON_ENCODER.encode({"name": tensor.name, "datatype": "FP32"})[:-1]
        self._outputs = JSON_ENCODER.encode([{"name": classifier.output.name}])

    # --- the model's identity ------------------------------------------------------------

    async def model_info(self) -> ModelInfo:
        """What pred serves, asked again once MODEL_INFO_TTL_S have passed. While pred cannot
        be asked, the last answer stands for another MODEL_INFO_TTL_S (it is still the best
        knowledge: a pred that does not answer serves no other version, and cached answers
        keep being served); with no answer ever, a 503."""
        info = self._info
        if info is not None and time.monotonic() - info.learned_at < self.info_ttl_s:
            return info
        async with self._refreshing:
            info = self._info
            if info is not None and time.monotonic() - info.learned_at < self.info_ttl_s:
                return info  # another request refreshed it meanwhile
            try:
                return self._learn(await self.fetch_version())
            except ApiError as error:
                if info is None:
                    raise
                # Asked again after another MODEL_INFO_TTL_S, not by every request meanwhile:
                # a hung pred would otherwise cost each of them PRED_TIMEOUT_MS, one by one.
                logger.warning("pred's model version unknown, keeping %s: %s", info.version, error)
                return self._learn(info.version)

    def learned_version(self, version: str) -> ModelInfo:
        """An infer answer reported `version`: from now on keys use it."""
        info = self._info
        if info is None or info.version != version:
            return self._learn(version)
        return info

    def _learn(self, version: str) -> ModelInfo:
        self._info = ModelInfo(self.name, version, time.monotonic())
        return self._info

    async def fetch_version(self) -> str:
        """pred's V2 model metadata: the version it serves, once it takes the input the proxy
        sends; else 503 dependency_unavailable."""
        response = await self._call("GET", self.metadata_url)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise ApiError(
                503,
                "dependency_unavailable",
                f"pred does not serve {self.name!r}: HTTP {response.status_code} {_message(body)}",
                headers=RETRY,
            )
        versions = body.get("versions") or []
        if not versions or not isinstance(versions[0], str):
            raise ApiError(502, "bad_gateway", f"pred reports no version of {self.name!r}")
        expected = self.classifier.input.to_json()
        if expected not in (body.get("inputs") or []):
            message = f"pred's {self.name!r} takes {body.get('inputs')}, the proxy sends {expected}"
            raise ApiError(503, "dependency_unavailable", message, headers=RETRY)
        return versions[0]

    async def readiness(self) -> dict[str, Any]:
        try:
            version = await self.fetch_version()
        except ApiError as error:
            raise ApiError(503, "dependency_unavailable", error.message, headers=RETRY) from error
        info = self.learned_version(version)
        return {"url": self.base_url, "model": info.name, "version": info.version}

    # --- inference ---------------------------------------------------------------------------

    async def infer(self, batch: NDArray[np.float32]) -> Inference:
        response = await self._call("POST", self.infer_url, self._infer_body(batch))
        if response.status_code != 200:
            raise self._refusal(response)
        body = _json(response)
        version = body.get("model_version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not version:
            raise ApiError(502, "bad_gateway", "pred's answer names no model_version")
        return Inference(self._probabilities(body, len(batch)), version)

    def _infer_body(self, batch: NDArray[np.float32]) -> bytes:
        """The V2 request, written directly: the tensor as exact float32 JSON numbers."""
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
        status = response.status_code
        said = f"pred answered {status}: {_message(_json(response))}"
        if status in (404, 503):
            return ApiError(503, "dependency_unavailable", said, headers=RETRY)
        return ApiError(502, "bad_gateway", said)

    def _probabilities(self, body: dict[str, Any], rows: int) -> Probabilities:
        """The output tensor the proxy asked for, as float32 [rows, C], or a 502."""
        name, classes = self.classifier.output.name, self.classifier.class_count
        outputs = body.get("outputs")
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
    return counter(
        "pred_calls_total", "Calls from the proxy to pred by outcome", ("method", "outcome")
    )


def pred_call_seconds() -> Histogram:
    return histogram(
        "pred_call_seconds",
        "Latency of the proxy's calls to pred by outcome",
        ("method", "outcome"),
    )
