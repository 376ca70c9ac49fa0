"""Projects (SPEC 1.3): create, list, read by id or name."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from src.app.dependencies import PageParams, ReadSession, WriteSession, one_page
from src.app.schemas import ProjectCreate, ProjectOut
from src.common.errors import error_responses
from src.db import repository

router = APIRouter(
    prefix="/v0.1/api/projects", tags=["projects"], responses=error_responses(422, 503)
)


@router.post("", status_code=201, responses=error_responses(409))
def create_project(body: ProjectCreate, session: WriteSession) -> ProjectOut:
    project = repository.create_project(session, body.project_name, body.description)
    return ProjectOut.model_validate(project)


@router.get("/all")
def list_projects(
    session: ReadSession, page: PageParams, request: Request, response: Response
) -> list[ProjectOut]:
    rows = one_page(session, repository.projects_query(), page, request, response)
    return [ProjectOut.model_validate(row) for row in rows]


@router.get("/id/{project_id}", responses=error_responses(404))
def get_project(project_id: uuid.UUID, session: ReadSession) -> ProjectOut:
    return ProjectOut.model_validate(repository.get_project(session, project_id))


@router.get("/name/{project_name}", responses=error_responses(404))
def get_project_by_name(project_name: str, session: ReadSession) -> ProjectOut:
    return ProjectOut.model_validate(repository.get_project_by_name(session, project_name))
