"""Settings of the two processes (SPEC 3.8, 0.7), read from the environment.

`proxy` (PROXY_PORT, 8000) takes item ids or base64 images, answers from the prediction cache
in Redis or preprocesses the image and asks `pred`; `pred` (PRED_PORT, 8001) is the plain V2
model server of prep_pred_pattern (its files are byte-identical copies). Both read MODEL_DIR:
`pred` the whole model directory, `proxy` only its metadata.json and label.json. Every value has
a default that works for local processes on 127.0.0.1; compose and k8s override HOST, PRED_URL
and REDIS_URL. Bad values fail at start-up, not at the first request. No setting reads a bare
PORT (honcho sets one per process).
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
    # One worker per process by default: two processes share two cores, and k8s scales by
    # replicas (HPA). Compose and k8s run the proxy with two: single-flight spans workers.
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


class ProxySettings(Settings):
    """The client-facing service: item ids and images in, the cache, the call to pred."""

    pred_url: str = "http://127.0.0.1:8001"
    # Bounds each call to pred, from connect to the last byte of its answer (504 beyond).
    pred_timeout_ms: int = Field(default=2000, ge=1, le=600_000)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Bounds every Redis call (connect and each reply): a slow or gone Redis costs a request
    # at most this, then it is answered without the cache (X-Cache: BYPASS). Not much shorter:
    # the wait includes the worker's own event loop, busy with other requests under load.
    redis_timeout_ms: int = Field(default=250, ge=1, le=60_000)
    # How long a prediction stays in the cache.
    cache_ttl_s: int = Field(default=3600, ge=1)
    # How long a request waits for another worker computing the same key (single-flight),
    # before it computes itself. As long as a call to pred may take, by default.
    cache_wait_ms: int = Field(default=2000, ge=0, le=600_000)
    # Life of the single-flight lock: a holder that died frees the key after this.
    cache_lock_ttl_ms: int = Field(default=5000, ge=1, le=600_000)
    # How long the model name and version learned from pred's V2 metadata are trusted.
    model_info_ttl_s: float = Field(default=5.0, gt=0, le=86_400)
    # Decoded image size limit (SPEC 0.4 rule 2).
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1, le=1 << 30)
    # The item files of {"data": "<item id>"} (SPEC 3.9 behaviour 1), written by `make models`.
    data_dir: Path = Path("data/items")
    # The item of GET /predict/test.
    sample_item_id: str = "0000"

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


class DemoSettings(BaseSettings):
    """`make cache_demo` (Procfile.jobs): where the proxy answers."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    proxy_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path("data/items")

    @field_validator("data_dir")
    @classmethod
    def _data_from_pattern_dir(cls, value: Path) -> Path:
        return (PATTERN_DIR / value.expanduser()).absolute()
