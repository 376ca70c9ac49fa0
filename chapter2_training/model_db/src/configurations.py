"""Settings of the model registry (SPEC 0.7, 1.3), read from the environment.

Every value has a default that works for a local process on 127.0.0.1; compose and k8s override
HOST, DATABASE_URL and ARTIFACT_ROOT. Bad values fail at start-up, not at the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PATTERN_DIR = Path(__file__).resolve().parents[1]
VAR_DIR = PATTERN_DIR / "var"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
MiB = 1024 * 1024


class Settings(BaseSettings):
    """One class, environment variables named as the fields (case-insensitive)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    model_db_port: int = Field(default=8100, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    # SQLite under var/ for local runs; compose, k8s and the PostgreSQL tests set a postgresql URL.
    database_url: str = f"sqlite:///{VAR_DIR / 'model_db.sqlite3'}"
    artifact_root: Path = VAR_DIR / "artifacts"
    max_artifact_bytes: int = Field(default=512 * MiB, gt=0)
    # Bounds every SQL wait: connecting, a pool checkout, a lock, a statement.
    db_timeout_s: float = Field(default=5.0, gt=0, le=300)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as error:
            raise ValueError(f"not a database URL: {error}") from error
        if url.get_backend_name() not in SUPPORTED_BACKENDS:
            raise ValueError(f"DATABASE_URL must use one of {SUPPORTED_BACKENDS}")
        return value

    @field_validator("artifact_root")
    @classmethod
    def _absolute_artifact_root(cls, value: Path) -> Path:
        # Stored paths are resolved against this root; a relative root would follow the cwd.
        return value.expanduser().resolve()
