"""Settings of the proxy and the three model services (SPEC 0.7, 3.6), read from the environment.

Four processes run this code: `proxy` and `service_setosa`, `service_versicolor`,
`service_virginica`, the last three one code path serving the model directory named by
MODEL_DIR. Each process listens on the port setting named after its Procfile name
(PROXY_PORT, SERVICE_SETOSA_PORT, ...). A service's Procfile line says which one it is with
SERVICE_NAME=<species>; the proxy's line sets none. No setting reads a bare PORT.

Every value has a default that works for local processes on 127.0.0.1; compose and k8s override
HOST and the backend URLs. Bad values fail at start-up, not at the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PATTERN_DIR = Path(__file__).resolve().parents[1]
ServiceName = Literal["setosa", "versicolor", "virginica"]
Port = Annotated[int, Field(ge=1, le=65535)]
Rows = Annotated[int, Field(ge=1, le=1_000_000)]


class Settings(BaseSettings):
    """What every process reads: where it listens, its workers and its log level."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", protected_namespaces=())

    host: str = "127.0.0.1"
    # Which model service this process is; unset for the proxy.
    service_name: ServiceName | None = None
    proxy_port: Port = 9000
    service_setosa_port: Port = 8000
    service_versicolor_port: Port = 8001
    service_virginica_port: Port = 8002
    # One worker per process: four processes share two cores, and k8s scales by replicas (HPA).
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def process_name(self) -> str:
        """The Procfile name of this process: `proxy` or `service_<species>`."""
        return "proxy" if self.service_name is None else f"service_{self.service_name}"

    @property
    def port(self) -> int:
        """The port of this process: the setting named after its Procfile name."""
        ports = {
            "proxy": self.proxy_port,
            "service_setosa": self.service_setosa_port,
            "service_versicolor": self.service_versicolor_port,
            "service_virginica": self.service_virginica_port,
        }
        return ports[self.process_name]


class ServiceSettings(Settings):
    """A model service: T-API and V2 on one model directory."""

    # Relative paths are read from the pattern directory (the image's /app), not the cwd.
    model_dir: Path = Path("models/iris_binary_setosa")
    max_rows: Rows = 10_000

    @field_validator("model_dir")
    @classmethod
    def _from_pattern_dir(cls, value: Path) -> Path:
        return (PATTERN_DIR / value.expanduser()).resolve()


class ProxySettings(Settings):
    """The composition proxy: which backends it fans out to, and how long it waits for each."""

    # An explicit list (SERVICES=setosa,versicolor,virginica), never a scan of the environment.
    services: Annotated[list[ServiceName], NoDecode] = ["setosa", "versicolor", "virginica"]
    service_setosa_url: str = "http://127.0.0.1:8000"
    service_versicolor_url: str = "http://127.0.0.1:8001"
    service_virginica_url: str = "http://127.0.0.1:8002"
    # Bounds each backend call from connect to the last byte of its answer.
    backend_timeout_ms: int = Field(default=1000, ge=1, le=600_000)
    # The proxy holds no model: it checks the T-API input rules against this row width (the
    # iris models' four features); each backend checks its own model's width again.
    feature_count: int = Field(default=4, ge=1, le=100_000)
    max_rows: Rows = 10_000

    @field_validator("services", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("services")
    @classmethod
    def _some_and_unique(cls, value: list[ServiceName]) -> list[ServiceName]:
        if not value:
            raise ValueError("SERVICES names no backend")
        if len(set(value)) != len(value):
            raise ValueError("SERVICES names a backend twice")
        return value

    @field_validator("service_setosa_url", "service_versicolor_url", "service_virginica_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a backend URL starts with http:// or https://")
        return value.rstrip("/")

    @property
    def backend_timeout_s(self) -> float:
        return self.backend_timeout_ms / 1000

    def backend_urls(self) -> dict[str, str]:
        """Base URL of each backend of SERVICES, in that order."""
        urls = {
            "setosa": self.service_setosa_url,
            "versicolor": self.service_versicolor_url,
            "virginica": self.service_virginica_url,
        }
        return {name: urls[name] for name in self.services}
