"""Settings of the two processes (SPEC 3.5, 0.7), read from the environment.

`prep` (PREP_PORT, 8000) decodes and normalises images, calls `pred` and names the label; `pred`
(PRED_PORT, 8001) is a plain V2 model server. Both read MODEL_DIR: `pred` the whole model
directory, `prep` only its metadata.json and label.json. Every value has a default that works
for local processes on 127.0.0.1; compose and k8s override HOST and PRED_URL. Bad values fail at
start-up, not at the first request. No setting reads a bare PORT (honcho sets one per process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PATTERN_DIR = Path(__file__).resolve().parents[1]
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """What both processes read: where they listen, their workers, log level and model."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    prep_port: Port = 8000
    pred_port: Port = 8001
    # One worker per process: two processes share two cores, and k8s scales by replicas (HPA).
    workers: int = Field(default=1, ge=1, le=64)
    # A model directory of SPEC 0.2; relative paths are read from the pattern directory.
    model_dir: Path = Path("models/digits_resnet")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_dir")
    @classmethod
    def _from_pattern_dir(cls, value: Path) -> Path:
        # Log lines name this path: absolute, so that they say which directory was refused.
        return (PATTERN_DIR / value.expanduser()).absolute()


class PredSettings(Settings):
    """The V2 model server."""

    # Rows (images) per infer request; more is a 413 before the tensor is parsed.
    max_batch_size: int = Field(default=64, ge=1, le=4096)


class PrepSettings(Settings):
    """The image service: preprocessing, the call to pred, postprocessing."""

    pred_url: str = "http://127.0.0.1:8001"
    # Bounds each call to pred, from connect to the last byte of its answer (504 beyond).
    pred_timeout_ms: int = Field(default=2000, ge=1, le=600_000)
    # The model version pred must report. Unset: metadata.json's version (the sha256 prefix).
    # Triton numbers versions 1, 2, ...: docker-compose.triton.yml sets 1.
    pred_model_version: str | None = None
    # Decoded image size limit (SPEC 0.4 rule 2).
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1, le=1 << 30)
    # The image of GET /predict/test, written by `make models`.
    sample_image_path: Path = Path("data/sample.png")

    @field_validator("pred_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("PRED_URL starts with http:// or https://")
        return value.rstrip("/")

    @field_validator("sample_image_path")
    @classmethod
    def _sample_from_pattern_dir(cls, value: Path) -> Path:
        return (PATTERN_DIR / value.expanduser()).absolute()

    @property
    def pred_timeout_s(self) -> float:
        return self.pred_timeout_ms / 1000
