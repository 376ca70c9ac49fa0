"""Settings of the image model server `pred` and of its CLI client (SPEC 3.2, 0.7).

Every value has a default that works for a local process on 127.0.0.1; compose and k8s override
HOST and MODEL_DIR. Bad values fail at start-up, not at the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PATTERN_DIR = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


class Settings(BaseSettings):
    """The server (Procfile `pred`). Environment variables named as the fields."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    pred_port: int = Field(default=8001, ge=1, le=65535)
    # gunicorn workers: each has its own onnxruntime session and its own batch queue.
    workers: int = Field(default=2, ge=1, le=64)
    # onnxruntime intra-op threads per session (2 cores: WORKERS * this <= cores).
    inference_threads: int = Field(default=1, ge=1, le=64)
    # One image model directory of SPEC 0.2 (`make models` copies digits_resnet here).
    model_dir: Path = PATTERN_DIR / "models" / "digits_resnet"
    # The image of GET /predict/test (`make models` writes it).
    sample_image_path: Path = PATTERN_DIR / "data" / "sample.png"
    # A decoded image file above this is a 413 (SPEC 0.4 rule 2).
    max_image_bytes: int = Field(default=5 * MIB, ge=1024, le=1024 * MIB)
    # Images (rows) in one V2 request, FP32 or BYTES; more is a 413.
    max_images_per_request: int = Field(default=64, ge=1, le=4096)
    # Body of a V2 infer request; a larger one is refused before it is read whole.
    max_request_bytes: int = Field(default=32 * MIB, ge=64 * 1024, le=4096 * MIB)
    # Adaptive micro-batching (SPEC 3.2 behaviour 1).
    batching_enabled: bool = False
    max_batch_size: int = Field(default=8, ge=1, le=1024)
    max_queue_delay_ms: float = Field(default=2.0, ge=0, le=1000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("model_dir", "sample_image_path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Log lines name these paths: absolute, so that they say which file was meant.
        return value.expanduser().absolute()


class ClientSettings(BaseSettings):
    """The CLI client (`python -m src.client`): where `pred` is and how long to wait."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    pred_url: str = "http://127.0.0.1:8001"
    # The model named in V2 paths (`/v2/models/<name>/infer`).
    model_name: str = "digits_resnet"
    client_timeout_s: float = Field(default=5.0, gt=0, le=600)
