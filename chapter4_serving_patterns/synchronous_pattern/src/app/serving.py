"""The model as the routes use it: image files decoded and preprocessed, tensors classified
through the batcher, predictions counted, timed and logged, answers encoded once.

Where the work runs (SPEC 3.2 behaviour 2): inference always runs on the batcher's inference
thread; the event loop only queues a request and is woken with its rows. Decoding and
preprocessing (base64, Pillow, resize, normalise) run inline when the request's images are small
(up to INLINE_IMAGE_BYTES together: a 64x64 digit PNG takes ~100 µs, about what a hop to a thread
and back costs), in anyio's thread pool otherwise, so a large photo never stalls the loop.

Logging: a prediction adds `model_name`, `model_version`, `images`, `batch_size`, `queue_ms`
and `inference_ms` to the request's one access line (written by RequestIdMiddleware).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
import numpy as np
from numpy.typing import NDArray
from starlette.responses import Response

from src.app.inputs import predict_body_limit
from src.common.errors import ApiError
from src.common.metrics import counter, histogram
from src.configurations import Settings
from src.ml.batcher import Batched, Batcher, BatcherStopped
from src.ml.image_input import ImageInputError, decode_base64, preprocess
from src.ml.model import Model, ModelError, Tensors

INLINE_IMAGE_BYTES = 32 * 1024
MODEL_LABELS = ("model_name", "model_version")
# digits_resnet: ~1 ms for one image, a few ms for a batch of 8 (README, Benchmark).
INFERENCE_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0)
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 128)
QUEUE_DELAY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1, 1.0)
JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one instance: dumps() builds one per call
FLOAT32_FORMAT = "%.9g"  # 9 significant digits give back every float32 exactly
RETRY_AFTER_S = "1"

Loc = list[str | int]
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
    def __init__(self, model: Model, settings: Settings, sample_image: bytes | None) -> None:
        card = model.card
        self.model = model
        self.card = card
        self.sample_image = sample_image
        self.max_image_bytes = settings.max_image_bytes
        self.max_images = settings.max_images_per_request
        self.predict_body_limit = predict_body_limit(settings.max_image_bytes)
        self.v2_body_limit = settings.max_request_bytes
        self.headers = {"X-Model-Name": card.name, "X-Model-Version": card.version}
        self.label_names = card.label_names
        model_labels = (card.name, card.version)
        self._images = counter(
            "predictions_total", "Images classified (one prediction per image)", MODEL_LABELS
        ).labels(*model_labels)
        self._latency = histogram(
            "model_inference_seconds",
            "Time in onnxruntime per call (one batch)",
            MODEL_LABELS,
            buckets=INFERENCE_BUCKETS,
        ).labels(*model_labels)
        self._batch_size = histogram(
            "inference_batch_size",
            "Images per onnxruntime call",
            MODEL_LABELS,
            buckets=BATCH_SIZE_BUCKETS,
        ).labels(*model_labels)
        self._queue_delay = histogram(
            "inference_queue_delay_seconds",
            "Time a request waited in the batch queue before its onnxruntime call started",
            MODEL_LABELS,
            buckets=QUEUE_DELAY_BUCKETS,
        ).labels(*model_labels)
        self._failures = counter(
            "inference_failures_total", "onnxruntime calls that failed", MODEL_LABELS
        ).labels(*model_labels)
        self.batcher = Batcher(
            model.predict,
            enabled=settings.batching_enabled,
            max_batch_size=settings.max_batch_size,
            max_queue_delay_s=settings.max_queue_delay_ms / 1000,
            observe=self._observe,
        )

    def _observe(self, batch_size: int, delays: list[float], inference_s: float | None) -> None:
        """Called on the inference thread after each onnxruntime call."""
        self._batch_size.observe(batch_size)
        for delay in delays:
            self._queue_delay.observe(delay)
        if inference_s is None:
            self._failures.inc()
            return
        self._latency.observe(inference_s)
        self._images.inc(batch_size)

    # --- images → tensors -------------------------------------------------------------------

    def decode(self, text: str | bytes, loc: Loc) -> bytes:
        """base64 text → the file's bytes; 422 bad base64, 413 above MAX_IMAGE_BYTES."""
        try:
            return decode_base64(text, self.max_image_bytes)
        except ImageInputError as error:
            raise image_error(error, loc) from error

    def tensors(self, files: Sequence[bytes], locs: Sequence[Loc]) -> Tensors:
        """Image files → the model's input [N, *image_shape] (SPEC 0.4); 415/413 per file."""
        stacked = np.empty((len(files), *self.card.image_shape), dtype=np.float32)
        for index, (data, loc) in enumerate(zip(files, locs, strict=True)):
            try:
                stacked[index] = preprocess(data, self.card.preprocessing, self.max_image_bytes)
            except ImageInputError as error:
                raise image_error(error, loc) from error
        return stacked

    async def classify_files(self, files: Sequence[bytes], locs: Sequence[Loc]) -> Batched:
        """Preprocess (inline when small, else in a thread), then classify through the batch."""
        if sum(map(len, files)) <= INLINE_IMAGE_BYTES:
            tensors = self.tensors(files, locs)
        else:
            tensors = await anyio.to_thread.run_sync(self.tensors, files, locs)
        return await self.classify(tensors)

    async def classify(self, tensors: Tensors) -> Batched:
        """This request's probabilities through the batcher; a model failure is a 500 that
        names it, a shutdown a 503."""
        try:
            batched = await self.batcher.infer(tensors)
        except ModelError as error:
            message = f"model {self.card.name} {self.card.version} failed: {error}"
            raise ApiError(500, "model_error", message) from error
        except BatcherStopped as error:
            raise ApiError(
                503, "model_not_ready", str(error), headers={"Retry-After": RETRY_AFTER_S}
            ) from error
        info = batched.info
        _prediction_fields.set(
            {
                "model_name": self.card.name,
                "model_version": self.card.version,
                "images": len(tensors),
                "batch_size": info.batch_size,
                "queue_ms": round(info.queue_delay_s * 1000, 3),
                "inference_ms": round(info.inference_s * 1000, 3),
            }
        )
        return batched

    # --- answers ------------------------------------------------------------------------------

    def top_label(self, probabilities: NDArray[np.float32]) -> str:
        return self.label_names[int(probabilities.argmax())]

    def json_response(self, content: str, status: int = 200) -> Response:
        return Response(
            content.encode(), status, media_type="application/json", headers=self.headers
        )


def image_error(error: ImageInputError, loc: Loc) -> ApiError:
    """The status and code the image rules give (SPEC 0.4: 413, 415, 422), with where."""
    message = str(error)
    return ApiError(error.status, error.code, message, details=[{"loc": loc, "msg": message}])


def float32_json(values: NDArray[np.float32]) -> str:
    """A float32 vector as JSON numbers with 9 significant digits: the float32 values exactly,
    half the bytes of their float64 repr."""
    return "[" + ",".join(map(FLOAT32_FORMAT.__mod__, values.tolist())) + "]"
