"""The V2 calls proxy and worker make to `pred` (SPEC 0.5 rule 4: FP32 tensors in, the ONNX
outputs read, nothing else), through one shared `httpx.AsyncClient` per process.

    pred answers 200 with the output tensor      → the probabilities [N, C]
    no answer within PRED_TIMEOUT_MS             → PredUnavailable (transient: retry later)
    nothing listens / connection lost / 5xx      → PredUnavailable
    404 (pred serves another model or version)   → PredUnavailable (pred may be redeploying)
    400 (pred refuses the tensor)                → PredRefused (permanent: the same call fails
                                                   again)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from src.configurations import PredClientSettings
from src.ml.pipeline import ImageClassifier, Probabilities
from src.web import JSON_ENCODER, float32_json

JSON_HEADERS = {"Content-Type": "application/json"}
PRED_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16)


class PredUnavailable(Exception):
    """pred could not answer now; the same call may succeed later."""


class PredRefused(Exception):
    """pred answered that the request itself is wrong; retrying cannot help."""


@asynccontextmanager
async def pred_client(
    settings: PredClientSettings, classifier: ImageClassifier
) -> AsyncIterator[PredClient]:
    """trust_env=False: pred is the URL configured, never reached through an HTTP(S)_PROXY."""
    transport = httpx.AsyncHTTPTransport(limits=PRED_LIMITS, trust_env=False)
    timeout = httpx.Timeout(settings.pred_timeout_s)
    async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
        yield PredClient(client, settings, classifier)


class PredClient:
    def __init__(
        self, client: httpx.AsyncClient, settings: PredClientSettings, classifier: ImageClassifier
    ) -> None:
        self.client = client
        self.classifier = classifier
        self.timeout_s = settings.pred_timeout_s
        self.base_url = settings.pred_url
        card = classifier.card
        self.metadata_url = f"{settings.pred_url}/v2/models/{card.name}"
        # The versioned route: a pred serving another version answers 404, never its output.
        self.infer_url = f"{self.metadata_url}/versions/{card.version}/infer"

    async def infer(self, batch: NDArray[np.float32], request_id: str) -> Probabilities:
        """float32 [N, 3, H, W] → float32 [N, C]."""
        response = await self._call("POST", self.infer_url, self._infer_body(batch, request_id))
        if response.status_code == 400:
            raise PredRefused(f"pred refused the tensor: {_message(response)}")
        if response.status_code != 200:
            raise PredUnavailable(f"pred answered {response.status_code}: {_message(response)}")
        return self._probabilities(response, len(batch))

    def _infer_body(self, batch: NDArray[np.float32], request_id: str) -> bytes:
        """The V2 request, written directly: the tensor as exact float32 JSON numbers (9
        significant digits), about half the bytes and time of json.dumps on a float list."""
        head = JSON_ENCODER.encode({"name": self.classifier.input.name, "datatype": "FP32"})[:-1]
        tensor = f'{head},"shape":{list(batch.shape)},"data":{float32_json(batch)}}}'
        outputs = JSON_ENCODER.encode([{"name": self.classifier.output.name}])
        return (
            f'{{"id":{JSON_ENCODER.encode(request_id)},"inputs":[{tensor}],"outputs":{outputs}}}'
        ).encode()

    async def model_metadata(self, timeout_s: float | None = None) -> dict[str, Any]:
        """pred's V2 model metadata, once it serves the version this process holds."""
        response = await self._call("GET", self.metadata_url, timeout_s=timeout_s)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise PredUnavailable(
                f"pred does not serve {self.classifier.card.name!r}: "
                f"HTTP {response.status_code} {_message(response)}"
            )
        version = self.classifier.card.version
        if version not in (body.get("versions") or []):
            raise PredUnavailable(f"pred serves versions {body.get('versions')}, not {version!r}")
        return body

    async def _call(
        self,
        method: str,
        url: str,
        content: bytes | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        headers = JSON_HEADERS if content is not None else {}
        limit = timeout_s or self.timeout_s
        try:
            # httpx bounds each phase (connect, each read); this bounds the whole call.
            async with asyncio.timeout(limit):
                return await self.client.request(method, url, content=content, headers=headers)
        except (TimeoutError, httpx.TimeoutException) as error:
            message = f"pred gave no answer within {limit * 1000:.0f} ms"
            raise PredUnavailable(message) from error
        except httpx.TransportError as error:
            raise PredUnavailable(f"pred at {self.base_url} is unreachable: {error!r}") from error

    def _probabilities(self, response: httpx.Response, rows: int) -> Probabilities:
        name, classes = self.classifier.output.name, self.classifier.class_count
        body = _json(response)
        outputs = body.get("outputs") if isinstance(body, dict) else None
        tensor = next((o for o in outputs or [] if o.get("name") == name), None)
        try:
            assert tensor is not None and tensor.get("datatype") == "FP32"
            return np.asarray(tensor["data"], dtype=np.float32).reshape(rows, classes)
        except (AssertionError, KeyError, TypeError, ValueError) as error:
            message = f"pred's answer holds no FP32 {name!r} of shape [{rows}, {classes}]"
            raise PredRefused(message) from error


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    body = _json(response)
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else "?"
