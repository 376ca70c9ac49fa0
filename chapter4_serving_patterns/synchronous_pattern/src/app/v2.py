"""Open Inference Protocol (KServe V2) REST subset (SPEC 0.5) for an image classifier, with
Triton's binary tensor data and classification extensions (src.app.v2_wire).

Inputs, exactly one per request:
- the model's own FP32 tensor (e.g. `input` [N, 3, 32, 32]), already preprocessed: what
  internal clients send, so that Triton could serve them the same `model.onnx` (rule 4);
- `image`, BYTES [N]: each element an image file, base64 text (JSON or binary), or in binary
  form also the file's raw bytes; decoded and preprocessed as POST /predict does (SPEC 0.4).
Outputs: the model's FP32 probabilities [N, C] and `label`, BYTES [N], the most probable class
named through label.json. Without `outputs` in the request: the probabilities, plus `label`
for an `image` input. An unknown model or version → 404; a malformed request → 400; an image
the rules of SPEC 0.4 refuse → their 413 / 415 / 422.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import prod

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from src.app.dependencies import served_model
from src.app.inputs import check_content_type, read_body, too_large
from src.app.schemas import (
    V2InferRequest,
    V2InferResponse,
    V2Live,
    V2ModelMetadata,
    V2ModelReady,
    V2Ready,
    V2Server,
    V2TensorSpec,
    json_body,
)
from src.app.serving import INLINE_IMAGE_BYTES, Loc, ServedModel
from src.app.v2_wire import (
    BINARY_MEDIA_TYPE,
    HEADER_LENGTH,
    OutputTensor,
    WireInput,
    WireOutput,
    WireRequest,
    bad,
    encode_response,
    flatten,
    parse_request,
    split_bytes_elements,
    top_k_strings,
)
from src.common.errors import ApiError, error_responses
from src.common.request_id import current_request_id
from src.ml.model import Probabilities, Tensors

SERVER_NAME = "synchronous_pattern"
PLATFORM = "onnxruntime_onnx"
EXTENSIONS = ["binary_tensor_data", "classification"]
IMAGE_INPUT, LABEL_OUTPUT = "image", "label"
FP32, BYTES = "FP32", "BYTES"
NUMBER_TYPES = frozenset({int, float})  # `type(x) in`: bool is not a number here
# Only base64 characters (and whitespace): base64 text. An image file always holds others.
BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=_\-\s]*")
MODEL_ERRORS = error_responses(404, 503)
INFER_ERRORS = error_responses(400, 404, 413, 415, 422, 500, 503)
# Read and checked by the handler (400s, not FastAPI's 422s); the document still shows it.
INFER_BODY = json_body(V2InferRequest)

router = APIRouter(prefix="/v2", tags=["v2"])


@router.get("")
async def server_metadata(request: Request) -> V2Server:
    return V2Server(name=SERVER_NAME, version=request.app.version, extensions=EXTENSIONS)


@router.get("/health/live")
async def live() -> V2Live:
    return V2Live(live=True)


@router.get("/health/ready", responses=error_responses(503))
async def ready(request: Request) -> V2Ready:
    served_model(request)
    return V2Ready(ready=True)


def model_named(request: Request, name: str, version: str | None = None) -> ServedModel:
    """The served model when `name` (and `version`, if given) are its own, else 404."""
    served = served_model(request)
    card = served.card
    if name != card.name:
        raise ApiError(
            404, "not_found", f"unknown model {name!r}: this server serves {card.name!r}"
        )
    if version is not None and version != card.version:
        raise ApiError(
            404, "not_found", f"model {name!r} has no version {version!r}; it has {card.version!r}"
        )
    return served


@router.get("/models/{name}", responses=MODEL_ERRORS)
async def model_metadata(request: Request, name: str) -> V2ModelMetadata:
    return _model_metadata(model_named(request, name))


@router.get("/models/{name}/versions/{version}", responses=MODEL_ERRORS)
async def model_version_metadata(request: Request, name: str, version: str) -> V2ModelMetadata:
    return _model_metadata(model_named(request, name, version))


def _model_metadata(served: ServedModel) -> V2ModelMetadata:
    card = served.card
    return V2ModelMetadata(
        name=card.name,
        versions=[card.version],
        platform=PLATFORM,
        inputs=[
            V2TensorSpec(name=card.input_name, datatype=FP32, shape=[-1, *card.image_shape]),
            V2TensorSpec(name=IMAGE_INPUT, datatype=BYTES, shape=[-1]),
        ],
        outputs=[
            V2TensorSpec(name=card.output_name, datatype=FP32, shape=[-1, card.class_count]),
            V2TensorSpec(name=LABEL_OUTPUT, datatype=BYTES, shape=[-1]),
        ],
    )


@router.get("/models/{name}/ready", responses=MODEL_ERRORS)
async def model_ready(request: Request, name: str) -> V2ModelReady:
    return V2ModelReady(name=model_named(request, name).card.name, ready=True)


@router.get("/models/{name}/versions/{version}/ready", responses=MODEL_ERRORS)
async def model_version_ready(request: Request, name: str, version: str) -> V2ModelReady:
    return V2ModelReady(name=model_named(request, name, version).card.name, ready=True)


@router.post(
    "/models/{name}/infer",
    response_model=V2InferResponse,
    responses=INFER_ERRORS,
    openapi_extra=INFER_BODY,
)
async def infer(request: Request, name: str) -> Response:
    return await answer_infer(request, model_named(request, name))


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=V2InferResponse,
    responses=INFER_ERRORS,
    openapi_extra=INFER_BODY,
)
async def infer_version(request: Request, name: str, version: str) -> Response:
    return await answer_infer(request, model_named(request, name, version))


# --- infer --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A checked request: the model's input tensor and the outputs to send."""

    wire: WireRequest
    tensors: Tensors
    outputs: list[WireOutput]


async def answer_infer(request: Request, served: ServedModel) -> Response:
    with served.batcher.arriving():
        check_content_type(request.headers.get("content-type"), BINARY_MEDIA_TYPE)
        body = await read_body(request, served.v2_body_limit, "MAX_REQUEST_BYTES")
        header_length = request.headers.get(HEADER_LENGTH)
        # Parsing JSON tensors and decoding images is CPU work: inline only when small.
        if len(body) <= INLINE_IMAGE_BYTES:
            prepared = prepare(body, header_length, served)
        else:
            prepared = await anyio.to_thread.run_sync(prepare, body, header_length, served)
        batched = await served.classify(prepared.tensors)
    probabilities = batched.probabilities
    outputs = [
        (output_tensor(output, probabilities, served), output.binary) for output in prepared.outputs
    ]
    card = served.card
    request_id = prepared.wire.id if prepared.wire.id is not None else current_request_id()
    head = {"model_name": card.name, "model_version": card.version, "id": request_id or ""}
    content, headers = encode_response(head, outputs)
    media_type = BINARY_MEDIA_TYPE if headers else "application/json"
    return Response(content, media_type=media_type, headers={**served.headers, **headers})


def prepare(body: bytes, header_length: str | None, served: ServedModel) -> Prepared:
    """Parse and check the request against the model; decode and preprocess its images."""
    wire = parse_request(body, header_length)
    names = [tensor.name for tensor in wire.inputs]
    accepted = [served.card.input_name, IMAGE_INPUT]
    if len(names) != 1 or names[0] not in accepted:
        message = (
            f"expected one input, {accepted[0]!r} (FP32) or {IMAGE_INPUT!r} (BYTES), got {names}"
        )
        raise bad(["body", "inputs"], message)
    tensor = wire.inputs[0]
    outputs = requested_outputs(wire, served, images=tensor.name == IMAGE_INPUT)
    if tensor.name == IMAGE_INPUT:
        files, locs = image_files(tensor, served)
        return Prepared(wire, served.tensors(files, locs), outputs)
    return Prepared(wire, fp32_tensors(tensor, served), outputs)


def requested_outputs(wire: WireRequest, served: ServedModel, *, images: bool) -> list[WireOutput]:
    probabilities = served.card.output_name
    if wire.outputs is None:
        names = [probabilities, LABEL_OUTPUT] if images else [probabilities]
        return [WireOutput(name, wire.binary_output, 0) for name in names]
    for index, output in enumerate(wire.outputs):
        where: Loc = ["body", "outputs", index]
        if output.name not in (probabilities, LABEL_OUTPUT):
            known = f"{probabilities!r} and {LABEL_OUTPUT!r}"
            message = f"unknown output {output.name!r}: the model has {known}"
            raise bad([*where, "name"], message)
        if output.classification and output.name != probabilities:
            raise bad([*where, "parameters"], f"classification applies to {probabilities!r} only")
    return wire.outputs


def check_rows(tensor: WireInput, rows: int, served: ServedModel) -> None:
    if rows < 1:
        raise bad([*tensor.loc, "shape"], f"shape {tensor.shape}: at least one image")
    if rows > served.max_images:
        message = (
            f"{rows} images in one request; at most {served.max_images} (MAX_IMAGES_PER_REQUEST)"
        )
        raise too_large(message)


def fp32_tensors(tensor: WireInput, served: ServedModel) -> Tensors:
    """The model's own input: FP32 [N, *image_shape], finite."""
    image_shape = list(served.card.image_shape)
    if tensor.datatype != FP32:
        raise bad(
            [*tensor.loc, "datatype"], f"datatype {tensor.datatype!r}: {tensor.name!r} is FP32"
        )
    if len(tensor.shape) != 1 + len(image_shape) or tensor.shape[1:] != image_shape:
        message = f"shape {tensor.shape}: the model takes [N, {', '.join(map(str, image_shape))}]"
        raise bad([*tensor.loc, "shape"], message)
    check_rows(tensor, tensor.shape[0], served)
    count = prod(tensor.shape)
    if tensor.raw is not None:
        if len(tensor.raw) != count * 4:
            message = f"shape {tensor.shape} takes {count * 4} bytes of FP32, got {len(tensor.raw)}"
            raise bad([*tensor.loc, "parameters", "binary_data_size"], message)
        values = np.frombuffer(tensor.raw, dtype="<f4").astype(np.float32, copy=False)
    else:
        flat = flatten(tensor.data or [], len(tensor.shape))
        if len(flat) != count:
            message = f"shape {tensor.shape} holds {count} values, data has {len(flat)}"
            raise bad([*tensor.loc, "data"], message)
        if not all(type(value) in NUMBER_TYPES for value in flat):
            position = next(i for i, value in enumerate(flat) if type(value) not in NUMBER_TYPES)
            raise bad([*tensor.loc, "data", position], f"value {position} is not a number")
        with np.errstate(over="ignore"):  # beyond float32: inf, refused just below
            values = np.asarray(flat, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.all():
        position = int(np.argmin(finite))
        message = f"value {position} (row-major) is not a finite float32 number"
        raise bad([*tensor.loc, "data", position], message)
    return values.reshape(tensor.shape)


def image_files(tensor: WireInput, served: ServedModel) -> tuple[list[bytes], list[Loc]]:
    """`image` BYTES [N] → N image files (base64 decoded where it is base64 text)."""
    if tensor.datatype != BYTES:
        raise bad(
            [*tensor.loc, "datatype"], f"datatype {tensor.datatype!r}: {IMAGE_INPUT!r} is BYTES"
        )
    if len(tensor.shape) != 1:
        raise bad([*tensor.loc, "shape"], f"shape {tensor.shape}: {IMAGE_INPUT!r} is [N]")
    check_rows(tensor, tensor.shape[0], served)
    if tensor.raw is not None:
        elements: list[str | bytes] = list(split_bytes_elements(tensor.raw, [*tensor.loc, "data"]))
    else:
        elements = list(tensor.data or [])
        if not all(type(element) is str for element in elements):
            raise bad([*tensor.loc, "data"], "BYTES data must be strings (base64 image files)")
    if len(elements) != tensor.shape[0]:
        message = f"shape {tensor.shape} holds {tensor.shape[0]} images, data has {len(elements)}"
        raise bad([*tensor.loc, "data"], message)
    files, locs = [], []
    for index, element in enumerate(elements):
        loc: Loc = [*tensor.loc, "data", index]
        if isinstance(element, str) or BASE64_TEXT.fullmatch(element):
            files.append(served.decode(element, loc))
        elif len(element) > served.max_image_bytes:
            limit = f"at most {served.max_image_bytes} (MAX_IMAGE_BYTES)"
            raise too_large(f"image {index} of {len(element)} bytes; {limit}")
        else:
            files.append(element)
        locs.append(loc)
    return files, locs


def output_tensor(
    output: WireOutput, probabilities: Probabilities, served: ServedModel
) -> OutputTensor:
    rows = len(probabilities)
    labels = served.label_names
    if output.name == LABEL_OUTPUT:
        values = [labels[index].encode() for index in probabilities.argmax(1).tolist()]
        return OutputTensor(LABEL_OUTPUT, BYTES, [rows], values)
    if output.classification:
        top_k = min(output.classification, served.card.class_count)
        return OutputTensor(
            output.name, BYTES, [rows, top_k], top_k_strings(probabilities, labels, top_k)
        )
    return OutputTensor(output.name, FP32, [rows, served.card.class_count], probabilities)
