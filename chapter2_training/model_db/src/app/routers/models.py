"""Models of a project (SPEC 1.3): create, list, read by id, by project, by name."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy import Select

from src.app.dependencies import PageParams, PageRequest, ReadSession, WriteSession, one_page
from src.app.schemas import ModelCreate, ModelOut
from src.common.errors import error_responses
from src.db import repository
from src.db.models import Model

router = APIRouter(prefix="/v0.1/api/models", tags=["models"], responses=error_responses(422, 503))


@router.post("", status_code=201, responses=error_responses(409))
def create_model(body: ModelCreate, session: WriteSession) -> ModelOut:
    model = repository.create_model(session, body.project_id, body.model_name, body.description)
    return ModelOut.model_validate(model)


def _listing(
    statement: Select[Model],
    session: ReadSession,
    page: PageRequest,
    request: Request,
    response: Response,
) -> list[ModelOut]:
    return [
        ModelOut.model_validate(row)
        for row in one_page(session, statement, page, request, response)
    ]


@router.get("/all")
def list_models(
    session: ReadSession, page: PageParams, request: Request, response: Response
) -> list[ModelOut]:
    return _listing(repository.models_query(), session, page, request, response)


@router.get("/id/{model_id}", responses=error_responses(404))
def get_model(model_id: uuid.UUID, session: ReadSession) -> ModelOut:
    return ModelOut.model_validate(repository.get_model(session, model_id))


@router.get("/project-id/{project_id}", responses=error_responses(404))
def list_models_of_project(
    project_id: uuid.UUID,
    session: ReadSession,
    page: PageParams,
    request: Request,
    response: Response,
) -> list[ModelOut]:
    statement = repository.models_of_project(session, project_id)
    return _listing(statement, session, page, request, response)


@router.get("/name/{model_name}", responses=error_responses(404))
def list_models_named(
    model_name: str, session: ReadSession, page: PageParams, request: Request, response: Response
) -> list[ModelOut]:
    """A list: names are unique per project, not across projects. 404 when none matches."""
    statement = repository.models_named(session, model_name)
    return _listing(statement, session, page, request, response)


@router.get("/project-name/{project_name}", responses=error_responses(404))
def list_models_of_project_name(
    project_name: str,
    session: ReadSession,
    page: PageParams,
    request: Request,
    response: Response,
) -> list[ModelOut]:
    statement = repository.models_of_project_name(session, project_name)
    return _listing(statement, session, page, request, response)
