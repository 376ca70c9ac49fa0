"""What every inference records, whichever route asked for it (T-API or V2): its latency by
model and version, the rows it predicted, and one log line (CONVENTIONS 4)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

from src.common.metrics import counter, histogram
from src.ml.model import TabularModel

logger = logging.getLogger("service.inference")
# Tabular inference takes microseconds to a few milliseconds; the default buckets start at 5 ms.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@contextmanager
def observed(model: TabularModel, rows: int) -> Iterator[None]:
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    labels = (model.name, model.version)
    inference_seconds().labels(*labels).observe(elapsed)
    predicted_rows().labels(*labels).inc(rows)
    logger.info(
        "inference",
        extra={
            "model_name": model.name,
            "model_version": model.version,
            "rows": rows,
            "latency_ms": round(elapsed * 1000, 3),
        },
    )


def inference_seconds() -> Histogram:
    labels = ("model", "version")
    return histogram("model_inference_seconds", "Model inference latency", labels, BUCKETS)


def predicted_rows() -> Counter:
    return counter("model_predicted_rows_total", "Rows predicted", ("model", "version"))
