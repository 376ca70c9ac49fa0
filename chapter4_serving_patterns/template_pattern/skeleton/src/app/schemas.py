"""Bodies of the T-API (SPEC 0.3) and of the V2 subset (SPEC 0.5), as the OpenAPI document
shows them. `POST /predict` and `/predict/label` parse their bodies with src.app.inputs instead
of through these models (it is the hot path): `PredictRequest` only documents them, and V2
requests are validated with `V2InferRequest` by the handler itself (400s, not FastAPI's 422s).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the JSON request body of a route that reads its
    body itself. Inlined: `$defs` references would not resolve inside the OpenAPI document."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


class Health(BaseModel):
    health: str


class Ready(BaseModel):
    status: str


class PredictRequest(BaseModel):
    """The book's `Data`: rows of features; each row gets one prediction, in order."""

    model_config = ConfigDict(extra="forbid")

    data: list[list[float]] = Field(examples=[[[5.1, 3.5, 1.4, 0.2]]])


class Probabilities(BaseModel):
    prediction: list[list[float]]


class Labels(BaseModel):
    prediction: list[str]


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str


class Metadata(BaseModel):
    """The book's `/metadata` fields, plus the model served and its evaluation."""

    model_config = ConfigDict(protected_namespaces=())

    data_type: str
    data_structure: str
    data_sample: list[list[float]]
    prediction_type: str
    prediction_structure: str
    prediction_sample: list[list[float]]
    model: ModelRef
    labels: dict[str, str]
    metrics: dict[str, Any]


# --- Open Inference Protocol (KServe V2) ---------------------------------------------------


class V2Server(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    live: bool


class V2Ready(BaseModel):
    ready: bool


class V2ModelReady(BaseModel):
    name: str
    ready: bool


class V2TensorSpec(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorSpec]
    outputs: list[V2TensorSpec]


class V2InputTensor(BaseModel):
    name: str
    # Checked against the model by the handler (a 400 per SPEC 0.5 rule 3), not by the schema.
    datatype: str
    shape: list[int]
    data: list[Any] = Field(description="row-major, flat or nested")
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "inputs": [
                        {
                            "name": "input",
                            "datatype": "FP32",
                            "shape": [1, 4],
                            "data": [5.1, 3.5, 1.4, 0.2],
                        }
                    ]
                }
            ]
        }
    )

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2InputTensor] = Field(min_length=1)
    outputs: list[V2RequestedOutput] | None = None


class V2OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[float] | list[int]


class V2InferResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str
    outputs: list[V2OutputTensor]
