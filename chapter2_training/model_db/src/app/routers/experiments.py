"""Experiments, one training run each (SPEC 1.3), and the merges of their JSON fields."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Select

from src.app.dependencies import PageParams, PageRequest, ReadSession, WriteSession, one_page
from src.app.schemas import (
    ArtifactFilePathsMerge,
    EvaluationsMerge,
    ExperimentCreate,
    ExperimentOut,
)
from src.common.errors import error_responses
from src.db import repository
from src.db.models import Experiment

router = APIRouter(
    prefix="/v0.1/api/experiments", tags=["experiments"], responses=error_responses(422, 503)
)
NOT_FOUND = error_responses(404)


@router.post("", status_code=201)
def create_experiment(body: ExperimentCreate, session: WriteSession) -> ExperimentOut:
    fields: dict[str, Any] = body.model_dump(exclude={"model_id"})
    for json_field in ("parameters", "evaluations", "artifact_file_paths"):
        fields[json_field] = fields[json_field] or {}
    experiment = repository.create_experiment(session, body.model_id, fields)
    return ExperimentOut.model_validate(experiment)


def _listing(
    statement: Select[Experiment],
    session: ReadSession,
    page: PageRequest,
    request: Request,
    response: Response,
) -> list[ExperimentOut]:
    return [
        ExperimentOut.model_validate(row)
        for row in one_page(session, statement, page, request, response)
    ]


@router.get("/all")
def list_experiments(
    session: ReadSession, page: PageParams, request: Request, response: Response
) -> list[ExperimentOut]:
    return _listing(repository.experiments_query(), session, page, request, response)


@router.get("/id/{experiment_id}", responses=NOT_FOUND)
def get_experiment(experiment_id: uuid.UUID, session: ReadSession) -> ExperimentOut:
    return ExperimentOut.model_validate(repository.get_experiment(session, experiment_id))


@router.get("/model-version-id/{model_version_id}", responses=NOT_FOUND)
def list_experiments_labelled(
    model_version_id: str,
    session: ReadSession,
    page: PageParams,
    request: Request,
    response: Response,
) -> list[ExperimentOut]:
    """The book's free-form version label; 404 when no experiment carries it."""
    statement = repository.experiments_labelled(session, model_version_id)
    return _listing(statement, session, page, request, response)


@router.get("/model-id/{model_id}", responses=NOT_FOUND)
def list_experiments_of_model(
    model_id: uuid.UUID,
    session: ReadSession,
    page: PageParams,
    request: Request,
    response: Response,
) -> list[ExperimentOut]:
    statement = repository.experiments_of_model(session, model_id)
    return _listing(statement, session, page, request, response)


@router.get("/project-id/{project_id}", responses=NOT_FOUND)
def list_experiments_of_project(
    project_id: uuid.UUID,
    session: ReadSession,
    page: PageParams,
    request: Request,
    response: Response,
) -> list[ExperimentOut]:
    statement = repository.experiments_of_project(session, project_id)
    return _listing(statement, session, page, request, response)


@router.post("/evaluations/{experiment_id}", responses=NOT_FOUND)
def merge_evaluations(
    experiment_id: uuid.UUID, body: EvaluationsMerge, session: WriteSession
) -> ExperimentOut:
    """Shallow merge: new keys added, existing keys replaced; returns the merged experiment."""
    experiment = repository.merge_experiment(
        session, experiment_id, "evaluations", body.evaluations
    )
    return ExperimentOut.model_validate(experiment)


@router.post("/artifact-file-paths/{experiment_id}", responses=NOT_FOUND)
def merge_artifact_file_paths(
    experiment_id: uuid.UUID, body: ArtifactFilePathsMerge, session: WriteSession
) -> ExperimentOut:
    """Shallow merge, as for evaluations."""
    experiment = repository.merge_experiment(
        session, experiment_id, "artifact_file_paths", body.artifact_file_paths
    )
    return ExperimentOut.model_validate(experiment)
