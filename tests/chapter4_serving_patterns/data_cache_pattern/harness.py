"""What the data_cache_pattern tests share: where the pattern, its models and its items are, a
private copy of the items per launch, and an independent reading of the cache's keys and values.

Oracles come from tests/support/image_checks.py (onnxruntime in the test process on the same
model.onnx, fed by the canonical preprocessing loaded by file path) and from the key and value
layout SPEC 3.9 and the pattern README define, decoded here without the pattern's own code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from tests.support.image_checks import Answer, Predictor, labelled_images
from tests.support.pattern import REPO_ROOT

PATTERN = "chapter4_serving_patterns/data_cache_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
MODELS_DIR = PATTERN_DIR / "models"
MODEL_DIR = MODELS_DIR / "digits_resnet"
SMALL_MODEL_DIR = MODELS_DIR / "digits_resnet_small"
DATA_DIR = PATTERN_DIR / "data"
CACHE_HEADER = "X-Data-Cache"
Json = dict[str, Any]


def require_models() -> None:
    """The two models and the items, or a failure that says how to get them."""
    needed = [MODEL_DIR / "model.onnx", SMALL_MODEL_DIR / "model.onnx", DATA_DIR / "labels.json"]
    missing = [path for path in needed if not path.exists()]
    if missing:
        pytest.fail(f"{missing[0]} is missing: run `make models` in {PATTERN}")


def copy_items(destination: Path) -> Path:
    """A private DATA_DIR: the items and labels.json, so that a test may touch or add files."""
    shutil.copytree(DATA_DIR, destination)
    return destination


def redis_db_url(url: str, db: int) -> str:
    """The same server, another database: the shared Redis is shared with other patterns."""
    return url.rpartition("/")[0] + f"/{db}"


def metadata_of(model_dir: Path) -> Json:
    loaded: Json = json.loads((model_dir / "metadata.json").read_text())
    return loaded


def preprocessing_sha256(model_dir: Path) -> str:
    """SPEC 3.9: the sha256 of the canonical JSON (sorted keys, no spaces) of preprocessing."""
    preprocessing = metadata_of(model_dir)["preprocessing"]
    canonical = json.dumps(preprocessing, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def expected_key(model_dir: Path, item_path: Path) -> str:
    info = item_path.stat()
    digest = preprocessing_sha256(model_dir)
    return f"data_cache:{digest}:{item_path.stem}:{info.st_size}:{info.st_mtime_ns}"


def parse_entry(value: bytes) -> tuple[str, tuple[int, ...], bytes, int]:
    """(dtype, shape, raw tensor bytes, header length) of a cache value, as the README lays it
    out: b"DCT1", dtype length, dtype, ndim, ndim x uint32 LE, then the raw tensor."""
    assert value[:4] == b"DCT1", value[:16]
    dtype_length = value[4]
    dtype = value[5 : 5 + dtype_length].decode("ascii")
    ndim = value[5 + dtype_length]
    start = 6 + dtype_length
    shape = struct.unpack(f"<{ndim}I", value[start : start + 4 * ndim])
    header = start + 4 * ndim
    return dtype, tuple(shape), value[header:], header


def predict_item(client: httpx.Client, item_id: str, path: str = "/predict") -> httpx.Response:
    response = client.post(path, json={"data": item_id})
    assert response.status_code == 200, response.text
    return response


def cache_result(response: httpx.Response) -> str:
    return response.headers[CACHE_HEADER]


def item_predictor(client: httpx.Client, directory: Path) -> Predictor:
    """image_checks' predictor protocol through item ids: each image file is sent as the id of
    the file it was read from (`{"data": id}`), never as bytes."""
    ids = {item.data: item.item_id for item in labelled_images(directory)}

    def predict(images: Sequence[bytes]) -> list[Answer]:
        answers = []
        for data in images:
            body = predict_item(client, ids[data]).json()
            answers.append(Answer([float(p) for p in body["prediction"]], str(body["label"])))
        return answers

    return predict


def metric_total(client: httpx.Client, prefix: str) -> float:
    """The sum of every sample whose line starts with `prefix` in the process's /metrics."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            total += float(line.rpartition(" ")[2])
    return total


def predictions_served(pred: httpx.Client) -> float:
    """Rows pred has run through the model (its own counter)."""
    return metric_total(pred, "predictions_total{")


def touch(path: Path) -> None:
    """A new mtime (1 s later), the content unchanged."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


def as_float32(values: list[float]) -> NDArray[np.float32]:
    return np.asarray(values, dtype=np.float32)
