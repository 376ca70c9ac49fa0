"""What routes receive: the settings, the model's description, database sessions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from src.configurations import Settings
from src.db.database import Database
from src.ml.model import ModelDirectory


def settings(request: Request) -> Settings:
    value = request.app.state.settings
    assert isinstance(value, Settings)
    return value


def database(request: Request) -> Database:
    db = request.app.state.db
    assert isinstance(db, Database), "the lifespan opens the database"
    return db


def model(request: Request) -> ModelDirectory:
    value = request.app.state.model
    assert isinstance(value, ModelDirectory), "the lifespan loads the model directory"
    return value


def read_session(request: Request) -> Iterator[Session]:
    with database(request).read_session() as session:
        yield session


def write_session(request: Request) -> Iterator[Session]:
    with database(request).write_session() as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]
CurrentSettings = Annotated[Settings, Depends(settings)]
CurrentModel = Annotated[ModelDirectory, Depends(model)]
