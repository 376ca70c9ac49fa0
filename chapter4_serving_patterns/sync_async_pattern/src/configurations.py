"""Settings of the four processes (SPEC 3.7, 0.7, 0.9), read from the environment.

`proxy` (PROXY_PORT, 8000) answers each image at once with the light model served by
`pred_sync` (PRED_SYNC_PORT, 8001) and queues it, in the same call, for the heavy model served
by `pred_async` (PRED_ASYNC_PORT, 8002); `worker` (metrics on WORKER_PORT, 9101) takes the jobs
from Redis and calls `pred_async`. Both model servers run one code path (src/pred/, the
byte-identical copy of prep_pred_pattern's); a model server's Procfile line says which one it
is with PRED_NAME and which model it serves with MODEL_DIR.

MODEL_DIR is the queue's model everywhere else: the heavy model whose metadata.json the worker
preprocesses with and whose label.json names its results (the proxy checks uploads against it
too). The quick model of the sync call is SYNC_MODEL_DIR. Every value has a default that works
for local processes on 127.0.0.1; compose and k8s override HOST, REDIS_URL and the two model
server URLs. Bad values fail at start-up, not at the first job. No setting reads a bare PORT
(honcho sets one per process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PATTERN_DIR = Path(__file__).resolve().parents[1]
Port = Annotated[int, Field(ge=1, le=65535)]
Milliseconds = Annotated[int, Field(ge=1, le=600_000)]
PredName = Literal["pred_sync", "pred_async"]


def from_pattern_dir(value: Path) -> Path:
    # Log lines name this path: absolute, so that they say which directory was refused.
    return (PATTERN_DIR / value.expanduser()).absolute()


def http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("model server URLs start with http:// or https://")
    return value.rstrip("/")


class Settings(BaseSettings):
    """What every process reads: where it listens, its workers, log level and model."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    proxy_port: Port = 8000
    pred_sync_port: Port = 8001
    pred_async_port: Port = 8002
    worker_port: Port = 9101
    # One gunicorn worker per HTTP process: four processes share two cores, and k8s scales
    # by replicas (HPA).
    workers: int = Field(default=1, ge=1, le=64)
    # A model directory of SPEC 0.2; relative paths are read from the pattern directory. A model
    # server reads all of it; proxy and worker only metadata.json and label.json (the heavy
    # model, the one pred_async serves).
    model_dir: Path = Path("models/digits_resnet_large")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_dir")
    @classmethod
    def _from_pattern_dir(cls, value: Path) -> Path:
        return from_pattern_dir(value)


class PredSettings(Settings):
    """A V2 model server: pred_sync or pred_async, as its Procfile line says (PRED_NAME)."""

    pred_name: PredName = "pred_sync"
    # Rows (images) per infer request; more is a 413 before the tensor is parsed.
    max_batch_size: int = Field(default=64, ge=1, le=4096)

    @property
    def pred_port(self) -> int:
        """The port of this model server: the setting named after its Procfile name (the copied
        src/pred/gunicorn.conf.py binds to it)."""
        return self.pred_sync_port if self.pred_name == "pred_sync" else self.pred_async_port


class QueueSettings(Settings):
    """The job queue in Redis (SPEC 0.9), as both proxy and worker see it."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Bounds every Redis command, connect included: no call blocks forever (SPEC 0.7 rule 3).
    redis_timeout_ms: Milliseconds = 2000
    # Every key of this queue starts with it: two queues can share one Redis database.
    queue_prefix: str = Field(default="sync_async", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    # A job held longer than this by a consumer that stopped extending it is reclaimed.
    visibility_timeout_s: float = Field(default=30.0, gt=0, le=86_400)
    max_attempts: int = Field(default=3, ge=1, le=100)
    # Retry n waits RETRY_BACKOFF_S * 2**(n-1), at most RETRY_BACKOFF_MAX_S.
    retry_backoff_s: float = Field(default=1.0, ge=0, le=3600)
    retry_backoff_max_s: float = Field(default=30.0, ge=0, le=86_400)
    # A finished job's record, result and idempotency key live this long.
    result_ttl_s: int = Field(default=3600, ge=1, le=30 * 86_400)
    # Submission answers 503 once this many jobs wait or run.
    max_queue_length: int = Field(default=10_000, ge=1, le=100_000_000)
    # Decoded image size limit (SPEC 0.4 rule 2).
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1, le=1 << 30)
    # A worker whose last heartbeat is older than this counts as gone (/health/all).
    heartbeat_ttl_s: float = Field(default=15.0, gt=0, le=3600)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL starts with redis://, rediss:// or unix://")
        return value

    @property
    def redis_timeout_s(self) -> float:
        return self.redis_timeout_ms / 1000


class PredClientSettings(QueueSettings):
    """Where the queue's model server (pred_async) is and how long a call to it may take.

    `pred_url` and `pred_timeout_s` are what src/pred_client.py (a byte-identical copy of the
    asynchronous pattern's) reads; SyncCallSettings points them at pred_sync instead."""

    pred_async_url: str = "http://127.0.0.1:8002"
    # Bounds each call to pred_async, from connect to the last byte of its answer.
    pred_timeout_ms: Milliseconds = 10_000

    @field_validator("pred_async_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @property
    def pred_url(self) -> str:
        return self.pred_async_url

    @property
    def pred_timeout_s(self) -> float:
        return self.pred_timeout_ms / 1000


class ProxySettings(PredClientSettings):
    """The API: the sync call, the enqueue, the job routes."""

    pred_sync_url: str = "http://127.0.0.1:8001"
    # The quick model pred_sync serves: its metadata.json and label.json.
    sync_model_dir: Path = Path("models/digits_resnet_small")
    # Bounds the whole sync call to pred_sync; beyond it the answer is `sync: null`.
    sync_timeout_ms: Milliseconds = 1000
    # The image of GET /predict/test, written by `make models`.
    sample_image_path: Path = Path("data/sample.png")
    # Bounds the look at a model server's metadata behind /health/all and /metadata: a hung
    # server makes them answer "ng" / 503 quickly.
    pred_probe_timeout_ms: Milliseconds = 1000
    # What a client that polls a pending job is told to wait (Retry-After), in seconds.
    poll_after_s: int = Field(default=1, ge=1, le=3600)

    @field_validator("pred_sync_url")
    @classmethod
    def _sync_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("sync_model_dir", "sample_image_path")
    @classmethod
    def _paths_from_pattern_dir(cls, value: Path) -> Path:
        return from_pattern_dir(value)

    @property
    def pred_probe_timeout_s(self) -> float:
        return self.pred_probe_timeout_ms / 1000

    def sync_call(self) -> SyncCallSettings:
        """The same values, seen by the client of pred_sync."""
        return SyncCallSettings.model_construct(**dict(self))


class SyncCallSettings(ProxySettings):
    """ProxySettings as the PredClient of the sync call reads them: pred_sync's URL, the quick
    model's directory and SYNC_TIMEOUT_MS. Made by ProxySettings.sync_call(), never from the
    environment on its own."""

    @property
    def pred_url(self) -> str:
        return self.pred_sync_url

    @property
    def pred_timeout_s(self) -> float:
        return self.sync_timeout_ms / 1000


class WorkerSettings(PredClientSettings):
    """The queue consumers."""

    # Consumers (concurrent jobs) per worker process (SPEC 0.9 rule 9).
    worker_concurrency: int = Field(default=2, ge=1, le=256)
    # How long one read waits for a new job; below REDIS_TIMEOUT_MS (the socket's bound).
    queue_block_ms: Milliseconds = 500
    heartbeat_interval_s: float = Field(default=2.0, gt=0, le=600)
    # Longest wait between two reconnection attempts while Redis is away.
    reconnect_max_s: float = Field(default=5.0, gt=0, le=600)

    @model_validator(mode="after")
    def _block_below_timeout(self) -> WorkerSettings:
        if self.queue_block_ms >= self.redis_timeout_ms:
            raise ValueError("QUEUE_BLOCK_MS must be below REDIS_TIMEOUT_MS")
        return self


class ClientSettings(BaseSettings):
    """`python -m src.client`: where the proxy is and how long to wait for the heavy result."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    proxy_url: str = "http://127.0.0.1:8000"
    # Bounds each HTTP call, and the whole wait for one job to settle.
    client_http_timeout_s: float = Field(default=10.0, gt=0, le=600)
    client_wait_s: float = Field(default=60.0, gt=0, le=3600)
