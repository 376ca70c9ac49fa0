"""Numbered versions of a model, their artifacts and the aliases that name them (SPEC 1.3)."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from src.app.dependencies import (
    PageParams,
    ReadSession,
    WriteSession,
    artifact_store,
    database,
    one_page,
)
from src.app.schemas import (
    ALIAS_PATTERN,
    SHA256_PATTERN,
    AliasOut,
    AliasSet,
    ArtifactOut,
    VersionCreate,
    VersionOut,
)
from src.common.errors import ApiError, error_responses
from src.db import repository
from src.db.database import Database
from src.db.models import Artifact, ModelVersion, utc_now
from src.db.repository import MAX_INT4
from src.storage import FILENAME_PATTERN, ArtifactStore, Upload, check_filename

# Every route names a model (and most a version): all of them may answer 404.
router = APIRouter(
    prefix="/v0.1/api/models/{model_id}",
    tags=["versions"],
    responses=error_responses(404, 422, 503),
)

VersionPath = Annotated[int, Path(ge=1, le=MAX_INT4, description="version number")]
FilenamePath = Annotated[str, Path(pattern=FILENAME_PATTERN, description="no '..', no '/'")]
AliasPath = Annotated[str, Path(pattern=ALIAS_PATTERN, examples=["production"])]
OCTET_STREAM_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def version_out(version: ModelVersion) -> VersionOut:
    return VersionOut(
        model_id=version.model_id,
        version=version.version,
        experiment_id=version.experiment_id,
        description=version.description,
        metadata=version.version_metadata,
        aliases=[alias.alias for alias in version.aliases],
        artifacts=[ArtifactOut.model_validate(artifact) for artifact in version.artifacts],
        created_datetime=version.created_datetime,
    )


@router.post("/versions", status_code=201)
def create_version(model_id: uuid.UUID, body: VersionCreate, session: WriteSession) -> VersionOut:
    version = repository.create_version(
        session, model_id, body.experiment_id, body.description, body.metadata or {}
    )
    return version_out(version)


@router.get("/versions")
def list_versions(
    model_id: uuid.UUID,
    session: ReadSession,
    page: PageParams,
    request: Request,
    response: Response,
) -> list[VersionOut]:
    statement = repository.versions_of_model(session, model_id)
    return [version_out(row) for row in one_page(session, statement, page, request, response)]


@router.get("/versions/{version}")
def get_version(model_id: uuid.UUID, version: VersionPath, session: ReadSession) -> VersionOut:
    return version_out(repository.get_version(session, model_id, version))


@router.get("/versions/{version}/artifacts")
def list_artifacts(
    *,
    model_id: uuid.UUID,
    version: VersionPath,
    session: ReadSession,
    page: PageParams,
    request: Request,
    response: Response,
) -> list[ArtifactOut]:
    statement = repository.artifacts_of_version(session, model_id, version)
    rows = one_page(session, statement, page, request, response)
    return [ArtifactOut.model_validate(row) for row in rows]


@router.put(
    "/versions/{version}/artifacts/{filename}",
    status_code=201,
    openapi_extra=OCTET_STREAM_BODY,
    responses={
        200: {"description": "the same bytes exist already", "model": ArtifactOut},
        **error_responses(409, 413),
    },
)
async def upload_artifact(
    *,
    model_id: uuid.UUID,
    version: VersionPath,
    filename: FilenamePath,
    request: Request,
    response: Response,
    x_content_sha256: Annotated[str | None, Header(pattern=SHA256_PATTERN)] = None,
) -> ArtifactOut:
    """The raw body is the file; `X-Content-SHA256`, when given, must match what arrived."""
    check_filename(filename)
    db, store = database(request), artifact_store(request)
    # 404 before a single body byte is read.
    await run_in_threadpool(_require_version, db, model_id, version)
    upload = await store.receive(request.stream(), _declared_length(request))
    try:
        expected = x_content_sha256.lower() if x_content_sha256 else None
        if expected is not None and upload.sha256 != expected:
            raise ApiError(
                422,
                "invalid_input",
                f"checksum mismatch: received sha256 {upload.sha256}, X-Content-SHA256 {expected}",
                details=[{"loc": ["header", "x-content-sha256"], "msg": "does not match the body"}],
            )
        artifact, created = await run_in_threadpool(
            functools.partial(
                _record,
                db=db,
                store=store,
                model_id=model_id,
                version=version,
                filename=filename,
                upload=upload,
            )
        )
    finally:
        store.discard(upload)  # nothing left once published; the leftovers of a failure
    response.status_code = 201 if created else 200
    return ArtifactOut.model_validate(artifact)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _require_version(db: Database, model_id: uuid.UUID, version: int) -> None:
    with db.read_session() as session:
        repository.get_version(session, model_id, version)


def _record(
    *,
    db: Database,
    store: ArtifactStore,
    model_id: uuid.UUID,
    version: int,
    filename: str,
    upload: Upload,
) -> tuple[Artifact, bool]:
    relative = store.relative_path(str(model_id), version, filename)
    artifact = Artifact(
        model_id=model_id,
        version=version,
        filename=filename,
        size=upload.size,
        sha256=upload.sha256,
        storage_path=relative,
        created_datetime=utc_now(),
    )
    with db.write_session() as session:
        return repository.add_artifact(
            session,
            artifact,
            publish=lambda: store.publish(upload, relative),
            unpublish=lambda: store.unpublish(relative),
        )


@router.get(
    "/versions/{version}/artifacts/{filename}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_artifact(
    model_id: uuid.UUID,
    version: VersionPath,
    filename: FilenamePath,
    session: ReadSession,
    request: Request,
) -> FileResponse:
    """The bytes, with `X-Content-SHA256`, `ETag` (the sha256) and `Content-Length`."""
    artifact = repository.get_artifact(session, model_id, version, check_filename(filename))
    path = artifact_store(request).path_of(artifact.storage_path)
    if not path.is_file():
        raise ApiError(500, "internal_error", f"artifact {filename!r} is missing from storage")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=artifact.filename,
        headers={"X-Content-SHA256": artifact.sha256, "ETag": f'"{artifact.sha256}"'},
    )


@router.put("/aliases/{alias}")
def set_alias(
    model_id: uuid.UUID, alias: AliasPath, body: AliasSet, session: WriteSession
) -> AliasOut:
    """Point the alias at a version: created, or moved in a single update."""
    row = repository.set_alias(session, model_id, alias, body.version)
    return AliasOut(model_id=row.model_id, alias=row.alias, version=row.version)


@router.get("/aliases")
def list_aliases(model_id: uuid.UUID, session: ReadSession) -> dict[str, int]:
    """`{"production": 3, ...}`"""
    return repository.aliases_of_model(session, model_id)


@router.delete("/aliases/{alias}", status_code=204)
def delete_alias(model_id: uuid.UUID, alias: AliasPath, session: WriteSession) -> Response:
    repository.delete_alias(session, model_id, alias)
    return Response(status_code=204)
