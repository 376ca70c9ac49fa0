"""Settings of the iris_template_sample service (SPEC 0.3, 0.7), read from the environment.

Every value has a default that works for a local process on 127.0.0.1; compose and k8s override
HOST and MODEL_DIR. Bad values fail at start-up, not at the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PATTERN_DIR = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """One class, environment variables named as the fields (case-insensitive)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    # One model directory of SPEC 0.2 (`make models` copies iris_svc here).
    model_dir: Path = PATTERN_DIR / "models" / "iris_svc"
    # Rows per request (T-API); more is a 413.
    max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_dir")
    @classmethod
    def _absolute_model_dir(cls, value: Path) -> Path:
        # Log lines name this path: absolute, so that they say which directory was refused.
        return value.expanduser().absolute()
