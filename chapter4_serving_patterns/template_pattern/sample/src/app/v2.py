"""Open Inference Protocol (KServe V2) REST subset (SPEC 0.5), JSON tensors only.

Inputs: one FP32 tensor named as the model's input, shape [N, features], data flat or nested.
Outputs: `label` INT64 [N] and `probabilities` FP32 [N, C], whatever the graph calls them (a
ZipMap model's probabilities come back as that tensor too). A request that is wrong in any way
→ 400 with the error envelope; an unknown model or version → 404. An infer call answers what
`POST /predict` answers for the same rows: the same prediction, encoded by the same encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from src.app.dependencies import served_model
from src.app.inputs import NOT_FLOAT32, Features, invalid, is_float32, parse_json, too_many_rows
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
from src.app.serving import JSON_ENCODER, ServedModel, float32_json
from src.common.errors import ApiError, error_responses, validation_details
from src.common.request_id import current_request_id

SERVER_NAME = "iris_template_sample"
PLATFORM = "onnxruntime_onnx"
LABEL, PROBABILITIES = "label", "probabilities"
BAD_REQUEST = 400
MODEL_ERRORS = error_responses(404, 503)
INFER_ERRORS = error_responses(400, 404, 413, 415, 503)
# Read and checked by `infer_body` (400s, not FastAPI's 422s); the document still shows it.
INFER_BODY = json_body(V2InferRequest)

router = APIRouter(prefix="/v2", tags=["v2"])


@router.get("")
async def server_metadata(request: Request) -> V2Server:
    return V2Server(name=SERVER_NAME, version=request.app.version, extensions=[])


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
            V2TensorSpec(name=card.input_name, datatype="FP32", shape=[-1, card.feature_count])
        ],
        outputs=[
            V2TensorSpec(name=LABEL, datatype="INT64", shape=[-1]),
            V2TensorSpec(name=PROBABILITIES, datatype="FP32", shape=[-1, card.class_count]),
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
    served = model_named(request, name)
    return await served.answer(request, infer_body, served, current_request_id())


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=V2InferResponse,
    responses=INFER_ERRORS,
    openapi_extra=INFER_BODY,
)
async def infer_version(request: Request, name: str, version: str) -> Response:
    served = model_named(request, name, version)
    return await served.answer(request, infer_body, served, current_request_id())


def infer_body(body: bytes, served: ServedModel, request_id: str | None) -> Response:
    """Parse, check against the model, predict, answer (inline or in a thread: serving.py)."""
    request = parse_infer_request(body)
    features = features_of(request, served)
    requested = [output.name for output in request.outputs or []] or [LABEL, PROBABILITIES]
    unknown = sorted(set(requested) - {LABEL, PROBABILITIES})
    if unknown:
        message = f"unknown outputs {unknown}: the model has {LABEL!r} and {PROBABILITIES!r}"
        raise bad(["body", "outputs"], message)
    prediction = served.predict(features)
    rows, classes = prediction.probabilities.shape
    tensors = {
        LABEL: tensor_json(LABEL, "INT64", [rows], JSON_ENCODER.encode(prediction.labels.tolist())),
        PROBABILITIES: tensor_json(
            PROBABILITIES, "FP32", [rows, classes], float32_json(prediction.probabilities.ravel())
        ),
    }
    head = JSON_ENCODER.encode(
        {
            "model_name": served.card.name,
            "model_version": served.card.version,
            "id": request.id if request.id is not None else request_id or "",
        }
    )
    outputs = ",".join(tensors[name] for name in requested)
    return served.json_response(head[:-1] + ',"outputs":[' + outputs + "]}")


def tensor_json(name: str, datatype: str, shape: list[int], data: str) -> str:
    """One output tensor, its `data` already JSON (the numbers as /predict writes them)."""
    head = JSON_ENCODER.encode({"name": name, "datatype": datatype, "shape": shape})
    return head[:-1] + ',"data":' + data + "}"


def bad(loc: list[str | int], message: str) -> ApiError:
    return invalid(loc, message, BAD_REQUEST)


def parse_infer_request(body: bytes) -> V2InferRequest:
    document = parse_json(body, BAD_REQUEST)
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


def features_of(request: V2InferRequest, served: ServedModel) -> Features:
    """The one FP32 input as float32 [N, features] (SPEC 0.5 rules 1-3)."""
    card = served.card
    names = [tensor.name for tensor in request.inputs]
    if names != [card.input_name]:
        raise bad(["body", "inputs"], f"expected one input {card.input_name!r}, got {names}")
    tensor = request.inputs[0]
    where: list[str | int] = ["body", "inputs", 0]
    if tensor.parameters and "binary_data_size" in tensor.parameters:
        raise bad([*where, "parameters"], "binary tensor data is not supported: send JSON data")
    if tensor.datatype != "FP32":
        raise bad([*where, "datatype"], f"datatype {tensor.datatype!r}: the model takes FP32")
    shape, width = tensor.shape, card.feature_count
    if len(shape) != 2 or shape[1] != width:
        message = f"shape {shape}: the model takes [N, {width}] ({width} features)"
        raise bad([*where, "shape"], message)
    if shape[0] < 1:
        raise bad([*where, "shape"], f"shape {shape}: at least one row")
    if shape[0] > served.max_rows:
        raise too_many_rows(shape[0], served.max_rows)
    flat = _flatten(tensor.data)
    if len(flat) != shape[0] * width:
        message = f"shape {shape} holds {shape[0] * width} values, data has {len(flat)}"
        raise bad([*where, "data"], message)
    if not all(map(is_float32, flat)):
        position = next(index for index, value in enumerate(flat) if not is_float32(value))
        raise bad([*where, "data", position], f"value {position} (row-major): {NOT_FLOAT32}")
    return np.array(flat, dtype=np.float32).reshape(shape)


def _flatten(data: list[Any]) -> list[Any]:
    """Row-major values of [N, features] data, sent flat or as N rows. Anything nested deeper
    is left as it is, for `is_float32` to refuse (a 400, never a recursion)."""
    if data and all(type(item) is list for item in data):
        return [value for row in data for value in row]
    return data
