"""Request and response bodies of the batch API (SPEC 3.4); field names as in the book."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Numbers only: strict refuses "1.5" and true; NaN and ±Infinity are refused too (T-API rules).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Health(BaseModel):
    health: str


class Ready(BaseModel):
    status: str


class DataIn(BaseModel):
    """Rows to predict later; each row has the model's feature count (4 for iris)."""

    model_config = ConfigDict(extra="forbid")

    data: Annotated[
        list[list[Number]],
        Field(min_length=1, examples=[[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]]),
    ]


class Created(BaseModel):
    ids: list[int]


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source_key: str | None
    values: Annotated[Any, Field(description="as stored: four numbers for rows the API accepted")]
    prediction: list[float] | None
    label: str | None
    model_version: str | None
    status: str = Field(examples=["pending", "predicted", "error"])
    error: str | None
    run_id: uuid.UUID | None
    created_datetime: datetime
    updated_datetime: datetime
    predicted_datetime: datetime | None


class Counts(BaseModel):
    pending: int
    predicted: int
    error: int
    total: int


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    run_id: uuid.UUID
    started_at: datetime
    finished_at: datetime | None
    rows: int
    chunks: int
    errors: int
    status: str = Field(examples=["running", "succeeded", "stopped", "failed"])
    model_version: str
