"""Settings of the batch pattern (SPEC 0.7, 3.4), read from the environment.

One class for every process (api, job, seed, init_db): each reads the fields it needs. Every
value has a default that works for a local process on 127.0.0.1 (SQLite under var/); compose and
k8s override HOST and DATABASE_URL. Bad values fail at start-up, not at the first request.
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


class Settings(BaseSettings):
    """Environment variables named as the fields (case-insensitive)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # The job's /health and /metrics (loop mode only: a run-once job serves nothing).
    job_port: int = Field(default=9101, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    # SQLite under var/ for local runs; compose, k8s and the PostgreSQL tests set a postgresql URL.
    database_url: str = f"sqlite:///{VAR_DIR / 'batch.sqlite3'}"
    # Bounds every SQL wait: connecting, a pool checkout, a lock, a statement.
    db_timeout_s: float = Field(default=5.0, gt=0, le=300)
    model_dir: Path = PATTERN_DIR / "models" / "iris_svc"
    seed_file: Path = PATTERN_DIR / "data" / "items.json"
    # Rows claimed, predicted and committed together: a crash loses at most one chunk's work.
    batch_chunk_size: int = Field(default=500, ge=1, le=100_000)
    # Extra seconds a chunk holds its claim before it commits, as a slow model would: for
    # failure drills and demos only (0 in production).
    batch_chunk_delay_s: float = Field(default=0.0, ge=0, le=60)
    max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
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

    @field_validator("model_dir", "seed_file")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Relative paths would follow the working directory of whoever starts the process.
        return value.expanduser().resolve()
