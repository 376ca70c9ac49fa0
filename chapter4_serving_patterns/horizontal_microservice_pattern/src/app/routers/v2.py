"""Open Inference Protocol (KServe V2) REST subset (SPEC 0.5), JSON tensors.

Triton, MLServer or KServe serving the same model.onnx answer these routes the same way, so a
stock V2 client (tritonclient.http) works against this service. Errors in a request's tensors
are 400 in the error envelope (which carries the `error` field V2 asks for); an unknown model
or version is 404.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from src.app.dependencies import Model, Settings
from src.app.inference import observed
from src.common.errors import ApiError, error_responses
from src.common.request_id import current_request_id
from src.ml.model import Matrix, TabularModel

# V2 clients (tritonclient among them) send their JSON without a Content-Type: read a body
# without one as JSON here; a body declared as another type is still refused (415).
router = APIRouter(prefix="/v2", tags=["V2"], strict_content_type=False)
PLATFORM = "onnxruntime_onnx"
NUMERIC_KINDS = "iuf"  # numpy dtype kinds of ints, unsigned ints and floats


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InputTensor(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. parameters the protocol lets clients add

    name: str
    datatype: str
    shape: list[int]
    data: list[Any]  # row-major, flat or nested


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


class InferRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    inputs: list[InputTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]  # flat


class InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[OutputTensor]


@router.get("")
async def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": request.app.title, "version": request.app.version, "extensions": []}


@router.get("/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready")
async def server_ready(model: Model) -> dict[str, bool]:
    return {"ready": True}


@router.get("/models/{model_name}", responses=error_responses(404))
async def model_metadata(model_name: str, model: Model) -> ModelMetadata:
    return describe(resolve(model, model_name))


@router.get("/models/{model_name}/versions/{model_version}", responses=error_responses(404))
async def model_version_metadata(
    model_name: str, model_version: str, model: Model
) -> ModelMetadata:
    return describe(resolve(model, model_name, model_version))


@router.get("/models/{model_name}/ready", responses=error_responses(404))
async def model_ready(model_name: str, model: Model) -> dict[str, Any]:
    return {"name": resolve(model, model_name).name, "ready": True}


@router.get("/models/{model_name}/versions/{model_version}/ready", responses=error_responses(404))
async def model_version_ready(model_name: str, model_version: str, model: Model) -> dict[str, Any]:
    return {"name": resolve(model, model_name, model_version).name, "ready": True}


INFER_ERRORS = error_responses(400, 404, 413, 415, 422)


@router.post("/models/{model_name}/infer", responses=INFER_ERRORS)
def infer(model_name: str, body: InferRequest, model: Model, settings: Settings) -> InferResponse:
    return run_inference(resolve(model, model_name), body, settings.max_rows)


@router.post("/models/{model_name}/versions/{model_version}/infer", responses=INFER_ERRORS)
def infer_version(
    model_name: str, model_version: str, body: InferRequest, model: Model, settings: Settings
) -> InferResponse:
    return run_inference(resolve(model, model_name, model_version), body, settings.max_rows)


def resolve(model: TabularModel, name: str, version: str | None = None) -> TabularModel:
    if name != model.name:
        raise ApiError(404, "not_found", f"unknown model {name!r}; this server has {model.name!r}")
    if version is not None and version != model.version:
        message = f"model {name} has no version {version!r}; it has {model.version!r}"
        raise ApiError(404, "not_found", message)
    return model


def describe(model: TabularModel) -> ModelMetadata:
    return ModelMetadata(
        name=model.name,
        versions=[model.version],
        platform=PLATFORM,
        inputs=model.metadata["inputs"],
        outputs=model.metadata["outputs"],
    )


def run_inference(model: TabularModel, body: InferRequest, max_rows: int) -> InferResponse:
    features = input_matrix(model, body.inputs, max_rows)
    with observed(model, len(features)):
        results = model.infer(features)
    wanted = [output.name for output in body.outputs] if body.outputs else list(results)
    unknown = [name for name in wanted if name not in results]
    if unknown:
        raise bad_request(f"unknown outputs {unknown}; the model has {list(results)}")
    datatypes = {spec.name: spec.datatype for spec in model.outputs}
    outputs = [
        OutputTensor(
            name=name,
            datatype=datatypes[name],
            shape=list(results[name].shape),
            data=results[name].reshape(-1).tolist(),
        )
        for name in wanted
    ]
    return InferResponse(
        model_name=model.name,
        model_version=model.version,
        id=body.id if body.id is not None else current_request_id() or "",
        outputs=outputs,
    )


def input_matrix(model: TabularModel, inputs: list[InputTensor], max_rows: int) -> Matrix:
    """The one FP32 [N, features] input, checked as SPEC 0.5 rule 3 says."""
    names = [tensor.name for tensor in inputs]
    if names != [model.input_name]:
        raise bad_request(f"inputs {names}: the model takes exactly one, {model.input_name!r}")
    tensor = inputs[0]
    if tensor.datatype != "FP32":
        raise bad_request(f"input {tensor.name} has datatype {tensor.datatype}, expected FP32")
    if len(tensor.shape) != 2 or tensor.shape[1] != model.feature_count or tensor.shape[0] < 1:
        expected = f"[N, {model.feature_count}]"
        raise bad_request(f"input {tensor.name} has shape {tensor.shape}, expected {expected}")
    if tensor.shape[0] > max_rows:
        raise ApiError(413, "payload_too_large", f"{tensor.shape[0]} rows; at most {max_rows}")
    try:
        values = np.asarray(tensor.data)
    except ValueError as error:  # ragged nesting
        raise bad_request(f"input {tensor.name}: data is not a regular array: {error}") from None
    if values.dtype.kind not in NUMERIC_KINDS:
        raise bad_request(f"input {tensor.name}: data holds values that are not numbers")
    if values.size != math.prod(tensor.shape):
        message = f"input {tensor.name}: {values.size} values for shape {tensor.shape}"
        raise bad_request(message)
    features = values.astype(np.float32).reshape(tensor.shape)
    if not np.isfinite(features).all():
        raise bad_request(f"input {tensor.name}: NaN, infinite or beyond the float32 range")
    return features


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_input", message)
