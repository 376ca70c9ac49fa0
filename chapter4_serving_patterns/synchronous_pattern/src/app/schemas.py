"""Bodies of the I-API (SPEC 0.4) and of the V2 subset (SPEC 0.5), as the OpenAPI document
shows them. The hot routes read their bodies themselves (src.app.inputs, src.app.v2_wire):
`PredictRequest` and `V2InferRequest` document them, and V2 headers are validated with
`V2InferRequest` by the handler itself (400s, not FastAPI's 422s).
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
    """One image file, base64 (standard or URL-safe, padding optional)."""

    model_config = ConfigDict(extra="forbid")

    image_data: str = Field(examples=["iVBORw0KGgoAAAANSUhEUgAA..."])


class Prediction(BaseModel):
    prediction: list[float] = Field(description="one probability per class, label.json order")
    label: str = Field(description="the most probable class")


class LabelPrediction(BaseModel):
    prediction: str = Field(description="the most probable class")


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str


class Metadata(BaseModel):
    """The book's `/metadata` fields for an image model, plus the model served."""

    model_config = ConfigDict(protected_namespaces=())

    data_type: str
    data_structure: str
    data_sample: str
    prediction_type: str
    prediction_structure: str
    model: ModelRef
    labels: dict[str, str]
    preprocessing: dict[str, Any]
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
    data: list[Any] | None = Field(
        default=None,
        description="row-major, flat or nested; absent when parameters.binary_data_size is set",
    )
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = Field(
        default=None, description="binary_data (bool), classification (top-k, probabilities)"
    )


class V2InferRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "inputs": [
                        {
                            "name": "image",
                            "datatype": "BYTES",
                            "shape": [1],
                            "data": ["iVBORw0KGgoAAAANSUhEUgAA..."],
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
    data: list[float] | list[str] | None = None
    parameters: dict[str, Any] | None = None


class V2InferResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str
    outputs: list[V2OutputTensor]
