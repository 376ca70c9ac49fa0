"""Resolution by names: `/registry/{project}/{model}/{version number or alias}` (SPEC 1.3)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from src.app.dependencies import ReadSession
from src.app.schemas import RegistryArtifact, RegistryOut
from src.common.errors import error_responses
from src.db import repository

router = APIRouter(
    prefix="/v0.1/api/registry", tags=["registry"], responses=error_responses(404, 503)
)


@router.get("/{project_name}/{model_name}/{ref}")
def resolve(
    project_name: str, model_name: str, ref: str, session: ReadSession, request: Request
) -> RegistryOut:
    """The version a number or alias names, with its artifacts and their download paths."""
    project, model, version = repository.resolve(session, project_name, model_name, ref)
    artifacts = [
        RegistryArtifact(
            filename=artifact.filename,
            size=artifact.size,
            sha256=artifact.sha256,
            download_path=request.app.url_path_for(
                "download_artifact",
                model_id=str(model.model_id),
                version=str(version.version),
                filename=artifact.filename,
            ),
        )
        for artifact in version.artifacts
    ]
    return RegistryOut(
        project_id=project.project_id,
        project_name=project.project_name,
        model_id=model.model_id,
        model_name=model.model_name,
        ref=ref,
        version=version.version,
        experiment_id=version.experiment_id,
        description=version.description,
        metadata=version.version_metadata,
        aliases=[alias.alias for alias in version.aliases],
        artifacts=artifacts,
        created_datetime=version.created_datetime,
    )
