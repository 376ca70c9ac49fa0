"""src/ml/cached_tensor.py on its own: the value layout round-trips, and anything that is not
exactly a float32 tensor of the expected shape reads as a miss (None), never as a tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.ml.cached_tensor import cache_key, decode, encode, preprocessing_hash
from src.ml.items import ItemDirectory
from tests.chapter4_serving_patterns.data_cache_pattern.harness import parse_entry

SHAPE = (3, 32, 32)


def tensor() -> np.ndarray:
    return np.random.default_rng(3).normal(size=SHAPE).astype(np.float32)


def test_round_trip_is_exact_and_the_layout_is_the_documented_one() -> None:
    original = tensor()
    value = encode(original)
    decoded = decode(value, SHAPE)
    assert decoded is not None and np.array_equal(decoded, original)
    dtype, shape, raw, header = parse_entry(value)
    assert (dtype, shape, header) == ("<f4", SHAPE, 21)
    assert raw == original.astype("<f4").tobytes()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda value: value[:-1],  # truncated
        lambda value: value + b"\0",  # trailing bytes
        lambda value: b"XXXX" + value[4:],  # another magic
        lambda value: value[:5] + b"<f8" + value[8:],  # another dtype
        lambda value: b"",
        lambda value: b"DCT1",
        lambda value: b'{"json": "text"}',
    ],
)
def test_foreign_or_damaged_values_are_misses(mangle: object) -> None:
    assert callable(mangle)
    assert decode(mangle(encode(tensor())), SHAPE) is None


def test_another_shape_is_a_miss() -> None:
    assert decode(encode(tensor()), (3, 48, 48)) is None
    assert decode(encode(tensor().reshape(3, 1024)), SHAPE) is None


def test_the_key_names_preprocessing_item_size_and_mtime(tmp_path: Path) -> None:
    (tmp_path / "0001.png").write_bytes(b"12345")
    item = ItemDirectory(tmp_path).resolve("0001")
    preprocessing = {"scale": 1 / 255, "mean": [0.5, 0.5, 0.5]}
    digest = preprocessing_hash(preprocessing)
    assert digest == preprocessing_hash(dict(reversed(preprocessing.items())))  # key order
    assert cache_key(digest, item) == f"data_cache:{digest}:0001:5:{item.mtime_ns}"
    assert preprocessing_hash({**preprocessing, "scale": 1.0}) != digest
