"""Settings of the two processes (SPEC 3.9, 0.7), read from the environment.

`proxy` (PROXY_PORT, 8000) resolves item ids in DATA_DIR, keeps their preprocessed tensors in
Redis (REDIS_URL) and calls `pred`; `pred` (PRED_PORT, 8001) is a plain V2 model server. Both
read MODEL_DIR: `pred` the whole model directory, `proxy` only its metadata.json and label.json.
Every value has a default that works for local processes on 127.0.0.1; compose and k8s override
HOST, PRED_URL and REDIS_URL. Bad values fail at start-up, not at the first request. No setting
reads a bare PORT (honcho sets one per process).
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
    proxy_port: Port = 8000
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
    """The V2 model server (the same server as prep_pred_pattern's)."""

    # Rows (images) per infer request; more is a 413 before the tensor is parsed.
    max_batch_size: int = Field(default=64, ge=1, le=4096)


class ProxySettings(Settings):
    """The item service: item ids, the tensor cache, the call to pred, postprocessing."""

    pred_url: str = "http://127.0.0.1:8001"
    # Bounds each call to pred, from connect to the last byte of its answer (504 beyond).
    pred_timeout_ms: int = Field(default=2000, ge=1, le=600_000)
    # The model version pred must report. Unset: metadata.json's version (the sha256 prefix).
    pred_model_version: str | None = None
    # The image items: DATA_DIR/<item id>.<png|jpg|jpeg|gif|bmp|webp>, written by `make models`.
    data_dir: Path = Path("data")
    # The item of GET /predict/test (data/0000.png, the first held-out digit).
    sample_item_id: str = Field(default="0000", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # An item file larger than this is refused (413), as an uploaded image would be.
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1, le=1 << 30)
    # The tensor cache. Every Redis call is bounded by REDIS_TIMEOUT_MS (connect and each
    # command); a failure answers without the cache (X-Data-Cache: BYPASS) and the proxy
    # leaves Redis alone for REDIS_RETRY_MS before it tries again, so that a dead or hung Redis
    # costs one time-out per interval, not one per request.
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_ms: int = Field(default=100, ge=1, le=60_000)
    redis_retry_ms: int = Field(default=1000, ge=0, le=600_000)
    cache_ttl_s: int = Field(default=3600, ge=1, le=30 * 24 * 3600)

    @field_validator("pred_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("PRED_URL starts with http:// or https://")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL starts with redis://, rediss:// or unix://")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_from_pattern_dir(cls, value: Path) -> Path:
        return (PATTERN_DIR / value.expanduser()).absolute()

    @property
    def pred_timeout_s(self) -> float:
        return self.pred_timeout_ms / 1000

    @property
    def redis_timeout_s(self) -> float:
        return self.redis_timeout_ms / 1000
