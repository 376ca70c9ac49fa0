"""What the prediction_cache_pattern tests share: where the pattern, its models and its data
are, and the few measurements every module makes.

Oracles come from tests/support/image_checks.py (onnxruntime in the test process on the same
model.onnx, fed by the canonical preprocessing); inference counts from pred's own /metrics;
cache entries straight from Redis. Nothing here imports the pattern's code.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.pattern import REPO_ROOT

PATTERN = "chapter4_serving_patterns/prediction_cache_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
MODELS_DIR = PATTERN_DIR / "models"
MODEL_DIR = MODELS_DIR / "digits_resnet"
SMALL_MODEL_DIR = MODELS_DIR / "digits_resnet_small"
DATA_DIR = PATTERN_DIR / "data"
ITEMS_DIR = DATA_DIR / "items"
KEY_PREFIX = "prediction_cache"
Json = dict[str, Any]


def require_models() -> Path:
    """digits_resnet(_small) and the held-out images, or a failure that says how to get them."""
    needed = [MODEL_DIR / "model.onnx", SMALL_MODEL_DIR / "model.onnx", ITEMS_DIR / "0000.png"]
    missing = [path for path in needed if not path.exists()]
    if missing:
        pytest.fail(f"{missing[0]} is missing: run `make models` in {PATTERN}")
    return MODEL_DIR


def copy_items(target: Path) -> Path:
    """A private DATA_DIR: a copy of data/items (a test may add files or symlinks to it)."""
    shutil.copytree(ITEMS_DIR, target)
    return target


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_key(model_name: str, model_version: str, data: bytes) -> str:
    """SPEC 3.8 behaviour 1, written from the SPEC: never from the pattern's code."""
    return f"{KEY_PREFIX}:{model_name}:{model_version}:{sha256(data)}"


def with_nonce(png: bytes, nonce: str) -> bytes:
    """The same PNG picture with a tEXt chunk before IEND: other bytes (another sha256, a
    cold key), the same pixels (the same prediction)."""
    end = png.rindex(b"IEND") - 4
    body = b"tEXt" + b"test\0" + nonce.encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:end] + chunk + png[end:]


def inferences(pred_url: str) -> float:
    """Rows pred has run through its model, all models and workers (its /metrics)."""
    total = 0.0
    for line in httpx.get(pred_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("predictions_total{"):
            total += float(line.rpartition(" ")[2])
    return total


def cache_keys(client: redis.Redis, data: bytes) -> list[str]:
    """Every prediction cache key of this image, whatever the model."""
    pattern = f"{KEY_PREFIX}:*:{sha256(data)}"
    return sorted(key.decode() for key in client.scan_iter(match=pattern))
