"""The V2 infer request and response on the wire: JSON tensors, and Triton's binary tensor data
extension, which tritonclient.http uses by default.

Binary tensor data (Triton's `binary_tensor_data` extension of the V2 HTTP protocol):

    POST /v2/models/<name>/infer
    Inference-Header-Content-Length: <n>
    <n bytes of JSON: {"inputs": [{"name", "datatype", "shape",
                                   "parameters": {"binary_data_size": <k>}}, ...], ...}>
    <k bytes: the tensor, row-major, little-endian>  ... one block per binary input, in order

A BYTES tensor in binary form is its elements one after another, each a 4-byte little-endian
length and the bytes. An output is sent in binary when the request asks for it (its own
`parameters.binary_data`, else the request's `parameters.binary_data_output`); the response then
carries the same header and layout, its JSON naming `binary_data_size` instead of `data`.

The classification extension (Triton's too): a requested output with
`parameters.classification = k` comes back as BYTES [N, k] of "probability:index:label", the k
most probable classes of each row, most probable first.

Everything here is about the wire; what the tensors mean for the model is src.app.v2's job.
Every malformed request is a 400 `invalid_input` (SPEC 0.5 rule 3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from src.app.inputs import invalid, parse_json
from src.app.schemas import V2InferRequest
from src.app.serving import JSON_ENCODER, float32_json
from src.common.errors import ApiError, validation_details

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_DATA_SIZE = "binary_data_size"
BINARY_MEDIA_TYPE = "application/octet-stream"
BAD_REQUEST = 400
LENGTH_PREFIX = struct.Struct("<I")

Loc = list[str | int]


@dataclass(frozen=True)
class WireInput:
    index: int
    name: str
    datatype: str
    shape: list[int]
    data: list[Any] | None  # JSON data as sent (flat or nested)
    raw: bytes | None  # binary data

    @property
    def loc(self) -> Loc:
        return ["body", "inputs", self.index]


@dataclass(frozen=True)
class WireOutput:
    name: str
    binary: bool
    classification: int  # top-k requested; 0: the tensor itself


@dataclass(frozen=True)
class WireRequest:
    id: str | None
    inputs: list[WireInput]
    outputs: list[WireOutput] | None  # None: the server's default outputs
    binary_output: bool  # the request's default for outputs (binary_data_output)


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str  # FP32 or BYTES
    shape: list[int]
    values: NDArray[np.float32] | list[bytes]


def bad(loc: Loc, message: str) -> ApiError:
    return invalid(loc, message, BAD_REQUEST)


# --- request ----------------------------------------------------------------------------------


def parse_request(body: bytes, header_length: str | None) -> WireRequest:
    """The request, with each input's JSON data or binary block attached."""
    if header_length is None:
        header, binary = body, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            message = f"{HEADER_LENGTH}: {header_length!r} is not a length within the body"
            raise bad(["header", HEADER_LENGTH], message)
        header, binary = body[: int(header_length)], body[int(header_length) :]
    document = _validated(header)
    parameters = document.parameters or {}
    binary_output = _flag(parameters, "binary_data_output", ["body", "parameters"], False)
    inputs, offset = [], 0
    for index, tensor in enumerate(document.inputs):
        loc: Loc = ["body", "inputs", index]
        size = (tensor.parameters or {}).get(BINARY_DATA_SIZE)
        if size is None:
            if tensor.data is None:
                raise bad([*loc, "data"], "field required: data (or binary_data_size)")
            inputs.append(
                WireInput(index, tensor.name, tensor.datatype, tensor.shape, tensor.data, None)
            )
            continue
        if type(size) is not int or size < 0:
            raise bad([*loc, "parameters", BINARY_DATA_SIZE], "binary_data_size must be an int ≥ 0")
        if header_length is None:
            raise bad(["header", HEADER_LENGTH], f"binary tensor data needs {HEADER_LENGTH}")
        if offset + size > len(binary):
            raise bad([*loc, "parameters", BINARY_DATA_SIZE], "binary data ends before this tensor")
        raw = binary[offset : offset + size]
        offset += size
        inputs.append(WireInput(index, tensor.name, tensor.datatype, tensor.shape, None, raw))
    if offset != len(binary):
        message = f"{len(binary) - offset} bytes after the binary tensors of the inputs"
        raise bad(["body"], message)
    outputs = None
    if document.outputs is not None:
        outputs = [
            _requested(index, output.name, output.parameters or {}, binary_output)
            for index, output in enumerate(document.outputs)
        ]
    return WireRequest(document.id, inputs, outputs, binary_output)


def _validated(header: bytes) -> V2InferRequest:
    document = parse_json(header, BAD_REQUEST)
    try:
        return V2InferRequest.model_validate(document)
    except ValidationError as error:
        details = [
            {"loc": ["body", *item["loc"]], "msg": item["msg"]}
            for item in validation_details(error.errors())
        ]
        where = ".".join(str(part) for part in details[0]["loc"])
        message = f"not a V2 infer request: {where}: {details[0]['msg']}"
        raise ApiError(BAD_REQUEST, "invalid_input", message, details=details) from error


def _flag(parameters: dict[str, Any], name: str, loc: Loc, default: bool) -> bool:
    value = parameters.get(name, default)
    if type(value) is not bool:
        raise bad([*loc, name], f"{name} must be true or false")
    return value


def _requested(index: int, name: str, parameters: dict[str, Any], default: bool) -> WireOutput:
    loc: Loc = ["body", "outputs", index, "parameters"]
    top_k = parameters.get("classification", 0)
    if type(top_k) is not int or top_k < 0:
        raise bad([*loc, "classification"], "classification must be an int ≥ 1 (top-k)")
    return WireOutput(name, _flag(parameters, "binary_data", loc, default), top_k)


def flatten(data: list[Any], rank: int) -> list[Any]:
    """Row-major values of data sent flat or nested up to `rank` levels. Anything nested deeper
    is left as it is, for the type checks to refuse (a 400, never a recursion)."""
    for _ in range(rank - 1):
        if not (data and all(type(item) is list for item in data)):
            break
        data = [value for item in data for value in item]
    return data


def split_bytes_elements(raw: bytes, loc: Loc) -> list[bytes]:
    """A binary BYTES tensor → its elements (4-byte little-endian length, then the bytes)."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + LENGTH_PREFIX.size > len(raw):
            raise bad(loc, "binary BYTES data ends inside an element's length")
        (length,) = LENGTH_PREFIX.unpack_from(raw, offset)
        offset += LENGTH_PREFIX.size
        if offset + length > len(raw):
            raise bad(loc, "binary BYTES data ends inside an element")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


# --- response ---------------------------------------------------------------------------------


def top_k_strings(probabilities: NDArray[np.float32], labels: list[str], top_k: int) -> list[bytes]:
    """Triton's classification output: per row, the k most probable "p:index:label"."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    return [
        f"{probabilities[row, index]:f}:{index}:{labels[index]}".encode()
        for row in range(len(probabilities))
        for index in order[row].tolist()
    ]


def encode_response(
    head: dict[str, Any], outputs: list[tuple[OutputTensor, bool]]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers: JSON only, or the JSON header followed by the
    binary blocks of the outputs sent in binary (with Inference-Header-Content-Length)."""
    parts, blocks = [], []
    for tensor, binary in outputs:
        spec = JSON_ENCODER.encode(
            {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        )
        if binary:
            block = _binary(tensor)
            blocks.append(block)
            size = JSON_ENCODER.encode({BINARY_DATA_SIZE: len(block)})
            parts.append(spec[:-1] + ',"parameters":' + size + "}")
        else:
            parts.append(spec[:-1] + ',"data":' + _json_data(tensor) + "}")
    text = JSON_ENCODER.encode(head)[:-1] + ',"outputs":[' + ",".join(parts) + "]}"
    header = text.encode()
    if not blocks:
        return header, {}
    return header + b"".join(blocks), {HEADER_LENGTH: str(len(header))}


def _json_data(tensor: OutputTensor) -> str:
    if isinstance(tensor.values, np.ndarray):
        return float32_json(tensor.values.ravel())
    return JSON_ENCODER.encode([value.decode() for value in tensor.values])


def _binary(tensor: OutputTensor) -> bytes:
    if isinstance(tensor.values, np.ndarray):
        return tensor.values.astype("<f4", copy=False).tobytes()
    return b"".join(LENGTH_PREFIX.pack(len(value)) + value for value in tensor.values)
