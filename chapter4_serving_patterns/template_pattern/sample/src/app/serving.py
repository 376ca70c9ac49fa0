"""The model as the routes use it: predictions timed, counted and logged, bodies read within
bounds, answers encoded once, and a request's CPU work kept off the event loop unless tiny.

Where the work runs (SPEC 3.1 behaviour 1: inference never blocks the event loop): a body of
at most INLINE_BODY_BYTES is parsed, predicted and encoded inline, a larger one in anyio's
thread pool. The hop to a thread and back costs ~100 µs of CPU in the running server, more than
all the work of a one-row request (~15 µs, the model's share 5 µs); 8 KiB hold at most ~370
short iris rows, ~0.6 ms of work. Beyond that, a batch (10 000 rows: ~19 ms) in a thread lets
the loop take its turn every 5 ms (the interpreter's switch interval) instead of stalling every
other connection of the worker for the whole batch. README, Benchmark, has the measurements.

Logging: a prediction adds `model_name`, `model_version`, `rows` and `inference_ms` to the
request's one access line (written by RequestIdMiddleware with the request's `latency_ms`),
instead of writing a second line per request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import Request
from numpy.typing import NDArray
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from src.app.inputs import Features, check_content_type, max_body_bytes, parse_rows
from src.common.errors import ApiError
from src.common.metrics import counter, histogram
from src.ml.model import Model, Prediction

INLINE_BODY_BYTES = 8 * 1024
MODEL_LABELS = ("model_name", "model_version")
# The iris SVC takes ~5 µs for one row and ~4 ms for 10 000: buckets from 50 µs up.
INFERENCE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)
JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one instance: dumps() builds one per call
FLOAT32_FORMAT = "%.9g"  # 9 significant digits give back every float32 exactly

Respond = Callable[[Prediction], str]  # a prediction → the JSON text of the answer
_prediction_fields: ContextVar[dict[str, Any] | None] = ContextVar("prediction", default=None)


class PredictionFields(logging.Filter):
    """Adds the request's prediction fields to its access line (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _prediction_fields.get()
        if fields:
            record.__dict__.update(fields)
        return True


PREDICTION_FIELDS = PredictionFields()


def log_predictions_on_access_lines() -> None:
    logging.getLogger("access").addFilter(PREDICTION_FIELDS)  # once: same instance


class ServedModel:
    def __init__(self, model: Model, max_rows: int) -> None:
        card = model.card
        self.model = model
        self.card = card
        self.max_rows = max_rows
        self.max_body_bytes = max_body_bytes(max_rows, card.feature_count)
        self.headers = {"X-Model-Name": card.name, "X-Model-Version": card.version}
        self.label_names = list(card.labels.values())
        model_labels = (card.name, card.version)
        self._rows = counter(
            "predictions_total", "Rows predicted (one prediction per row)", MODEL_LABELS
        ).labels(*model_labels)
        self._latency = histogram(
            "model_inference_seconds",
            "Time in onnxruntime per request (all its rows)",
            MODEL_LABELS,
            buckets=INFERENCE_BUCKETS,
        ).labels(*model_labels)

    def predict(self, features: Features) -> Prediction:
        started = time.perf_counter()
        prediction = self.model.predict(features)
        elapsed = time.perf_counter() - started
        self._latency.observe(elapsed)
        self._rows.inc(len(features))
        fields = {
            "model_name": self.card.name,
            "model_version": self.card.version,
            "rows": len(features),
            "inference_ms": round(elapsed * 1000, 3),
        }
        holder = _prediction_fields.get()
        if holder is None:  # inline: this is the request's own context
            _prediction_fields.set(fields)
        else:  # in a worker thread: fill the holder the request's context shares
            holder.update(fields)
        return prediction

    # --- T-API answers -----------------------------------------------------------------

    def probabilities(self, prediction: Prediction) -> str:
        return '{"prediction":' + float32_json(prediction.probabilities) + "}"

    def labels(self, prediction: Prediction) -> str:
        # The book's label: the most probable class, named through label.json.
        names = self.label_names
        indices = prediction.probabilities.argmax(1).tolist()
        return JSON_ENCODER.encode({"prediction": [names[index] for index in indices]})

    def json_response(self, content: str) -> Response:
        return Response(content.encode(), media_type="application/json", headers=self.headers)

    def answer_sample(self, respond: Respond) -> Response:
        return self.json_response(respond(self.predict(self.model.sample)))

    def answer_rows(self, body: bytes, respond: Respond) -> Response:
        """The T-API body `{"data": rows}` answered with `respond(prediction)`."""
        features = parse_rows(body, self.card.feature_count, self.max_rows)
        return self.json_response(respond(self.predict(features)))

    async def answer(
        self, request: Request, handle: Callable[..., Response], *args: Any
    ) -> Response:
        """`handle(body, *args)` on the request's JSON body: inline when the body is small,
        in a worker thread otherwise (module docstring)."""
        check_content_type(request.headers.get("content-type"))
        body = await read_body(request, self.max_body_bytes)
        if len(body) <= INLINE_BODY_BYTES:
            return handle(body, *args)
        _prediction_fields.set({})
        return await anyio.to_thread.run_sync(handle, body, *args)


def float32_json(values: NDArray[np.float32]) -> str:
    """A float32 vector [C] or matrix [N, C] as JSON numbers with 9 significant digits: the
    float32 values exactly, where the repr of their float64 copies (what `tolist()` and json
    write) takes 17 digits, twice the bytes and twice the time."""
    if values.ndim == 1:
        return "[" + ",".join(map(FLOAT32_FORMAT.__mod__, values.tolist())) + "]"
    row = "[" + ",".join([FLOAT32_FORMAT] * values.shape[1]) + "]"
    return "[" + ",".join([row % tuple(item) for item in values.tolist()]) + "]"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is longer than `limit` (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more_body = True
    while more_body:  # the ASGI messages themselves: lighter than Request.stream()
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _body_too_large(limit)
        chunks.append(chunk)
        more_body = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _body_too_large(limit: int) -> ApiError:
    # The rest of the body is not read: close the connection rather than drain it.
    return ApiError(
        413,
        "payload_too_large",
        f"body larger than {limit} bytes, more than MAX_ROWS rows can take",
        headers={"Connection": "close"},
    )
