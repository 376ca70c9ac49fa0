"""Reads and writes of the registry; no HTTP here. Write functions commit their own unit of work.

Errors say what is wrong in the caller's terms: `NotFound` (an id or name that does not exist),
`Conflict` (a name or artifact that exists already, also when two requests race: the unique
constraint decides and the loser gets `Conflict`), `InvalidReference` (a body that points at
something that does not exist).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from src.db.models import Alias, Artifact, Experiment, Model, ModelVersion, Project, utc_now

RowT = TypeVar("RowT")
MAX_INT4 = 2**31 - 1  # version numbers are INTEGER columns
VERSION_REF = re.compile(r"[0-9]{1,10}")
MERGEABLE_FIELDS = ("evaluations", "artifact_file_paths")


class NotFound(LookupError):
    pass


class Conflict(Exception):
    pass


class InvalidReference(ValueError):
    pass


def paginate(
    session: Session, statement: Select[RowT], limit: int, offset: int
) -> tuple[list[RowT], int]:
    """One page of an ordered query and the total count, read in the same transaction."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    items = list(session.scalars(statement.limit(limit).offset(offset)))
    return items, total or 0


def _commit_or_conflict(session: Session, message: str) -> None:
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(message) from error


# --- projects --------------------------------------------------------------------------------


def create_project(session: Session, project_name: str, description: str | None) -> Project:
    project = Project(
        project_name=project_name, description=description, created_datetime=utc_now()
    )
    session.add(project)
    _commit_or_conflict(session, f"project {project_name!r} already exists")
    return project


def projects_query() -> Select[Project]:
    return select(Project).order_by(Project.created_datetime, Project.project_id)


def get_project(session: Session, project_id: uuid.UUID) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


def get_project_by_name(session: Session, project_name: str) -> Project:
    project = session.scalar(select(Project).where(Project.project_name == project_name))
    if project is None:
        raise NotFound(f"project {project_name!r} not found")
    return project


# --- models ----------------------------------------------------------------------------------


def create_model(
    session: Session, project_id: uuid.UUID, model_name: str, description: str | None
) -> Model:
    if session.get(Project, project_id) is None:
        raise InvalidReference(f"project_id {project_id} does not exist")
    model = Model(
        project_id=project_id,
        model_name=model_name,
        description=description,
        last_version=0,
        created_datetime=utc_now(),
    )
    session.add(model)
    _commit_or_conflict(session, f"model {model_name!r} already exists in project {project_id}")
    return model


def models_query() -> Select[Model]:
    return select(Model).order_by(Model.created_datetime, Model.model_id)


def get_model(session: Session, model_id: uuid.UUID) -> Model:
    model = session.get(Model, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return model


def models_of_project(session: Session, project_id: uuid.UUID) -> Select[Model]:
    get_project(session, project_id)
    return models_query().where(Model.project_id == project_id)


def models_of_project_name(session: Session, project_name: str) -> Select[Model]:
    project = get_project_by_name(session, project_name)
    return models_query().where(Model.project_id == project.project_id)


def models_named(session: Session, model_name: str) -> Select[Model]:
    """Names are unique per project only, so a name may match models of several projects."""
    if (
        session.scalar(select(Model.model_id).where(Model.model_name == model_name).limit(1))
        is None
    ):
        raise NotFound(f"no model named {model_name!r}")
    return models_query().where(Model.model_name == model_name)


# --- experiments -----------------------------------------------------------------------------


def create_experiment(session: Session, model_id: uuid.UUID, fields: dict[str, Any]) -> Experiment:
    if session.get(Model, model_id) is None:
        raise InvalidReference(f"model_id {model_id} does not exist")
    experiment = Experiment(model_id=model_id, created_datetime=utc_now(), **fields)
    session.add(experiment)
    session.commit()
    return experiment


def experiments_query() -> Select[Experiment]:
    return select(Experiment).order_by(Experiment.created_datetime, Experiment.experiment_id)


def get_experiment(session: Session, experiment_id: uuid.UUID) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return experiment


def experiments_of_model(session: Session, model_id: uuid.UUID) -> Select[Experiment]:
    get_model(session, model_id)
    return experiments_query().where(Experiment.model_id == model_id)


def experiments_of_project(session: Session, project_id: uuid.UUID) -> Select[Experiment]:
    get_project(session, project_id)
    in_project = select(Model.model_id).where(Model.project_id == project_id)
    return experiments_query().where(Experiment.model_id.in_(in_project))


def experiments_labelled(session: Session, model_version_id: str) -> Select[Experiment]:
    labelled = select(Experiment.experiment_id).where(
        Experiment.model_version_id == model_version_id
    )
    if session.scalar(labelled.limit(1)) is None:
        raise NotFound(f"no experiment with model_version_id {model_version_id!r}")
    return experiments_query().where(Experiment.model_version_id == model_version_id)


def merge_experiment(
    session: Session, experiment_id: uuid.UUID, field: str, values: dict[str, Any]
) -> Experiment:
    """Shallow merge: new keys are added, existing keys replaced. The row is locked first
    (PostgreSQL; SQLite's write session holds the database lock) so that concurrent merges
    add up instead of overwriting each other."""
    if field not in MERGEABLE_FIELDS:
        raise ValueError(f"{field} is not a mergeable field")
    experiment = session.scalar(
        select(Experiment).where(Experiment.experiment_id == experiment_id).with_for_update()
    )
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found")
    setattr(experiment, field, {**getattr(experiment, field), **values})
    session.commit()
    return experiment


# --- versions --------------------------------------------------------------------------------


def create_version(
    session: Session,
    model_id: uuid.UUID,
    experiment_id: uuid.UUID | None,
    description: str | None,
    metadata: dict[str, Any],
) -> ModelVersion:
    # One UPDATE both checks the model and takes the next number: PostgreSQL locks the row
    # until commit, SQLite's write session holds the write lock, so numbers never repeat.
    number = session.scalar(
        update(Model)
        .where(Model.model_id == model_id)
        .values(last_version=Model.last_version + 1)
        .returning(Model.last_version)
    )
    if number is None:
        raise NotFound(f"model {model_id} not found")
    if experiment_id is not None:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None or experiment.model_id != model_id:
            raise InvalidReference(
                f"experiment_id {experiment_id} is not an experiment of this model"
            )
    version = ModelVersion(
        model_id=model_id,
        version=number,
        experiment_id=experiment_id,
        description=description,
        version_metadata=metadata,
        created_datetime=utc_now(),
    )
    session.add(version)
    _commit_or_conflict(session, f"version {number} of model {model_id} exists already")
    # A new version has neither artifacts nor aliases; say so instead of querying.
    set_committed_value(version, "artifacts", [])
    set_committed_value(version, "aliases", [])
    return version


def versions_of_model(session: Session, model_id: uuid.UUID) -> Select[ModelVersion]:
    get_model(session, model_id)
    return (
        select(ModelVersion).where(ModelVersion.model_id == model_id).order_by(ModelVersion.version)
    )


def get_version(session: Session, model_id: uuid.UUID, number: int) -> ModelVersion:
    found = session.get(ModelVersion, (model_id, number)) if number <= MAX_INT4 else None
    if found is None:
        get_model(session, model_id)
        raise NotFound(f"version {number} of model {model_id} not found")
    return found


# --- artifacts -------------------------------------------------------------------------------


def artifacts_of_version(session: Session, model_id: uuid.UUID, number: int) -> Select[Artifact]:
    get_version(session, model_id, number)
    return (
        select(Artifact)
        .where(Artifact.model_id == model_id, Artifact.version == number)
        .order_by(Artifact.filename)
    )


def get_artifact(session: Session, model_id: uuid.UUID, number: int, filename: str) -> Artifact:
    artifact = session.get(Artifact, (model_id, number, filename))
    if artifact is None:
        get_version(session, model_id, number)
        raise NotFound(f"artifact {filename!r} of version {number} of model {model_id} not found")
    return artifact


def _same_or_conflict(existing: Artifact, sha256: str) -> tuple[Artifact, bool]:
    if existing.sha256 != sha256:
        raise Conflict(
            f"artifact {existing.filename!r} exists with other content (sha256 {existing.sha256})"
        )
    return existing, False


def add_artifact(
    session: Session,
    artifact: Artifact,
    publish: Callable[[], None],
    unpublish: Callable[[], None],
) -> tuple[Artifact, bool]:
    """Record an artifact whose bytes are ready to `publish` (move into place).

    Returns (artifact, created). Identical bytes under the same name are not an error (the
    existing record, created=False); other bytes are a `Conflict`: artifacts are immutable.
    The row is inserted first, so the unique key decides between racing uploads before any
    file moves; the file is published before the commit and taken back if the commit fails.
    """
    key = (artifact.model_id, artifact.version, artifact.filename)
    existing = session.get(Artifact, key)
    if existing is not None:
        return _same_or_conflict(existing, artifact.sha256)
    get_version(session, artifact.model_id, artifact.version)
    session.add(artifact)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = session.get(Artifact, key)
        if existing is None:
            raise
        return _same_or_conflict(existing, artifact.sha256)
    publish()
    try:
        session.commit()
    except BaseException:
        unpublish()
        raise
    return artifact, True


# --- aliases ---------------------------------------------------------------------------------


def set_alias(session: Session, model_id: uuid.UUID, alias: str, number: int) -> Alias:
    """Point an alias at a version in one statement (insert, or move it if it exists)."""
    get_version(session, model_id, number)
    values = {
        "model_id": model_id,
        "alias": alias,
        "version": number,
        "updated_datetime": utc_now(),
    }
    changes = {"version": number, "updated_datetime": values["updated_datetime"]}
    keys = [Alias.model_id, Alias.alias]
    if session.get_bind().dialect.name == "postgresql":
        pg_upsert = postgresql.insert(Alias).values(values)
        session.execute(pg_upsert.on_conflict_do_update(index_elements=keys, set_=changes))
    else:
        lite_upsert = sqlite.insert(Alias).values(values)
        session.execute(lite_upsert.on_conflict_do_update(index_elements=keys, set_=changes))
    session.commit()
    return Alias(**values)


def aliases_of_model(session: Session, model_id: uuid.UUID) -> dict[str, int]:
    get_model(session, model_id)
    rows = session.execute(
        select(Alias.alias, Alias.version).where(Alias.model_id == model_id).order_by(Alias.alias)
    )
    return {alias: number for alias, number in rows}


def delete_alias(session: Session, model_id: uuid.UUID, alias: str) -> None:
    get_model(session, model_id)
    result = session.execute(delete(Alias).where(Alias.model_id == model_id, Alias.alias == alias))
    if getattr(result, "rowcount", 0) == 0:
        raise NotFound(f"alias {alias!r} of model {model_id} not found")
    session.commit()


# --- registry --------------------------------------------------------------------------------


def resolve(
    session: Session, project_name: str, model_name: str, ref: str
) -> tuple[Project, Model, ModelVersion]:
    """`ref` is a version number or an alias; NotFound names the first missing piece."""
    project = get_project_by_name(session, project_name)
    model = session.scalar(
        select(Model).where(Model.project_id == project.project_id, Model.model_name == model_name)
    )
    if model is None:
        raise NotFound(f"model {model_name!r} not found in project {project_name!r}")
    where = f"{project_name}/{model_name}"
    if VERSION_REF.fullmatch(ref):
        number = int(ref)
    else:
        alias = session.get(Alias, (model.model_id, ref))
        if alias is None:
            raise NotFound(f"alias {ref!r} not found for {where}")
        number = alias.version
    version = session.get(ModelVersion, (model.model_id, number)) if number <= MAX_INT4 else None
    if version is None:
        raise NotFound(f"version {number} of {where} not found")
    return project, model, version
