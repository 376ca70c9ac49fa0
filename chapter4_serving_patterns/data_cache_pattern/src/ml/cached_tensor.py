"""What the tensor cache stores, and under which key (SPEC 3.9 behaviour 2 and 3). No I/O here.

Key:    data_cache:{preprocessing_hash}:{item_id}:{size}:{mtime_ns}

`preprocessing_hash` is the sha256 (hex) of the canonical JSON of `metadata.preprocessing`
(keys sorted, no spaces, ASCII): two models with the same preprocessing share tensors, a new
preprocessing spec misses. `size` and `mtime_ns` are the item file's, so a changed file misses.
The model's name and version are deliberately not in the key: the cache holds model *input*.

Value:  a small header, then the tensor's raw bytes (C order, little-endian), not JSON text:

    offset  size  field
    0       4     magic b"DCT1"
    4       1     n = length of the dtype string
    5       n     numpy dtype string, ASCII ("<f4" for float32)
    5+n     1     d = number of dimensions
    6+n     4*d   each dimension, unsigned 32-bit little-endian
    6+n+4d  ...   the tensor: prod(shape) * itemsize bytes

A [3, 32, 32] float32 tensor is 21 + 12288 bytes. `decode` refuses (returns None for) any value
that is not exactly such an entry of the expected shape and dtype, so a foreign or truncated
value is a miss that gets overwritten, never a wrong tensor.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from src.ml.items import Item

KEY_PREFIX = "data_cache"
MAGIC = b"DCT1"
FLOAT32 = np.dtype("<f4")
_DIMENSION = struct.Struct("<I")


def preprocessing_hash(preprocessing: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of `metadata.preprocessing`."""
    canonical = json.dumps(preprocessing, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def cache_key(preprocessing_digest: str, item: Item) -> str:
    return f"{KEY_PREFIX}:{preprocessing_digest}:{item.item_id}:{item.size}:{item.mtime_ns}"


def encode(tensor: NDArray[np.float32]) -> bytes:
    """Header + raw little-endian float32 bytes of one preprocessed image."""
    data = np.ascontiguousarray(tensor, dtype=FLOAT32)
    dtype = FLOAT32.str.encode("ascii")
    header = [MAGIC, bytes([len(dtype)]), dtype, bytes([data.ndim])]
    header.extend(_DIMENSION.pack(dimension) for dimension in data.shape)
    return b"".join(header) + data.tobytes()


def decode(value: bytes, shape: tuple[int, ...]) -> NDArray[np.float32] | None:
    """The tensor of a cache entry when it is a float32 tensor of `shape`, else None."""
    if not value.startswith(MAGIC) or len(value) < len(MAGIC) + 2:
        return None
    dtype_length = value[len(MAGIC)]
    offset = len(MAGIC) + 1
    dtype = value[offset : offset + dtype_length]
    offset += dtype_length
    if dtype != FLOAT32.str.encode("ascii") or len(value) <= offset:
        return None
    ndim = value[offset]
    offset += 1
    dimensions = value[offset : offset + _DIMENSION.size * ndim]
    offset += _DIMENSION.size * ndim
    if len(dimensions) != _DIMENSION.size * ndim:
        return None
    stored = tuple(dim for (dim,) in _DIMENSION.iter_unpack(dimensions))
    if stored != tuple(shape) or len(value) - offset != FLOAT32.itemsize * int(np.prod(shape)):
        return None
    return np.frombuffer(value, dtype=FLOAT32, offset=offset).reshape(shape)
