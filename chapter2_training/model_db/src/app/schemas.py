"""Request and response bodies of the registry API (SPEC 1.3); field names as in the book.

Bodies refuse unknown fields (a typo is a 422, not a silently ignored value). Names of projects
and models appear in registry URLs, so they are restricted to URL-safe characters.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from src.db.repository import MAX_INT4
from src.storage import FILENAME_PATTERN

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, examples=["iris"])]
Description = Annotated[str | None, Field(max_length=10_000)]
Label = Annotated[str, Field(min_length=1, max_length=128, examples=["iris_svc_0.1.0"])]
DatasetRef = Annotated[str | None, Field(max_length=4096)]
JsonObject = dict[str, Any]
VersionNumber = Annotated[int, Field(ge=1, le=MAX_INT4)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Health(BaseModel):
    health: str


class Ready(BaseModel):
    status: str


class ProjectCreate(Body):
    project_name: Name
    description: Description = None


class ProjectOut(Out):
    project_id: uuid.UUID
    project_name: str
    description: str | None
    created_datetime: datetime


class ModelCreate(Body):
    project_id: uuid.UUID
    model_name: Annotated[str, Field(pattern=NAME_PATTERN, examples=["iris_svc"])]
    description: Description = None


class ModelOut(Out):
    model_id: uuid.UUID
    project_id: uuid.UUID
    model_name: str
    description: str | None
    created_datetime: datetime


class ExperimentCreate(Body):
    model_id: uuid.UUID
    model_version_id: Label
    parameters: JsonObject | None = None
    training_dataset: DatasetRef = None
    validation_dataset: DatasetRef = None
    test_dataset: DatasetRef = None
    evaluations: JsonObject | None = None
    artifact_file_paths: JsonObject | None = None


class ExperimentOut(Out):
    experiment_id: uuid.UUID
    model_id: uuid.UUID
    model_version_id: str
    parameters: JsonObject
    training_dataset: str | None
    validation_dataset: str | None
    test_dataset: str | None
    evaluations: JsonObject
    artifact_file_paths: JsonObject
    created_datetime: datetime


class EvaluationsMerge(Body):
    evaluations: JsonObject


class ArtifactFilePathsMerge(Body):
    artifact_file_paths: JsonObject


class VersionCreate(Body):
    experiment_id: uuid.UUID | None = None
    description: Description = None
    metadata: JsonObject | None = None


class ArtifactOut(Out):
    filename: Annotated[str, Field(pattern=FILENAME_PATTERN)]
    size: int
    sha256: str


class VersionOut(BaseModel):
    model_id: uuid.UUID
    version: int
    experiment_id: uuid.UUID | None
    description: str | None
    metadata: JsonObject
    aliases: list[str]
    artifacts: list[ArtifactOut]
    created_datetime: datetime


class AliasSet(Body):
    version: VersionNumber


class AliasOut(BaseModel):
    model_id: uuid.UUID
    alias: str
    version: int


class RegistryArtifact(ArtifactOut):
    download_path: str


class RegistryOut(BaseModel):
    """A version found by project name, model name and a version number or alias."""

    project_id: uuid.UUID
    project_name: str
    model_id: uuid.UUID
    model_name: str
    ref: str
    version: int
    experiment_id: uuid.UUID | None
    description: str | None
    metadata: JsonObject
    aliases: list[str]
    artifacts: list[RegistryArtifact]
    created_datetime: datetime
