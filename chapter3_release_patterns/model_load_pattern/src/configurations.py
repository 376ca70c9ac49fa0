"""Settings of the model-load pattern (SPEC 2.2, 0.7), read from the environment.

Every value has a default that works for local processes on 127.0.0.1; compose and k8s override
HOST, MODEL_DB_URL and MODEL_DIR. Bad values (a source that is no source, a malformed sha256)
fail at start-up, not at the first fetch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from src.loader.sources import InvalidSource, parse_source

PATTERN_DIR = Path(__file__).resolve().parents[1]
SHA256 = re.compile(r"[0-9a-f]{64}")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class FetchSettings(BaseSettings):
    """What the loader reads, and the API's fetcher with it."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    # SPEC 2.2 behaviour 1: modeldb://<project>/<model>@<alias> or .../<model>/<version>,
    # file:///<model directory>, http(s)://.../model.onnx.
    model_source: str = "modeldb://iris/iris_svc@production"
    # The chapter-2 model DB that modeldb:// sources are resolved in (its Procfile name is
    # model_db, so the launcher sets MODEL_DB_URL).
    model_db_url: str = "http://127.0.0.1:8100"
    # Pins the model.onnx a source must hold (file/http sources without metadata you trust).
    model_sha256: str | None = None
    # One model directory (SPEC 0.2): where the loader installs and the API loads from.
    model_dir: Path = PATTERN_DIR / "var" / "model"
    # Each request to the model DB or an http source; a stalled download fails after this.
    fetch_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # Retries after a failed attempt (no connection, time-out, 429, 5xx); 404 is not retried.
    fetch_retries: int = Field(default=3, ge=0, le=100)
    # Backoff between attempts: FETCH_BACKOFF_S, doubling, at most FETCH_BACKOFF_MAX_S. The API
    # waits the same way between fetches while it has no model.
    fetch_backoff_s: float = Field(default=0.5, gt=0, le=600)
    fetch_backoff_max_s: float = Field(default=10.0, gt=0, le=3600)
    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        try:
            parse_source(value)
        except InvalidSource as error:
            raise ValueError(str(error)) from error
        return value.strip()

    @field_validator("model_db_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @field_validator("model_sha256", mode="before")
    @classmethod
    def _sha256_or_unset(cls, value: object) -> object:
        # `MODEL_SHA256=` in a shell or compose file means "not pinned".
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not SHA256.fullmatch(value.strip().lower()):
            raise ValueError("MODEL_SHA256 must be 64 hexadecimal digits")
        return value.strip().lower()

    @field_validator("model_dir")
    @classmethod
    def _absolute_model_dir(cls, value: Path) -> Path:
        # Log lines name this path: absolute, so that they say which directory is meant.
        return value.expanduser().absolute()


class Settings(FetchSettings):
    """The API: T-API and V2 of the web single service (SPEC 3.1), plus the reloader's poll."""

    host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # One worker per process: a reload then swaps the only copy of the model, and /admin/reload
    # answers for the whole process (with more workers each follows the source on its own).
    # Scale with processes (k8s: the HPA adds pods).
    workers: int = Field(default=1, ge=1, le=64)
    # Rows per request (T-API); more is a 413.
    max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    # Seconds between two resolutions of MODEL_SOURCE once a model is served; 0 turns the poll
    # off (the model then changes only on POST /admin/reload).
    model_poll_interval_s: float = Field(default=10.0, ge=0, le=86_400)


class PromoteSettings(BaseSettings):
    """What `python -m src.promote` reads: `make promote VERSION=2`."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    model_db_url: str = "http://127.0.0.1:8100"
    fetch_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # The version the alias moves to; unset: the model's newest version.
    version: int | None = Field(default=None, ge=1)

    @field_validator("version", mode="before")
    @classmethod
    def _blank_means_newest(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
