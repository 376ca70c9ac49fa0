"""V2 infer request bodies → named float32 arrays, and outputs → the JSON of the answer.

The rules of SPEC 0.5: each input of the model exactly once, datatype FP32, a shape that fits
the declared one (-1: any size), data row-major, flat or nested as the shape says, finite
numbers float32 can hold. Any other request is a 400 `invalid_input` naming the field; more
rows than MAX_BATCH_SIZE is a 413. Parsed with `json.loads` and plain checks, not a pydantic
model: an image tensor holds thousands of numbers, and this runs in a worker thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from src.common.errors import ApiError
from src.ml.model import Tensor, fits
from src.ml.model_dir import ModelCard, TensorSpec
from src.web import JSON_ENCODER, float32_json, invalid, parse_json

BAD_REQUEST = 400
NUMBER_TYPES = frozenset({int, float})  # `type(x) in`: bool is not a number here
FLOAT32_MAX = 3.4028234663852886e38
NOT_FLOAT32 = "not a finite float32 number (a number, no NaN, no Infinity, |x| <= 3.4e38)"
INPUT_KEYS = frozenset({"name", "datatype", "shape", "data", "parameters"})
REQUEST_KEYS = frozenset({"id", "inputs", "outputs", "parameters"})
Loc = list[str | int]


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, NDArray[np.float32]]
    outputs: list[str]  # the outputs to return, in the order asked (all by default)


def bad(loc: Loc, message: str) -> ApiError:
    return invalid(loc, message, BAD_REQUEST)


def parse_infer_request(body: bytes, card: ModelCard, max_batch_size: int) -> InferRequest:
    document = parse_json(body, BAD_REQUEST)
    if type(document) is not dict:
        raise bad(["body"], 'expected a JSON object {"inputs": [...]}')
    unknown = sorted(set(document) - REQUEST_KEYS)
    if unknown:
        raise bad(["body", unknown[0]], f"unknown field: {unknown[0]}")
    request_id = document.get("id")
    if request_id is not None and type(request_id) is not str:
        raise bad(["body", "id"], "id must be a string")
    inputs = document.get("inputs")
    if type(inputs) is not list or not inputs:
        raise bad(["body", "inputs"], "inputs must be a non-empty list of tensors")
    tensors = _inputs(inputs, card, max_batch_size)
    return InferRequest(request_id, tensors, _requested_outputs(document.get("outputs"), card))


def _inputs(
    items: list[Any], card: ModelCard, max_batch_size: int
) -> dict[str, NDArray[np.float32]]:
    names = [item.get("name") if type(item) is dict else None for item in items]
    declared = [spec.name for spec in card.inputs]
    if sorted(map(str, names)) != sorted(declared):
        raise bad(["body", "inputs"], f"expected the inputs {declared}, got {names}")
    tensors = {}
    for index, item in enumerate(items):
        spec = next(spec for spec in card.inputs if spec.name == item["name"])
        tensors[spec.name] = _tensor(item, spec, ["body", "inputs", index], max_batch_size)
    batches = {tensor.shape[0] for tensor in tensors.values()}
    if len(batches) > 1:
        raise bad(["body", "inputs"], f"inputs of different batch sizes {sorted(batches)}")
    return tensors


def _tensor(
    item: dict[str, Any], spec: TensorSpec, where: Loc, max_batch_size: int
) -> NDArray[np.float32]:
    unknown = sorted(set(item) - INPUT_KEYS)
    if unknown:
        raise bad([*where, unknown[0]], f"unknown field: {unknown[0]}")
    parameters = item.get("parameters") or {}
    if type(parameters) is not dict:
        raise bad([*where, "parameters"], "parameters must be an object")
    if "binary_data_size" in parameters:
        raise bad([*where, "parameters"], "binary tensor data is not supported: send JSON data")
    if item.get("datatype") != "FP32":
        raise bad([*where, "datatype"], f"datatype {item.get('datatype')!r}: the model takes FP32")
    shape = item.get("shape")
    if type(shape) is not list or not all(type(side) is int for side in shape):
        raise bad([*where, "shape"], "shape must be a list of integers")
    if not fits(shape, spec.shape) or min(shape, default=0) < 1:
        message = f"shape {shape}: {spec.name!r} takes {list(spec.shape)} (-1: any size ≥ 1)"
        raise bad([*where, "shape"], message)
    if shape[0] > max_batch_size:
        raise ApiError(
            413,
            "payload_too_large",
            f"{shape[0]} rows in one request; at most {max_batch_size} (MAX_BATCH_SIZE)",
        )
    data = item.get("data")
    if type(data) is not list:
        raise bad([*where, "data"], "data must be a list of numbers, flat or nested")
    flat = _flatten(data, shape)
    if flat is None:
        raise bad([*where, "data"], f"data is neither flat nor nested as the shape {shape}")
    expected = math.prod(shape)
    if len(flat) != expected:
        raise bad([*where, "data"], f"shape {shape} holds {expected} values, data has {len(flat)}")
    values = _float32_values(flat)
    if isinstance(values, int):
        raise bad([*where, "data", values], f"value {values} (row-major): {NOT_FLOAT32}")
    return values.reshape(shape)


def _float32_values(flat: list[Any]) -> NDArray[np.float32] | int:
    """The values as float32, or the position of the first one that is not a finite number
    float32 holds. Types first (numpy would read "0.5" and True as numbers), then the range in
    float64 (NaN fails every comparison; Python reads 1e999 and Infinity as inf): a fifth of the
    time of checking each value in Python, on an image tensor."""
    if set(map(type, flat)) <= NUMBER_TYPES:
        try:
            values = np.array(flat, dtype=np.float64)
        except OverflowError:  # an integer beyond float64, such as 10**400
            pass
        else:
            if (np.abs(values) <= FLOAT32_MAX).all():
                return values.astype(np.float32)
    return next(index for index, value in enumerate(flat) if not _is_float32(value))


def _flatten(data: list[Any], shape: list[int]) -> list[Any] | None:
    """Row-major values: `data` as sent when flat, else nested exactly as `shape` says (None
    when it is neither). Iterative, so no input can exhaust the recursion limit."""
    if not any(type(value) is list for value in data):
        return data
    level: list[Any] = [data]
    for side in shape:
        if not all(type(value) is list and len(value) == side for value in level):
            return None
        level = [value for sub in level for value in sub]
    return None if any(type(value) is list for value in level) else level


def _is_float32(value: Any) -> bool:
    return type(value) in NUMBER_TYPES and -FLOAT32_MAX <= value <= FLOAT32_MAX


def _requested_outputs(outputs: Any, card: ModelCard) -> list[str]:
    known = [spec.name for spec in card.outputs]
    if outputs is None:
        return known
    if type(outputs) is not list or not all(type(item) is dict for item in outputs):
        raise bad(["body", "outputs"], 'outputs must be a list of {"name": ...}')
    names = [item.get("name") for item in outputs]
    for index, item in enumerate(outputs):
        if item.get("name") not in known:
            raise bad(
                ["body", "outputs", index],
                f"unknown output {item.get('name')!r}: the model has {known}",
            )
        if "classification" in (item.get("parameters") or {}):
            raise bad(["body", "outputs", index], "the classification extension is not supported")
    return [str(name) for name in names] or known


def output_json(spec: TensorSpec, value: Tensor) -> str:
    """One output tensor with flat data. FP32 values with 9 significant digits (exact)."""
    head = JSON_ENCODER.encode(
        {"name": spec.name, "datatype": spec.datatype, "shape": list(value.shape)}
    )
    data = (
        float32_json(value)
        if spec.datatype == "FP32"
        else JSON_ENCODER.encode(value.ravel().tolist())
    )
    return head[:-1] + ',"data":' + data + "}"
