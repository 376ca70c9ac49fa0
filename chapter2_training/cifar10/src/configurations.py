"""Settings of the pipeline (SPEC 0.7): where to register, how long to wait for a V2 server,
and how many CPU threads torch may use."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The model DB's default address (SPEC 1.3), used by `python -m src.register` when
# MODEL_DB_URL is unset: that command is an explicit request to register.
LOCAL_MODEL_DB_URL = "http://127.0.0.1:8100"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    # None: the pipeline only writes model directories (SPEC 1.2 behaviour 8, as in 1.1).
    model_db_url: str | None = None
    model_db_timeout_s: float = Field(default=10.0, gt=0)
    # `evaluate --server-url`: how long to wait for the server's readiness, and per request.
    server_ready_timeout_s: float = Field(default=60.0, gt=0)
    server_timeout_s: float = Field(default=10.0, gt=0)
    # The budgets of SPEC 1.2 are measured on 2 cores; more threads would not be reproducible.
    torch_threads: int = Field(default=2, ge=1)

    @field_validator("model_db_url")
    @classmethod
    def blank_means_unset(cls, value: str | None) -> str | None:
        # `MODEL_DB_URL=` in a shell or compose file means "no registry", not an empty URL.
        if value is None or not value.strip():
            return None
        return value.strip().rstrip("/")
